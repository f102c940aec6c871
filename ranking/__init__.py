"""The query-time path: text analysis, BM25, features, LambdaMART, the Numba blend core,
the Ranker facade and its bundle. The application (CLI, build, service) is ``ranking.app``.

Public names resolve lazily (PEP 562), as in ``clv``: ``import ranking`` stays cheap, and the
``marginrank`` command can import its own modules without loading Numba, XGBoost and pandas
before it knows which command runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and the API reference; at run time, __getattr__ below
    from ranking.app.build import BuildInputs, BuildResult, BuildSettings, build
    from ranking.ranker import Ranker, SearchResult

_EXPORTS = {
    "Ranker": "ranking.ranker",
    "SearchResult": "ranking.ranker",
    "build": "ranking.app.build",
    "BuildInputs": "ranking.app.build",
    "BuildSettings": "ranking.app.build",
    "BuildResult": "ranking.app.build",
}

__all__ = ["BuildInputs", "BuildResult", "BuildSettings", "Ranker", "SearchResult", "build"]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ranking' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
