"""Package exports that load their module on first use (PEP 562).

A package's ``__init__`` names its public surface (``from ranking import Ranker``) without
importing the modules behind it: ``import ranking`` then costs nothing, and the ``marginrank``
command can start without loading Numba, XGBoost, pandas or cvxpy for a ``--help``. It lives in
``clv`` because every package of marginrank may import ``clv`` and ``clv`` imports nothing else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose public ``name`` lives in the module
    ``exports[name]``."""

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
