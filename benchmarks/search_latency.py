"""End-to-end ``Ranker.search`` latency on a bundle, with the time spent in each stage.

Loads a bundle (default: the demo's, ``marginrank-demo/bundle``; run ``marginrank demo`` first),
takes the distinct queries of a judgments file (default: the demo world's), and for each query
times the whole ``ranker.search(query, k)`` and, through ``ranker.search_timed``, the stages of
that same code path: analysis (tokens and term ids), retrieval (BM25 top candidates), features,
relevance (LambdaMART, compiled trees), blend (weights, guardrails, top-k) and results. Reports
p50/p99 per stage, the end-to-end p50/p99/p99.9 and single-thread throughput, as markdown and
JSON. Everything runs on one thread (the kernels are single-threaded).

    python benchmarks/search_latency.py [--bundle DIR] [--judgments FILE] [--k 20]
                                        [--repeat 5] [--out search_latency.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ranking.ranker import SEARCH_STAGES, Ranker

ROOT = Path(__file__).resolve().parents[1]


def measure(ranker: Ranker, queries: list[str], k: int, repeat: int) -> dict:
    """End-to-end and per-stage timings over ``repeat`` passes of ``queries``."""
    total, stages = [], []
    for _ in range(repeat):
        for query in queries:
            start = time.perf_counter()
            ranker.search(query, k=k)
            total.append(time.perf_counter() - start)
            stages.append(ranker.search_timed(query, k=k)[1])
    ms = np.array(total) * 1000
    # A query without candidates stops after retrieval: each stage counts the searches it ran.
    per_stage = {name: np.array([s[name] for s in stages if name in s]) * 1000
                 for name in SEARCH_STAGES}
    return {
        "searches": len(total), "k": k, "candidates": ranker.n_candidates,
        "products": len(ranker.catalog.product_ids),
        "end_to_end_ms": {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                          "p99.9": float(np.percentile(ms, 99.9))},
        "throughput_per_s": float(len(total) / np.sum(total)),
        "stages_ms": {name: {"p50": float(np.percentile(t, 50)),
                             "p99": float(np.percentile(t, 99))}
                      for name, t in per_stage.items()},
    }


def table(result: dict) -> str:
    e2e = result["end_to_end_ms"]
    lines = [f"{result['searches']:,} searches over {result['products']:,} products, "
             f"{result['candidates']} candidates, k={result['k']}, one thread", "",
             "| stage | p50 ms | p99 ms |", "| --- | --- | --- |"]
    lines += [f"| {name} | {t['p50']:.3f} | {t['p99']:.3f} |"
              for name, t in result["stages_ms"].items()]
    lines += [f"| **search, end to end** | {e2e['p50']:.3f} | {e2e['p99']:.3f} |", "",
              f"p99.9 {e2e['p99.9']:.3f} ms; throughput {result['throughput_per_s']:,.0f} "
              "searches/s on one thread"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path("marginrank-demo/bundle"))
    parser.add_argument("--judgments", type=Path,
                        default=ROOT / "data" / "demo" / "judgments.csv")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("search_latency.json"))
    args = parser.parse_args()
    ranker = Ranker.load(args.bundle)
    queries = pd.read_csv(args.judgments, dtype=str)["query"].drop_duplicates().tolist()
    result = measure(ranker, queries, args.k, args.repeat)
    print(table(result))
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
