"""MkDocs hooks: pages that include files kept outside docs/, and docstrings without Sphinx roles.

Pages that show a file kept outside docs/ (data/README.md, data/demo/README.md):
The data format notes live beside the data, where a user browsing the repository finds them;
the site includes them at build time instead of keeping a second copy. A page asks for a file
with a line ``{{ include: data/README.md }}``; links inside the included text that point at
the other included file are rewritten to its page, so ``mkdocs build --strict`` checks them.

The docstrings use Sphinx roles (``:class:`Ranker` ``); mkdocstrings renders them as Markdown,
which would show the role's name before the code. The role is dropped from the HTML.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):(?=<code>)")
INCLUDE = re.compile(r"^\{\{ include: (\S+) \}\}$", flags=re.M)
# Links in the included files, rewritten to the site's pages (guide/ holds both pages).
LINKS = {"](demo/README.md)": "](demo-world.md)", "](../README.md)": "](data-formats.md)"}


def _included(match: re.Match[str]) -> str:
    text = (ROOT / match.group(1)).read_text(encoding="utf-8")
    text = text.split("\n", 1)[1] if text.startswith("# ") else text  # the page has its title
    for old, new in LINKS.items():
        text = text.replace(old, new)
    return text


def on_page_markdown(markdown: str, **_: object) -> str:
    return INCLUDE.sub(_included, markdown)


def on_page_content(html: str, **_: object) -> str:
    return ROLE.sub("", html)
