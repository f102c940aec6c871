"""Tune the blend weights with cvxpy so business value rises while relevance does not fall.

The convex program (:mod:`objectives.tuner_program`, solved by Clarabel) maximizes a linear
surrogate of business value moved up the ranking, subject to a pairwise relevance hinge on
judged pairs of different grades that may exceed its relevance-only value by a relative slack
epsilon. This module is the verification loop around it.

The true NDCG@k is checked on queries the weights were not fitted on, by K-fold
cross-validation over the tuning queries: for each fold the program is solved on the other
folds and the weights are scored on the held fold, so every query gives one honest paired NDCG
difference. Every setting of a path of rising strength (:data:`STRENGTH_PATH`) is checked, and
the choice is made on the whole curve, not point by point (:func:`choose_strength`): a curve
``-a * strength**beta`` is fitted through the mean differences, and the strongest setting whose
fitted difference passes :func:`selectable` wins. Between it and the next,
epsilon is refined by bisection; the final weights are solved on all tuning queries at that
setting.

The guardrail (:func:`within_tolerance`): for ``max_ndcg_drop == 0``, NDCG is not
significantly below relevance alone; a positive ``max_ndcg_drop`` is a relative tolerance on
the mean. The tuner applies it to the fitted curve (:func:`selectable`). Sweeping epsilon
instead of stopping at the check traces the NDCG-vs-business Pareto frontier
(:func:`frontier`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from objectives.groups import QueryGroups
from objectives.metrics import PairedCI, finite_mean, paired_bootstrap
from objectives.tuner_program import MAX_PAIRS, WeightProgram, judged_pairs


@dataclass
class TuneResult:
    """Chosen weights and the evidence for them."""

    weights: np.ndarray
    epsilon: float
    message: str
    cv_ndcg_base: float = float("nan")  # cross-validated NDCG@k, relevance only
    cv_ndcg_tuned: float = float("nan")  # the same with the chosen weights
    trace: list[dict[str, float]] = field(default_factory=list)


#: The search path, weakest to strongest: (relative slack epsilon, scale of the weights). The
#: solve at epsilon = 0 is first scaled down, because a linear objective puts the solution on a
#: vertex and even the tightest surrogate can move NDCG on new queries; scaling toward 0 is a
#: continuous way back to the relevance-only ranking. Then the slack grows.
STRENGTH_PATH: tuple[tuple[float, float], ...] = (
    (0.0, 0.125), (0.0, 0.25), (0.0, 0.5), (0.0, 1.0),
    (0.0025, 1.0), (0.005, 1.0), (0.01, 1.0), (0.02, 1.0), (0.05, 1.0), (0.1, 1.0), (0.2, 1.0),
    (0.5, 1.0), (1.0, 1.0), (2.0, 1.0),
)


#: Weights are rounded before they are checked, so the YAML a merchandiser reads holds exactly
#: the weights that were checked and are served.
WEIGHT_DECIMALS = 4


#: For ``max_ndcg_drop == 0``: how many standard errors (of the paired mean difference, by
#: bootstrap) the fitted NDCG difference may lie below 0 when the tuner chooses. 1.96 is the
#: 95% interval the guardrail is stated in (normal approximation: a fitted curve has no
#: bootstrap percentiles). The curve, not one noisy point, decides, so a choice at its edge
#: stays inside the interval on new queries: measured on Home Depot's held-out folds (README).
INTERVAL_Z = 1.96


def within_tolerance(ci: PairedCI, drop: float, max_ndcg_drop: float) -> bool:
    """The guardrail as stated, for queries the weights were not chosen on: with
    ``max_ndcg_drop == 0`` NDCG is not significantly below (the interval reaches 0 or above);
    otherwise the relative drop is at most ``max_ndcg_drop``."""
    if max_ndcg_drop == 0:
        return ci.high >= 0.0
    return drop <= max_ndcg_drop


def selectable(diff: float, se: float, base: float, max_ndcg_drop: float) -> bool:
    """The guardrail as the tuner applies it when choosing, to a mean NDCG difference ``diff``
    (standard error ``se``) against relevance alone at mean NDCG ``base``: with
    ``max_ndcg_drop == 0`` at most :data:`INTERVAL_Z` standard errors below 0 (the 95%
    interval reaches 0); otherwise a relative drop of at most ``max_ndcg_drop``."""
    if max_ndcg_drop == 0:
        return diff + INTERVAL_Z * se >= 0.0
    return diff >= 0.0 if base <= 0 else -diff / base <= max_ndcg_drop


#: A setting is refused whatever the fitted curve says when its own measurement fails the
#: check this many times over (twice the interval, or twice the relative tolerance): a curve
#: bent flat by one lucky point must not wave through a setting that clearly lowers NDCG.
OWN_CHECK_FACTOR = 2.0

#: Exponents tried for the fitted NDCG curve ``-a * strength**beta``.
CURVE_EXPONENTS = np.linspace(1.0, 3.0, 21)


def fit_ndcg_curve(strength: np.ndarray, diffs: np.ndarray, ses: np.ndarray) -> np.ndarray:
    """The curve ``-a * strength**beta`` (a >= 0) nearest the measured NDCG differences.

    Weighted least squares with weights ``1 / (se**2 + median(se)**2)``: precise points count
    more, but the weakest settings, where almost nothing changes and the standard error is
    nearly 0, cannot pin the whole curve. ``a`` has a closed form for each exponent in
    :data:`CURVE_EXPONENTS`; the best fitting exponent wins.
    """
    positive = ses[ses > 0]
    floor = float(np.median(positive)) if positive.size else 1.0
    weight = 1.0 / (ses**2 + floor**2)
    best: tuple[float, np.ndarray] | None = None
    for beta in CURVE_EXPONENTS:
        x = np.power(strength, beta)
        denom = float(weight @ (x * x))
        a = max(0.0, -float(weight @ (x * diffs)) / denom) if denom > 0 else 0.0
        loss = float(weight @ (diffs + a * x) ** 2)
        if best is None or loss < best[0]:
            best = (loss, -a * x)
    assert best is not None
    return best[1]


def choose_strength(strength: np.ndarray, diffs: np.ndarray, ses: np.ndarray, base: float,
                    max_ndcg_drop: float) -> tuple[np.ndarray, np.ndarray]:
    """(fitted differences, accepted) for settings of the given ``strength`` (sum of weights).

    In expectation NDCG does not rise as business weights grow, but the measured differences
    wobble: at weak settings only a few queries change, so their interval is narrow and one
    unlucky query can fail the check while stronger settings pass, and which setting passes
    last changes with the sample. A curve fitted through all settings (:func:`fit_ndcg_curve`)
    uses every measurement for every decision; each setting is then checked on the curve, with
    its own standard error, and against its own measurement (:data:`OWN_CHECK_FACTOR`).
    Settings are accepted from the weakest up to the first refusal; non-finite measurements
    are left out of the fit and refused.
    """
    finite = np.isfinite(diffs) & np.isfinite(ses)
    fitted = np.full(diffs.shape, np.nan)
    if finite.any():
        fitted[finite] = fit_ndcg_curve(np.asarray(strength, np.float64)[finite],
                                        diffs[finite], ses[finite])
    f = OWN_CHECK_FACTOR
    ok = np.array([finite[i]
                   and selectable(fitted[i], ses[i], base, max_ndcg_drop)
                   and selectable(diffs[i], f * ses[i], base, f * max_ndcg_drop)
                   for i in range(diffs.shape[0])], dtype=bool)
    return fitted, np.logical_and.accumulate(ok)


def fold_of_queries(n_queries: int, n_folds: int, seed: int) -> np.ndarray:
    """A seeded fold number for each query, folds as equal in size as possible."""
    return np.random.default_rng(seed).permutation(np.arange(n_queries) % n_folds)


@dataclass
class _CrossValidated:
    """One program per fold (and one on all queries, fold -1), solutions cached by epsilon,
    and the out-of-fold NDCG of any (epsilon, scale)."""

    groups: QueryGroups
    importance: np.ndarray
    folds: np.ndarray
    k: int
    max_weight: float
    seed: int
    programs: dict[int, WeightProgram] = field(default_factory=dict)
    solved: dict[tuple[int, float], np.ndarray] = field(default_factory=dict)

    def program(self, fold: int) -> WeightProgram:
        """The program on every query outside ``fold``, built once."""
        if fold not in self.programs:
            fit = self.groups.subset(np.flatnonzero(self.folds != fold))
            pairs = judged_pairs(fit, self.k).sample(MAX_PAIRS, self.seed)
            upper = np.where(self.importance > 0, self.max_weight, 0.0)
            self.programs[fold] = WeightProgram(fit, pairs, self.importance, upper)
        return self.programs[fold]

    def weights(self, fold: int, eps: float, scale: float) -> np.ndarray:
        """Weights solved without ``fold`` (-1: on all queries), scaled and rounded."""
        if (fold, eps) not in self.solved:
            self.solved[fold, eps] = self.program(fold).solve(eps)
        return np.round(scale * self.solved[fold, eps], WEIGHT_DECIMALS)

    def strength(self, eps: float, scale: float) -> float:
        """Sum of the weights at (eps, scale), averaged over the folds' solutions."""
        return float(np.mean([self.weights(f, eps, scale).sum() for f in np.unique(self.folds)]))

    def out_of_fold_ndcg(self, eps: float, scale: float) -> np.ndarray:
        """Per-query NDCG@k, each query ranked with weights fitted without its fold."""
        out = np.empty(self.groups.n_queries)
        for fold in np.unique(self.folds):
            held = np.flatnonzero(self.folds == fold)
            part = self.groups.subset(held)
            out[held] = part.ndcg(part.blend(self.weights(fold, eps, scale)), self.k)
        return out


