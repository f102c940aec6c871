"""Scale-out on this machine: RFM out of core, LambdaMART with xgboost.dask, the serving index in
partitions, on seeded synthetic data; Dask LocalCluster with 1 and 2 worker processes.

    .venv/bin/python benchmarks/scale_out.py [--rfm-lines 200000000] [--ltr-rows 20000000]
        [--index-products 5000000] [--pandas-cap-gb 6] [--work DIR]

Writes docs/scale_out.md and docs/scale_out.json. Every figure is wall time on a machine shared
with other agents (the load average is recorded with each); peak memory per worker is the worker
process's maximum resident set (``getrusage``), read from each worker after its job. The pandas
path (one process) is run at growing sizes in a subprocess with an address-space cap
(``resource.setrlimit(RLIMIT_DATA)``: heap and private writable mappings; an address-space cap
would count the large PROT_NONE reservations of Arrow's allocator and stop a process using 300
MB) to show where it stops without swapping the shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))

LINES_PER_FILE = 2_000_000
WORDS = np.array(("drill cordless hammer saw blade vanity faucet chrome white black steel "
                  "brass copper pvc pipe fitting elbow tee valve ball gate outlet switch "
                  "dimmer led bulb lamp shade fan ceiling wall tile floor vinyl oak maple "
                  "pine cedar deck stain paint primer gloss satin flat roller brush tape "
                  "screw bolt nut washer anchor hinge knob pull handle lock deadbolt "
                  "door window screen blind shutter gutter roof shingle nail glue caulk").split())


# --------------------------------------------------------------------------- measuring

def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def peak_rss_mb() -> float:
    """This process's peak resident set in MB: VmHWM, the high-water mark of its own memory
    map. (``ru_maxrss`` is inherited across fork + exec: a worker spawned by a client holding
    1 GB would report at least 1 GB.)"""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024.0
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@contextmanager
def cluster(n_workers: int, memory_limit: str) -> Iterator[Any]:
    import distributed

    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                  memory_limit=memory_limit) as local, \
            distributed.Client(local) as client:
        yield client


def timed(client: Any, job: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """Run ``job``; wall time, load before/after and each worker's peak RSS."""
    before = load()
    start = time.perf_counter()
    result = job()
    seconds = time.perf_counter() - start
    peaks = client.run(peak_rss_mb)
    return result, {"seconds": round(seconds, 1), "load_before": before, "load_after": load(),
                    "peak_worker_mb": sorted(round(v) for v in peaks.values()),
                    "peak_method": "VmHWM",
                    "client_peak_mb": round(peak_rss_mb())}


# --------------------------------------------------------------------------- data

def write_transactions(directory: Path, n_lines: int, seed: int) -> Path:
    """Seeded transactions as Parquet files of LINES_PER_FILE lines: customers with
    heterogeneous purchase rates and spend, several lines per order, 5% returns against the
    order they return. About 8 lines per customer."""
    directory.mkdir(parents=True, exist_ok=True)
    n_customers = max(10, n_lines // 8)
    for i, start in enumerate(range(0, n_lines, LINES_PER_FILE)):
        path = directory / f"part-{i:05d}.parquet"
        if path.exists():
            continue
        n = min(LINES_PER_FILE, n_lines - start)
        rng = np.random.default_rng([seed, i])
        customer = rng.integers(0, n_customers, n)
        first = (customer * 7919) % 300  # a customer's first day, fixed across files
        day = first + (rng.exponential(1.0, n) * (60 + (customer % 13) * 20)).astype(np.int64)
        day = np.minimum(day, 729)
        order = customer * 1000 + day
        quantity = rng.integers(1, 5, n)
        returned = rng.random(n) < 0.05
        quantity = np.where(returned, -quantity, quantity)
        price = np.round(rng.gamma(3.0, 6.0, n) * (0.5 + (customer % 7) / 4), 2) + 0.5
        frame = pd.DataFrame({
            "customer_id": pd.Series(customer).map("c{:09d}".format),
            "timestamp": (np.datetime64("2023-01-01", "s")
                          + (day * 86400 + rng.integers(0, 86400, n)).astype("timedelta64[s]")),
            "product_id": pd.Series(rng.zipf(1.5, n) % 50_000).map("p{:06d}".format),
            "quantity": quantity,
            "unit_price": price,
            "order_id": pd.Series(order).map("o{:d}".format),
        })
        frame.to_parquet(path, index=False)
    return directory


def synthetic_catalog(n_products: int, seed: int) -> pd.DataFrame:
    """Titles of 4-12 words from a fixed list plus a model number and a size: a realistic
    vocabulary growth (model numbers keep adding terms)."""
    from objectives.catalog import validate_catalog

    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 13, n_products)
    words = WORDS[rng.integers(0, WORDS.size, int(lengths.sum()))]
    cuts = np.cumsum(lengths)[:-1]
    titles = [" ".join(w) for w in np.split(words, cuts)]
    models = rng.integers(0, 10 * n_products, n_products)
    sizes = rng.integers(1, 48, n_products)
    titles = [f"{t} M{m} {s} in." for t, m, s in zip(titles, models, sizes, strict=True)]
    catalog, _ = validate_catalog(pd.DataFrame({
        "product_id": [f"P{i:08d}" for i in range(n_products)], "title": titles}))
    return catalog


