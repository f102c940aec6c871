"""Off-policy estimates: what a new ranking policy would have earned, read from logs of another.

The logs say, for each logged unit (a product shown at a position in one search), the reward it
earned (a click, a margin) and the probability the *logging* policy had of showing it there. A
target policy gives its own probability of that same choice (0 or 1 for a deterministic ranker).
Reweighting the logged rewards by ``target / logging`` estimates the target's mean reward
(Horvitz-Thompson); the variants trade bias for variance:

- ``ips``: ``sum(w * r) / N``, unbiased when every target choice had a logging propensity > 0.
- ``snips``: self-normalized, ``sum(w * r) / sum(w)`` per group (position); bounded by the
  rewards, biased by O(1/N), usually far less variable.
- ``dr``: doubly robust, ``q_target + w * (r - q_logged)`` with a reward model ``q``; unbiased if
  either the propensities or the model are right.

All three are ratios of sums over clusters (searches, or customers when the randomization unit
is the customer), so one linearized variance serves them all: the influence of cluster ``c`` on
``A/B`` is ``(a_c - R b_c) / B``, and ``Var = n/(n-1) * sum(phi_c^2)`` (sampling clusters with
replacement). Intervals are normal at :data:`~ranking.experiments.stats.LEVEL`.

Weights can be clipped at ``max_weight``: the estimate is then biased downward for the clipped
rows, and the result says how many rows were clipped and at what cap, so the clipping is stated,
never silent. Propensities that are missing, zero, negative or above 1 are refused: a zero
logging propensity for a choice the target makes is exactly the case no reweighting can fix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sstats

from clv.errors import DataError
from ranking.experiments.stats import LEVEL

_Z2 = float(sstats.norm.ppf(0.5 + LEVEL / 2))


@dataclass(frozen=True)
class OffPolicyEstimate:
    """One estimator's value with its interval and what the weights did."""

    estimator: str
    value: float
    low: float
    high: float
    se: float
    units: int  # logged rows used
    clusters: int  # independent clusters behind the interval
    max_weight: float | None  # the clip, or None
    clipped: int  # rows whose weight hit the clip
    effective_n: float  # (sum w)^2 / sum w^2 over rows the target would choose

    def covers(self, truth: float) -> bool:
        return bool(self.low <= truth <= self.high)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def check_propensities(propensity: object, *, source: str = "<logs>",
                       column: str = "propensity") -> np.ndarray:
    """The logging propensities as float64, or a :class:`DataError` naming the first bad row.

    A missing (NaN/None), zero, negative or > 1 propensity is refused: off-policy weights divide
    by it, and a guessed value would make every estimate wrong without saying so.
    """
    p = np.asarray(propensity, dtype=np.float64) if propensity is not None else np.array([])
    bad = ~np.isfinite(p)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"row {row + 1}: missing propensity; off-policy estimates need the "
                        "logging policy's probability of every logged choice (log it where the "
                        "ranking was randomized)", file=source, column=column)
    bad = (p <= 0) | (p > 1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"row {row + 1}: propensity is not in (0, 1]; a logged choice had a "
                        "positive probability by definition", file=source, column=column,
                        value=p[row])
    return p


def importance_weights(target: object, logging: object, *, max_weight: float | None = None,
                       source: str = "<logs>") -> tuple[np.ndarray, int]:
    """``target / logging`` per row, clipped at ``max_weight``; also the number of rows clipped."""
    p = check_propensities(logging, source=source)
    t = np.asarray(target, dtype=np.float64)
    if t.shape != p.shape:
        raise DataError(f"{t.size} target probabilities for {p.size} logged rows", file=source)
    if not np.all(np.isfinite(t)) or np.any((t < 0) | (t > 1)):
        row = int(np.flatnonzero(~np.isfinite(t) | (t < 0) | (t > 1))[0])
        raise DataError(f"row {row + 1}: target probability is not in [0, 1]", file=source,
                        value=t[row])
    w = t / p
    clipped = 0
    if max_weight is not None:
        if not max_weight > 0:
            raise DataError(f"max_weight must be > 0, got {max_weight!r}")
        over = w > max_weight
        clipped = int(over.sum())
        w = np.where(over, max_weight, w)
    return w, clipped


def _clusters(cluster: object, n: int) -> tuple[np.ndarray, int]:
    if cluster is None:
        return np.arange(n), n
    ids = np.asarray(cluster)
    if ids.shape != (n,):
        raise DataError(f"{ids.size} cluster ids for {n} logged rows")
    _, inverse = np.unique(ids, return_inverse=True)
    return inverse, int(inverse.max()) + 1 if n else 0


