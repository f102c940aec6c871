"""Business objectives: per-product terms, the merchandiser weights YAML, evaluation metrics
and the cvxpy weight tuner.

Public names resolve lazily (PEP 562), as in ``clv``: importing the package does not import
cvxpy or pydantic until a name that needs them is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clv.lazy_exports import lazy_exports

if TYPE_CHECKING:  # for type checkers and the API reference; at run time, __getattr__ below
    from clv.errors import AuditError, ConfigError, ConfigIssue, UnknownSegmentError
    from objectives.config import WeightsConfig, load_config
    from objectives.tuner import TuneResult, tune_weights

_EXPORTS = {
    "load_config": "objectives.config",
    "WeightsConfig": "objectives.config",
    "tune_weights": "objectives.tuner",
    "TuneResult": "objectives.tuner",
    # errors of the weights file and the audit; every error class lives in clv.errors
    "ConfigError": "clv.errors",
    "ConfigIssue": "clv.errors",
    "UnknownSegmentError": "clv.errors",
    "AuditError": "clv.errors",
}

__all__ = [
    "AuditError", "ConfigError", "ConfigIssue", "TuneResult", "UnknownSegmentError",
    "WeightsConfig", "load_config", "tune_weights"
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
