"""Tree inference speed, side by side in one process: compiled trees (Numba) vs XGBoost.

Trains LambdaMART models (``rank:ndcg``, max_depth 6, no early stopping) of about 100 and 300
trees on synthetic ranking data shaped like ours (18 features, some missing), then times one
call of each way to get the margins, for batches of 6, 50, 200 (the ranker's candidate count)
and 1000 rows:

- ``Booster.inplace_predict(predict_type="margin")`` with the booster on one thread (as served)
  and on two (this machine's cores);
- ``CompiledTrees.predict`` in the complete layout (served) and in the node-list layout (the
  fallback for trees deeper than 10, and the layout served before); both single-threaded.

The single-threaded contenders take turns, one call each on the same batch, so that the load
other processes put on a shared machine falls on all of them alike; XGBoost on two threads is
timed apart, after them, because its OpenMP worker keeps spinning after each call and takes a
core from whatever runs next (it slowed XGBoost's own 1-thread calls when they took turns).
Each batch is a different one, so that no branch predictor learns a batch by heart.

Prints and writes a report, ``<out>.md`` (p50 µs per cell and the speed-ups) and ``<out>.json``
(also p10 µs, what a call costs when nothing preempts it), with the command and environment at
the top (:mod:`report_env`; on a loaded machine XGBoost's second thread waits for a core, so the
load average matters); fails if a margin differs from XGBoost's.

    python benchmarks/tree_inference.py [--calls 400] [--trees 100 300] [--out docs/tree_inference]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import xgboost as xgb

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from report_env import (  # noqa: E402
    command,
    environment,
    finish,
    header,
    report_paths,
    write_report,
)

from ranking.trees import CompiledTrees  # noqa: E402

N_FEATURES = 18
ROWS = (6, 50, 200, 1000)
CONTENDERS = ("xgboost_1_thread", "xgboost_2_threads", "node_lists", "complete")


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
              "colsample_bytree": 0.8, "tree_method": "hist", "nthread": 1, "seed": 0}
    return xgb.train(params, xgb.DMatrix(X, label=y, qid=qid), num_boost_round=n_trees)


def contenders(booster: xgb.Booster) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Each way to get the margins, by name (:data:`CONTENDERS`)."""
    compiled = CompiledTrees.from_booster(booster)
    assert compiled.complete is not None, "depth-6 trees are served by the complete layout"
    calls: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    for threads in (1, 2):
        copy = booster.copy()
        copy.set_param({"nthread": threads})
        calls[CONTENDERS[threads - 1]] = (
            lambda batch, b=copy: b.inplace_predict(batch, predict_type="margin"))
    calls["node_lists"] = replace(compiled, complete=None).predict
    calls["complete"] = compiled.predict
    return calls


def times_us(calls: dict[str, Callable[[np.ndarray], np.ndarray]],
             batches: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Wall time of each call per contender, in microseconds, taking turns per batch."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for batch in batches:
        for name, call in calls.items():
            start = time.perf_counter()
            call(batch)
            times[name].append((time.perf_counter() - start) * 1e6)
    return {name: np.array(t) for name, t in times.items()}


def check_parity(calls: dict[str, Callable[[np.ndarray], np.ndarray]], batch: np.ndarray) -> None:
    reference = calls["xgboost_1_thread"](batch)
    for name, call in calls.items():
        if not np.array_equal(call(batch), reference):
            raise SystemExit(f"{name} margins differ from XGBoost's")


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="timed calls per cell")
    parser.add_argument("--trees", type=int, nargs="+", default=[100, 300],
                        help="tree counts of the models timed")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "tree_inference",
                        help="report path prefix (.md and .json)")
    args = parser.parse_args(argv)
    cmd, env = command(__file__, argv), environment("numpy", "xgboost", "numba")
    rng = np.random.default_rng(0)
    X, y, qid = synthetic(3000, 20, rng)
    pool = synthetic(args.calls * max(ROWS) // 20 + 1, 20, rng)[0]
    cells: list[dict[str, float]] = []
    for n_trees in args.trees:
        calls = contenders(train(n_trees, X, y, qid))
        for rows in ROWS:
            batches = [pool[i * rows:(i + 1) * rows] for i in range(args.calls)]
            check_parity(calls, batches[0])
            alone = {"xgboost_2_threads": calls["xgboost_2_threads"]}
            times = times_us({k: v for k, v in calls.items() if k not in alone}, batches)
            times.update(times_us(alone, batches))
            p50 = {name: float(np.percentile(t, 50)) for name, t in times.items()}
            speedups = [p50[name] / p50["complete"] for name in CONTENDERS[:2]]
            cells.append({
                "rows": rows, "trees": n_trees, **{f"{k}_us_p50": v for k, v in p50.items()},
                **{f"{k}_us_p10": float(np.percentile(t, 10)) for k, t in times.items()},
                "speedup_vs_1_thread": speedups[0], "speedup_vs_2_threads": speedups[1]})
            print(f"{rows} rows, {n_trees} trees: complete {p50['complete']:,.0f} µs, "
                  f"{speedups[0]:.1f}x / {speedups[1]:.1f}x XGBoost 1 / 2 threads", flush=True)
    env = finish(env)
    report = {"features": N_FEATURES, "max_depth": 6, "calls": args.calls, "cells": cells}
    lines = header("Tree inference: compiled trees against XGBoost", cmd, env) + [
        f"LambdaMART margins (synthetic ranking data, {N_FEATURES} features, two of them missing "
        f"on some rows, max_depth 6), p50 µs of {args.calls} calls per cell. The margins of "
        "every way are bit-equal to `Booster.inplace_predict` (the script stops otherwise). "
        "*complete* is the served layout, *node lists* the fallback for trees deeper than 10; "
        "both run on one thread. XGBoost on two threads is timed after the others, not in "
        "turns with them (its OpenMP worker keeps a core busy after each call).", "",
        "| rows | trees | XGBoost 1 thread | XGBoost 2 threads | node lists | complete (served) "
        "| complete vs 1 thread | vs 2 threads |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in cells:
        lines.append(f"| {c['rows']} | {c['trees']} | "
                     + " | ".join(f"{c[f'{k}_us_p50']:,.0f}" for k in CONTENDERS)
                     + f" | {c['speedup_vs_1_thread']:.1f}x | {c['speedup_vs_2_threads']:.1f}x |")
    at_200 = [c for c in cells if c["rows"] == 200]
    if at_200:
        worst = min(min(c["speedup_vs_1_thread"], c["speedup_vs_2_threads"]) for c in at_200)
        lines += ["", "Target: at 200 rows (a search's candidates) the compiled trees at least 2x "
                  f"faster than `inplace_predict` on one and on two threads: "
                  f"**{'met' if worst >= 2 else 'missed'}** (smallest speed-up {worst:.1f}x)."]
    report = write_report(args.out, lines, report, cmd, env)
    print("\n".join(lines))
    print("written: " + ", ".join(map(str, report_paths(args.out))))
    return report


if __name__ == "__main__":
    main()