# --------------------------------------------------------------------------- jobs

def rfm_job(client: Any, data: Path, scratch: Path) -> dict[str, Any]:
    from clv.scale import fit_clv

    result = fit_clv(client, data, scratch, customers_out=scratch.parent / "customers")
    shutil.rmtree(scratch.parent / "customers", ignore_errors=True)
    return {"lines": result.report.total_rows, "customers": result.n_customers,
            "distinct_bgnbd_rows": len(result.bg_rows), "timings": {
                k: round(v, 1) for k, v in result.timings.items()},
            "bgnbd": result.model.bgnbd_params_}


PANDAS_SCRIPT = """
import resource, sys, time
cap = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
import pandas as pd
from clv.rfm import rfm_summary
from clv.transactions import validate_transactions
files = sys.argv[2:]
start = time.perf_counter()
try:
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    tx, _ = validate_transactions(frame)
    del frame
    summary = rfm_summary(tx)
    peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
    print(f"ok {len(summary)} {time.perf_counter() - start:.1f} {peak:.0f}")
except MemoryError:
    peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
    print(f"MemoryError 0 {time.perf_counter() - start:.1f} {peak:.0f}")
"""


def pandas_path(data: Path, cap_gb: float, max_lines: int) -> list[dict[str, Any]]:
    """The one-process path on the first 1, 2, 4, ... files under the cap, until it fails."""
    files = sorted(data.glob("part-*.parquet"))
    rows = []
    n = 1
    while n <= len(files):
        lines = min(n * LINES_PER_FILE, max_lines)
        run = subprocess.run([sys.executable, "-c", PANDAS_SCRIPT, str(int(cap_gb * 2**30)),
                              *map(str, files[:n])], capture_output=True, text=True,
                             cwd=ROOT, timeout=3600)
        words = (run.stdout.strip().splitlines() or ["crashed 0 0 0"])[-1].split()
        status = words[0] if run.returncode == 0 else f"exit {run.returncode}"
        if status != "ok":
            print(run.stderr[-1500:], flush=True)
        rows.append({"lines": lines, "status": status, "seconds": float(words[2]),
                     "peak_mb": float(words[3]), "load": load()})
        print(f"  pandas, {lines:,} lines, cap {cap_gb} GB: {rows[-1]}", flush=True)
        if status != "ok":
            break
        n *= 2
    return rows


