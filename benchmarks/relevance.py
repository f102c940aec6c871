"""Relevance on real judgments: random, BM25 over titles and LambdaMART, by cross-validation.

    .venv/bin/python benchmarks/relevance.py                              # Home Depot
    .venv/bin/python benchmarks/relevance.py --catalog C --judgments J   # any generic tables

Protocol. The queries are split into 5 folds by query text (case and surrounding space
ignored), so one query never sits on both sides. Each ranker orders each query's judged pool;
NDCG@5 and NDCG@10 are computed with exponential (2^label - 1) and linear gain on the integer
labels of :func:`ranking.ltr.grade_labels` (Home Depot's rater averages 1-3 become 0..6). A query
whose pool has one label only ranks the same under every order and is left out. Ties are broken
by one seeded shuffle of the rows, the same for every ranker. BM25 is the title field's okapi
score, which equals ``rank_bm25.BM25Okapi`` over the titles (``tests/ranking/test_bm25.py``).

LambdaMART sees only its training folds: the hyperparameters come from
:func:`ranking.ltr.search_hyperparameters` on an inner split of the training queries (early
stopping on the held-out quarter), then the model is refit on all training queries and scores
the test fold. The features are those the served ranker computes (:mod:`ranking.features`);
the indexes are built over the whole catalog, which uses product text only, no judgment.

Prints a markdown table (each ranker's mean, and the paired bootstrap 95% interval of its
difference to BM25) and writes JSON with the per-query scores, the chosen hyperparameters per
fold and the feature importances (total gain, averaged over folds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from objectives.catalog import load_catalog, load_judgments
from objectives.groups import QueryGroups
from objectives.metrics import finite_mean, paired_bootstrap
from objectives.public_data import load_home_depot
from ranking import features
from ranking.app import build
from ranking.app.progress import Progress
from ranking.ltr import LambdaMART, grade_labels, search_hyperparameters

ROOT = Path(__file__).resolve().parents[1]
HOME_DEPOT = ROOT.parent / "shared" / "data" / "home-depot-search-relevance" / "train.csv"
RANKERS = ("random", "BM25", "LambdaMART")
METRICS = tuple((k, gain) for k in (5, 10) for gain in ("exp", "linear"))


def load_tables(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(catalog, judgments, name) from the generic tables if given, else Home Depot."""
    if args.catalog or args.judgments:
        if not (args.catalog and args.judgments):
            sys.exit("give both --catalog and --judgments")
        catalog, _ = load_catalog(args.catalog)
        judgments = load_judgments(args.judgments, pd.Index(catalog["product_id"]))
        return catalog, judgments, f"{args.catalog} + {args.judgments}"
    dataset = load_home_depot(args.home_depot)
    return dataset.catalog, dataset.judgments, f"Home Depot ({args.home_depot})"


def query_folds(judgments: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    """Fold number of each judgment, by query text (case and surrounding space ignored)."""
    text = judgments["query"].str.casefold().str.strip()
    codes, uniques = pd.factorize(text)
    fold_of_text = np.random.default_rng(seed).permutation(len(uniques)) % n_folds
    return fold_of_text[codes]


def lambdamart_scores(X: np.ndarray, y: np.ndarray, qid: np.ndarray, fold: np.ndarray,
                      seed: int, progress: Progress) -> tuple[np.ndarray, list[dict]]:
    """Out-of-fold LambdaMART scores; per fold, the search trials, choice and importances."""
    scores = np.zeros(len(y), dtype=np.float64)
    base = LambdaMART(feature_names=features.FEATURE_NAMES, seed=seed)
    folds = []
    for f in progress.bar(range(int(fold.max()) + 1), "folds"):
        train, test = fold != f, fold == f
        search = search_hyperparameters(base, X[train], y[train], qid[train])
        model = base.clone(**search.best, n_estimators=search.n_trees)
        model.fit(X[train], y[train], qid[train])
        scores[test] = model.predict(X[test])
        folds.append({"fold": f, "chosen": search.best, "n_trees": search.n_trees,
                      "trials": list(search.trials), "importance": model.feature_importance()})
    return scores, folds


def judged_groups(judgments: pd.DataFrame, labels: np.ndarray, seed: int
                  ) -> tuple[QueryGroups, np.ndarray, list[str]]:
    """Judgments grouped by query in one seeded shuffled order (the tie-break), keeping only
    queries whose pool has two labels or more; returns the groups, the row order and the
    query ids."""
    shuffled = np.random.default_rng(seed).permutation(len(judgments))
    qid = judgments["query_id"].to_numpy()[shuffled]
    order = shuffled[np.argsort(qid, kind="stable")]
    qids = judgments["query_id"].to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, qids[1:] != qids[:-1]])
    bounds = np.r_[starts, len(order)]
    keep = [i for i in range(len(starts))
            if np.unique(labels[order[bounds[i]:bounds[i + 1]]]).size > 1]
    rows = np.concatenate([order[bounds[i]:bounds[i + 1]] for i in keep])
    qptr = np.r_[0, np.cumsum([bounds[i + 1] - bounds[i] for i in keep])].astype(np.int64)
    groups = QueryGroups(qptr, np.zeros(len(rows)), np.zeros((len(rows), 0), np.float32),
                         labels[rows].astype(np.float64), np.full(len(rows), np.nan))
    return groups, rows, [str(qids[bounds[i]]) for i in keep]


