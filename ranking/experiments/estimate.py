"""From logged events to the two things a shop without judgments needs: how much each position
is looked at, and what a proposed weights file would earn, both with intervals.

- :func:`examination` reads the searches the exploration shuffled (``randomized`` true; the
  places with a propensity) when there are any, by :func:`~ranking.experiments.position_bias.
  from_randomized`, and fits the position-based model by EM over every shown row otherwise
  (and beside it, for the places exploration does not reach). :func:`combined` takes the
  randomized ratio where there is one and the EM ratio elsewhere, both relative to place 1.
- :func:`estimate_policy` is the item-position off-policy estimate of a deterministic target
  ranker: a logged row (product d shown at place p with logging propensity pi) counts with
  weight ``1[target puts d at p] / pi``. Below the explored top k the logging policy is
  deterministic (propensity 1 for what it showed there). A target placement no logged row
  could have shown (a product outside the logged top k moved into it, or a different product
  below it) has no support: IPS and SNIPS cannot see it and the report gives its share; DR
  fills it with its reward model (examination x the debiased per-(query, product) reward).
  Rewards: clicks per search and net margin per search (purchases minus returns).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from clv.errors import DataError
from ranking.experiments.offpolicy import dr, ips, snips
from ranking.experiments.position_bias import Examination, em_pbm, from_randomized, harvest

#: What :func:`estimate_policy` estimates, per search.
REWARDS = ("clicks", "margin")

#: Above this share of target placements without logging support, an estimate is not claimable
#: for the whole policy (:func:`claimability`).
MAX_UNSUPPORTED = 0.05


@dataclass
class Logged:
    """The shown impression rows as arrays, with each row's rewards."""

    request: np.ndarray
    query: np.ndarray
    customer: np.ndarray
    product: np.ndarray
    position: np.ndarray
    propensity: np.ndarray  # NaN: none logged
    randomized: np.ndarray  # bool: the row's search was shuffled
    bundle_version: np.ndarray
    clicks: np.ndarray
    margin: np.ndarray
    searches: int
    search_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    empty_searches: int = 0  # searches that showed nothing (reward 0 under any ranking)
    arm: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # "" outside arms
    segment: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # "" default


def logged(impressions: pa.Table, outcomes: pa.Table) -> Logged:
    """The shown rows of ``impressions`` with their clicks (0/1) and net margin."""
    pos_all = impressions.column("position").to_numpy(zero_copy_only=False)
    searches = len(set(impressions.column("request_id").to_pylist()))
    imp = impressions.filter(pa.array(pos_all > 0))

    def col(name: str) -> np.ndarray:
        return np.asarray(imp.column(name).to_pylist(), dtype=object)

    request, product = col("request_id"), col("product_id")
    keys = {f"{r}\x1f{p}": i for i, (r, p) in enumerate(zip(request, product, strict=True))}
    clicks = np.zeros(request.size)
    margin = np.zeros(request.size)
    o = outcomes.to_pydict()
    for r, p, t, q, m in zip(o["request_id"], o["product_id"], o["type"], o["quantity"],
                             o["unit_margin"], strict=True):
        i = keys.get(f"{r}\x1f{p}")
        if i is None:
            continue
        if t == "click":
            clicks[i] = 1.0
        elif t in ("purchase", "return") and q is not None and m is not None:
            margin[i] += (1.0 if t == "purchase" else -1.0) * q * m
    prop = imp.column("propensity").to_numpy(zero_copy_only=False).astype(np.float64)
    rand = np.asarray([bool(x) for x in imp.column("randomized").to_pylist()], np.bool_)
    _, search_index = np.unique(request, return_inverse=True)
    return Logged(request, col("query"), col("customer_id"), product,
                  imp.column("position").to_numpy(zero_copy_only=False).astype(np.int64),
                  np.where(np.isnan(prop), np.nan, prop), rand, col("bundle_version"),
                  clicks, margin, searches, search_index.reshape(-1),
                  int((pos_all < 0).sum()),
                  np.array(["" if a is None else str(a) for a in col("arm")], dtype=object),
                  np.array(["" if g is None else str(g) for g in col("segment")], dtype=object))


