"""Experiments: the event contract (impressions and outcomes), readouts of arms against a
control, and a seeded traffic simulator that gives them a known truth."""

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

__all__ = [
    "IMPRESSION_SCHEMA", "OUTCOME_SCHEMA", "OUTCOME_TYPES", "Events", "impression_rows",
    "load_events", "query_hash", "validate_impressions", "validate_outcome_records",
    "write_events", "write_impressions", "write_outcomes",
]
