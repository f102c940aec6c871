"""Evaluation math shared by the tuner's constraint and the benchmarks.

What the tuner constrains is what the reports print: NDCG@k over a judged pool, business
value at k (e.g. mean unit margin of the top k), lift against a baseline (both averages, named),
and a paired bootstrap confidence interval over queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


def gains(grades: np.ndarray, gain: str = "exp") -> np.ndarray:
    """Graded gain: ``2**g - 1`` (exponential, the LambdaMART convention) or ``g`` (linear)."""
    grades = np.asarray(grades, dtype=np.float64)
    return np.exp2(grades) - 1.0 if gain == "exp" else grades


def discounts(n: int) -> np.ndarray:
    """1 / log2(rank + 1) for ranks 1..n."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def ndcg_at_k(ranked_grades: np.ndarray, k: int, gain: str = "exp") -> float:
    """NDCG@k of one ranked list; the ideal is the same grades sorted. NaN if nothing is
    relevant (such queries carry no information and are left out of means)."""
    g = gains(ranked_grades, gain)
    ideal = np.sort(g)[::-1][:k]
    top = g[:k]
    return ndcg_ratio(float(top @ discounts(top.shape[0])),
                      float(ideal @ discounts(ideal.shape[0])))


def ndcg_ratio(dcg: float, idcg: float) -> float:
    """DCG over ideal DCG: NaN when the ideal is not positive (nothing relevant), never above
    1. DCG <= ideal DCG exactly, but with grades a few ulps apart the two dot products are
    rounded differently (and SIMD widths differ between CPUs, AVX-512 or not), so a
    near-ideal order can compute as 1 + an ulp; the ratio is clipped at 1. Both sums come from
    the same grades, so no excess beyond rounding is possible."""
    if not idcg > 0:
        return float("nan")
    return min(dcg / idcg, 1.0)


def mean_at_k(ranked_values: np.ndarray, k: int) -> float:
    """Mean of a business value (e.g. unit margin) over the top k; NaN for an empty list."""
    top = np.asarray(ranked_values, dtype=np.float64)[:k]
    return float(top.mean()) if top.size else float("nan")


@dataclass(frozen=True)
class Lift:
    """Relative change against a baseline, by both common averages."""

    mean_of_ratios: float  # mean over queries of new/base - 1
    ratio_of_means: float  # mean(new) / mean(base) - 1


def finite_mean(values: Sequence[float]) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none, e.g. margin@k
    for a catalog without prices."""
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def lift(new: Sequence[float], base: Sequence[float]) -> Lift:
    """Lift of per-query values ``new`` over ``base``. The headline is the ratio of means:
    money shown, over every query both rankers could be measured on. The mean of ratios is
    a second figure over the queries whose baseline is positive (a ratio is undefined
    elsewhere); it inflates when small baselines double. NaN when nothing can be compared."""
    new_a, base_a = np.asarray(new, dtype=np.float64), np.asarray(base, dtype=np.float64)
    ok = np.isfinite(new_a) & np.isfinite(base_a)
    pos = ok & (base_a > 0)
    base_mean = finite_mean(base_a[ok])
    return Lift(mean_of_ratios=finite_mean(new_a[pos] / base_a[pos] - 1.0),
                ratio_of_means=finite_mean(new_a[ok]) / base_mean - 1.0 if base_mean else
                float("nan"))


@dataclass(frozen=True)
class PairedCI:
    """Mean paired difference, its bootstrap percentile interval and standard error."""

    mean: float
    low: float
    high: float
    n: int
    se: float = float("nan")

    @property
    def includes_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


def paired_bootstrap(
    new: Sequence[float], base: Sequence[float], *, n_boot: int = 2000, level: float = 0.95,
    seed: int = 0,
) -> PairedCI:
    """Bootstrap over queries of mean(new - base); NaN pairs are dropped first."""
    diff = np.asarray(new, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return PairedCI(float("nan"), float("nan"), float("nan"), 0)
    means = _bootstrap_means(diff, n_boot, np.random.default_rng(seed))
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return PairedCI(float(diff.mean()), float(low), float(high), int(diff.size),
                    float(means.std()))


def _bootstrap_means(diff: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` resamples; one resample at a time when the index matrix would be
    large (10k queries x 2000 resamples is 160 MB)."""
    if diff.size * n_boot <= 5_000_000:
        return diff[rng.integers(0, diff.size, size=(n_boot, diff.size))].mean(axis=1)
    return np.array([diff[rng.integers(0, diff.size, size=diff.size)].mean()
                     for _ in range(n_boot)])


#: The guardrail's confidence: 95%, one-sided for the tuner's certificate (an upper bound on
#: the drop), two-sided for the held-out interval a report prints.
GUARDRAIL_LEVEL = 0.95


