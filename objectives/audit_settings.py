"""The audit's thresholds, apart from its checks: ``marginrank audit --help`` prints their
defaults without importing pandas (:mod:`objectives.audit` and :mod:`objectives.audit_events`
use them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventSettings:
    """Thresholds of the event checks. A day drifts when its CTR differs from the median day's by
    more than ``ctr_drift_relative`` (relative) *and* by more than ``ctr_drift_z`` binomial
    standard errors of that day (so a quiet day's noise is not drift). A config version carried
    by fewer than ``min_config_searches`` searches is stray."""

    ctr_drift_relative: float = 0.5
    ctr_drift_z: float = 4.0
    min_config_searches: int = 2


@dataclass(frozen=True)
class AuditSettings:
    """Thresholds of the checks. ``as_of`` None means the last transaction's time (the data's
    own "now", so a result does not depend on the day it is computed). ``severity`` overrides
    default severities: ``(("price_below_cost", "warning"), ...)``."""

    stale_days: int = 90
    horizon_days: float = 365.0  # CLVModel's default horizon
    near_duplicate_threshold: float = 0.8
    margin_z: float = 5.0
    return_rate_z: float = 4.0
    drift_relative: float = 0.2
    drift_share: float = 0.05
    as_of: str | None = None
    price_updated_column: str = "price_updated_at"
    price_stale_days: int = 365
    severity: tuple[tuple[str, str], ...] = ()
    events: EventSettings = EventSettings()


#: The defaults, as argument defaults (one shared frozen instance each).
DEFAULT_EVENT_SETTINGS = EventSettings()
DEFAULT_SETTINGS = AuditSettings()
