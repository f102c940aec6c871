"""Thompson sampling over an experiment's arm shares, per CLV segment.

Each arm's mean reward per search (margin per search by default) gets a posterior, and an arm's
new share is the probability that it is the best arm: probability matching, the allocation
rule of Thompson sampling when a day's traffic is one batch. The randomization unit is the
customer, so the posterior is built from per-customer totals.

Posterior (per segment and arm). The arm's mean reward per search is the ratio estimator
``R = sum(y_i) / sum(n_i)`` over its customers ``i`` (reward ``y_i`` over ``n_i`` searches).
Its sampling variance is the delta-method variance clustered by customer,
``V = c/(c-1) * sum((y_i - R n_i)^2) / (sum n_i)^2`` for ``c`` customers, pooled with the
segment's ``tau^2 / c`` as if that were worth 2 degrees of freedom against the arm's ``c - 1``
(``((c-1) V + 2 tau^2/c) / (c+1)``), so that a few customers with identical outcomes (say, no
purchase yet) cannot claim certainty. The prior is normal, centred on the segment's pooled
reward per search, with the variance ``tau^2`` of one customer's reward per search across the
segment: an arm nobody has seen is as uncertain as a single customer. Posterior: normal,
precision-weighted
(``N(m, s^2)`` with ``1/s^2 = 1/tau^2 + 1/V``). P(best) is estimated from seeded Monte Carlo
draws of all arms' posteriors at once; ties are split evenly.

Constraints applied after probability matching, in this order:

- arms that failed the guardrail (the readout's non-inferiority verdict on clicks or
  conversion says the arm is worse than allowed), or that are marked ``frozen`` in the file,
  get share 0 in every segment and stay frozen;
- control gets at least ``min_control`` of every segment's customers (default 0.2), so the
  readout against control stays measurable; the other arms share the rest in proportion;
- shares are rounded to 4 decimals by largest remainder, adding up to the experiment's total.

A segment with no events keeps its shares (nothing was learned there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from clv.errors import AllocationError
from objectives.config import DEFAULT_SEGMENT, WeightsConfig, dump_config, parse_config
from ranking.experiments.events import Events

#: Rewards the bandit can maximize: the readout's per-search metrics.
REWARDS = ("margin_per_search", "revenue_per_search", "conversion_per_search",
           "clicks_per_search")
DEFAULT_REWARD = "margin_per_search"
#: Control's smallest share of every segment's customers.
DEFAULT_MIN_CONTROL = 0.2
#: Monte Carlo draws per segment for P(best); the estimate's standard error is at most
#: 0.5 / sqrt(draws) = 0.0035.
DEFAULT_DRAWS = 20_000
#: Shares are written with this many decimals.
SHARE_DECIMALS = 4


@dataclass(frozen=True)
class ArmPosterior:
    """What the events say about one arm in one segment."""

    arm: str
    customers: int
    searches: int
    observed: float  # reward per search in the events (NaN: no searches)
    se: float  # its customer-clustered standard error (NaN: fewer than 2 customers)
    mean: float  # posterior mean of the reward per search
    sd: float  # posterior standard deviation


@dataclass(frozen=True)
class SegmentAllocation:
    """Old and new shares of one segment, and why."""

    segment: str  # DEFAULT_SEGMENT for customers in no segment
    old: dict[str, float]
    new: dict[str, float]
    posteriors: list[ArmPosterior]
    prob_best: dict[str, float]  # among the arms allowed to win (frozen ones: 0)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"segment": self.segment, "old": self.old, "new": self.new,
                "prob_best": self.prob_best, "reasons": self.reasons,
                "posteriors": [p.__dict__ for p in self.posteriors]}


@dataclass(frozen=True)
class Allocation:
    """The result of one allocation round: new config and per-segment explanations."""

    experiment: str
    reward: str
    control: str
    min_control: float
    seed: int
    frozen: dict[str, str]  # arm -> why it is frozen
    segments: list[SegmentAllocation]
    config: WeightsConfig  # the input config with the new shares and frozen flags

    def to_dict(self) -> dict[str, object]:
        return {"experiment": self.experiment, "reward": self.reward, "control": self.control,
                "min_control": self.min_control, "seed": self.seed, "frozen": self.frozen,
                "segments": [s.to_dict() for s in self.segments]}


@dataclass(frozen=True)
class CustomerRewards:
    """Per-customer totals of one experiment, one row per (customer, segment, arm): the unit
    the posterior is clustered by. ``reward`` holds the numerator of each reward in
    :data:`REWARDS` (per-search rewards divide by ``searches``)."""

    customer: np.ndarray  # str
    segment: np.ndarray  # str, DEFAULT_SEGMENT for none
    arm: np.ndarray  # str
    searches: np.ndarray  # int64 >= 1
    reward: Mapping[str, np.ndarray]  # float64 per row, keyed by REWARDS
    #: The readout's per-customer sums (``click_searches``, ``purchase_searches``, ...) when
    #: built from events: what the guardrail verdicts are computed from.
    sums: Mapping[str, np.ndarray] = field(default_factory=dict)
    #: Distinct UTC days with searches: how many daily looks the guardrail has had.
    days: int = 1


# ---------------------------------------------------------------------------------------------
# Posterior and probability matching


def arm_posteriors(arms: Sequence[str], arm_of: np.ndarray, searches: np.ndarray,
                   reward: np.ndarray) -> list[ArmPosterior]:
    """The normal posterior of each arm's reward per search from per-customer rows of one
    segment (``arm_of[i]`` the arm of row ``i``; see the module docstring)."""
    arm_of = np.asarray(arm_of)
    n = np.asarray(searches, np.float64)
    y = np.asarray(reward, np.float64)
    if n.size and (not np.all(np.isfinite(y)) or np.any(n < 1)):
        raise AllocationError("per-customer rewards must be finite and searches >= 1")
    pooled = float(y.sum() / n.sum()) if n.size else 0.0
    tau2 = float(np.var(y / n, ddof=1)) if n.size > 1 else 0.0
    if not tau2 > 0:
        # No spread at all (e.g. nothing bought yet): any positive scale gives every arm the
        # same posterior shape, so nothing is preferred; scale to the pooled level.
        tau2 = max(pooled * pooled, 1.0)
    out = []
    for arm in arms:
        mine = arm_of == arm
        c = int(mine.sum())
        if c == 0:
            out.append(ArmPosterior(arm, 0, 0, math.nan, math.nan, pooled, math.sqrt(tau2)))
            continue
        ni, yi = n[mine], y[mine]
        ratio = float(yi.sum() / ni.sum())
        if c > 1:
            clustered = c / (c - 1) * float(((yi - ratio * ni) ** 2).sum()) / ni.sum() ** 2
            se = math.sqrt(clustered)
        else:
            clustered, se = 0.0, math.nan
        # The arm's clustered variance (c - 1 degrees of freedom) pooled with the segment's
        # per-customer variance scaled to c customers (worth 2 degrees of freedom): large arms
        # speak for themselves, and a few identical customers cannot claim certainty.
        var_data = ((c - 1) * clustered + 2.0 * tau2 / c) / (c + 1)
        precision = 1.0 / tau2 + 1.0 / var_data
        mean = float((pooled / tau2 + ratio / var_data) / precision)
        out.append(ArmPosterior(arm, c, int(ni.sum()), ratio, se, mean,
                                math.sqrt(1.0 / precision)))
    return out


def prob_best(posteriors: Sequence[ArmPosterior], eligible: Sequence[bool],
              rng: np.random.Generator, draws: int = DEFAULT_DRAWS) -> np.ndarray:
    """P(each eligible arm has the highest reward per search), by ``draws`` joint draws from
    the posteriors; ineligible arms get 0. Ties (equal draws) are split evenly."""
    ok = np.asarray(eligible, bool)
    p = np.zeros(len(posteriors))
    if not ok.any():
        return p
    mean = np.array([q.mean for q in posteriors])[ok]
    sd = np.array([q.sd for q in posteriors])[ok]
    sample = rng.standard_normal((draws, int(ok.sum()))) * sd + mean
    best = sample == sample.max(axis=1, keepdims=True)
    p[ok] = (best / best.sum(axis=1, keepdims=True)).mean(axis=0)
    return p


def constrained_shares(p: np.ndarray, control: int, min_control: float, total: float,
                       allowed: np.ndarray) -> np.ndarray:
    """Shares of the segment's customers from P(best) ``p``: only ``allowed`` arms, control
    (index ``control``) at least ``min_control``, adding up to ``total``, rounded to
    :data:`SHARE_DECIMALS` decimals by largest remainder (control never rounded below its
    minimum)."""
    allowed = np.asarray(allowed, bool)
    weights = np.where(allowed, np.asarray(p, np.float64), 0.0)
    if weights.sum() <= 0:
        weights = allowed.astype(np.float64)
    shares = weights / weights.sum() * total
    if shares[control] < min_control:
        rest = shares.sum() - shares[control]
        others = np.delete(np.arange(len(shares)), control)
        if rest > 0:
            shares[others] *= (total - min_control) / rest
        shares[control] = min_control
    return _round_shares(shares, total, control, min_control)


def _round_shares(shares: np.ndarray, total: float, control: int,
                  min_control: float) -> np.ndarray:
    unit = 10.0 ** SHARE_DECIMALS
    goal = int(round(total * unit))
    floor_control = math.ceil(min_control * unit - 1e-6)
    scaled = shares * unit
    units = np.floor(scaled + 1e-9).astype(np.int64)
    units[control] = max(units[control], floor_control)
    remainder = scaled - units
    while units.sum() < goal:  # at most one pass over the arms
        i = int(np.argmax(remainder))
        units[i] += 1
        remainder[i] = -np.inf
    while units.sum() > goal:  # only if control's floor pushed it over
        candidates = [i for i in np.argsort(remainder) if i != control and units[i] > 0]
        units[candidates[0]] -= 1
        remainder[candidates[0]] = np.inf
    return units / unit


# ---------------------------------------------------------------------------------------------
# One allocation round


def allocate(config: WeightsConfig, rewards: CustomerRewards, *,
             reward: str = DEFAULT_REWARD, min_control: float = DEFAULT_MIN_CONTROL,
             control: str | None = None, guardrail_failures: Mapping[str, str] | None = None,
             seed: int = 0, draws: int = DEFAULT_DRAWS) -> Allocation:
    """New per-segment shares for the running experiment of ``config`` from per-customer
    ``rewards``. ``guardrail_failures`` maps arms to why they failed the guardrail; they and
    the arms already ``frozen`` in the file get share 0 everywhere. ``control`` defaults to an
    arm named ``control``, else the first arm. Deterministic for a given ``seed``."""
    if not config.experiments:
        raise AllocationError("the weights file runs no experiment; add one under "
                              "'experiments:' before allocating")
    if reward not in REWARDS:
        raise AllocationError(f"unknown reward {reward!r}; choose one of {', '.join(REWARDS)}")
    name, experiment = next(iter(config.experiments.items()))
    arms = list(experiment.arms)
    control = control or ("control" if "control" in arms else arms[0])
    if control not in arms:
        raise AllocationError(f"control arm {control!r} is not an arm of experiment {name!r}; "
                              f"its arms are {', '.join(arms)}")
    total = sum(arm.share for arm in experiment.arms.values())
    if not 0.0 <= min_control <= total + 1e-12:
        raise AllocationError(f"--min-control must be between 0 and {total:g} (the share of "
                              f"customers experiment {name!r} reaches); got {min_control:g}")
    frozen = {arm: "marked frozen in the weights file" for arm, rule in experiment.arms.items()
              if rule.frozen}
    for arm, why in (guardrail_failures or {}).items():
        if arm not in arms:
            raise AllocationError(f"guardrail failure for unknown arm {arm!r}; the arms of "
                                  f"{name!r} are {', '.join(arms)}")
        frozen.setdefault(arm, why)
    if control in frozen:
        raise AllocationError(f"the control arm {control!r} cannot be frozen: every verdict "
                              "is measured against it")
    known = set(arms)
    stray = sorted(set(rewards.arm.tolist()) - known)
    if stray:
        raise AllocationError(f"the events name arms that experiment {name!r} does not have: "
                              f"{', '.join(stray[:5])}; were they logged under another "
                              "experiment or config?")
    segments = [DEFAULT_SEGMENT, *config.segments]
    stray = sorted(set(rewards.segment.tolist()) - set(segments))
    if stray:
        raise AllocationError(f"the events name CLV segments the weights file does not "
                              f"define: {', '.join(stray[:5])}; defined: {', '.join(segments)}")
    allowed = np.array([arm not in frozen for arm in arms])
    rng = np.random.default_rng(seed)
    results = []
    for segment in segments:
        old = config.arm_shares(None if segment == DEFAULT_SEGMENT else segment)
        rows = rewards.segment == segment
        posteriors = arm_posteriors(arms, rewards.arm[rows], rewards.searches[rows],
                                    rewards.reward[reward][rows])
        # Every segment draws from the generator in the same order, so the result does not
        # depend on which segments have events.
        p = prob_best(posteriors, allowed, rng, draws)
        reasons = [f"{arm}: frozen (see above), share 0" for arm in frozen]
        if not rows.any():
            new = {arm: 0.0 if arm in frozen else share for arm, share in old.items()}
            if any(new[a] != old[a] for a in arms):
                new = dict(zip(arms, constrained_shares(
                    np.array(list(new.values())), arms.index(control), min_control, total,
                    allowed).tolist(), strict=True))
            reasons.append("no events in this segment: shares kept")
        else:
            shares = constrained_shares(p, arms.index(control), min_control, total, allowed)
            new = dict(zip(arms, shares.tolist(), strict=True))
            if p[arms.index(control)] * total < min_control - 1e-12:
                reasons.append(f"{control}: P(best) {p[arms.index(control)]:.3f}, raised to "
                               f"the minimum control share {min_control:g}")
            leader = arms[int(np.argmax(p))]
            reasons.append(f"{leader} leads: P(best) {p.max():.3f} on {reward}")
        results.append(SegmentAllocation(segment, old, new, posteriors,
                                         dict(zip(arms, p.tolist(), strict=True)), reasons))
    return Allocation(name, reward, control, min_control, seed, frozen, results,
                      with_shares(config, {s.segment: s.new for s in results}, frozen,
                                  weights=_segment_weights(rewards, segments), control=control))


def _segment_weights(rewards: CustomerRewards, segments: Sequence[str]) -> dict[str, float]:
    """Searches per segment in the events: how the overall ``share`` averages segments."""
    return {s: float(rewards.searches[rewards.segment == s].sum()) for s in segments}


def with_shares(config: WeightsConfig, by_segment: Mapping[str, Mapping[str, float]],
                frozen: Mapping[str, str] | Sequence[str] = (), *,
                weights: Mapping[str, float] | None = None,
                control: str | None = None) -> WeightsConfig:
    """``config`` with the running experiment's ``shares_by_segment`` replaced by
    ``by_segment``, ``frozen`` arms marked, and each arm's overall ``share`` (what segments
    without an entry use) set to its average over segments weighted by ``weights`` (equal
    weights when None or all zero), rounded so that the overall shares keep the experiment's
    total and ``control`` keeps at least its smallest segment share. Validated like a file:
    the result is written out and parsed back."""
    name, experiment = next(iter(config.experiments.items()))
    arms = list(experiment.arms)
    total = sum(arm.share for arm in experiment.arms.values())
    overall = np.array([experiment.arms[a].share for a in arms])
    if by_segment:
        w = np.array([(weights or {}).get(s, 0.0) for s in by_segment], np.float64)
        if not w.sum() > 0:
            w = np.ones(len(by_segment))
        table = np.array([[by_segment[s].get(a, 0.0) for a in arms] for s in by_segment])
        at = arms.index(control) if control in arms else 0
        floor = float(table[:, at].min()) if control in arms else 0.0
        overall = _round_shares((w[:, None] * table).sum(axis=0) / w.sum(), total, at, floor)
    new_arms = {arm: rule.model_copy(update={"share": float(overall[i]),
                                             "frozen": rule.frozen or arm in frozen})
                for i, (arm, rule) in enumerate(experiment.arms.items())}
    updated = config.model_copy(update={"experiments": {
        **config.experiments,
        name: experiment.model_copy(update={"arms": new_arms, "shares_by_segment": {
            s: {a: float(v) for a, v in shares.items()} for s, shares in by_segment.items()}}),
    }})
    checked = parse_config(dump_config(updated), source="<allocated shares>")
    if checked != updated:
        raise AllocationError("the allocated shares do not read back as written")
    return checked


# ---------------------------------------------------------------------------------------------
# From the event contract


#: The readout's per-customer sum each reward divides by searches
#: (:mod:`ranking.experiments.readout` defines them: net of returns, unknown margin 0).
REWARD_COLUMNS = {"margin_per_search": "margin", "revenue_per_search": "revenue",
                  "conversion_per_search": "purchase_searches", "clicks_per_search": "clicks"}


def experiment_impressions(events: Events, experiment: str) -> Events:
    """The events of ``experiment`` only: impressions of known customers in one of its arms
    (anonymous searches and customers past the last arm are in no arm), with their outcomes."""
    import pyarrow.compute as pc

    imp = events.impressions
    keep = pc.and_(pc.and_(pc.equal(imp.column("experiment"), experiment),
                           pc.is_valid(imp.column("arm"))),
                   pc.is_valid(imp.column("customer_id")))
    return Events(imp.filter(pc.fill_null(keep, False)), events.outcomes, events.report)


_LATEST_SEGMENT = """
SELECT customer_id, arg_max(segment, "timestamp") AS segment FROM imp GROUP BY customer_id
"""


def customer_rewards(events: Events, experiment: str) -> CustomerRewards:
    """Per (customer, arm) sums of ``experiment``'s events, aggregated by the readout
    (:func:`ranking.experiments.readout.customer_days`: same definitions, net of returns),
    each customer in the CLV segment its latest impression was logged with (null:
    :data:`DEFAULT_SEGMENT`)."""
    import duckdb

    from ranking.experiments.readout import customer_days

    mine = experiment_impressions(events, experiment).impressions
    if mine.num_rows == 0:
        empty = np.array([], dtype=object)
        return CustomerRewards(empty, empty, empty, np.array([], np.int64),
                               {r: np.array([], np.float64) for r in REWARDS})
    cd = customer_days(mine, events.outcomes)
    # Sum the days of each (customer, arm): the clusters of the posterior and the verdicts.
    keys = np.char.add(np.char.add(cd.customer.astype(str), "\x00"), cd.group.astype(str))
    unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    sums = {name: np.bincount(inverse, weights=values, minlength=unique.size)
            for name, values in cd.sums.items()}
    customer = cd.customer[first].astype(str).astype(object)
    con = duckdb.connect()
    try:
        con.register("imp", mine.select(["customer_id", "timestamp", "segment"]))
        latest = con.sql(_LATEST_SEGMENT).fetchall()
    finally:
        con.close()
    segment_of = {c: DEFAULT_SEGMENT if s is None else s for c, s in latest}
    return CustomerRewards(
        customer=customer,
        segment=np.array([segment_of[c] for c in customer], dtype=object),
        arm=cd.group[first].astype(str).astype(object),
        searches=np.rint(sums["searches"]).astype(np.int64),
        reward={r: sums[c] for r, c in REWARD_COLUMNS.items()}, sums=sums,
        days=int(np.unique(cd.day).size))


#: One-sided error of one readout verdict: "missed" means the upper end of the two-sided 95%
#: interval of the drop is beyond delta (:func:`ranking.experiments.stats.online_verdict`).
VERDICT_ALPHA = 0.025


def look_alpha(looks: int) -> float:
    """The one-sided error allowed at the ``looks``-th daily look: ``0.025 / (L (L + 1))``,
    which sums to 0.025 over any number of looks (a union bound), so freezing on accumulating
    data every day wrongly freezes an arm within delta at most as often as one readout would."""
    looks = max(int(looks), 1)
    return VERDICT_ALPHA / (looks * (looks + 1))


def guardrail_failures(rewards: CustomerRewards, control: str, delta: float, *,
                       looks: int | None = None) -> dict[str, str]:
    """Arms whose click or conversion drop against ``control`` is beyond ``delta`` with the
    whole interval: the readout's "missed" verdict (its metrics
    :data:`~ranking.experiments.readout.METRICS` and delta-method ratios clustered by customer,
    on the same per-customer sums, all segments together), at the level :func:`look_alpha`
    allows the ``looks``-th daily look (default: the days in the events). At the first look
    that is the readout's 95% level, within rounding (97.5% vs 98.75% one-sided); later looks
    ask for more, because an allocation that runs every day would otherwise freeze good arms
    by chance (checking 30 times at 95% is far more than a 5% risk)."""
    from scipy import stats

    from ranking.experiments.readout import METRICS, VERDICT_METRICS
    from ranking.experiments.stats import ratio

    if not rewards.sums or control not in set(rewards.arm.tolist()):
        return {}
    columns = {name: (num, den) for name, _, num, den in METRICS}
    alpha = look_alpha(rewards.days if looks is None else looks)
    z = float(stats.norm.isf(alpha))

    def estimate(arm: str, metric: str):  # noqa: ANN202 - a RatioEstimate
        rows = rewards.arm == arm
        num, den = columns[metric]
        return ratio(rewards.sums[num][rows], rewards.sums[den][rows])

    failures = {}
    for arm in sorted(set(rewards.arm.tolist()) - {control}):
        missed = []
        for metric in VERDICT_METRICS:
            t, c = estimate(arm, metric), estimate(control, metric)
            if not (math.isfinite(t.value) and math.isfinite(c.value) and c.value > 0
                    and math.isfinite(t.var) and math.isfinite(c.var)):
                continue
            diff, se = t.value - c.value, math.sqrt(t.var + c.var)
            if diff + z * se < -delta * c.value:
                missed.append(f"{metric} drop {-100 * diff / c.value:.2f}% (at least "
                              f"{-100 * (diff + z * se) / c.value:.2f}% at one-sided level "
                              f"{1 - alpha:.6g}), allowed {100 * delta:.2f}%")
        if missed:
            failures[arm] = "guardrail missed: " + "; ".join(missed)
    return failures


def allocate_events(config: WeightsConfig, events: Events, *, reward: str = DEFAULT_REWARD,
                    min_control: float = DEFAULT_MIN_CONTROL, control: str | None = None,
                    delta: float | None = None, freeze: Sequence[str] = (), seed: int = 0,
                    draws: int = DEFAULT_DRAWS) -> Allocation:
    """One allocation round from an event directory's events: the rewards of the running
    experiment's customers, the readout's guardrail verdicts (``delta``: the relative drop
    allowed on clicks and conversion, default the file's ``max_ndcg_drop``), and the arms
    ``freeze`` names by hand, then :func:`allocate`."""
    if not config.experiments:
        raise AllocationError("the weights file runs no experiment; add one under "
                              "'experiments:' before allocating")
    name, experiment = next(iter(config.experiments.items()))
    arms = list(experiment.arms)
    chosen = control or ("control" if "control" in arms else arms[0])
    rewards = customer_rewards(events, name)
    failures = guardrail_failures(
        rewards, chosen, config.guardrails.max_ndcg_drop if delta is None else delta)
    for arm in freeze:
        failures.setdefault(arm, "frozen by hand (--freeze)")
    return allocate(config, rewards, reward=reward, min_control=min_control, control=chosen,
                    guardrail_failures=failures, seed=seed, draws=draws)
