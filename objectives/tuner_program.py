"""The convex program the tuner solves (cvxpy, Clarabel), and the judged pairs it is built on.

The variables are the non-negative weights of the business terms, each at most its bound. The
objective is linear: the business value moved up the ranking, measured as the mean per-query
covariance between a candidate's business value and its blended score (both centered within
the query, so a query's level of margin does not count, only its order). The constraint is a
relevance surrogate: a hinge on judged pairs of different grades, each weighted by how much
swapping the pair would change NDCG@k at the relevance-only ranking, may exceed its
relevance-only value by at most a relative slack epsilon. Pairs of equal grade are not in the
constraint: reordering them is where business value comes from at no NDCG cost.

The program is built once per set of queries with epsilon as a cvxpy parameter, so the many
solves of the tuner's search re-use one compiled problem instead of re-canonicalizing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from objectives.groups import QueryGroups
from objectives.metrics import discounts, gains

#: Most judged pairs one program holds. Larger sets (a Home Depot training fold has ~90,000
#: pairs at k = 3, the demo world's ~100,000 at k = 10) are subsampled uniformly with a seed:
#: the weighted hinge sum of a uniform sample estimates the full one up to a constant factor,
#: which the relative slack cancels. The cap bounds the solve time, which grows with the pairs;
#: the NDCG check that chooses among solutions stays exact.
MAX_PAIRS = 5_000
#: Margin of the hinge, in z units of relevance: pairs already this far apart in the right order
#: cost nothing until a weight pushes them closer.
HINGE_MARGIN = 0.5


@dataclass(frozen=True)
class PairSet:
    """Judged pairs (better, worse) with their |delta NDCG@k| weights."""

    better: np.ndarray
    worse: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return int(self.better.shape[0])

    def sample(self, n: int, seed: int) -> PairSet:
        """At most ``n`` pairs, drawn uniformly without replacement (all if there are fewer)."""
        if len(self) <= n:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self), n, replace=False))
        return PairSet(self.better[keep], self.worse[keep], self.weight[keep])


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
        better.append(order[np.where(dg > 0, i, j)[keep]])
        worse.append(order[np.where(dg > 0, j, i)[keep]])
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


class WeightProgram:
    """The program for one set of queries; :meth:`solve` re-solves it at any epsilon."""

    def __init__(self, groups: QueryGroups, pairs: PairSet, importance: np.ndarray,
                 upper: np.ndarray) -> None:
        """``upper`` bounds each weight (0 for terms that do not count)."""
        z = groups.z_relevance()
        terms = groups.terms.astype(np.float64)
        diff_terms = terms[pairs.better] - terms[pairs.worse]
        base = z[pairs.better] - z[pairs.worse]
        self.h0 = float(pairs.weight @ np.maximum(0.0, HINGE_MARGIN - base))
        self.upper = np.asarray(upper, dtype=np.float64)
        self._limit = cp.Parameter(nonneg=True)
        self._w = cp.Variable(terms.shape[1], nonneg=True)
        hinge = cp.pos(HINGE_MARGIN - base - diff_terms @ self._w)
        self._problem = cp.Problem(
            cp.Maximize(business_gradient(groups, importance) @ self._w),
            [pairs.weight @ hinge <= self._limit, self._w <= self.upper],
        )

    def solve(self, epsilon: float) -> np.ndarray:
        """Weights at relative slack ``epsilon`` (zeros if the solver finds no solution)."""
        self._limit.value = self.h0 * (1.0 + epsilon)
        self._problem.solve(solver=cp.CLARABEL)
        if self._w.value is None or self._problem.status not in ("optimal", "optimal_inaccurate"):
            return np.zeros(self.upper.shape[0])
        return np.clip(np.asarray(self._w.value, dtype=np.float64), 0.0, self.upper)


def solve_weights(groups: QueryGroups, pairs: PairSet, importance: np.ndarray, epsilon: float,
                  *, max_weight: float = 3.0) -> np.ndarray:
    """One solve at relative slack ``epsilon``; terms with importance 0 stay at 0."""
    upper = np.where(np.asarray(importance) > 0, max_weight, 0.0)
    return WeightProgram(groups, pairs, importance, upper).solve(epsilon)
