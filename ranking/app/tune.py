"""Tune a bundle's blend weights on judged queries and write them back into the merchandiser's
weights file (comments kept), with a report: the job of ``marginrank tune``
(:mod:`ranking.app.tune_command`).

The candidates of each judged query are its judged products, scored by the bundle's own
features and LambdaMART, with the bundle's business terms: the inputs the tuner needs. Pass
judgments the bundle's model was not trained on where you can: scores on training queries are
overconfident, which makes the NDCG check lenient.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clv.errors import DataError, MarginRankError
from objectives.catalog import load_judgments
from objectives.config import TERM_NAMES, WeightsConfig, load_config
from objectives.groups import QueryGroups
from objectives.guardrail import RelevanceCheck, compare_with_bm25
from objectives.tuned_yaml import write_tuned_yaml
from objectives.tuner import TuneResult, tune_weights
from ranking import features
from ranking.app.build import Served, query_groups
from ranking.app.progress import Progress
from ranking.ranker import QUERIES_FILE, RELEVANCE_BM25, WEIGHTS_FILE, Ranker


@dataclass(frozen=True)
class TuneOutcome:
    """What ``tune`` chose and wrote."""

    result: TuneResult
    start: dict[str, float]
    tuned: dict[str, float]
    yaml_path: Path
    n_queries: int
    relevance_check: RelevanceCheck
    warnings: list[str] = field(default_factory=list)
    labels_used: str = "judgments"


def _refusal(ranker: Ranker, check: RelevanceCheck, n_queries: int) -> str | None:
    """Why no business weight may be added (a warning), or None: the bundle serves BM25, or
    its model does not beat BM25 on these judged queries."""
    if ranker.relevance == RELEVANCE_BM25:
        return ("WARNING: this bundle serves BM25 as relevance (its LambdaMART did not beat "
                "BM25 when it was built): the weights stay at relevance only")
    if not check.model_ahead:
        return (f"WARNING: the bundle's LambdaMART does not beat BM25 on the {n_queries} judged "
                f"queries: NDCG@{check.k} {check.model_ndcg:.4f} vs {check.bm25_ndcg:.4f}. "
                "The weights stay at relevance only; rebuild the bundle with these judgments "
                "(`marginrank build` then serves the better of the two).")
    return None


def overlap_warning(bundle: Path, judgments: pd.DataFrame) -> str | None:
    """A warning when the judged queries include the build's own (``queries.json``): the
    model trained on those, so its scores there are overconfident and the check lenient."""
    path = bundle / QUERIES_FILE
    if not path.is_file():
        return None
    built = {q.casefold().strip() for q in json.loads(path.read_text())["queries"]}
    mine = judgments["query"].str.casefold().str.strip().drop_duplicates()
    shared = int(mine.isin(built).sum())
    if not shared:
        return None
    return (f"WARNING: {shared} of the {len(mine)} judged queries were judged when this bundle "
            "was built; its model trained on some of them, so their scores are overconfident "
            "and the NDCG check is lenient. Tune on judgments the bundle has not seen.")

def judged_groups(ranker: Ranker, judgments: pd.DataFrame,
                  config: WeightsConfig) -> tuple[QueryGroups, QueryGroups]:
    """Each judged query's pool with its terms, scored by the bundle's model, and the same
    pools scored by BM25 (the ``bm25_all`` feature), to check the model beats it."""
    catalog = ranker.catalog
    rows = pd.Index(catalog.product_ids).get_indexer(judgments["product_id"])
    relevance, bm25 = np.empty(len(judgments)), np.empty(len(judgments))
    column = features.FEATURE_NAMES.index("bm25_all")
    for _, at in judgments.groupby("query_id", sort=False).indices.items():
        X = ranker.feature_space.extract(judgments["query"].iat[at[0]], rows[at], catalog.priors)
        relevance[at] = ranker.model.predict(X)
        bm25[at] = X[:, column]
    margin = (np.full(len(catalog.product_ids), np.nan) if catalog.unit_margin is None
              else catalog.unit_margin.astype(np.float64))
    served = Served.build(config, catalog.terms, margin, catalog.in_stock,
                          list(catalog.product_ids), list(catalog.categories))
    every = np.ones(len(judgments), bool)
    return (query_groups(judgments, every, relevance, rows, served),
            query_groups(judgments, every, bm25, rows, served))


def tune_bundle(bundle: Path, judgments_path: Path | None, config_path: Path | None, k: int,
                out: Path, seed: int = 0, progress: Progress | None = None,
                events: Path | None = None) -> TuneOutcome:
    """Tune the weights of ``config_path`` (default: the bundle's weights file) on the judged
    queries and write the tuned file to ``out``, plus ``out`` with .md and .json reports.

    With ``events`` instead of judgments (a shop without judgments), the labels are the
    bundle's own logged interactions debiased for position
    (:func:`ranking.experiments.learn.labels_from_events`), and the reports say so."""
    progress = progress or Progress()
    if (judgments_path is None) == (events is None):
        raise MarginRankError("tune on --judgments or on --events (one of the two)")
    labels_used = "judgments"
    if events is not None:
        from ranking.experiments.learn import labels_from_events

        with progress.stage("debiased labels from the logs"):
            logs = labels_from_events(events, bundle)
        ranker, labels_used, judgments_path = logs.ranker, logs.description(), events
        judgments = logs.frame()[["query", "product_id", "grade", "query_id"]]
    else:
        ranker = Ranker.load(bundle)
    source = config_path or bundle / WEIGHTS_FILE
    config = load_config(source, product_ids=set(ranker.catalog.product_ids),
                         target_weeks_of_cover=ranker.target_weeks_of_cover)
    if events is None:
        judgments = load_judgments(judgments_path, pd.Index(ranker.catalog.product_ids))
    if judgments.empty:
        raise DataError("no labels to tune on", file=judgments_path)
    with progress.stage("scoring judged queries"):
        groups, bm25 = judged_groups(ranker, judgments, config)
    check = compare_with_bm25(groups.ndcg(groups.z_relevance(), k),
                              bm25.ndcg(bm25.z_relevance(), k), k, seed)
    warnings = [w for w in (overlap_warning(bundle, judgments),) if w]
    for line in warnings:
        progress.note(line)
    with progress.stage("tuning weights (cvxpy)"):
        refusal = _refusal(ranker, check, groups.n_queries)
        if refusal:
            progress.note(refusal)
            result = TuneResult(np.zeros(len(TERM_NAMES)), 0.0, refusal,
                                max_ndcg_drop=config.guardrails.max_ndcg_drop,
                                n_queries=groups.n_queries)
        else:
            result = tune_weights(groups, config.weight_vector(), k=k, seed=seed,
                                  max_ndcg_drop=config.guardrails.max_ndcg_drop,
                                  progress=progress.note)
    start = dict(zip(TERM_NAMES, config.weight_vector().tolist(), strict=True))
    tuned = dict(zip(TERM_NAMES, result.weights.tolist(), strict=True))
    note = (f"Weights tuned by `marginrank tune` at k={k} on {groups.n_queries} judged queries "
            f"({judgments_path.name}; labels: {labels_used}): {result.message}.\nStarting weights: "
            + ", ".join(f"{n} {w:g}" for n, w in start.items()))
    write_tuned_yaml(source, config.tuned(result.weights), out, note=note)
    outcome = TuneOutcome(result, start, tuned, out, groups.n_queries, check, warnings,
                          labels_used)
    out.with_suffix(".md").write_text(report_markdown(outcome, k), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(report_json(outcome, k), indent=2))
    return outcome


def report_markdown(outcome: TuneOutcome, k: int) -> str:
    """The tuning report: weights before and after, the check, and the path walked."""
    r = outcome.result
    c = outcome.relevance_check
    lines = [f"# marginrank tune: {outcome.yaml_path.name}", "",
             *(f"**{w}**\n" for w in outcome.warnings),
             f"- {r.message}", f"- judged queries: {outcome.n_queries}",
             f"- labels: {outcome.labels_used}",
             "- guardrail (max_ndcg_drop "
             f"{r.max_ndcg_drop:g}: relative NDCG drop at most {100 * r.max_ndcg_drop:.2f}% "
             "with 95% confidence). `tune` has no held-out queries: these are out-of-fold "
             "certificates of the chosen setting on the judged queries (3-fold "
             "cross-validation):",
             *(f"  - k = {c}: {'held' if v.certified else 'missed'}: drop {100 * v.drop:+.2f}%, "
               f"bound {100 * v.drop_bound:.2f}%" for c, v in r.by_k.items()),
             *([] if r.by_k else ["  - nothing certified: the weights stay at relevance only"]),
             *([f"- {r.certifiable()}"] if r.certifiable() else []),
             f"- LambdaMART vs BM25 on these queries: NDCG@{k} {c.model_ndcg:.4f} vs "
             f"{c.bm25_ndcg:.4f}",
             *(f"- note: {n}" for n in r.notes),
             f"- cross-validated NDCG@{k}: relevance only {r.cv_ndcg_base:.4f}, tuned "
             f"{r.cv_ndcg_tuned:.4f}", "", "| term | starting weight | tuned weight |",
             "| --- | --- | --- |",
             *(f"| {n} | {outcome.start[n]:g} | {outcome.tuned[n]:.4f} |" for n in TERM_NAMES),
             "", "Settings tested from the weakest up; the first refused one stops the walk.", "",
             "| epsilon | scale | strength | NDCG@k | difference | drop (95% upper bound) "
             "| accepted |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {t['epsilon']:.4f} | {t['scale']:.4f} | {t['strength']:.3f} | "
              f"{t['ndcg']:.4f} | {t['diff']:+.4f} | {100 * t['drop']:+.2f}% "
              f"({100 * t['drop_bound']:.2f}%) | {'yes' if t['accepted'] else 'no'} |"
              for t in r.trace]
    return "\n".join(lines) + "\n"


def report_json(outcome: TuneOutcome, k: int) -> dict[str, object]:
    r = outcome.result
    return {"k": k, "n_queries": outcome.n_queries, "warnings": outcome.warnings,
            "labels_used": outcome.labels_used,
            "guardrail": {str(c): {"held": v.certified, "drop": v.drop,
                                   "drop_bound": v.drop_bound,
                                   "max_ndcg_drop": r.max_ndcg_drop}
                          for c, v in r.by_k.items()},
            "starting_weights": outcome.start,
            "tuned_weights": outcome.tuned, "tuner": r.to_dict(),
            "relevance_check": outcome.relevance_check.to_dict(),
            "weights_file": str(outcome.yaml_path)}
