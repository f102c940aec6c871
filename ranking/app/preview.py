"""What a new weights file would change on real queries, before use (``marginrank preview``,
registered by :mod:`ranking.app.preview_command`).

A merchandiser edits the weights YAML, then asks "what happens to my search results?". Preview
runs a sample of real queries through the bundle twice, with its current weights and with the
new file (the same arrays, two config snapshots), and reports for the top 10: NDCG@10 when
judgments are given, mean unit margin, mean return rate, out-of-stock exposure (the share of
top-10 slots showing an out-of-stock product), and which products enter or leave. Output is a
short summary table, then the queries that move most.

The queries are the bundle's own judged query texts (``queries.json``, written by the build),
or those of a judgments file. Both are real queries; nothing is generated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clv.errors import MarginRankError
from objectives.catalog import load_judgments
from objectives.evaluation import BASELINE, Evaluation, compared_rows
from objectives.metrics import discounts, finite_mean, gains, ndcg_ratio
from ranking.ranker import QUERIES_FILE, Catalog, Ranker

#: Depth every preview figure is measured at.
DEPTH = 10
#: Metrics of one ranked list, in the order the summary prints them.
METRICS = ("ndcg@10", "judged share@10", "margin@10", "return rate@10", "out-of-stock share@10")
#: Metrics that need judgments.
JUDGED_METRICS = ("ndcg@10", "judged share@10")


@dataclass(frozen=True)
class QueryPreview:
    """One query under the current and the new weights."""

    query: str
    current: dict[str, float]
    new: dict[str, float]
    entered: tuple[str, ...]  # product ids in the new top 10 only, in new rank order
    left: tuple[str, ...]  # product ids in the current top 10 only, in current rank order

    @property
    def moved(self) -> int:
        return len(self.entered)


@dataclass(frozen=True)
class PreviewReport:
    """Every previewed query, plus what the summary needs to name things."""

    queries: list[QueryPreview]
    titles: dict[str, str]  # product id -> title, for the products that moved
    judged: bool

    def mean(self, side: str, metric: str) -> float:
        return finite_mean([getattr(q, side)[metric] for q in self.queries])


def sample_queries(bundle_dir: Path, judgments: pd.DataFrame | None, n: int,
                   seed: int = 0) -> list[str]:
    """A seeded sample of ``n`` distinct real queries: the judgments' when given, else the
    bundle's judged query texts."""
    if judgments is not None:
        queries = judgments["query"].drop_duplicates().tolist()
    else:
        path = Path(bundle_dir) / QUERIES_FILE
        if not path.is_file():
            raise MarginRankError(f"{bundle_dir}: no {QUERIES_FILE} (bundles built before it was "
                                  "stored); pass --judgments FILE to preview on its queries")
        queries = json.loads(path.read_text(encoding="utf-8"))["queries"]
    rng = np.random.default_rng(seed)
    picked = rng.permutation(len(queries))[:n]
    return [queries[i] for i in sorted(picked)]


def judged_grades(judgments: pd.DataFrame) -> dict[str, dict[str, float]]:
    """query text -> product id -> grade."""
    return {query: dict(zip(group["product_id"], group["grade"], strict=True))
            for query, group in judgments.groupby("query", sort=False)}


def list_metrics(catalog: Catalog, rows: np.ndarray, ids: list[str],
                 grades: dict[str, float] | None) -> dict[str, float]:
    """The preview metrics of one top-10 list (NaN where undefined, e.g. an empty list)."""
    return {
        "ndcg@10": np.nan if grades is None else ndcg_of(ids, grades),
        "judged share@10": (np.nan if grades is None or not ids else
                            float(np.mean([p in grades for p in ids[:DEPTH]]))),
        "margin@10": _mean(catalog.unit_margin, rows),
        "return rate@10": _mean(catalog.return_rate, rows),
        "out-of-stock share@10": float((~catalog.in_stock[rows]).mean()) if rows.size else np.nan,
    }


def ndcg_of(ids: list[str], grades: dict[str, float]) -> float:
    """NDCG@10 of a served list against every judged grade of its query (unjudged products
    gain nothing; the ideal list is the best judged products, found or not)."""
    ideal = np.sort(gains(np.array(list(grades.values()))))[::-1][:DEPTH]
    served = gains(np.array([grades.get(p, 0.0) for p in ids[:DEPTH]], dtype=np.float64))
    return ndcg_ratio(float(served @ discounts(served.size)), float(ideal @ discounts(ideal.size)))


def _mean(values: np.ndarray | None, rows: np.ndarray) -> float:
    return finite_mean(values[rows]) if values is not None and rows.size else float("nan")


def preview(current: Ranker, new: Ranker, queries: list[str],
            judgments: pd.DataFrame | None = None) -> PreviewReport:
    """Run every query under both rankers (anonymous customer) and compare their top 10."""
    grades = judged_grades(judgments) if judgments is not None else {}
    catalog = current.catalog
    out, titles = [], {}
    for query in queries:
        before = [r.product_id for r in current.search(query, k=DEPTH)]
        after = [r.product_id for r in new.search(query, k=DEPTH)]
        judged = grades.get(query, {}) if judgments is not None else None
        entered = tuple(p for p in after if p not in before)
        left = tuple(p for p in before if p not in after)
        titles.update({p: catalog.titles[catalog.row_of[p]] for p in (*entered, *left)})
        metrics = [list_metrics(catalog, catalog.rows(ids), ids, judged)
                   for ids in (before, after)]
        out.append(QueryPreview(query, *metrics, entered, left))
    return PreviewReport(out, titles, judgments is not None)


