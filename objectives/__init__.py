"""Business objectives: per-product terms, the merchandiser weights YAML, evaluation metrics
and the cvxpy weight tuner.

Public names resolve lazily (PEP 562), as in ``clv``: importing the package does not import
cvxpy or pydantic until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and the API reference; at run time, __getattr__ below
    from objectives.config import ConfigError, WeightsConfig, load_config
    from objectives.tuner import TuneResult, tune_weights

_EXPORTS = {
    "load_config": "objectives.config",
    "WeightsConfig": "objectives.config",
    "ConfigError": "objectives.config",
    "tune_weights": "objectives.tuner",
    "TuneResult": "objectives.tuner",
}

__all__ = ["ConfigError", "TuneResult", "WeightsConfig", "load_config", "tune_weights"]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'objectives' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