@dataclass(frozen=True)
class PositionBias:
    """Examination by position from logs: the randomized estimate (None without randomized
    rows), the EM estimate, and the two combined (randomized where it reaches)."""

    randomized: Examination | None
    em: Examination | None
    combined: Examination
    searches: int
    randomized_searches: int

    def to_dict(self) -> dict[str, Any]:
        return {"searches": self.searches, "randomized_searches": self.randomized_searches,
                "used": self.combined.method,
                "randomized": None if self.randomized is None else self.randomized.to_dict(),
                "em": None if self.em is None else self.em.to_dict(),
                "combined": self.combined.to_dict()}


def examination(rows: Logged, *, bootstrap: int = 30, seed: int = 0,
                em: bool | None = True) -> PositionBias:
    """Examination ratios from ``rows`` (module docs): randomized rows when present, EM
    (``em=None``: only when the randomized rows do not reach every shown position)."""
    if rows.position.size == 0:
        raise DataError("the logs show no products: nothing to estimate examination from")
    rand_rows = rows.randomized & ~np.isnan(rows.propensity)
    randomized = None
    if rand_rows.any():
        randomized = from_randomized(rows.position[rand_rows], rows.clicks[rand_rows],
                                     cluster=rows.request[rand_rows])
    fitted = None
    if em is None:
        em = randomized is None or not np.isin(np.unique(rows.position),
                                               randomized.positions).all()
    if em or randomized is None:
        keys = np.char.add(np.char.add(rows.query.astype(str), "\x1f"), rows.product.astype(str))
        fitted = em_pbm(rows.position, rows.clicks, keys, cluster=rows.request,
                        bootstrap=bootstrap, seed=seed)
    return PositionBias(randomized, fitted, _combine(randomized, fitted), rows.searches,
                        int(len(set(rows.request[rows.randomized].tolist()))))


def harvested(rows: Logged, *, bootstrap: int = 30, seed: int = 0) -> Examination:
    """Examination by intervention harvesting across the logs' experiment arms
    (:func:`~ranking.experiments.position_bias.harvest`): the rows no exploration shuffled,
    placements compared within (query, CLV segment), since segments may carry their own weights
    and are not randomized; searches outside every arm are one more policy."""
    keep = ~rows.randomized
    if not keep.any():
        raise DataError("every logged search was shuffled by exploration: use the randomized "
                        "estimate (--method auto)")
    ctx = np.char.add(np.char.add(rows.query.astype(str), "\x1f"), rows.segment.astype(str))
    arm = np.where(rows.arm == "", "(no arm)", rows.arm).astype(str)
    return harvest(rows.position[keep], rows.clicks[keep], rows.product[keep].astype(str),
                   ctx[keep], arm[keep], bootstrap=bootstrap, seed=seed)


def _combine(randomized: Examination | None, fitted: Examination | None) -> Examination:
    if randomized is None:
        assert fitted is not None
        return fitted
    if fitted is None:
        return randomized
    take = np.isin(fitted.positions, randomized.positions)
    out = {}
    for name in ("value", "low", "high"):
        v = getattr(fitted, name).astype(np.float64).copy()
        v[take] = getattr(randomized, name)[np.searchsorted(randomized.positions,
                                                            fitted.positions[take])]
        out[name] = v
    return Examination("randomized+em", fitted.positions, out["value"], out["low"],
                       out["high"], fitted.impressions, fitted.clicks, fitted.reference)


@dataclass(frozen=True)
class PolicyEstimate:
    """Off-policy estimates of one target's rewards per search, and the logging policy's."""

    estimates: dict[str, dict[str, Any]]  # reward -> estimator -> OffPolicyEstimate dict
    logged_value: dict[str, float]  # what the logging policy earned per search
    unsupported_share: float  # target placements no logged row could have shown
    searches: int
    explored_searches: int

    def to_dict(self) -> dict[str, Any]:
        return {"estimates": self.estimates, "logged_value": self.logged_value,
                "unsupported_share": self.unsupported_share, "searches": self.searches,
                "explored_searches": self.explored_searches}