@dataclass(frozen=True)
class ServedEvaluation:
    """Judged queries as the bundle serves them, relevance alone against its weights: the
    top 10 scored two ways, because served lists show unjudged products.

    ``judged_only`` counts an unjudged product as irrelevant, which biases a difference
    against the list that shows more of them (``judged_share`` says how many each shows);
    ``condensed`` skips unjudged products and scores the first 10 judged ones of the served
    order (a condensed list, Sakai 2007), which has no such bias but ignores what the
    unjudged products displaced. Both carry the same margins of the served top 10.
    """

    judged_only: Evaluation
    condensed: Evaluation
    judged_share: dict[str, float]  # ranker -> mean share of a query's top 10 that is judged

    def to_dict(self) -> dict[str, object]:
        return {"judged_only": self.judged_only.to_dict(), "condensed": self.condensed.to_dict(),
                "judged_share": self.judged_share}


def served_evaluation(ranker: Ranker, judgments: pd.DataFrame, seed: int = 0) -> ServedEvaluation:
    """The judged queries (distinct query texts, as a service is asked them) through the
    bundle: retrieval, its candidates, relevance z-scored over those, then relevance alone
    (:meth:`Ranker.relevance_only`) against the bundle's weights. The pool evaluation grades
    everything it ranks but never sees retrieval; this sees both."""
    grades = judged_grades(judgments)
    sides = {BASELINE: ranker.relevance_only(), "tuned blend": ranker}
    metrics = {name: [_served_metrics(side, query, judged)
                      for query, judged in grades.items()] for name, side in sides.items()}

    def column(name: str, metric: str) -> np.ndarray:
        return np.array([m[metric] for m in metrics[name]], dtype=np.float64)

    def evaluation(ndcg: str) -> Evaluation:
        figures = {name: (column(name, ndcg), column(name, "margin@10")) for name in sides}
        return Evaluation(k=DEPTH, n_queries=len(grades), rows=compared_rows(figures, seed=seed))

    return ServedEvaluation(evaluation("ndcg@10"), evaluation("condensed ndcg@10"),
                            {name: finite_mean(column(name, "judged share@10")) for name in sides})


def _served_metrics(ranker: Ranker, query: str, grades: dict[str, float]) -> dict[str, float]:
    """:func:`list_metrics` of the served top 10, and the condensed NDCG@10 of the whole
    served candidate list (its judged products, in served order)."""
    ids = [hit.product_id for hit in ranker.search(query, k=ranker.n_candidates)]
    top = ids[:DEPTH]
    out = list_metrics(ranker.catalog, ranker.catalog.rows(top), top, grades)
    out["condensed ndcg@10"] = ndcg_of([p for p in ids if p in grades], grades)
    return out


def load_preview_judgments(path: Path, ranker: Ranker) -> pd.DataFrame:
    """A judgments file checked against the bundle's products."""
    return load_judgments(path, pd.Index(ranker.catalog.product_ids))


def format_report(report: PreviewReport, current_name: str, new_name: str,
                  top: int = 10) -> str:
    """The summary table, then the queries whose top 10 changes most."""
    changed = [q for q in report.queries if q.entered or q.left]
    lines = [f"Preview of {new_name} against {current_name} on {len(report.queries)} real "
             f"queries (anonymous customer, top {DEPTH}).", "",
             "| metric | current | new | change |", "| --- | --- | --- | --- |"]
    for metric in METRICS:
        if metric in JUDGED_METRICS and not report.judged:
            continue
        a, b = report.mean("current", metric), report.mean("new", metric)
        lines.append(f"| {metric} | {_fmt(metric, a)} | {_fmt(metric, b)} | "
                     f"{_change(metric, a, b)} |")
    lines += ["", f"Queries whose top {DEPTH} changes: {len(changed)} of {len(report.queries)}; "
              f"{sum(q.moved for q in changed)} products enter a top {DEPTH} and "
              f"{sum(len(q.left) for q in changed)} leave one."]
    if not report.judged:
        lines.append("NDCG@10 needs judgments: pass --judgments FILE.")
    if changed:
        lines += ["", f"Queries that move most (products entering the top {DEPTH}):"]
    for q in sorted(changed, key=lambda q: (-q.moved, q.query))[:top]:
        margin = _change("margin@10", q.current["margin@10"], q.new["margin@10"])
        lines.append(f"\n  {q.query!r}: {q.moved} in, {len(q.left)} out; margin@10 {margin}")
        lines += [f"    + {p}  {report.titles[p][:70]}" for p in q.entered]
        lines += [f"    - {p}  {report.titles[p][:70]}" for p in q.left]
    return "\n".join(lines)


def _fmt(metric: str, value: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    if metric == "margin@10":
        return f"{value:,.2f}"
    return f"{value:.1%}" if metric != "ndcg@10" else f"{value:.4f}"


def _change(metric: str, a: float, b: float) -> str:
    if not (np.isfinite(a) and np.isfinite(b)):
        return "n/a"
    if metric == "ndcg@10":
        return f"{b - a:+.4f}"
    if metric == "margin@10":
        return f"{b - a:+,.2f}" + (f" ({b / a - 1:+.1%})" if a > 0 else "")
    return f"{(b - a) * 100:+.2f} pts"
