"""Query groups: candidates of many queries in flat arrays, with per-query evaluation.

The tuner and the quality reports both work on this one representation, so a weight vector is
scored the same way when it is tuned and when it is reported, and the way it is served: the
same formula, the same category overrides (through ``row_weights``) and the same demotion of
out-of-stock and buried products.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from objectives.metrics import mean_at_k, ndcg_at_k


@dataclass(frozen=True)
class QueryGroups:
    """Rows of all queries' candidates; query q owns rows ``qptr[q]:qptr[q+1]``."""

    qptr: np.ndarray  # int64[n_queries + 1]
    relevance: np.ndarray  # float64: model score of each candidate
    terms: np.ndarray  # float32 (n_rows, n_terms): scaled business terms
    grades: np.ndarray  # float64: judged grade
    margin: np.ndarray  # float64: unit margin in currency (for margin@k; NaN if unknown)
    #: Sink level: rows with a higher one come after all rows with a lower one (0 ranked,
    #: 1 demoted out of stock, 2 buried; a bool array works as 0/1).
    demoted: np.ndarray | None = None
    products: np.ndarray | None = None  # int64: catalog row of each candidate
    #: Default weights -> (n_products, n_terms) weights as served (category rules applied).
    row_weights: Callable[[np.ndarray], np.ndarray] | None = None
    #: With ``relevance_tiers``, business terms reorder only within tiers of this z width.
    tier_width: float = 0.0
    #: ``guardrails.business_slots``: the blend picks this many first places, relevance
    #: orders them and everything after them (0: the blend orders all).
    slots: int = 0

    @property
    def n_queries(self) -> int:
        return int(self.qptr.shape[0] - 1)

    def slices(self) -> list[slice]:
        return [slice(int(a), int(b)) for a, b in zip(self.qptr[:-1], self.qptr[1:], strict=True)]

    def subset(self, queries: np.ndarray) -> QueryGroups:
        """The groups of the given query numbers, in that order (for cross-validation)."""
        queries = np.asarray(queries, dtype=np.int64)
        starts, sizes = self.qptr[queries], np.diff(self.qptr)[queries]
        qptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        rows = np.arange(int(qptr[-1]), dtype=np.int64) + np.repeat(starts - qptr[:-1], sizes)
        return QueryGroups(
            qptr, self.relevance[rows], self.terms[rows], self.grades[rows], self.margin[rows],
            demoted=None if self.demoted is None else self.demoted[rows],
            products=None if self.products is None else self.products[rows],
            row_weights=self.row_weights, tier_width=self.tier_width, slots=self.slots,
        )

    def z_relevance(self) -> np.ndarray:
        """Relevance z-scored within each query (0 where a query's scores are all equal)."""
        z = np.zeros_like(self.relevance)
        for s in self.slices():
            r = self.relevance[s]
            sd = r.std()
            if sd > 1e-12:
                z[s] = (r - r.mean()) / sd
        return z

    def blend(self, weights: np.ndarray) -> np.ndarray:
        """score = z(relevance) + sum_k w_k * term_k, with ``weights`` the default weights
        (resolved per product through ``row_weights`` when given), as the blend core serves."""
        weights = np.asarray(weights, np.float64)
        terms = self.terms.astype(np.float64)
        if self.row_weights is None or self.products is None:
            return self.z_relevance() + terms @ weights
        per_row = self.row_weights(weights)[self.products]
        return self.z_relevance() + (terms * per_row).sum(axis=1)

    def orders(self, scores: np.ndarray) -> list[np.ndarray]:
        """Per query, row numbers best first, as the blend core orders them: demoted rows last,
        then higher relevance tier (when tiers are on), then descending score, ties by row.
        With business slots the score only picks the first ``slots`` rows; those, then the
        rest, are ordered by (demoted, tier, relevance)."""
        demoted = np.zeros(scores.shape[0], bool) if self.demoted is None else self.demoted
        z = self.z_relevance()
        tiers = (np.floor(z / self.tier_width) if self.tier_width > 0
                 else np.zeros(scores.shape[0]))
        out = []
        for s in self.slices():
            local = np.lexsort((np.arange(s.stop - s.start), -scores[s], -tiers[s], demoted[s]))
            if self.slots > 0:
                local = np.concatenate([
                    c[np.lexsort((c, -z[s][c], -tiers[s][c], demoted[s][c]))]
                    for c in (local[: self.slots], local[self.slots:])])
            out.append(local + s.start)
        return out

    def ndcg(self, scores: np.ndarray, k: int, gain: str = "exp") -> np.ndarray:
        """Per-query NDCG@k of ranking by ``scores``."""
        return np.array([ndcg_at_k(self.grades[o], k, gain) for o in self.orders(scores)])

    def value_at_k(self, scores: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
        """Per-query mean of ``values`` over the top k by ``scores``."""
        return np.array([mean_at_k(values[o], k) for o in self.orders(scores)])