def claimability(result: PolicyEstimate, max_unsupported: float = MAX_UNSUPPORTED
                 ) -> dict[str, Any]:
    """Whether ``result`` may be claimed for the whole target policy, and what may be said.

    IPS counts a logged row only where the target put the same product at the same place, and
    such a placement is supported by construction: IPS is the estimate of the *supported part*
    (the target's rewards on the placements the logging policy could have shown), whatever the
    unsupported share. Only DR speaks for the whole policy, by filling the unsupported
    placements from its reward model, an extrapolation. Above ``max_unsupported`` the whole
    policy's figure rests too much on that extrapolation to be claimed, so the supported part
    is given beside it."""
    if not 0.0 <= max_unsupported <= 1.0:
        raise DataError(f"the unsupported-share threshold must lie in [0, 1], got "
                        f"{max_unsupported}")
    return {"claimable": bool(result.unsupported_share <= max_unsupported),
            "max_unsupported": float(max_unsupported),
            "unsupported_share": float(result.unsupported_share),
            "supported_part": {r: result.estimates[r]["ips"] for r in result.estimates},
            "whole_policy": {r: result.estimates[r]["dr"] for r in result.estimates}}


def _first_rows(rows: Logged) -> np.ndarray:
    first = np.zeros(rows.request.size)
    _, idx = np.unique(rows.search_index, return_index=True)
    first[idx] = 1.0
    return first


def estimate_policy(rows: Logged, target: Any, *, examination_ratios: Examination | None = None,
                    max_weight: float | None = None, k: int | None = None,
                    cache: dict[tuple[Any, ...], list[str]] | None = None,
                    cluster: str = "search") -> PolicyEstimate:
    """Item-position IPS, SNIPS (by position) and DR of ``target`` (a :class:`Ranker` with the
    proposed weights) on logged ``rows`` (module docs). Refuses logs without propensities.

    ``cluster`` is the unit the intervals treat as independent: ``"search"`` (the unit of the
    exploration's randomization) or ``"customer"`` (one customer's searches are correlated;
    anonymous searches stay their own cluster)."""
    if cluster not in ("search", "customer"):
        raise DataError(f"cluster must be 'search' or 'customer', got {cluster!r}")
    explored = ~np.isnan(rows.propensity)
    if not explored.any():
        raise DataError("the logs carry no item-position propensities: no search was "
                        "randomized, so no off-policy estimate is possible; serve with an "
                        "`exploration: {share: 0.05, top_k: 3}` section in the weights file "
                        "(and request ids) and collect logs again")
    n = rows.request.size
    has_prop = np.bincount(rows.search_index, weights=explored.astype(float)) > 0
    searched = has_prop[rows.search_index]
    # Below the explored places the logging policy is deterministic: propensity 1.
    prop = np.where(explored, rows.propensity, 1.0)
    keep = searched  # searches logged without exploration tell nothing about other rankings
    depth = int(k or rows.position.max())
    target_place = np.zeros(n, np.int64)
    unsupported = placements = 0
    q_target_rows: dict[str, np.ndarray] = {r: np.zeros(n) for r in REWARDS}
    model = _reward_model(rows, examination_ratios)
    order = np.argsort(rows.search_index, kind="stable")
    bounds = np.flatnonzero(np.diff(rows.search_index[order])) + 1
    cache = {} if cache is None else cache  # target lists by (query, segment, arm)
    serving = target.serving
    for chunk in np.split(order, bounds):
        if not keep[chunk[0]]:
            continue
        query, customer = rows.query[chunk[0]], rows.customer[chunk[0]]
        segment = serving.segment_index(target.customers.quantile_of(customer))
        arm = serving.arm_index(customer, segment)
        key = (serving.version, depth, query, segment, arm)
        if key not in cache:
            cache[key] = [r.product_id for r in target.search(query, k=depth,
                                                              customer_id=customer)]
        tlist = cache[key]
        place = {p: i + 1 for i, p in enumerate(tlist)}
        target_place[chunk] = [place.get(p, 0) for p in rows.product[chunk]]
        top = explored[chunk]
        top_set = set(rows.product[chunk][top].tolist())
        top_depth = int(rows.position[chunk][top].max()) if top.any() else 0
        at = dict(zip(rows.position[chunk].tolist(), rows.product[chunk].tolist(), strict=True))
        for i, p in enumerate(tlist, start=1):
            placements += 1
            ok = (p in top_set) if i <= top_depth else at.get(i) == p
            unsupported += not ok
            for r in REWARDS:
                q_target_rows[r][chunk[0]] += model(r, query, p, i)
    sel = np.flatnonzero(keep)
    match = (target_place[sel] == rows.position[sel]).astype(np.float64)
    units = _first_rows(rows)[sel]
    if cluster == "customer":
        cluster_ids = np.array([r if c is None or c == "" else f"c\x1f{c}"
                                for r, c in zip(rows.request[sel], rows.customer[sel],
                                                strict=True)], dtype=object)
    else:
        cluster_ids = rows.request[sel]
    cluster = cluster_ids
    # Searches that showed nothing earn 0 under any ranking of the same retrieval: they count
    # in the per-search denominators of IPS and DR (one zero row each; SNIPS is per place).
    e = rows.empty_searches
    cluster_e = np.concatenate([cluster, np.array([f"\x00empty-{i}" for i in range(e)],
                                                   dtype=object)])
    estimates: dict[str, dict[str, Any]] = {}
    logged_value: dict[str, float] = {}
    for r in REWARDS:
        reward = getattr(rows, r)[sel]
        q_logged = np.array([model(r, rows.query[i], rows.product[i], int(rows.position[i]))
                             for i in sel])
        def cat(a: np.ndarray, fill: float = 0.0) -> np.ndarray:
            return np.concatenate([a, np.full(e, fill)])

        estimates[r] = {
            "ips": ips(cat(reward), cat(match), cat(prop[sel], 1.0), cluster=cluster_e,
                       units=cat(units, 1.0), max_weight=max_weight).to_dict(),
            "snips": snips(reward, match, prop[sel], cluster=cluster,
                           group=rows.position[sel], max_weight=max_weight).to_dict(),
            "dr": dr(cat(reward), cat(match), cat(prop[sel], 1.0), cat(q_logged),
                     cat(q_target_rows[r][sel]), cluster=cluster_e, units=cat(units, 1.0),
                     max_weight=max_weight).to_dict(),
        }
        logged_value[r] = float(reward.sum() / max(units.sum() + e, 1.0))
    return PolicyEstimate(estimates, logged_value,
                          unsupported / placements if placements else 0.0,
                          int(units.sum()) + e, int(units.sum()))


