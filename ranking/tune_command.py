"""``marginrank tune``: tune a bundle's blend weights on judged queries and write them back
into the merchandiser's weights file (comments kept), with a report.

The candidates of each judged query are its judged products, scored by the bundle's own
features and LambdaMART, with the bundle's business terms: the inputs the tuner needs. Pass
judgments the bundle's model was not trained on where you can: scores on training queries are
overconfident, which makes the NDCG check lenient.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clv.errors import DataError, MarginRankError
from objectives.catalog import load_judgments
from objectives.config import TERM_NAMES, WeightsConfig, load_config
from objectives.groups import QueryGroups
from objectives.tuned_yaml import write_tuned_yaml
from objectives.tuner import TuneResult, tune_weights
from ranking.build import Served, query_groups
from ranking.progress import Progress
from ranking.ranker import WEIGHTS_FILE, Ranker


@dataclass(frozen=True)
class TuneOutcome:
    """What ``tune`` chose and wrote."""

    result: TuneResult
    start: dict[str, float]
    tuned: dict[str, float]
    yaml_path: Path
    n_queries: int


def judged_groups(ranker: Ranker, judgments: pd.DataFrame, config: WeightsConfig) -> QueryGroups:
    """Each judged query's pool, scored by the bundle's features and model, with its terms."""
    catalog = ranker.catalog
    rows = pd.Index(catalog.product_ids).get_indexer(judgments["product_id"])
    relevance = np.empty(len(judgments))
    for _, at in judgments.groupby("query_id", sort=False).indices.items():
        X = ranker.feature_space.extract(judgments["query"].iat[at[0]], rows[at], catalog.priors)
        relevance[at] = ranker.model.predict(X)
    margin = (np.full(len(catalog.product_ids), np.nan) if catalog.unit_margin is None
              else catalog.unit_margin.astype(np.float64))
    served = Served.build(config, catalog.terms, margin, catalog.in_stock,
                          list(catalog.product_ids), list(catalog.categories))
    return query_groups(judgments, np.ones(len(judgments), bool), relevance, rows, served)


def tune_bundle(bundle: Path, judgments_path: Path, config_path: Path | None, k: int,
                out: Path, seed: int = 0, progress: Progress | None = None) -> TuneOutcome:
    """Tune the weights of ``config_path`` (default: the bundle's weights file) on the judged
    queries and write the tuned file to ``out``, plus ``out`` with .md and .json reports."""
    progress = progress or Progress()
    ranker = Ranker.load(bundle)
    source = config_path or bundle / WEIGHTS_FILE
    config = load_config(source, product_ids=set(ranker.catalog.product_ids),
                         target_weeks_of_cover=ranker.target_weeks_of_cover)
    judgments = load_judgments(judgments_path, pd.Index(ranker.catalog.product_ids))
    if judgments.empty:
        raise DataError("no judgments to tune on", file=judgments_path)
    with progress.stage("scoring judged queries"):
        groups = judged_groups(ranker, judgments, config)
    with progress.stage("tuning weights (cvxpy)"):
        result = tune_weights(groups, config.weight_vector(), k=k, seed=seed,
                              max_ndcg_drop=config.guardrails.max_ndcg_drop,
                              progress=progress.note)
    start = dict(zip(TERM_NAMES, config.weight_vector().tolist(), strict=True))
    tuned = dict(zip(TERM_NAMES, result.weights.tolist(), strict=True))
    note = (f"Weights tuned by `marginrank tune` at k={k} on {groups.n_queries} judged queries "
            f"({judgments_path.name}): {result.message}.\nStarting weights: "
            + ", ".join(f"{n} {w:g}" for n, w in start.items()))
    write_tuned_yaml(source, config.tuned(result.weights), out, note=note)
    outcome = TuneOutcome(result, start, tuned, out, groups.n_queries)
    out.with_suffix(".md").write_text(report_markdown(outcome, k), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(report_json(outcome, k), indent=2))
    return outcome


def report_markdown(outcome: TuneOutcome, k: int) -> str:
    """The tuning report: weights before and after, the check, and the path walked."""
    r = outcome.result
    lines = [f"# marginrank tune: {outcome.yaml_path.name}", "",
             f"- {r.message}", f"- judged queries: {outcome.n_queries}",
             f"- cross-validated NDCG@{k}: relevance only {r.cv_ndcg_base:.4f}, tuned "
             f"{r.cv_ndcg_tuned:.4f}", "", "| term | starting weight | tuned weight |",
             "| --- | --- | --- |",
             *(f"| {n} | {outcome.start[n]:g} | {outcome.tuned[n]:.4f} |" for n in TERM_NAMES),
             "", "| epsilon | scale | NDCG@k | difference (95% CI) | fitted difference "
             "| accepted |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {t['epsilon']:.4f} | {t['scale']:.3f} | {t['ndcg']:.4f} | {t['diff']:+.4f} "
              f"[{t['ci_low']:+.4f}, {t['ci_high']:+.4f}] | {t['fitted_diff']:+.4f} | "
              f"{'yes' if t['accepted'] else 'no'} |" for t in r.trace]
    return "\n".join(lines) + "\n"


def report_json(outcome: TuneOutcome, k: int) -> dict[str, object]:
    r = outcome.result
    return {"k": k, "message": r.message, "epsilon": r.epsilon, "n_queries": outcome.n_queries,
            "starting_weights": outcome.start, "tuned_weights": outcome.tuned,
            "cv_ndcg_base": r.cv_ndcg_base, "cv_ndcg_tuned": r.cv_ndcg_tuned, "trace": r.trace,
            "weights_file": str(outcome.yaml_path)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``tune`` subcommand's arguments (registered by :mod:`ranking.cli`)."""
    parser.add_argument("--bundle", type=Path, required=True, help="the bundle to tune for")
    parser.add_argument("--judgments", type=Path, required=True,
                        help="judgments (query, product_id, grade) to tune on")
    parser.add_argument("--config", type=Path,
                        help="weights YAML to tune (default: the bundle's weights.yaml)")
    parser.add_argument("--k", type=int, default=10, help="NDCG cut-off (default 10)")
    parser.add_argument("--out", type=Path, default=Path("tuned.yaml"),
                        help="tuned weights file; reports go beside it as .md and .json")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Tune, write, and print the report."""
    if args.k < 1:
        raise MarginRankError(f"--k must be at least 1, got {args.k}")
    outcome = tune_bundle(args.bundle, args.judgments, args.config, args.k, args.out, args.seed)
    print(report_markdown(outcome, args.k))
    print(f"tuned weights file: {outcome.yaml_path}\nreports: "
          f"{args.out.with_suffix('.md')}, {args.out.with_suffix('.json')}")
    return 0
