"""Evaluation math shared by the tuner's constraint and the benchmarks.

What the tuner constrains is what the reports print: NDCG@k over a judged pool, business
value at k (e.g. mean unit margin of the top k), lift against a baseline (both averages, named),
and a paired bootstrap confidence interval over queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    idcg = float(ideal @ discounts(ideal.shape[0]))
    if idcg <= 0:
        return float("nan")
    top = g[:k]
    return float(top @ discounts(top.shape[0])) / idcg


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
    """Lift of per-query values ``new`` over ``base`` (queries with base <= 0 are skipped in
    the mean of ratios, where a ratio is undefined). NaN when nothing can be compared."""
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
