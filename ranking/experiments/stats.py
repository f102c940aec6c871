"""Statistics of an online readout: ratio metrics clustered by customer (delta method), lift
intervals, the sample-ratio-mismatch test, non-inferiority verdicts, power and MDE.

Every metric is a ratio of per-customer sums, ``R = sum(y_i) / sum(x_i)`` over the customers
``i`` of an arm (searches in the denominator for per-search metrics, units bought for the return
rate, 1 for a per-customer mean). Customers are the randomization unit, so they are the
independent clusters: the variance of ``R`` is the delta-method one over customer totals
(Deng, Knoblich and Lu, "Applying the Delta Method in Metric Analytics", KDD 2018), which
counts the correlation between one customer's searches instead of pretending searches are
independent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from objectives.metrics import verdict_text

#: Two-sided level of every interval a readout prints, and the one-sided level of the
#: non-inferiority bound: the same 95% as the NDCG guardrail (objectives.metrics).
LEVEL = 0.95
#: Power at which the minimum detectable effect is reported.
POWER = 0.80
#: p-value below which the sample-ratio check flags a mismatch. Deliberately strict: the check
#: runs on every readout, and a flag means "do not trust these numbers", not "an effect".
SRM_ALPHA = 0.001

_Z2 = float(stats.norm.ppf(0.5 + LEVEL / 2))  # 1.96
_Z1 = float(stats.norm.ppf(LEVEL))  # 1.645
_ZP = float(stats.norm.ppf(POWER))  # 0.84


@dataclass(frozen=True)
class RatioEstimate:
    """``value = sum(y) / sum(x)`` over ``n`` customers and its delta-method variance."""

    value: float
    var: float
    n: int
    numerator: float
    denominator: float

    @property
    def se(self) -> float:
        return float(np.sqrt(self.var)) if self.var >= 0 else float("nan")


def ratio(y: np.ndarray, x: np.ndarray) -> RatioEstimate:
    """Delta-method estimate of ``sum(y)/sum(x)`` with customers as clusters.

    ``Var(R) ~ (s_yy - 2 R s_xy + R^2 s_xx) / (n * mean(x)^2)`` with sample (co)variances
    (ddof 1). NaN value when the denominator sums to 0; NaN variance below two customers.
    """
    y = np.asarray(y, np.float64)
    x = np.asarray(x, np.float64)
    n = int(y.size)
    sy, sx = float(y.sum()), float(x.sum())
    if n == 0 or sx == 0:
        return RatioEstimate(float("nan"), float("nan"), n, sy, sx)
    r = sy / sx
    if n < 2:
        return RatioEstimate(r, float("nan"), n, sy, sx)
    cov = np.cov(np.vstack([y, x]), ddof=1)
    mx = sx / n
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * mx * mx)
    return RatioEstimate(r, float(max(var, 0.0)), n, sy, sx)


@dataclass(frozen=True)
class Lift:
    """Arm against control on one metric: the relative lift ``treatment/control - 1`` with its
    two-sided :data:`LEVEL` interval (delta method on the ratio of two independent ratio
    estimates: ``Var ~ var_t/c^2 + t^2 var_c/c^4``), the absolute difference with its own
    interval, the z-test p-value of no lift (on the relative lift and its standard error, so
    that p < 0.05 exactly when the lift's interval excludes 0), and the minimum detectable
    effect."""

    control: float
    treatment: float
    lift: float
    lift_low: float
    lift_high: float
    diff: float
    diff_low: float
    diff_high: float
    p_value: float
    mde_relative: float  # smallest relative lift detected with POWER at LEVEL, this traffic
    power_at: float  # the relative effect the power below is computed for
    power: float

    @property
    def significant(self) -> bool:
        return bool(self.p_value < 1 - LEVEL)

    def to_dict(self) -> dict[str, float | bool]:
        return {**asdict(self), "significant": self.significant}


def lift(t: RatioEstimate, c: RatioEstimate, *, power_at: float = 0.05) -> Lift:
    """:class:`Lift` of treatment ``t`` over control ``c``."""
    nan = float("nan")
    if not (np.isfinite(t.value) and np.isfinite(c.value)) or c.value == 0:
        return Lift(c.value, t.value, nan, nan, nan, t.value - c.value, nan, nan, nan, nan,
                    power_at, nan)
    rel = t.value / c.value - 1.0
    se_rel = float(np.sqrt(t.var / c.value**2 + t.value**2 * c.var / c.value**4))
    diff = t.value - c.value
    se_diff = float(np.sqrt(t.var + c.var))
    # The test is the relative lift's own: its p-value and its interval always agree.
    if not se_rel > 0:
        p = 1.0 if diff == 0 else 0.0
    else:
        p = float(2 * stats.norm.sf(abs(rel) / se_rel))
    # MDE: the effect a two-sided test at LEVEL detects with POWER, given these variances
    # (the treatment's variance is taken at the control's, the usual planning approximation).
    se_plan = float(np.sqrt(2 * c.var)) if np.isfinite(c.var) else nan
    mde = (_Z2 + _ZP) * se_plan / abs(c.value)
    shift = power_at * abs(c.value) / se_plan if se_plan > 0 else nan
    power = float(stats.norm.sf(_Z2 - shift) + stats.norm.cdf(-_Z2 - shift))
    return Lift(c.value, t.value, rel, rel - _Z2 * se_rel, rel + _Z2 * se_rel, diff,
                diff - _Z2 * se_diff, diff + _Z2 * se_diff, p, float(mde), power_at, power)


@dataclass(frozen=True)
class OnlineVerdict:
    """Non-inferiority of an arm on a metric where higher is better (clicks, conversion), with
    the NDCG guardrail's semantics (objectives.metrics.NonInferiority and Verdict): ``delta`` is
    a relative drop against control. ``certified`` when the one-sided :data:`LEVEL` lower bound
    of the difference is no lower than ``-delta * control`` (the drop the data cannot exclude,
    ``drop_bound``, is within delta). ``missed`` when the whole two-sided interval lies below
    that allowed drop; otherwise ``held`` (not refuted, not certified)."""

    metric: str
    delta: float
    control: float
    drop: float  # point estimate of the relative drop (negative: the arm is ahead)
    drop_bound: float  # one-sided LEVEL upper bound of the relative drop (>= 0)
    held: bool
    certified: bool

    @property
    def status(self) -> str:
        if not np.isfinite(self.drop_bound):
            return "n/a"
        return "certified" if self.certified else "held" if self.held else "missed"

    def text(self) -> str:
        if not np.isfinite(self.drop_bound):
            return (f"n/a: no {self.metric} in the control arm (or no traffic) to measure a "
                    "drop against")
        return verdict_text(self, self.metric, bound="bound", setting="delta",
                            evidence="this traffic")

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "status": self.status, "text": self.text()}


def online_verdict(metric: str, t: RatioEstimate, c: RatioEstimate,
                   delta: float) -> OnlineVerdict:
    """:class:`OnlineVerdict` of treatment ``t`` against control ``c``."""
    if not (np.isfinite(t.value) and np.isfinite(c.value)) or not c.value > 0:
        return OnlineVerdict(metric, delta, c.value, 0.0, float("inf"), True, False)
    diff = t.value - c.value
    se = float(np.sqrt(t.var + c.var))
    allowed = -delta * c.value
    lower1 = diff - _Z1 * se
    high2 = diff + _Z2 * se
    drop_bound = max(0.0, -lower1) / c.value
    return OnlineVerdict(metric, delta, c.value, -diff / c.value, drop_bound,
                         bool(high2 >= allowed - 1e-12), bool(drop_bound <= delta + 1e-12))


@dataclass(frozen=True)
class SampleRatio:
    """Pearson chi-square of customers per group against the expected shares."""

    observed: dict[str, int]
    expected_shares: dict[str, float]
    chi2: float
    dof: int
    p_value: float
    source: str  # where the expected shares came from

    @property
    def mismatch(self) -> bool:
        return bool(self.p_value < SRM_ALPHA)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "mismatch": self.mismatch, "alpha": SRM_ALPHA}


def sample_ratio(observed: dict[str, int], shares: dict[str, float],
                 source: str) -> SampleRatio:
    """Chi-square test of ``observed`` customer counts against ``shares`` (renormalized over the
    groups named in either; a group observed but given no share gets share 0, which flags)."""
    groups = sorted(set(observed) | set(shares))
    obs = np.array([observed.get(g, 0) for g in groups], np.float64)
    share = np.array([max(shares.get(g, 0.0), 0.0) for g in groups], np.float64)
    total = obs.sum()
    if total == 0 or share.sum() == 0 or len(groups) < 2:
        return SampleRatio(observed, shares, 0.0, 0, 1.0, source)
    share = share / share.sum()
    expected = total * share
    if np.any((expected == 0) & (obs > 0)):
        return SampleRatio(observed, shares, float("inf"), len(groups) - 1, 0.0, source)
    keep = expected > 0
    chi2 = float((((obs - expected) ** 2)[keep] / expected[keep]).sum())
    dof = int(keep.sum()) - 1
    return SampleRatio(observed, shares, chi2, dof, float(stats.chi2.sf(chi2, dof)), source)