def has_judged_pairs(groups: QueryGroups, k: int) -> bool:
    """Whether :func:`judged_pairs` of ``groups`` is non-empty, without building every query's
    pairs (about a second on Home Depot). A query yields pairs only if two of its candidates
    differ in grade, and what it yields depends on that query alone (its own relevance
    z-scores, order and ideal DCG), so :func:`judged_pairs` of such queries one at a time,
    stopping at the first that yields any, gives the same answer by the same rule."""
    row_query = np.repeat(np.arange(groups.n_queries), np.diff(groups.qptr))
    differs = groups.grades != groups.grades[groups.qptr[row_query]]  # NaN differs: checked
    return any(len(judged_pairs(groups.subset(np.array([q])), k)) > 0
               for q in np.unique(row_query[differs]))


def degenerate_reason(groups: QueryGroups, importance: np.ndarray, k: int,
                      n_folds: int) -> str | None:
    """Why the problem cannot be tuned (the weights stay relevance only), or None."""
    if importance.sum() <= 0:
        return "no business term has a positive weight: relevance only"
    if not has_judged_pairs(groups, k):
        return ("no judged pairs of different grades (every query has one candidate or all "
                "its grades equal): relevance only")
    if groups.n_queries < 2 * n_folds:
        return (f"{groups.n_queries} queries are too few to check weights by {n_folds}-fold "
                "cross-validation: relevance only")
    return None


