"""Side-by-side evaluation of rankers on held-out queries: BM25, LambdaMART, tuned blend.

Each row reports NDCG@k and margin@k (mean unit margin of the top k); the blend rows also carry
the margin lift over LambdaMART (both averages) and the paired bootstrap interval of their
NDCG difference to LambdaMART, the baseline the "relevance must not fall" promise is about.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from objectives.groups import QueryGroups
from objectives.metrics import (
    Lift,
    PairedCI,
    Verdict,
    finite_mean,
    lift,
    paired_bootstrap,
    verdict,
)


@dataclass(frozen=True)
class RankerRow:
    """Figures of one ranker on the test queries."""

    name: str
    ndcg: float
    margin: float
    margin_lift: Lift | None = None
    ndcg_diff: PairedCI | None = None
    per_query_ndcg: tuple[float, ...] = ()
    per_query_margin: tuple[float, ...] = ()


@dataclass(frozen=True)
class Evaluation:
    """Rows for all rankers at cut-off ``k`` over ``n_queries`` held-out queries."""

    k: int
    n_queries: int
    rows: tuple[RankerRow, ...]

    def row(self, name: str) -> RankerRow:
        return next(r for r in self.rows if r.name == name)

    def guardrail(self, max_ndcg_drop: float, name: str = "tuned blend") -> Verdict:
        """The guardrail's verdict on these held-out queries for ranker ``name`` against
        relevance alone (:func:`objectives.metrics.verdict`: held unless the data show a
        drop beyond ``max_ndcg_drop``)."""
        return verdict(self.row(name).per_query_ndcg, self.row(BASELINE).per_query_ndcg,
                       max_ndcg_drop)

    def markdown(self) -> str:
        """The table the demo prints and the report embeds."""
        k = self.k
        lines = [f"| ranker | NDCG@{k} | ΔNDCG@{k} vs LambdaMART [95% CI] | margin@{k} | "
                 "margin lift (ratio of means) | "
                 "margin lift (mean of ratios, queries with margin > 0) |",
                 "| --- | --- | --- | --- | --- | --- |"]
        for r in self.rows:
            ci = (f"{r.ndcg_diff.mean:+.4f} [{r.ndcg_diff.low:+.4f}, {r.ndcg_diff.high:+.4f}]"
                  if r.ndcg_diff else "")
            lifts = (f"{_fmt(r.margin_lift.ratio_of_means, '+.1%')} | "
                     f"{_fmt(r.margin_lift.mean_of_ratios, '+.1%')}" if r.margin_lift else " | ")
            lines.append(f"| {r.name} | {_fmt(r.ndcg, '.4f')} | {ci} | {_fmt(r.margin, '.2f')} | "
                         f"{lifts} |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {"k": self.k, "n_queries": self.n_queries, "rows": [asdict(r) for r in self.rows]}


def _fmt(value: float, spec: str) -> str:
    """A figure for the table; "n/a" where it could not be computed (e.g. no prices)."""
    return "n/a" if not np.isfinite(value) else format(value, spec)


def evaluate(test: QueryGroups, test_bm25: QueryGroups, weights: np.ndarray, *, k: int = 10,
             seed: int = 0, serve_bm25: bool = False) -> Evaluation:
    """Evaluate BM25 (``test_bm25.relevance``), LambdaMART and the blend with ``weights``
    (on BM25's relevance with ``serve_bm25``: what a bundle serves when LambdaMART lost).

    ``test`` and ``test_bm25`` must hold the same queries and rows in the same order.
    """
    served = test_bm25 if serve_bm25 else test
    scored = {
        "BM25": (test_bm25, test_bm25.relevance),
        BASELINE: (test, test.z_relevance()),
        "tuned blend": (served, served.blend(weights)),
    }
    figures = {name: (groups.ndcg(scores, k), groups.value_at_k(scores, groups.margin, k))
               for name, (groups, scores) in scored.items()}
    return Evaluation(k=k, n_queries=test.n_queries, rows=compared_rows(figures, seed=seed))


#: The ranker every other row is compared with: relevance alone.
BASELINE = "LambdaMART"


def compared_rows(figures: dict[str, tuple[np.ndarray, np.ndarray]], *,
                  seed: int = 0) -> tuple[RankerRow, ...]:
    """One row per ranker from its per-query (NDCG, margin) values, each ranker but
    :data:`BASELINE` with its margin lift and paired NDCG interval against the baseline."""
    base_ndcg, base_margin = figures[BASELINE]
    rows = []
    for name, (ndcg, margin) in figures.items():
        compare = name != BASELINE
        rows.append(RankerRow(
            name=name, ndcg=finite_mean(ndcg), margin=finite_mean(margin),
            margin_lift=lift(margin, base_margin) if compare else None,
            ndcg_diff=paired_bootstrap(ndcg, base_ndcg, seed=seed) if compare else None,
            per_query_ndcg=tuple(ndcg.tolist()), per_query_margin=tuple(margin.tolist()),
        ))
    return tuple(rows)
