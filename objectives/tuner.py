"""Tune the blend weights with cvxpy so business value rises while relevance does not fall.

The convex program (solved by Clarabel): the variables are the non-negative weights of the
terms the merchandiser cares about. It maximizes a linear surrogate of business value moved up
the ranking: the per-query covariance between each candidate's business value and its blended
score. It is constrained by a relevance surrogate: a pairwise hinge on judged pairs of
different grades, each weighted by how much swapping the pair would change NDCG@k at the
relevance-only ranking, may exceed its relevance-only value by at most a relative slack
epsilon. Equal-grade pairs are unconstrained; reordering them is where margin comes from at no
NDCG cost.

The true NDCG@k is then checked on queries the weights were not fitted on, by K-fold
cross-validation over the tuning queries: for each fold the program is solved on the other
folds and the weights are scored on the held fold, so every query gives one honest paired NDCG
difference. Walking a path of rising strength (:data:`STRENGTH_PATH`, then bisection), the
strongest setting whose differences pass the check wins, and the final weights are solved on
all tuning queries at that setting.

The check for ``max_ndcg_drop == 0`` is "not below beyond noise": the mean paired NDCG
difference must lie within one bootstrap standard error of zero. That is stricter than "the
95% interval includes 0" on purpose: the search picks the strongest setting that passes, so a
check at the edge of significance would, by selection, land on a real drop for new queries
(the one-standard-error rule of model selection). A positive ``max_ndcg_drop`` is a relative
tolerance on the mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from objectives.groups import QueryGroups
from objectives.metrics import PairedCI, discounts, finite_mean, gains, paired_bootstrap


@dataclass(frozen=True)
class PairSet:
    """Judged pairs (better, worse) with their |delta NDCG@k| weights."""

    better: np.ndarray
    worse: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return int(self.better.shape[0])


@dataclass
class TuneResult:
    """Chosen weights and the evidence for them."""

    weights: np.ndarray
    epsilon: float
    message: str
    cv_ndcg_base: float = float("nan")  # cross-validated NDCG@k, relevance only
    cv_ndcg_tuned: float = float("nan")  # the same with the chosen weights
    trace: list[dict[str, float]] = field(default_factory=list)


def judged_pairs(groups: QueryGroups, k: int) -> PairSet:
    """Pairs of different grade whose swap changes NDCG@k at the relevance-only ranking."""
    z = groups.z_relevance()
    better, worse, weight = [], [], []
    for order in groups.orders(z):
        n = order.shape[0]
        disc = np.zeros(n)
        disc[: min(k, n)] = discounts(min(k, n))
        g = gains(groups.grades[order])
        idcg = float(np.sort(g)[::-1][:k] @ discounts(min(k, n)))
        if idcg <= 0:
            continue
        i, j = np.triu_indices(n, 1)
        dg = groups.grades[order[i]] - groups.grades[order[j]]
        w = np.abs((g[i] - g[j]) * (disc[i] - disc[j])) / idcg
        keep = (dg != 0) & (w > 0)
        hi = np.where(dg > 0, i, j)[keep]
        lo = np.where(dg > 0, j, i)[keep]
        better.append(order[hi])
        worse.append(order[lo])
        weight.append(w[keep])
    if not better:
        empty = np.zeros(0, dtype=np.int64)
        return PairSet(empty, empty, np.zeros(0))
    return PairSet(np.concatenate(better), np.concatenate(worse), np.concatenate(weight))


def business_gradient(groups: QueryGroups, importance: np.ndarray) -> np.ndarray:
    """d/dw of the mean per-query covariance between business value and blended score."""
    value = groups.terms.astype(np.float64) @ importance
    grad = np.zeros(groups.terms.shape[1])
    for s in groups.slices():
        t = groups.terms[s].astype(np.float64)
        v = value[s]
        grad += ((v - v.mean())[:, None] * (t - t.mean(axis=0))).mean(axis=0)
    return grad / max(groups.n_queries, 1)


def solve_weights(
    groups: QueryGroups, pairs: PairSet, importance: np.ndarray, epsilon: float, *,
    max_weight: float = 3.0, hinge_margin: float = 0.5,
) -> np.ndarray:
    """One solve of the convex program at relative slack ``epsilon``."""
    z = groups.z_relevance()
    terms = groups.terms.astype(np.float64)
    diff_terms = terms[pairs.better] - terms[pairs.worse]
    base = z[pairs.better] - z[pairs.worse]
    h0 = float(pairs.weight @ np.maximum(0.0, hinge_margin - base))
    w = cp.Variable(terms.shape[1], nonneg=True)
    hinge = cp.pos(hinge_margin - base - diff_terms @ w)
    upper = np.where(importance > 0, max_weight, 0.0)
    problem = cp.Problem(
        cp.Maximize(business_gradient(groups, importance) @ w),
        [pairs.weight @ hinge <= h0 * (1.0 + epsilon), w <= upper],
    )
    problem.solve(solver=cp.CLARABEL)
    if w.value is None or problem.status not in ("optimal", "optimal_inaccurate"):
        return np.zeros(terms.shape[1])
    return np.clip(np.asarray(w.value, dtype=np.float64), 0.0, upper)


#: The search path, weakest to strongest: (relative slack epsilon, scale of the weights). The
#: solve at epsilon = 0 is first scaled down, because a linear objective puts the solution on a
#: vertex and even the tightest surrogate can move NDCG on new queries; scaling toward 0 is a
#: continuous way back to the relevance-only ranking. Then the slack grows.
STRENGTH_PATH: tuple[tuple[float, float], ...] = (
    (0.0, 0.125), (0.0, 0.25), (0.0, 0.5), (0.0, 1.0),
    (0.01, 1.0), (0.02, 1.0), (0.05, 1.0), (0.1, 1.0), (0.2, 1.0), (0.5, 1.0), (1.0, 1.0),
)


#: Weights are rounded before they are checked, so the YAML a merchandiser reads holds exactly
#: the weights that were checked and are served.
WEIGHT_DECIMALS = 4


def passes(ci: PairedCI, drop: float, max_ndcg_drop: float) -> bool:
    """The validation check used to choose weights (see the module docstring)."""
    if max_ndcg_drop == 0:
        return ci.mean >= -ci.se
    return drop <= max_ndcg_drop


def within_tolerance(ci: PairedCI, drop: float, max_ndcg_drop: float) -> bool:
    """The guardrail as stated, for queries the weights were not chosen on: with
    ``max_ndcg_drop == 0`` NDCG is not significantly below (the interval reaches 0 or above);
    otherwise the relative drop is at most ``max_ndcg_drop``."""
    if max_ndcg_drop == 0:
        return ci.high >= 0.0
    return drop <= max_ndcg_drop


def fold_of_queries(n_queries: int, n_folds: int, seed: int) -> np.ndarray:
    """A seeded fold number for each query, folds as equal in size as possible."""
    return np.random.default_rng(seed).permutation(np.arange(n_queries) % n_folds)


@dataclass
class _CrossValidated:
    """Solves per fold (cached by epsilon) and the out-of-fold NDCG of any (epsilon, scale)."""

    groups: QueryGroups
    importance: np.ndarray
    folds: np.ndarray
    k: int
    max_weight: float
    solved: dict[tuple[int, float], np.ndarray] = field(default_factory=dict)

    def weights(self, fold: int, eps: float, scale: float) -> np.ndarray:
        """Weights solved without ``fold`` (-1: on all queries), scaled and rounded."""
        if (fold, eps) not in self.solved:
            fit = self.groups.subset(np.flatnonzero(self.folds != fold))
            self.solved[fold, eps] = solve_weights(
                fit, judged_pairs(fit, self.k), self.importance, eps, max_weight=self.max_weight)
        return np.round(scale * self.solved[fold, eps], WEIGHT_DECIMALS)

    def out_of_fold_ndcg(self, eps: float, scale: float) -> np.ndarray:
        """Per-query NDCG@k, each query ranked with weights fitted without its fold."""
        out = np.empty(self.groups.n_queries)
        for fold in np.unique(self.folds):
            held = np.flatnonzero(self.folds == fold)
            part = self.groups.subset(held)
            out[held] = part.ndcg(part.blend(self.weights(fold, eps, scale)), self.k)
        return out


def tune_weights(
    groups: QueryGroups, importance: np.ndarray, *,
    k: int = 10, max_ndcg_drop: float = 0.0, n_folds: int = 3, n_bisect: int = 3,
    max_weight: float = 3.0, seed: int = 0, progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Strongest weights along :data:`STRENGTH_PATH` whose cross-validated NDCG@k passes.

    The convex program is a surrogate (uniform weights, no guardrails); the check is exact: it
    ranks with the served formula, category rules and demotions included.

    ``groups`` are the tuning queries (relevance scored by models that did not train on them).
    ``importance`` says which terms count and how much (the merchandiser's current weights);
    terms with importance 0 stay at 0. Walks the path until the first failure, then bisects
    between the last pass and that failure. Degenerate problems return zero weights
    (relevance only) with a message saying why.
    """
    importance = np.asarray(importance, dtype=np.float64)
    zeros = np.zeros_like(importance)
    if importance.sum() <= 0:
        return TuneResult(zeros, 0.0, "no business term has a positive weight: relevance only")
    if len(judged_pairs(groups, k)) == 0:
        return TuneResult(zeros, 0.0, "no judged pairs of different grades: relevance only")
    if groups.n_queries < 2 * n_folds:
        return TuneResult(zeros, 0.0, f"{groups.n_queries} queries are too few to check "
                          f"weights by {n_folds}-fold cross-validation: relevance only")
    cv = _CrossValidated(groups, importance / importance.sum(),
                         fold_of_queries(groups.n_queries, n_folds, seed), k, max_weight)
    # The baseline is relevance alone (LambdaMART), the ranking the guardrail compares with; so
    # what the weights file costs beyond it (category rules included) counts against the check.
    base_ndcg = groups.ndcg(groups.z_relevance(), k)

    def attempt(eps: float, scale: float) -> tuple[bool, dict[str, float]]:
        ndcg = cv.out_of_fold_ndcg(eps, scale)
        ci = paired_bootstrap(ndcg, base_ndcg, seed=seed)
        drop = (finite_mean(base_ndcg) - finite_mean(ndcg)) / finite_mean(base_ndcg)
        ok = passes(ci, drop, max_ndcg_drop)
        row = {"epsilon": eps, "scale": scale, "ndcg": float(finite_mean(ndcg)),
               "drop": float(drop), "ci_low": ci.low, "ci_high": ci.high, "accepted": float(ok)}
        if progress:
            progress(f"epsilon={eps:.4f} scale={scale:.3f}: cross-validated NDCG@{k} "
                     f"{row['ndcg']:.4f} (drop {drop:+.2%}) {'accepted' if ok else 'rejected'}")
        return ok, row

    trace: list[dict[str, float]] = []
    best: tuple[float, float] | None = None
    failed = None
    for point in STRENGTH_PATH:
        ok, row = attempt(*point)
        trace.append(row)
        if not ok:
            failed = point
            break
        best = point
    low = best or (0.0, 0.0)
    for _ in range(n_bisect if failed is not None else 0):
        mid = ((low[0] + failed[0]) / 2, (low[1] + failed[1]) / 2)
        ok, row = attempt(*mid)
        trace.append(row)
        if ok:
            low = best = mid
        else:
            failed = mid
    base = float(finite_mean(base_ndcg))
    if best is None:
        return TuneResult(zeros, 0.0, "every tried weighting lowers cross-validated NDCG: "
                          "relevance only", base, base, trace)
    tuned = float(finite_mean(cv.out_of_fold_ndcg(*best)))
    return TuneResult(cv.weights(-1, *best), best[0],
                      f"tuned at epsilon={best[0]:.4f}, scale {best[1]:.3f}, checked by "
                      f"{n_folds}-fold cross-validation on {groups.n_queries} queries",
                      base, tuned, trace)
