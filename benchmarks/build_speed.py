"""Serving-index build speed and memory from 55k to 1M products, against Tantivy, with growth.

For each catalog size, in fresh subprocesses (so each peak is its own):

- ``marginrank``: :meth:`ranking.features.FeatureSpace.build` of the catalog (BM25 exact and
  stemmed indexes of every field, quantities, title statistics), then, on the built space, a
  seeded sample of real Home Depot queries timed per stage: analysis (tokens and term ids),
  retrieval (BM25 top 200 of the ``all`` field) and features (the whole feature matrix of
  those candidates);
- ``tantivy``: Tantivy indexing the same titles (its default tokenizer, one writer thread and
  then Tantivy's own choice of threads), committed.

Peak memory is the child's ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (the whole process:
interpreter, titles and index), and its growth over the resident size just before the build.
Catalogs: the real Home Depot titles (54,667), then synthetic ones made from them as
``benchmarks/search_latency.py`` makes its 1M catalog (real titles with 30% of words swapped
by frequency, seeded). A growth table gives each figure's fitted exponent (least squares of
log figure on log size): 1 is linear.

The machine is shared with other agents' jobs: the 1-minute load average is recorded around
every child, and CPU seconds are reported beside wall seconds.

    python benchmarks/build_speed.py [--sizes 54667,250000,1000000] [--queries 300]
        [--out docs/build_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from report_env import (  # noqa: E402
    command,
    environment,
    finish,
    header,
    target,
    target_table,
    write_report,
)

HOME_DEPOT = ROOT.parent / "shared" / "data" / "home-depot-search-relevance" / "train.csv"
CANDIDATES = 200
SEED = 7


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _titles(n: int) -> list[str]:
    """The real Home Depot titles, or ``n`` synthetic ones made from them."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from search_latency import synthetic_titles

    from objectives.public_data import load_home_depot

    titles = load_home_depot(HOME_DEPOT).catalog["title"].astype(str).tolist()
    return titles if n == len(titles) else synthetic_titles(titles, n, SEED)


def child_marginrank(n: int, n_queries: int) -> dict:
    import pandas as pd

    from objectives.catalog import validate_catalog
    from objectives.public_data import load_home_depot
    from ranking.features import FeatureSpace
    from ranking.text import Analyzer

    frame = pd.DataFrame({"product_id": [f"S{i:07d}" for i in range(n)], "title": _titles(n)})
    catalog, _ = validate_catalog(frame, source="<build_speed catalog>")
    FeatureSpace.build(catalog.iloc[:200], Analyzer())  # Numba kernels loaded, not timed
    before = _rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    space = FeatureSpace.build(catalog, Analyzer())
    out = {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu,
           "rss_before_mb": before,
           "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    queries = load_home_depot(HOME_DEPOT).judgments["query"].drop_duplicates().sample(
        n_queries, random_state=SEED).tolist()
    out["stages_ms"] = _stages(space, queries)
    return out


def _stages(space: object, queries: list[str]) -> dict[str, dict[str, float]]:
    """p50/p99 of analysis, retrieval and features over ``queries`` (each run twice; the
    first pass warms the kernels and is not counted)."""
    from ranking.features import PRIORS

    field = space.index.fields["all"]
    priors = np.full((field.n_docs, len(PRIORS)), np.nan, dtype=np.float32)
    times: dict[str, list[float]] = {"analysis": [], "retrieval": [], "features": []}
    for rep in range(2):
        for q in queries:
            t0 = time.perf_counter()
            ids = space.index.vocab.lookup(space.analyzer(q))
            t1 = time.perf_counter()
            docs = field.search(ids, CANDIDATES)[0] if (ids >= 0).any() else np.zeros(0, int)
            t2 = time.perf_counter()
            if docs.size:
                space.extract(q, docs, priors)
            t3 = time.perf_counter()
            if rep:
                times["analysis"].append(t1 - t0)
                times["retrieval"].append(t2 - t1)
                if docs.size:
                    times["features"].append(t3 - t2)
    return {k: {"p50": float(np.percentile(v, 50)) * 1000,
                "p99": float(np.percentile(v, 99)) * 1000} for k, v in times.items()}


def child_tantivy(n: int, threads: int) -> dict:
    import tantivy

    titles = _titles(n)
    before = _rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("title", stored=False)
    index = tantivy.Index(builder.build())
    writer = index.writer(heap_size=max(64, 32 * max(threads, 1)) * 2**20, num_threads=threads)
    for title in titles:
        writer.add_document(tantivy.Document(title=title))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu,
            "rss_before_mb": before,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(*args: str) -> dict:
    load = os.getloadavg()[0]
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                          text=True, cwd=ROOT, check=False, timeout=7200)
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_average_1min"] = [load, os.getloadavg()[0]]
    return result


