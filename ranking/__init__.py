"""The query-time path: text analysis, BM25, features, LambdaMART, the Numba blend core,
the Ranker facade and its bundle. The application (CLI, build, service) is ``ranking.app``.

Public names resolve lazily (PEP 562), as in ``clv``: ``import ranking`` stays cheap, and the
``marginrank`` command can import its own modules without loading Numba, XGBoost and pandas
before it knows which command runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clv.lazy_exports import lazy_exports

if TYPE_CHECKING:  # for type checkers and the API reference; at run time, __getattr__ below
    from clv.errors import (
        AllocationError,
        AnalyzerError,
        BM25IndexError,
        BundleError,
        ModelError,
        QueryError,
        UBJSONError,
    )
    from ranking.app.build import BuildInputs, BuildResult, BuildSettings, build
    from ranking.ranker import Ranker, SearchResult

_EXPORTS = {
    "Ranker": "ranking.ranker",
    "SearchResult": "ranking.ranker",
    "build": "ranking.app.build",
    "BuildInputs": "ranking.app.build",
    "BuildSettings": "ranking.app.build",
    "BuildResult": "ranking.app.build",
    # errors of the query path and the bundle; every error class lives in clv.errors
    "QueryError": "clv.errors",
    "BundleError": "clv.errors",
    "BM25IndexError": "clv.errors",
    "AnalyzerError": "clv.errors",
    "ModelError": "clv.errors",
    "UBJSONError": "clv.errors",
    "AllocationError": "clv.errors",
}

__all__ = [
    "AllocationError", "AnalyzerError", "BM25IndexError", "BuildInputs", "BuildResult",
    "BuildSettings", "BundleError", "ModelError", "QueryError", "Ranker", "SearchResult",
    "UBJSONError", "build"
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