def _reward_model(rows: Logged, ratios: Examination | None):  # noqa: ANN202 - a closure
    """DR's direct method: examination at the place x the (query, product)'s reward when
    examined (inverse-examination weighted mean over its logged rows; the query's mean for a
    product it never showed)."""
    pos_values = np.unique(rows.position)
    if ratios is not None:
        theta = {int(p): float(v) for p, v in zip(ratios.positions, ratios.value, strict=True)}
    else:
        theta = {int(p): 1.0 for p in pos_values}
    deepest = max(theta)
    w = np.array([1.0 / max(theta.get(int(p), theta[deepest]), 1e-3) for p in rows.position])
    w = np.minimum(w, 10.0)
    keys = np.char.add(np.char.add(rows.query.astype(str), "\x1f"), rows.product.astype(str))
    uniq, inverse = np.unique(keys, return_inverse=True)
    count = np.bincount(inverse)
    per_pair = {r: dict(zip(uniq.tolist(), (np.bincount(inverse, weights=w * getattr(rows, r))
                                            / count).tolist(), strict=True)) for r in REWARDS}
    qs, qinv = np.unique(rows.query.astype(str), return_inverse=True)
    qcount = np.bincount(qinv)
    per_query = {r: dict(zip(qs.tolist(), (np.bincount(qinv, weights=w * getattr(rows, r))
                                           / qcount).tolist(), strict=True)) for r in REWARDS}

    def model(reward: str, query: str, product: str, place: int) -> float:
        exam = theta.get(int(place), theta[deepest])
        base = per_pair[reward].get(f"{query}\x1f{product}")
        if base is None:
            base = per_query[reward].get(str(query), 0.0)
        return exam * base

    return model
