"""Tree inference speed, side by side in one process: compiled trees (Numba) vs XGBoost.

Trains LambdaMART models (``rank:ndcg``, max_depth 6, no early stopping) of about 100 and 300
trees on synthetic ranking data shaped like ours (18 features, some missing), then times one
call of ``CompiledTrees.predict`` and of ``Booster.inplace_predict(predict_type="margin")``
for batches of 6, 50, 200 (the ranker's candidate count) and 1000 rows, with the booster on
one and on two threads. The Numba kernel is single-threaded, so it is the same kernel in both.
Each call gets a different batch, so that no branch predictor learns one batch by heart.
Prints a markdown table and writes JSON; fails if a margin differs from XGBoost's.

    python benchmarks/tree_inference.py [--calls 300] [--out tree_inference.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import xgboost as xgb

from ranking.trees import CompiledTrees

N_FEATURES = 18
ROWS = (6, 50, 200, 1000)
TREES = (100, 300)
THREADS = (1, 2)


def synthetic(n_queries: int, per_query: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Features, graded labels (0-4) and qids; two columns are missing on some rows."""
    X = rng.normal(size=(n_queries * per_query, N_FEATURES)).astype(np.float32)
    signal = X[:, 0] + 0.6 * X[:, 1] - 0.4 * X[:, 2] + 0.3 * X[:, 3] * X[:, 4]
    y = np.clip(np.rint(signal + rng.normal(0, 0.8, len(X))) + 2, 0, 4).astype(np.int64)
    X[rng.random(len(X)) < 0.3, 16] = np.nan
    X[rng.random(len(X)) < 0.3, 17] = np.nan
    return X, y, np.repeat(np.arange(n_queries), per_query)


def train(n_trees: int, X: np.ndarray, y: np.ndarray, qid: np.ndarray) -> xgb.Booster:
    params = {"objective": "rank:ndcg", "max_depth": 6, "eta": 0.08, "subsample": 0.8,
              "colsample_bytree": 0.8, "tree_method": "hist", "nthread": 2, "seed": 0}
    return xgb.train(params, xgb.DMatrix(X, label=y, qid=qid), num_boost_round=n_trees)


def p50_us(fn: Callable[[np.ndarray], np.ndarray], batches: list[np.ndarray]) -> float:
    """Median wall time of one call, in microseconds."""
    out = []
    for batch in batches:
        start = time.perf_counter()
        fn(batch)
        out.append((time.perf_counter() - start) * 1e6)
    return float(np.percentile(out, 50))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="timed calls per cell")
    parser.add_argument("--out", type=Path, default=Path("tree_inference.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X, y, qid = synthetic(3000, 20, rng)
    pool = synthetic(args.calls * max(ROWS) // 20 + 1, 20, rng)[0]
    report = {"features": N_FEATURES, "calls": args.calls, "cells": []}
    print(f"LambdaMART margins, max_depth 6, {N_FEATURES} features, p50 of {args.calls} calls; "
          "compiled = Numba, single-threaded\n")
    print("| rows | trees | threads | inplace_predict µs p50 | compiled µs p50 | speed-up |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n_trees in TREES:
        booster = train(n_trees, X, y, qid)
        compiled = CompiledTrees.from_booster(booster)
        for threads in THREADS:
            booster.set_param({"nthread": threads})
            for rows in ROWS:
                batches = [pool[i * rows:(i + 1) * rows] for i in range(args.calls)]
                reference = booster.inplace_predict(batches[0], predict_type="margin")
                if not np.array_equal(compiled.predict(batches[0]), reference):
                    raise SystemExit(f"compiled margins differ from XGBoost ({n_trees} trees)")
                theirs = p50_us(partial(booster.inplace_predict, predict_type="margin"),
                                batches)
                ours = p50_us(compiled.predict, batches)
                report["cells"].append({"rows": rows, "trees": compiled.n_trees,
                                        "threads": threads, "inplace_predict_us_p50": theirs,
                                        "compiled_us_p50": ours, "speedup": theirs / ours})
                print(f"| {rows} | {compiled.n_trees} | {threads} | {theirs:,.0f} | {ours:,.0f} | "
                      f"{theirs / ours:.1f}x |")
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
