"""Experiments: the event contract (impressions and outcomes), readouts of arms against a
control, a seeded traffic simulator that gives them a known truth, and the Open Bandit Dataset
in the contract.

The contract (``events``) is imported eagerly: the service's logger needs it and nothing
heavy. The readout, the simulator and the Open Bandit conversion load on first use of their
names (they pull in scipy, DuckDB and the ranker).
"""

from __future__ import annotations

import importlib
from typing import Any

from ranking.experiments.events import (
    IMPRESSION_SCHEMA,
    OUTCOME_SCHEMA,
    OUTCOME_TYPES,
    Events,
    impression_rows,
    load_events,
    query_hash,
    validate_impressions,
    validate_outcome_records,
    write_events,
    write_impressions,
    write_outcomes,
)

_LAZY = {
    # not ``readout`` itself: that name is the submodule (``from ranking.experiments.readout
    # import readout``)
    "Readout": "readout", "METRICS": "readout",
    "ClickModel": "simulator", "TrafficSimulator": "simulator", "SimulatedDay": "simulator",
    "with_experiment": "simulator", "write_simulation": "simulator",
    "convert_open_bandit": "open_bandit", "open_bandit_readout": "open_bandit",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ranking.experiments' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ranking.experiments.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "IMPRESSION_SCHEMA", "OUTCOME_SCHEMA", "OUTCOME_TYPES", "Events", "impression_rows",
    "load_events", "query_hash", "validate_impressions", "validate_outcome_records",
    "write_events", "write_impressions", "write_outcomes", *_LAZY,
]