def per_query_ndcg(groups: QueryGroups, rows: np.ndarray,
                   scores: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """ranker -> "ndcg@k_gain" -> per-query NDCG."""
    return {name: {f"ndcg@{k}_{gain}": groups.ndcg(s[rows], k, gain) for k, gain in METRICS}
            for name, s in scores.items()}


def summary(per_query: dict[str, dict[str, np.ndarray]], seed: int) -> dict[str, dict]:
    """Mean of every metric per ranker, and the paired bootstrap interval against BM25."""
    out: dict[str, dict] = {}
    for name, metrics in per_query.items():
        out[name] = {}
        for metric, values in metrics.items():
            entry: dict[str, float] = {"mean": finite_mean(values)}
            if name != "BM25":
                ci = paired_bootstrap(values, per_query["BM25"][metric], seed=seed)
                entry.update(diff=ci.mean, low=ci.low, high=ci.high)
            out[name][metric] = entry
    return out


def markdown(table: dict[str, dict], n_queries: int) -> str:
    """One row per ranker: each metric's mean and, but for BM25, Δ to BM25 [95% CI]."""
    head = " | ".join(f"NDCG@{k} {gain}" for k, gain in METRICS)
    lines = [f"| ranker | {head} |", "| --- |" + " --- |" * len(METRICS)]
    for name in RANKERS:
        cells = []
        for k, gain in METRICS:
            e = table[name][f"ndcg@{k}_{gain}"]
            cell = f"{e['mean']:.4f}"
            if "diff" in e:
                cell += f" ({e['diff']:+.4f} [{e['low']:+.4f}, {e['high']:+.4f}])"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(f"\n{n_queries:,} queries with two labels or more; in brackets the paired "
                 "bootstrap 95% interval of the difference to BM25.")
    return "\n".join(lines)


def mean_importance(folds: list[dict]) -> dict[str, float]:
    """Total-gain share of each feature, averaged over folds, largest first."""
    names = {n for f in folds for n in f["importance"]}
    mean = {n: float(np.mean([f["importance"].get(n, 0.0) for f in folds])) for n in names}
    return dict(sorted(mean.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home-depot", type=Path, default=HOME_DEPOT)
    parser.add_argument("--catalog", type=Path)
    parser.add_argument("--judgments", type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("relevance.json"))
    args = parser.parse_args(argv)
    progress = Progress()
    start = time.perf_counter()
    catalog, judgments, name = load_tables(args)
    with progress.stage("features"):
        X, rows = build.judged_features(catalog, judgments, progress)
    y = grade_labels(judgments["grade"].to_numpy())
    qid = pd.factorize(judgments["query_id"])[0]
    fold = query_folds(judgments, args.folds, args.seed)
    with progress.stage("LambdaMART, fold by fold"):
        lambdamart, folds = lambdamart_scores(X, y, qid, fold, args.seed, progress)
    scores = {"random": np.random.default_rng(args.seed + 1).random(len(y)),
              "BM25": X[:, features.FEATURE_NAMES.index("bm25_title")].astype(np.float64),
              "LambdaMART": lambdamart}
    groups, order, query_ids = judged_groups(judgments, y, args.seed)
    per_query = per_query_ndcg(groups, order, scores)
    table = summary(per_query, args.seed)
    print(f"## Relevance on {name}\n\n{markdown(table, groups.n_queries)}\n")
    importance = mean_importance(folds)
    print("Feature importance (total gain share, mean over folds):")
    print("\n".join(f"- {n}: {v:.3f}" for n, v in importance.items()))
    report = {"dataset": name, "folds": args.folds, "seed": args.seed,
              "n_queries": groups.n_queries, "summary": table, "lambdamart_folds": folds,
              "feature_importance": importance, "seconds": time.perf_counter() - start,
              "per_query": {"query_id": query_ids,
                            **{f"{r}/{m}": v.tolist() for r, ms in per_query.items()
                               for m, v in ms.items()}}}
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.out} ({report['seconds']:.0f} s)")
    return report


if __name__ == "__main__":
    main()
