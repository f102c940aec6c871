"""Docstrings as ``--help`` text.

A module docstring written for the API reference carries Sphinx roles (``:mod:`x` ``) and double
backquotes; printed by argparse they are noise in a terminal. Commands that reuse a docstring as
their description pass it through :func:`plain_doc`.
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:mod|func|class|meth|data|attr|exc|obj):`~?([^`]+)`")


def plain_doc(doc: str | None) -> str:
    """``doc`` without Sphinx roles and double backquotes."""
    return _ROLE.sub(r"\1", doc or "").replace("``", "")


def sentence(help: str) -> str:
    """A command's one-line ``help`` as the description its own ``--help`` opens with."""
    return help[:1].upper() + help[1:] + "."