def _sum_by(values: np.ndarray, inverse: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(inverse, weights=values, minlength=k)


def _ratio_sum(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """``sum_g A_g / B_g`` over cluster totals ``(a_gc, b_gc)`` and its linearized variance."""
    value = 0.0
    phi = None
    for a, b in parts:
        big_a, big_b = float(a.sum()), float(b.sum())
        if big_b == 0:
            return float("nan"), float("nan")
        r = big_a / big_b
        value += r
        contrib = (a - r * b) / big_b
        phi = contrib if phi is None else phi + contrib
    n = phi.size if phi is not None else 0
    if n < 2:
        return value, float("nan")
    return value, float(n / (n - 1) * np.sum(phi * phi))


def _estimate(name: str, value: float, var: float, units: int, k: int,
              max_weight: float | None, clipped: int, w: np.ndarray,
              chosen: np.ndarray) -> OffPolicyEstimate:
    se = float(np.sqrt(var)) if np.isfinite(var) else float("nan")
    wc = w[chosen]
    ess = float(wc.sum() ** 2 / np.sum(wc * wc)) if wc.size and np.any(wc > 0) else 0.0
    return OffPolicyEstimate(name, float(value), float(value - _Z2 * se), float(value + _Z2 * se),
                             se, units, k, max_weight, clipped, ess)


def _inputs(reward: object, target: object, logging: object, cluster: object,
            max_weight: float | None, source: str):
    r = np.asarray(reward, dtype=np.float64)
    w, clipped = importance_weights(target, logging, max_weight=max_weight, source=source)
    if r.shape != w.shape:
        raise DataError(f"{r.size} rewards for {w.size} logged rows", file=source)
    if not np.all(np.isfinite(r)):
        row = int(np.flatnonzero(~np.isfinite(r))[0])
        raise DataError(f"row {row + 1}: reward is not a finite number", file=source,
                        column="reward", value=r[row])
    inverse, k = _clusters(cluster, r.size)
    return r, w, clipped, inverse, k


def ips(reward: object, target: object, logging: object, *, cluster: object = None,
        units: object = None, max_weight: float | None = None,
        source: str = "<logs>") -> OffPolicyEstimate:
    """Inverse propensity scoring: ``sum(w r) / sum(units)``.

    ``units`` is each row's share of the denominator: by default 1 per row (mean reward per
    logged row); for a reward per search with several rows per search, give ``1 / rows in its
    search`` per row, or pass ``cluster`` = search and units = 1 on one row per search.
    """
    r, w, clipped, inverse, k = _inputs(reward, target, logging, cluster, max_weight, source)
    u = np.ones_like(r) if units is None else np.asarray(units, dtype=np.float64)
    value, var = _ratio_sum([(_sum_by(w * r, inverse, k), _sum_by(u, inverse, k))])
    return _estimate("ips", value, var, r.size, k, max_weight, clipped, w, w > 0)


def snips(reward: object, target: object, logging: object, *, cluster: object = None,
          group: object = None, max_weight: float | None = None,
          source: str = "<logs>") -> OffPolicyEstimate:
    """Self-normalized IPS: ``sum_g sum(w r) / sum(w)`` over groups ``g`` (positions).

    Without groups it is the target's mean reward per logged row. With ``group`` = position, on
    logs where every search has one row at each position, the sum over positions is the
    target's expected reward per search (the item-position model: a product's reward depends on
    the product and its position, not on its neighbours).
    """
    r, w, clipped, inverse, k = _inputs(reward, target, logging, cluster, max_weight, source)
    groups = np.zeros(r.size, dtype=np.int64) if group is None else np.asarray(group)
    parts = []
    for g in np.unique(groups):
        m = groups == g
        parts.append((_sum_by(np.where(m, w * r, 0.0), inverse, k),
                      _sum_by(np.where(m, w, 0.0), inverse, k)))
    value, var = _ratio_sum(parts)
    return _estimate("snips", value, var, r.size, k, max_weight, clipped, w, w > 0)


def dr(reward: object, target: object, logging: object, q_logged: object, q_target: object, *,
       cluster: object = None, units: object = None, max_weight: float | None = None,
       source: str = "<logs>") -> OffPolicyEstimate:
    """Doubly robust: ``sum(q_target + w (r - q_logged)) / sum(units)``.

    ``q_logged`` is the reward model's prediction for the logged choice of each row;
    ``q_target`` its expected reward for what the target policy chooses in that row's context
    (for a deterministic target: the prediction for the target's choice at that position).
    """
    r, w, clipped, inverse, k = _inputs(reward, target, logging, cluster, max_weight, source)
    ql = np.asarray(q_logged, dtype=np.float64)
    qt = np.asarray(q_target, dtype=np.float64)
    if ql.shape != r.shape or qt.shape != r.shape:
        raise DataError("reward model predictions must have one value per logged row",
                        file=source)
    if not (np.all(np.isfinite(ql)) and np.all(np.isfinite(qt))):
        raise DataError("the reward model predicted a non-finite value", file=source)
    u = np.ones_like(r) if units is None else np.asarray(units, dtype=np.float64)
    d = qt + w * (r - ql)
    value, var = _ratio_sum([(_sum_by(d, inverse, k), _sum_by(u, inverse, k))])
    return _estimate("dr", value, var, r.size, k, max_weight, clipped, w, w > 0)
