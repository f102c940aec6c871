"""BM25 speed and memory, side by side in one process: ours, rank_bm25 and bm25s.

Two catalogs:

- the real Home Depot titles (54,667 products) with a sample of real queries;
- a synthetic catalog (default 1,000,000 documents): titles of 4-16 tokens drawn from a
  Zipf-like vocabulary of 200,000 words (seeded), queries of 1-4 tokens drawn the same way.

For each library it reports the index build time and peak traced memory during the build, and
per-query p50/p99 for scoring every document (ours ``score_all``, rank_bm25
``get_scores``, bm25s ``get_scores``) and for the top 100 (ours ``search``, rank_bm25
``get_scores`` + argsort, bm25s ``retrieve`` with the numpy backend), with each figure's ratio to
ours. All three get the same tokens (our analyzer). rank_bm25 runs only a few queries on the
synthetic catalog, because each takes about a second there. bm25s's ``robertson`` method is the
closest to BM25Okapi, but it clamps negative IDF to 0 instead of BM25Okapi's epsilon floor, so
its scores differ; the timings are still like for like.

    python benchmarks/bm25_speed.py [--data PATH] [--queries 200] [--synthetic-docs 1000000]
                                    [--out bm25_speed.json]
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from rank_bm25 import BM25Okapi

from ranking.bm25 import MultiFieldIndex
from ranking.text import Analyzer

DEFAULT_DATA = (Path(__file__).resolve().parents[2] / "shared" / "data"
                / "home-depot-search-relevance" / "train.csv")
TOP_K = 100


def timed(fn: Callable[[object], object], queries: list) -> np.ndarray:
    """Per-query wall times in milliseconds."""
    out = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - start) * 1000)
    return np.array(out)


def built(make: Callable[[], object]) -> tuple[object, float, float]:
    """(object, seconds, peak traced MB) of building an index."""
    tracemalloc.start()
    start = time.perf_counter()
    obj = make()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return obj, seconds, peak


def home_depot(path: Path, n_queries: int) -> tuple[list[list[str]], list[list[str]]]:
    frame = pd.read_csv(path, encoding="latin-1")
    analyzer = Analyzer()
    docs = [analyzer(t) for t in frame.drop_duplicates("product_uid")["product_title"]]
    queries = [analyzer(q) for q in
               frame["search_term"].drop_duplicates().sample(n_queries, random_state=0)]
    return docs, queries


def synthetic(n_docs: int, n_queries: int, seed: int = 0) -> tuple[list[list[str]], list]:
    """Seeded Zipf-like titles and queries (see the module docstring)."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(200_000)])
    lengths = rng.integers(4, 17, size=n_docs)
    words = vocab[np.minimum(rng.zipf(1.3, size=int(lengths.sum())) - 1, vocab.size - 1)]
    docs = np.split(words, np.cumsum(lengths)[:-1])
    q_words = vocab[np.minimum(rng.zipf(1.3, size=n_queries * 4) - 1, 2_000)]
    q_len = rng.integers(1, 5, size=n_queries)
    queries = [q_words[4 * i: 4 * i + q_len[i]].tolist() for i in range(n_queries)]
    return [d.tolist() for d in docs], queries


def compare(docs: list[list[str]], queries: list[list[str]], rank_bm25_queries: int) -> dict:
    """Build all three indexes on ``docs`` and time ``queries`` against each."""
    import bm25s  # a benchmark-only dependency (dev extra)

    ours, ours_s, ours_mb = built(lambda: MultiFieldIndex.build({"title": docs}))
    field = ours.fields["title"]
    theirs, ref_s, ref_mb = built(lambda: BM25Okapi(docs))
    fast, fast_s, fast_mb = built(lambda: _bm25s_index(bm25s, docs))
    ids = [ours.vocab.lookup(q) for q in queries]
    field.search(ids[0], TOP_K)  # load the compiled kernels before timing
    field.score_all(ids[0])
    few = queries[:rank_bm25_queries]
    tasks = {
        "score all docs": {
            "marginrank": timed(field.score_all, ids),
            "rank_bm25": timed(theirs.get_scores, few),
            "bm25s": timed(fast.get_scores, queries),
        },
        f"top {TOP_K}": {
            "marginrank": timed(lambda q: field.search(q, TOP_K), ids),
            "rank_bm25": timed(lambda q: np.argsort(-theirs.get_scores(q))[:TOP_K], few),
            "bm25s": timed(lambda q: fast.retrieve([q], k=TOP_K, show_progress=False,
                                                   backend_selection="numpy"), queries),
        },
    }
    return {
        "documents": field.n_docs, "queries": len(queries), "rank_bm25_queries": len(few),
        "build": {"marginrank": {"s": ours_s, "peak_mb": ours_mb},
                  "rank_bm25": {"s": ref_s, "peak_mb": ref_mb},
                  "bm25s": {"s": fast_s, "peak_mb": fast_mb}},
        "per_query_ms": {task: {lib: {"p50": float(np.percentile(t, 50)),
                                      "p99": float(np.percentile(t, 99))}
                                for lib, t in libs.items()}
                         for task, libs in tasks.items()},
    }


def _bm25s_index(bm25s: object, docs: list[list[str]]) -> object:
    index = bm25s.BM25(method="robertson", k1=1.5, b=0.75)
    index.index(docs, show_progress=False)
    return index


def table(name: str, result: dict) -> str:
    """Markdown: one row per library and task, with ratios to ours."""
    lines = [f"### {name}: {result['documents']:,} documents, {result['queries']} queries "
             f"(rank_bm25: {result['rank_bm25_queries']})", "",
             "| task | library | p50 ms | p99 ms | p50 / ours |", "| --- | --- | --- | --- | --- |"]
    for task, libs in result["per_query_ms"].items():
        ours = libs["marginrank"]["p50"]
        for lib, t in libs.items():
            lines.append(f"| {task} | {lib} | {t['p50']:.3f} | {t['p99']:.3f} | "
                         f"{t['p50'] / ours:,.1f}x |")
    lines += ["", "| build | seconds | peak traced MB |", "| --- | --- | --- |"]
    lines += [f"| {lib} | {b['s']:.2f} | {b['peak_mb']:,.0f} |"
              for lib, b in result["build"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--synthetic-docs", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bm25_speed.json"))
    args = parser.parse_args()
    report = {"home_depot": compare(*home_depot(args.data, args.queries), args.queries)}
    print(table("Home Depot titles", report["home_depot"]), "\n", flush=True)
    report["synthetic"] = compare(*synthetic(args.synthetic_docs, args.queries), 5)
    print(table("Synthetic catalog", report["synthetic"]))
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