def exponent(sizes: list[int], values: list[float]) -> float:
    """Least-squares slope of log(value) on log(size)."""
    if len(sizes) < 2 or min(values) <= 0:
        return float("nan")
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def report(results: dict[int, dict]) -> str:
    sizes = sorted(results)
    lines = ["| products | marginrank s | marginrank CPU s | Tantivy 1 thread s (CPU s) | "
             "Tantivy auto s | ours / Tantivy 1 thread, wall | same, CPU | "
             "marginrank peak MB (growth in the build) | Tantivy peak MB | load |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n in sizes:
        ours, tv1, tva = (results[n][k] for k in ("marginrank", "tantivy_1", "tantivy_auto"))
        lines.append(
            f"| {n:,} | {ours['seconds']:.2f} | {ours['cpu_seconds']:.2f} | "
            f"{tv1['seconds']:.2f} ({tv1['cpu_seconds']:.2f}) | {tva['seconds']:.2f} | "
            f"{ours['seconds'] / tv1['seconds']:.1f}x | "
            f"{ours['cpu_seconds'] / tv1['cpu_seconds']:.1f}x | {ours['peak_mb']:,.0f} "
            f"({ours['peak_mb'] - ours['rss_before_mb']:,.0f}) | {tv1['peak_mb']:,.0f} | "
            "{:.1f}-{:.1f} |".format(*ours["load_average_1min"]))
    lines += ["", "Growth (figure at each size; exponent of the least-squares fit on log-log):",
              "", "| figure | " + " | ".join(f"{n:,}" for n in sizes) + " | exponent |",
              "| --- | " + " | ".join("---" for _ in sizes) + " | --- |"]
    rows = {"build s": lambda r: r["marginrank"]["seconds"],
            "build CPU s": lambda r: r["marginrank"]["cpu_seconds"],
            "peak MB": lambda r: r["marginrank"]["peak_mb"],
            "Tantivy build s (1 thread)": lambda r: r["tantivy_1"]["seconds"]}
    for stage in ("analysis", "retrieval", "features"):
        for pct in ("p50", "p99"):
            rows[f"{stage} {pct} ms"] = (
                lambda r, s=stage, p=pct: r["marginrank"]["stages_ms"][s][p])
    for name, get in rows.items():
        values = [get(results[n]) for n in sizes]
        lines.append(f"| {name} | " + " | ".join(f"{v:,.3f}" for v in values)
                     + f" | {exponent(sizes, values):.2f} |")
    return "\n".join(lines + ["", *target_table(targets(results))])


def targets(results: dict[int, dict]) -> list[dict[str, str]]:
    """Issue 17's build targets (:func:`report_env.target`), from the figures above."""
    small = min(results)
    ours, tv1 = results[small]["marginrank"], results[small]["tantivy_1"]
    wall, cpu = ours["seconds"] / tv1["seconds"], ours["cpu_seconds"] / tv1["cpu_seconds"]
    out = [target(f"{small:,} products: <= 10x Tantivy, same titles",
                  f"{wall:.1f}x wall, {cpu:.1f}x CPU", max(wall, cpu) <= 10)]
    big = results.get(1_000_000, {}).get("marginrank")
    out.append(target("1M products <= 15 s (wall)", "not in this run" if big is None else
                      f"{big['seconds']:.1f} s wall, {big['cpu_seconds']:.1f} s CPU",
                      None if big is None else big["seconds"] <= 15))
    out.append(target("1M products, peak <= 2 GB", "not in this run" if big is None else
                      f"{big['peak_mb']:,.0f} MB for the whole process "
                      f"({big['peak_mb'] - big['rss_before_mb']:,.0f} MB over the catalog loaded)",
                      None if big is None else big["peak_mb"] <= 2048))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="54667,250000,1000000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "build_speed.json")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n = args.child[0], int(args.child[1])
        out = (child_marginrank(n, args.queries) if kind == "marginrank"
               else child_tantivy(n, int(args.child[2])))
        print(json.dumps(out))
        return
    cmd, env = command(__file__), environment("numpy", "numba", "tantivy")
    results: dict[int, dict] = {}
    for n in (int(s) for s in args.sizes.split(",")):
        results[n] = {"tantivy_1": run_child("tantivy", str(n), "1"),
                      "tantivy_auto": run_child("tantivy", str(n), "0"),
                      "marginrank": run_child("marginrank", str(n), "--queries",
                                              str(args.queries))}
        print(f"{n:,}: {json.dumps(results[n])}", flush=True)
        env = finish(env)
        lines = header("Serving index build: speed, memory and growth", cmd, env) + [
            "Each build in its own process (`FeatureSpace.build`: exact and stemmed BM25 "
            "indexes of every field, quantities, title statistics; Tantivy indexing the same "
            "titles); peak = `ru_maxrss` of that process. `FeatureSpace.build` runs two "
            "threads (the quantities and the stemmed index on the second, its kernels "
            "releasing the GIL), so its CPU seconds are the process's, both threads. The "
            "machine is shared with other agents' jobs: wall seconds suffer from the load, CPU "
            "seconds much less, so both are given and ratios are taken side by side.", "",
            report(results)]
        write_report(args.out, lines, {"results": results, "targets": targets(results)}, cmd,
                     env)
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
