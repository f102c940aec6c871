"""Query groups: candidates of many queries in flat arrays, with per-query evaluation.

The tuner and the quality reports both work on this one representation, so a weight vector is
scored the same way when it is tuned and when it is reported.
"""

from __future__ import annotations

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

    @property
    def n_queries(self) -> int:
        return int(self.qptr.shape[0] - 1)

    def slices(self) -> list[slice]:
        return [slice(int(a), int(b)) for a, b in zip(self.qptr[:-1], self.qptr[1:], strict=True)]

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
        """score = z(relevance) + terms @ weights (the core's formula without guardrails)."""
        return self.z_relevance() + self.terms.astype(np.float64) @ np.asarray(weights, np.float64)

    def orders(self, scores: np.ndarray) -> list[np.ndarray]:
        """Per query, row numbers by descending score; ties by row (retrieval) order."""
        out = []
        for s in self.slices():
            local = np.lexsort((np.arange(s.stop - s.start), -scores[s]))
            out.append(local + s.start)
        return out

    def ndcg(self, scores: np.ndarray, k: int, gain: str = "exp") -> np.ndarray:
        """Per-query NDCG@k of ranking by ``scores``."""
        return np.array([ndcg_at_k(self.grades[o], k, gain) for o in self.orders(scores)])

    def value_at_k(self, scores: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
        """Per-query mean of ``values`` over the top k by ``scores``."""
        return np.array([mean_at_k(values[o], k) for o in self.orders(scores)])
