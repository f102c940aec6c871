"""Experiments: the event contract (impressions and outcomes), readouts of arms against a
control, a seeded traffic simulator that gives them a known truth, and the Open Bandit Dataset
in the contract.

The contract (``events``) is imported eagerly: the service's logger needs it and nothing
heavy. The readout, the simulator and the Open Bandit conversion load on first use of their
names (they pull in scipy, DuckDB and the ranker).
"""

from __future__ import annotations

from clv.lazy_exports import lazy_exports
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


__getattr__ = lazy_exports(__name__, {name: f"{__name__}.{module}"
                                      for name, module in _LAZY.items()})[0]


__all__ = [
    "IMPRESSION_SCHEMA", "OUTCOME_SCHEMA", "OUTCOME_TYPES", "Events", "impression_rows",
    "load_events", "query_hash", "validate_impressions", "validate_outcome_records",
    "write_events", "write_impressions", "write_outcomes", *_LAZY,
]
