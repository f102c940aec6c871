"""Query groups: candidates of many queries in flat arrays, with per-query evaluation.

The tuner, the evaluation and the quality reports all work on this one representation, and it
ranks with the served ranker's own kernel (:mod:`objectives._blend_kernels`): the same z-scored
relevance, the same blend (category rules through the compiled :class:`~objectives.plan.Plan`)
and the same order (sink levels, relevance tiers, business slots). So a weight vector is scored
the same way when it is tuned, when it is reported, and when it is served.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from objectives import _blend_kernels as kernels
from objectives.metrics import mean_at_k, ndcg_at_k
from objectives.plan import Plan


@dataclass(frozen=True)
class QueryGroups:
    """Rows of all queries' candidates; query q owns rows ``qptr[q]:qptr[q+1]``.

    Built from a plan by :meth:`of_products`; the guardrail fields can also be given directly
    (or changed with :func:`dataclasses.replace`, e.g. ``slots=0`` for a plain order).
    """

    qptr: np.ndarray  # int64[n_queries + 1]
    relevance: np.ndarray  # float64: model score of each candidate
    terms: np.ndarray  # float32 (n_rows, n_terms): scaled business terms
    grades: np.ndarray  # float64: judged grade
    margin: np.ndarray  # float64: unit margin in currency (for margin@k; NaN if unknown)
    #: Sink level: rows with a higher one come after all rows with a lower one (0 ranked,
    #: 1 demoted out of stock, 2 buried; a bool array works as 0/1).
    demoted: np.ndarray | None = None
    products: np.ndarray | None = None  # int64: catalog row of each candidate
    #: The compiled config the rows are ranked under: :meth:`blend` weighs each row by its
    #: product's category rule, as served (None: the default weights for every row).
    plan: Plan | None = None
    #: With ``relevance_tiers``, business terms reorder only within tiers of this z width.
    tier_width: float = 0.0
    #: ``guardrails.business_slots``: the blend picks this many first places, relevance
    #: orders them and everything after them (0: the blend orders all).
    slots: int = 0

    @classmethod
    def of_products(cls, plan: Plan, qptr: np.ndarray, relevance: np.ndarray,
                    products: np.ndarray, terms: np.ndarray, grades: np.ndarray,
                    margin: np.ndarray) -> QueryGroups:
        """Judged pools of catalog ``products`` (one per row) ranked under ``plan``: each
        row's terms and margin (``terms`` and ``margin`` are per product), its sink level, the
        plan's tier width and slots. A pool cannot drop products, so a product the plan hides
        (``out_of_stock: hide``) is demoted; pins do not apply to judged pools."""
        products = np.asarray(products, np.int64)
        return cls(qptr, relevance, terms[products], grades, margin[products],
                   demoted=plan.sink[products], products=products, plan=plan,
                   tier_width=plan.tier_width, slots=plan.slots)

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
            plan=self.plan, tier_width=self.tier_width, slots=self.slots,
        )

    def z_relevance(self) -> np.ndarray:
        """Relevance z-scored within each query (0 where a query's scores are all equal)."""
        return kernels.pool_z(self._qptr(), self._relevance())

    def blend(self, weights: np.ndarray) -> np.ndarray:
        """score = z(relevance) + sum_k w_k * term_k, with ``weights`` the default weights
        (resolved per product through the plan's category rules when there is a plan), as
        the blend core serves a config tuned to ``weights``."""
        weights = np.asarray(weights, np.float64)
        if self.plan is None or self.products is None:
            rule = np.zeros(self.relevance.shape[0], np.int64)
            table = weights.reshape(1, -1)
        else:
            rule = self.plan.product_rule[self.products]
            table = self.plan.tuned_rule_weights(weights)
        return kernels.pool_scores(self._qptr(), self._relevance(), self.terms, rule, table)

    def orders(self, scores: np.ndarray) -> list[np.ndarray]:
        """Per query, row numbers best first, by the served ranking kernel: demoted rows last,
        then higher relevance tier (when tiers are on), then descending score, ties by row.
        With business slots the score only picks the first ``slots`` rows; those, then the
        rest, are ordered by (demoted, tier, relevance)."""
        sink = (np.zeros(self.relevance.shape[0], np.int64) if self.demoted is None
                else np.asarray(self.demoted, np.int64))
        flat = kernels.pool_orders(self._qptr(), self._relevance(),
                                   np.asarray(scores, np.float64), sink,
                                   float(self.tier_width), int(self.slots))
        bounds = self.qptr.tolist()
        return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def _qptr(self) -> np.ndarray:
        return np.asarray(self.qptr, np.int64)

    def _relevance(self) -> np.ndarray:
        return np.asarray(self.relevance, np.float64)

    def ndcg(self, scores: np.ndarray, k: int, gain: str = "exp") -> np.ndarray:
        """Per-query NDCG@k of ranking by ``scores``."""
        return np.array([ndcg_at_k(self.grades[o], k, gain) for o in self.orders(scores)])

    def value_at_k(self, scores: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
        """Per-query mean of ``values`` over the top k by ``scores``."""
        return np.array([mean_at_k(values[o], k) for o in self.orders(scores)])