def tune_weights(
    groups: QueryGroups, importance: np.ndarray, *,
    k: int = 10, max_ndcg_drop: float = 0.0, n_folds: int = 3, n_bisect: int = 3,
    max_weight: float = 3.0, seed: int = 0, progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Strongest weights along :data:`STRENGTH_PATH` whose cross-validated NDCG@k, on a curve
    fitted over the path, passes :func:`selectable` (:func:`choose_strength`).

    The convex program is a surrogate (uniform weights, no guardrails); the check is exact: it
    ranks with the served formula, category rules, demotions and business slots included.

    ``groups`` are the tuning queries (relevance scored by models that did not train on them).
    ``importance`` says which terms count and how much (the merchandiser's current weights);
    terms with importance 0 stay at 0, the others are bounded by ``max_weight``. Checks every
    setting of the path, then bisects ``n_bisect`` times between the strongest accepted
    setting and the next, refitting with each new point.
    Degenerate problems (:func:`degenerate_reason`) return zero weights (relevance only) with
    a message saying why. Programs hold at most :data:`MAX_PAIRS` judged pairs (a seeded
    uniform sample), which keeps a Home Depot training fold well under a minute.
    """
    importance = np.asarray(importance, dtype=np.float64)
    zeros = np.zeros_like(importance)
    reason = degenerate_reason(groups, importance, k, n_folds)
    if reason:
        return TuneResult(zeros, 0.0, reason)
    cv = _CrossValidated(groups, importance / importance.sum(),
                         fold_of_queries(groups.n_queries, n_folds, seed), k, max_weight, seed)
    # The baseline is relevance alone (LambdaMART), the ranking the guardrail compares with; so
    # what the weights file costs beyond it (category rules included) counts against the check.
    base_ndcg = groups.ndcg(groups.z_relevance(), k)
    base = float(finite_mean(base_ndcg))
    rows: dict[tuple[float, float], dict[str, float]] = {}

    def measure(point: tuple[float, float]) -> None:
        ndcg = cv.out_of_fold_ndcg(*point)
        ci = paired_bootstrap(ndcg, base_ndcg, seed=seed)
        rows[point] = {"epsilon": point[0], "scale": point[1], "ndcg": float(finite_mean(ndcg)),
                       "strength": cv.strength(*point), "diff": ci.mean, "se": ci.se,
                       "ci_low": ci.low, "ci_high": ci.high}
        if progress:
            progress(f"epsilon={point[0]:.4f} scale={point[1]:.3f}: cross-validated "
                     f"NDCG@{k} {rows[point]['ndcg']:.4f} ({ci.mean:+.4f} ± {ci.se:.4f})")

    def decide() -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        """(strongest accepted setting, the next stronger one), from all measured so far."""
        points = sorted(rows)  # (epsilon, scale) order is the order of rising strength
        fitted, ok = choose_strength(*(np.array([rows[p][key] for p in points])
                                       for key in ("strength", "diff", "se")),
                                     base, max_ndcg_drop)
        for p, d, accepted in zip(points, fitted, ok, strict=True):
            rows[p].update(fitted_diff=float(d), accepted=float(accepted))
        last = max((i for i in range(len(points)) if ok[i]), default=-1)
        return (points[last] if last >= 0 else None,
                points[last + 1] if last + 1 < len(points) else None)

    for point in STRENGTH_PATH:
        measure(point)
    best, failed = decide()
    for _ in range(n_bisect):
        if failed is None:  # a refit can accept the strongest setting measured
            break
        low = best or (0.0, 0.0)
        measure(((low[0] + failed[0]) / 2, (low[1] + failed[1]) / 2))
        best, failed = decide()
    trace = [rows[p] for p in sorted(rows)]
    if best is None:
        return TuneResult(zeros, 0.0, "every tried weighting lowers cross-validated NDCG: "
                          "relevance only", base, base, trace)
    return TuneResult(cv.weights(-1, *best), best[0],
                      f"tuned at epsilon={best[0]:.4f}, scale {best[1]:.3f}, checked by "
                      f"{n_folds}-fold cross-validation on {groups.n_queries} queries",
                      base, rows[best]["ndcg"], trace)


@dataclass(frozen=True)
class FrontierPoint:
    """Weights solved on all tuning queries at one point of the strength path."""

    epsilon: float
    scale: float
    weights: np.ndarray


def frontier(groups: QueryGroups, importance: np.ndarray, *, k: int = 10,
             max_weight: float = 3.0, seed: int = 0,
             path: tuple[tuple[float, float], ...] = STRENGTH_PATH) -> list[FrontierPoint]:
    """The weights at every point of ``path``, to be scored on held-out queries: the
    NDCG-vs-business Pareto frontier the tuner chooses from. Empty for degenerate problems."""
    importance = np.asarray(importance, dtype=np.float64)
    if degenerate_reason(groups, importance, k, n_folds=1):
        return []
    cv = _CrossValidated(groups, importance / importance.sum(),
                         np.zeros(groups.n_queries, np.int64), k, max_weight, seed)
    return [FrontierPoint(eps, scale, cv.weights(-1, eps, scale)) for eps, scale in path]
