"""BM25 speed, side by side in one process: our Numba index vs rank_bm25.BM25Okapi.

On the real Home Depot titles (54,667 products), for a sample of real queries, it reports
build time, per-query p50/p99 for scoring every document (rank_bm25's ``get_scores``, our
``score`` over all docs) and for the top 100 (rank_bm25: get_scores + argsort; ours:
``search``), and the ratio of each to ours. Prints a markdown table and writes JSON.

    python benchmarks/bm25_speed.py [--data PATH] [--queries 200] [--out bm25_speed.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rank_bm25 import BM25Okapi

from ranking.bm25 import MultiFieldIndex
from ranking.text import Analyzer

DEFAULT_DATA = (Path(__file__).resolve().parents[2] / "shared" / "data"
                / "home-depot-search-relevance" / "train.csv")


def timed(fn, queries: list) -> np.ndarray:  # noqa: ANN001
    """Per-query wall times in milliseconds."""
    out = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - start) * 1000)
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bm25_speed.json"))
    args = parser.parse_args()
    frame = pd.read_csv(args.data, encoding="latin-1")
    analyzer = Analyzer()
    docs = [analyzer(t) for t in frame.drop_duplicates("product_uid")["product_title"]]
    queries = [analyzer(q) for q in
               frame["search_term"].drop_duplicates().sample(args.queries, random_state=0)]

    start = time.perf_counter()
    index = MultiFieldIndex.build({"title": docs})
    ours_build = time.perf_counter() - start
    start = time.perf_counter()
    ref = BM25Okapi(docs)
    ref_build = time.perf_counter() - start
    field = index.fields["title"]
    everything = np.arange(field.n_docs)
    ids = [index.vocab.lookup(q) for q in queries]
    field.search(ids[0], 100)  # load the compiled kernels before timing
    field.score(ids[0], everything)

    rows = {
        "score all docs": (timed(lambda q: field.score(q, everything), ids),
                           timed(ref.get_scores, queries)),
        "top 100": (timed(lambda q: field.search(q, 100), ids),
                    timed(lambda q: np.argsort(-ref.get_scores(q))[:100], queries)),
    }
    report = {"documents": field.n_docs, "queries": len(queries),
              "build_s": {"marginrank": ours_build, "rank_bm25": ref_build}, "per_query_ms": {}}
    print(f"BM25 on {field.n_docs:,} Home Depot titles, {len(queries)} real queries\n")
    print("| task | ours p50 ms | ours p99 ms | rank_bm25 p50 ms | rank_bm25 p99 ms | "
          "rank_bm25 / ours (p50) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for task, (ours, theirs) in rows.items():
        o50, o99, t50, t99 = (np.percentile(ours, 50), np.percentile(ours, 99),
                              np.percentile(theirs, 50), np.percentile(theirs, 99))
        report["per_query_ms"][task] = {"ours_p50": o50, "ours_p99": o99, "rank_bm25_p50": t50,
                                        "rank_bm25_p99": t99, "ratio_p50": t50 / o50}
        print(f"| {task} | {o50:.3f} | {o99:.3f} | {t50:.2f} | {t99:.2f} | {t50 / o50:,.0f}x |")
    print(f"| build | {ours_build:.2f} s | | {ref_build:.2f} s | | "
          f"{ref_build / ours_build:.1f}x |")
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