def ltr_job(client: Any, n_rows: int, rounds: int, seed: int) -> dict[str, Any]:
    """LambdaMART (rank:ndcg, hist, depth 6) on seeded synthetic rows made on the workers:
    30 features, groups of 20 rows, grades 0-4 from a known score plus noise."""
    import dask.array as da
    import xgboost as xgb
    import xgboost.dask  # noqa: F401

    group = 20
    chunk = max(group, (n_rows // 8) // group * group)
    state = da.random.RandomState(seed)
    X = state.random_sample((n_rows, 30), chunks=(chunk, 30)).astype(np.float32)
    weights = np.linspace(1.0, -0.5, 30).astype(np.float32)
    score = X @ weights + state.normal(0, 0.5, n_rows, chunks=chunk).astype(np.float32)
    y = da.clip(da.floor((score - score.mean()) * 2 + 2), 0, 4).astype(np.int32)
    qid = da.arange(n_rows, chunks=chunk) // group
    X, y, qid = client.persist([X, y, qid])
    client.wait_for_workers(1)
    dtrain = xgb.dask.DaskDMatrix(client, X, y, qid=qid)
    start = time.perf_counter()
    output = xgb.dask.train(client, {"objective": "rank:ndcg", "tree_method": "hist",
                                     "max_depth": 6, "eta": 0.1, "eval_metric": "ndcg@10"},
                            dtrain, num_boost_round=rounds, evals=[(dtrain, "train")],
                            verbose_eval=False)
    booster = output["booster"]
    from ranking.trees import CompiledTrees

    trees = CompiledTrees.from_booster(booster)
    sample = X[:2000].compute()
    equal = bool(np.allclose(trees.predict(sample), booster.inplace_predict(
        sample, predict_type="margin"), rtol=1e-5, atol=1e-5))
    return {"rows": n_rows, "rounds": rounds, "train_seconds": round(time.perf_counter() - start,
                                                                     1),
            "train_ndcg10_last": round(output["history"]["train"]["ndcg@10"][-1], 4),
            "compiled_trees_equal_xgboost": equal}


def index_job(client: Any, catalog: pd.DataFrame, n_partitions: int) -> dict[str, Any]:
    from ranking.scale import build_feature_space, split_catalog
    from ranking.text import Analyzer

    space = build_feature_space(client, client.scatter(split_catalog(catalog, n_partitions)),
                                Analyzer())
    return {"products": space.index.fields["title"].n_docs, "terms": len(space.index.vocab),
            "postings": int(space.index.fields["all"].post_docs.size)}


# --------------------------------------------------------------------------- report

def environment() -> dict[str, Any]:
    import dask
    import distributed
    import xgboost

    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "dask": dask.__version__,
            "distributed": distributed.__version__, "xgboost": xgboost.__version__,
            "pandas": pd.__version__,
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rfm-lines", type=int, default=200_000_000)
    parser.add_argument("--rfm-scaling-lines", type=int, default=8_000_000,
                        help="size of the 1 vs 2 worker RFM comparison")
    parser.add_argument("--ltr-rows", type=int, default=20_000_000)
    parser.add_argument("--ltr-scaling-rows", type=int, default=2_000_000)
    parser.add_argument("--ltr-rounds", type=int, default=20)
    parser.add_argument("--index-products", type=int, default=5_000_000)
    parser.add_argument("--index-scaling-products", type=int, default=500_000)
    parser.add_argument("--pandas-cap-gb", type=float, default=6.0)
    parser.add_argument("--memory-limit", default="8GB", help="per worker")
    parser.add_argument("--work", type=Path, default=Path("/tmp/marginrank-scale"))
    parser.add_argument("--only", choices=("rfm", "pandas", "ltr", "index"), action="append",
                        help="pandas: only the one-process path on the RFM data already written")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lines-per-file", type=int, default=LINES_PER_FILE)
    parser.add_argument("--out", type=Path, default=DOCS, help="report folder")
    parser.add_argument("--skip-scaling", action="store_true",
                        help="keep the 1 vs 2 worker RFM figures of the existing report")
    parser.add_argument("--render", type=Path, help="only write the report from this JSON")
    args = parser.parse_args(argv)
    globals()["LINES_PER_FILE"] = args.lines_per_file
    if args.render:  # figures measured in parts: write the report from their JSON
        report = json.loads(args.render.read_text())
        (args.out / "scale_out.json").write_text(json.dumps(report, indent=2) + "\n")
        write_section(args.out / "scale_out.md", markdown(report))
        return 0
    only = set(args.only or ("rfm", "ltr", "index"))
    out_json = args.out / "scale_out.json"
    report: dict[str, Any] = (json.loads(out_json.read_text()) if out_json.exists() else {})
    report["command"] = "python benchmarks/scale_out.py " + " ".join(argv or sys.argv[1:])
    report["environment"] = environment()
    args.work.mkdir(parents=True, exist_ok=True)

    if "rfm" in only:
        print("RFM / CLV out of core", flush=True)
        data = write_transactions(args.work / "tx", args.rfm_lines, args.seed)
        small = args.work / "tx-small"
        small.mkdir(exist_ok=True)
        for f in sorted(data.glob("part-*.parquet"))[: max(1, args.rfm_scaling_lines
                                                           // LINES_PER_FILE)]:
            if not (small / f.name).exists():
                os.link(f, small / f.name)
        rfm: dict[str, Any] = {"scaling": report.get("rfm", {}).get("scaling", {})}
        for n in () if args.skip_scaling else (1, 2):
            with cluster(n, args.memory_limit) as client:
                result, figures = timed(client, lambda c=client: rfm_job(
                    c, small, args.work / "scratch"))
            rfm["scaling"][f"{n}_workers"] = {**result, **figures}
            print(f"  {n} worker(s), {result['lines']:,} lines: {figures}", flush=True)
        with cluster(2, args.memory_limit) as client:
            result, figures = timed(client, lambda c=client: rfm_job(c, data,
                                                                      args.work / "scratch"))
        rfm["full"] = {**result, **figures}
        print(f"  2 workers, {result['lines']:,} lines: {figures} {result['timings']}",
              flush=True)
        if not args.skip_scaling:
            rfm["pandas"] = pandas_path(data, args.pandas_cap_gb, args.rfm_lines)
            rfm["pandas_cap_gb"] = args.pandas_cap_gb
        report["rfm"] = rfm

    if only == {"pandas"}:
        data = write_transactions(args.work / "tx", args.rfm_lines, args.seed)
        report.setdefault("rfm", {})["pandas"] = pandas_path(data, args.pandas_cap_gb,
                                                             args.rfm_lines)
        report["rfm"]["pandas_cap_gb"] = args.pandas_cap_gb

    if "ltr" in only:
        print("LambdaMART with xgboost.dask", flush=True)
        ltr: dict[str, Any] = {"scaling": {}}
        for n in (1, 2):
            with cluster(n, args.memory_limit) as client:
                result, figures = timed(client, lambda c=client: ltr_job(
                    c, args.ltr_scaling_rows, args.ltr_rounds, args.seed))
            ltr["scaling"][f"{n}_workers"] = {**result, **figures}
            print(f"  {n} worker(s): {result} {figures}", flush=True)
        with cluster(2, args.memory_limit) as client:
            result, figures = timed(client, lambda c=client: ltr_job(
                c, args.ltr_rows, args.ltr_rounds, args.seed))
        ltr["full"] = {**result, **figures}
        print(f"  2 workers: {result} {figures}", flush=True)
        report["ltr"] = ltr

    if "index" in only:
        print("Serving index in partitions", flush=True)
        idx: dict[str, Any] = {"scaling": {}}
        catalog = synthetic_catalog(args.index_scaling_products, args.seed)
        from ranking.features import FeatureSpace
        from ranking.text import Analyzer

        start, before = time.perf_counter(), load()
        FeatureSpace.build(catalog, Analyzer())
        idx["scaling"]["one_process"] = {"seconds": round(time.perf_counter() - start, 1),
                                         "load_before": before, "load_after": load()}
        print(f"  one process, {len(catalog):,} products: {idx['scaling']['one_process']}",
              flush=True)
        for n in (1, 2):
            with cluster(n, args.memory_limit) as client:
                result, figures = timed(client,
                                        lambda c=client, n=n: index_job(c, catalog, 4 * n))
            idx["scaling"][f"{n}_workers"] = {**result, **figures}
            print(f"  {n} worker(s): {result} {figures}", flush=True)
        del catalog
        catalog = synthetic_catalog(args.index_products, args.seed)
        with cluster(2, args.memory_limit) as client:
            result, figures = timed(client, lambda c=client: index_job(
                c, catalog, max(8, args.index_products // 250_000)))
        idx["full"] = {**result, **figures}
        print(f"  2 workers: {result} {figures}", flush=True)
        report["index"] = idx

    out_json.write_text(json.dumps(report, indent=2) + "\n")
    write_section(args.out / "scale_out.md", markdown(report))
    print(f"wrote {out_json} and {args.out / 'scale_out.md'}")
    return 0


MARKER = "<!-- benchmark: written by benchmarks/scale_out.py below this line -->"


def write_section(path: Path, text: str) -> None:
    """Replace what follows MARKER in the guide (docs/scale_out.md), keeping the guide."""
    guide = path.read_text() if path.exists() else ""
    head = guide.split(MARKER)[0].rstrip() + "\n\n" if guide else ""
    path.write_text(f"{head}{MARKER}\n\n{text}")


def _row(name: str, r: dict[str, Any], size: str) -> str:
    peaks = " / ".join(f"{p:,}" for p in r.get("peak_worker_mb", []))
    return (f"| {name} | {size} | {r['seconds']:.1f} | {peaks} | "
            f"{r['load_before'][0]:.1f} → {r['load_after'][0]:.1f} |")


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        "## Benchmark: scale on this machine (Dask LocalCluster)", "",
        f"Command: `{report['command']}`", "",
        f"Environment: Python {env['python']}, {env['cpus']} cores, {env['memory_gb']} GB, "
        f"dask {env['dask']}, distributed {env['distributed']}, xgboost {env['xgboost']}, "
        f"pandas {env['pandas']}. The machine is shared with other agents: the 1-minute load "
        "average before → after each run is in the tables (2 cores: a load above 2 means the "
        "workers waited for CPU). Wall times are single runs; peak memory is each worker "
        "process's maximum resident set. Data are seeded synthetic (labelled: simulated).", "",
        "| job | size | wall s | peak MB per worker | load |", "| --- | --- | ---: | --- | --- |"]
    rfm = report.get("rfm") if "full" in report.get("rfm", {}) else None
    if rfm:
        for key, r in rfm["scaling"].items():
            lines.append(_row(f"RFM + CLV fit, {key.replace('_', ' ')}", r,
                              f"{r['lines']:,} lines"))
        lines.append(_row("RFM + CLV fit, 2 workers", rfm["full"],
                          f"{rfm['full']['lines']:,} lines"))
    ltr = report.get("ltr")
    if ltr:
        for key, r in ltr["scaling"].items():
            lines.append(_row(f"LambdaMART xgboost.dask, {key.replace('_', ' ')}", r,
                              f"{r['rows']:,} rows × {r['rounds']} rounds"))
        r = ltr["full"]
        lines.append(_row("LambdaMART xgboost.dask, 2 workers", r,
                          f"{r['rows']:,} rows × {r['rounds']} rounds"))
    idx = report.get("index")
    if idx:
        one = idx["scaling"]["one_process"]
        lines.append(f"| serving index, one process (no Dask) | "
                     f"{idx['scaling']['1_workers']['products']:,} products | "
                     f"{one['seconds']:.1f} | (client) | {one['load_before'][0]:.1f} → "
                     f"{one['load_after'][0]:.1f} |")
        for key in ("1_workers", "2_workers"):
            r = idx["scaling"][key]
            lines.append(_row(f"serving index in partitions, {key.replace('_', ' ')}", r,
                              f"{r['products']:,} products"))
        r = idx["full"]
        lines.append(_row("serving index in partitions, 2 workers", r,
                          f"{r['products']:,} products"))
    lines.append("")
    if rfm:
        s1, s2 = rfm["scaling"]["1_workers"], rfm["scaling"]["2_workers"]
        lines += [f"RFM scaling 1 → 2 workers: {s1['seconds'] / s2['seconds']:.2f}x faster. "
                  f"Full run stages (s): {rfm['full']['timings']}; "
                  f"{rfm['full']['customers']:,} customers, "
                  f"{rfm['full']['distinct_bgnbd_rows']:,} distinct (frequency, recency, T) "
                  "rows fitted.", "",
                  "The one-process pandas path (load all, validate, rfm_summary) in a subprocess "
                  f"under a {rfm.get('pandas_cap_gb', '?')} GB data-segment cap "
                  "(`resource.setrlimit(RLIMIT_DATA)`):", "",
                  "| lines | result | s | peak MB |", "| ---: | --- | ---: | ---: |"]
        lines += [f"| {p['lines']:,} | {p['status']} | {p['seconds']:.1f} | {p['peak_mb']:,.0f} |"
                  for p in rfm["pandas"]]
        lines.append("")
        if "pandas_uncapped" in rfm:
            lines += ["The same path with a cap it does not reach "
                      f"({rfm['pandas_uncapped_cap_gb']} GB), for its memory growth:", "",
                      "| lines | result | s | peak MB |", "| ---: | --- | ---: | ---: |"]
            lines += [f"| {p['lines']:,} | {p['status']} | {p['seconds']:.1f} | "
                      f"{p['peak_mb']:,.0f} |" for p in rfm["pandas_uncapped"]]
            lines.append("")
    if ltr:
        s1, s2 = ltr["scaling"]["1_workers"], ltr["scaling"]["2_workers"]
        lines += [f"LambdaMART scaling 1 → 2 workers: {s1['seconds'] / s2['seconds']:.2f}x. "
                  f"Compiled trees equal XGBoost's margins on 2,000 rows: "
                  f"{ltr['full']['compiled_trees_equal_xgboost']}.", ""]
    if idx:
        s1, s2 = idx["scaling"]["1_workers"], idx["scaling"]["2_workers"]
        lines += [f"Index scaling 1 → 2 workers: {s1['seconds'] / s2['seconds']:.2f}x; the "
                  "partitioned index is bit-identical to the one-process index "
                  "(tests/ranking/test_scale_ranking.py).", ""]
    if "notes" in report:
        lines += ["### Notes", "", *report["notes"], ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
