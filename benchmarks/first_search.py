"""Cold start: a new process to its first answered search, with and without the Numba cache.

Each run is a fresh ``python -c`` that imports :mod:`ranking.ranker`, loads a bundle
(``Ranker.load``, which warms every kernel) and answers one search. It reports wall and CPU
seconds per phase (import, load, first search), the heavy modules the process imported (none
of pandas, xgboost, scikit-learn or cvxpy should be), and how many kernels Numba compiled
instead of loading from its cache. Runs: ``--repeat`` with the project's cache (the first may
fill it), then one with ``NUMBA_CACHE_DIR`` pointing at an empty directory: a missing cache
still answers, only slower, and the compile count says why.

The machine is shared with other agents' jobs: load averages are recorded.

    python benchmarks/first_search.py --bundle DIR [--repeat 5] [--out docs/first_search.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "xgboost", "sklearn", "cvxpy", "scipy.stats")

CHILD = f"""
import json, logging, resource, sys, time
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
HEAVY = {HEAVY!r}
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
w0, c0 = time.perf_counter(), cpu()
from ranking.ranker import Ranker
w1, c1 = time.perf_counter(), cpu()
ranker = Ranker.load(sys.argv[1])
w2, c2 = time.perf_counter(), cpu()
hits = ranker.search("cordless drill 20v", k=10)
w3, c3 = time.perf_counter(), cpu()
misses = 0
for name, module in list(sys.modules.items()):
    if name.startswith(("ranking.", "objectives.")) and name.split(".")[-1].startswith("_"):
        for value in vars(module).values():
            misses += sum(getattr(value, "_cache_misses", {{}}).values())
print(json.dumps({{
    "wall": {{"import": w1 - w0, "load": w2 - w1, "search": w3 - w2, "total": w3 - w0}},
    "cpu": {{"import": c1 - c0, "load": c2 - c1, "search": c3 - c2, "total": c3 - c0}},
    "results": len(hits), "heavy": [m for m in HEAVY if m in sys.modules],
    "kernels_compiled": misses}}))
"""


def run(bundle: Path, env: dict[str, str]) -> dict:
    load = os.getloadavg()[0]
    done = subprocess.run([sys.executable, "-c", CHILD, str(bundle)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["load_average_1min"] = [load, os.getloadavg()[0]]
    out["warnings"] = [line for line in done.stderr.splitlines()
                       if line.startswith("marginrank.kernels:")]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "first_search.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from report_env import command, environment, finish, header, write_report

    cmd, report_env = command(__file__), environment("numpy", "numba")
    env = dict(os.environ)
    cached = [run(args.bundle, env) for _ in range(args.repeat)]
    with tempfile.TemporaryDirectory() as empty:
        cold = run(args.bundle, {**env, "NUMBA_CACHE_DIR": empty})
    report_env = finish(report_env)
    lines = [*header("First search of a new process", cmd, report_env),
             f"Median of {args.repeat} new processes with the Numba cache; one with an empty "
             "cache (`NUMBA_CACHE_DIR` pointing at an empty directory). Seconds are wall "
             "(CPU); the machine is shared, so wall time waits for a core.", "",
             "| run | import s (CPU) | load s (CPU) | first search s (CPU) | total s (CPU) | "
             "kernels compiled | heavy modules | load avg |", "| --- | --- | --- | --- | --- | "
             "--- | --- | --- |"]

    def row(name: str, r: dict) -> str:
        w, c = r["wall"], r["cpu"]
        return (f"| {name} | {w['import']:.3f} ({c['import']:.3f}) | {w['load']:.3f} "
                f"({c['load']:.3f}) | {w['search']:.4f} ({c['search']:.4f}) | "
                f"{w['total']:.3f} ({c['total']:.3f}) | {r['kernels_compiled']} | "
                f"{', '.join(r['heavy']) or 'none'} | "
                "{:.1f}-{:.1f} |".format(*r["load_average_1min"]))

    median = {k: {p: float(np.median([r[k][p] for r in cached])) for p in cached[0][k]}
              for k in ("wall", "cpu")}
    lines.append(row(f"cached (median of {len(cached)})", {
        **cached[-1], **median,
        "kernels_compiled": max(r["kernels_compiled"] for r in cached[1:] or cached)}))
    lines.append(row("empty Numba cache", cold))
    slow = cold["kernels_compiled"] > 0
    lines += ["", f"Without its cache the process compiled {cold['kernels_compiled']} kernels "
              f"and answered after {cold['wall']['total']:.1f} s: "
              + ("a slow first start, not a failure." if slow else "no compile."),
              "", "What `Ranker.warm` logged (logger `marginrank.kernels`):", "",
              f"- with the cache: {_logged(cached)}",
              f"- with an empty cache: {_logged([cold])}"]
    write_report(args.out, lines, {"cached": cached, "empty_cache": cold}, cmd, report_env)
    print("\n".join(lines))


def _logged(runs: list[dict]) -> str:
    lines = sorted({line for r in runs for line in r["warnings"]})
    return "; ".join(f"`{line}`" for line in lines) if lines else "nothing"


if __name__ == "__main__":
    main()