@dataclass(frozen=True)
class NonInferiority:
    """A one-sided bound on how far mean NDCG fell against relevance alone.

    ``max_ndcg_drop`` (delta) is relative: a drop of ``delta * base`` in mean NDCG is allowed.
    ``lower`` is the one-sided :data:`GUARDRAIL_LEVEL` lower bound of the mean paired
    difference (bootstrap percentile), so ``drop_bound`` is the largest relative drop the data
    cannot exclude: the smallest drop they certify. ``certified`` when that is at most delta.
    """

    diff: float  # mean paired NDCG difference (new - base)
    lower: float  # one-sided lower bound of that difference
    base: float  # mean NDCG of relevance alone
    n: int  # queries measured
    delta: float  # max_ndcg_drop

    @property
    def drop(self) -> float:
        """Point estimate of the relative drop (negative: NDCG rose)."""
        return -self.diff / self.base if self.base > 0 else 0.0

    @property
    def drop_bound(self) -> float:
        """Upper bound of the relative drop at :data:`GUARDRAIL_LEVEL` (never below 0)."""
        if not np.isfinite(self.lower):
            return float("inf")
        return max(0.0, -self.lower) / self.base if self.base > 0 else 0.0

    @property
    def certified(self) -> bool:
        # A bound exactly at delta passes; float noise of a few ulps must not flip it.
        return self.n > 0 and self.drop_bound <= self.delta + 1e-12


def non_inferiority(new: Sequence[float], base: Sequence[float], delta: float, *,
                    n_boot: int = 2000, seed: int = 0) -> NonInferiority:
    """The one-sided bound of :class:`NonInferiority` by a paired bootstrap over queries
    (NaN pairs dropped, as in :func:`paired_bootstrap`)."""
    new_a, base_a = np.asarray(new, np.float64), np.asarray(base, np.float64)
    ok = np.isfinite(new_a) & np.isfinite(base_a)
    diff = new_a[ok] - base_a[ok]
    if diff.size == 0:
        return NonInferiority(float("nan"), float("nan"), float("nan"), 0, delta)
    means = _bootstrap_means(diff, n_boot, np.random.default_rng(seed))
    lower = float(np.quantile(means, 1.0 - GUARDRAIL_LEVEL))
    return NonInferiority(float(diff.mean()), min(lower, float(diff.mean())),
                          float(base_a[ok].mean()), int(diff.size), delta)


class _NonInferiorityVerdict(Protocol):
    held: bool
    certified: bool
    drop: float
    drop_bound: float
    delta: float


def verdict_text(v: _NonInferiorityVerdict, metric: str, *, bound: str, setting: str,
                 evidence: str) -> str:
    """One line for reports of a non-inferiority verdict (the NDCG guardrail's here, an online
    readout's in ``ranking.experiments.stats``): held or missed, the relative drop of
    ``metric``, the most the data cannot exclude (the ``bound`` of the 95% interval), the
    ``setting`` that allowed delta, and whether the ``evidence`` certifies it."""
    how = ("certified: the bound is within it" if v.certified else
           f"not refuted, but {evidence} alone cannot certify it" if v.held else
           "the whole interval is beyond it")
    return (f"{'held' if v.held else 'missed'}: relative {metric} drop "
            f"{100 * v.drop:+.2f}% (95% {bound} reaches {100 * v.drop_bound:.2f}%), "
            f"allowed {100 * v.delta:.2f}% ({setting} {v.delta:g}); {how}")


@dataclass(frozen=True)
class Verdict:
    """The guardrail checked on held-out queries.

    ``held`` unless the two-sided :data:`GUARDRAIL_LEVEL` interval of the NDCG difference lies
    entirely below the allowed drop (``-delta * base``): then the data show the drop exceeds
    delta, ``missed``. ``held`` alone means "not refuted"; ``certified`` says more: the drop at
    the interval's low end (``drop_bound``, the most these queries cannot exclude) is within
    delta too. A small test set often holds without certifying; reports say which."""

    held: bool
    delta: float
    drop: float  # point estimate, relative
    drop_bound: float  # relative drop at the interval's low end (>= 0)
    ci: PairedCI
    base: float

    @property
    def certified(self) -> bool:
        return self.ci.n > 0 and self.drop_bound <= self.delta + 1e-12

    def text(self) -> str:
        """One line for reports: verdict, the drop, its bound and delta."""
        if self.ci.n == 0:
            return "n/a: no query where both rankings could be measured"
        return verdict_text(self, "NDCG", bound="interval", setting="max_ndcg_drop",
                            evidence="these queries")

    def to_dict(self) -> dict[str, object]:
        return {"held": self.held, "certified": self.certified, "max_ndcg_drop": self.delta,
                "drop": self.drop, "drop_bound": self.drop_bound, "diff": self.ci.mean,
                "ci_low": self.ci.low, "ci_high": self.ci.high, "base_ndcg": self.base,
                "n": self.ci.n}


def verdict(new: Sequence[float], base: Sequence[float], delta: float, *,
            seed: int = 0) -> Verdict:
    """:class:`Verdict` of per-query NDCG ``new`` against relevance alone ``base``."""
    new_a, base_a = np.asarray(new, np.float64), np.asarray(base, np.float64)
    ok = np.isfinite(new_a) & np.isfinite(base_a)
    ci = paired_bootstrap(new_a[ok], base_a[ok], seed=seed, level=GUARDRAIL_LEVEL)
    base_mean = float(base_a[ok].mean()) if ok.any() else float("nan")
    allowed = -delta * base_mean
    if ci.n == 0 or not base_mean > 0:
        return Verdict(ci.n == 0 or not ci.mean < 0, delta, 0.0, 0.0, ci, base_mean)
    return Verdict(bool(ci.high >= allowed - 1e-12), delta, -ci.mean / base_mean,
                   max(0.0, -ci.low) / base_mean, ci, base_mean)
