"""Cold start: a new process to its first answered search, with and without the Numba cache.

Each run is a fresh ``python -c`` that imports :mod:`ranking.ranker`, loads a bundle
(``Ranker.load``, which warms every kernel) and answers one search. It reports wall and CPU
seconds per phase (import, load, first search), the heavy modules the process imported (none
of pandas, xgboost, scikit-learn or cvxpy should be; ``scipy.linalg`` and ``cffi`` only
without the workers' setting), and how many kernels Numba compiled instead of loading from
its cache.

Variants, run round-robin so that a change in the machine's load hits all of them alike:

- ``this tree``: the library's default, as a user's process runs it;
- ``this tree, worker setting``: with ``MARGINRANK_LEAN_NUMBA=1``, as the service's
  workers run (:func:`ranking.kernel_cache.load_registries`);
- ``reference`` (with ``--reference DIR``): another checkout of the project, for instance
  ``git worktree add /tmp/ref 24b96db``, run from its own directory.

Then one run of this tree with ``NUMBA_CACHE_DIR`` pointing at an empty directory: a missing
cache still answers, only slower, and the compile count says why (``--no-empty-cache`` skips it).
The machine is shared with other agents' jobs: load averages are recorded per run.

    python benchmarks/first_search.py --bundle DIR [--repeat 7] [--reference DIR]
        [--out docs/first_search.json]
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
HEAVY = ("pandas", "xgboost", "sklearn", "cvxpy", "scipy.stats", "pydantic", "scipy.linalg",
         "cffi")
LEAN_ENV = "MARGINRANK_LEAN_NUMBA"  # ranking.kernel_cache.LEAN_ENV

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
    "results": [h.product_id for h in hits], "heavy": [m for m in HEAVY if m in sys.modules],
    "kernels_compiled": misses}}))
"""


def run(bundle: Path, tree: Path, env: dict[str, str]) -> dict:
    """One new process of the source ``tree`` (run from it, so it imports its own modules)."""
    load = os.getloadavg()[0]
    env = {**env, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(bundle)], capture_output=True,
                          text=True, cwd=tree, env=env, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["load_average_1min"] = [load, os.getloadavg()[0]]
    out["warnings"] = [line for line in done.stderr.splitlines()
                       if line.startswith("marginrank.kernels:")]
    return out


def variants(reference: Path | None) -> dict[str, tuple[Path, dict[str, str]]]:
    """Name -> (source tree, environment) of each variant run round-robin."""
    env = {k: v for k, v in os.environ.items() if k != LEAN_ENV}
    out = {"this tree": (ROOT, env),
           "this tree, worker setting": (ROOT, {**env, LEAN_ENV: "1"})}
    if reference is not None:
        out["reference"] = (reference.resolve(), env)
    return out


def median_of(runs: list[dict]) -> dict:
    """Per phase, the median wall and CPU seconds of ``runs``."""
    return {k: {p: float(np.median([r[k][p] for r in runs])) for p in runs[0][k]}
            for k in ("wall", "cpu")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--reference", type=Path, default=None,
                        help="another checkout of the project to compare with (old vs new)")
    parser.add_argument("--no-empty-cache", action="store_true",
                        help="skip the run with an empty Numba cache (it compiles for minutes)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "first_search.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from report_env import command, environment, finish, header, target_table, write_report

    cmd, report_env = command(__file__), environment("numpy", "numba")
    plan = variants(args.reference)
    for tree, env in plan.values():  # fills a stale cache first; not counted
        run(args.bundle, tree, env)
    runs: dict[str, list[dict]] = {name: [] for name in plan}
    for i in range(args.repeat):
        for name, (tree, env) in plan.items():
            runs[name].append(run(args.bundle, tree, env))
            print(f"{i + 1}/{args.repeat} {name}: {runs[name][-1]['wall']['total']:.3f} s wall "
                  f"({runs[name][-1]['cpu']['total']:.3f} CPU)", file=sys.stderr)
    cold = None
    if not args.no_empty_cache:
        with tempfile.TemporaryDirectory() as empty:
            cold = run(args.bundle, ROOT, {**plan["this tree"][1], "NUMBA_CACHE_DIR": empty})
    report_env = finish(report_env)
    medians = {name: median_of(r) for name, r in runs.items()}
    base = "reference" if "reference" in plan else "this tree"
    lines = [*header("First search of a new process", cmd, report_env),
             f"Median of {args.repeat} new processes per variant with the Numba cache, the "
             "variants run round-robin"
             + ("; one with an empty cache (`NUMBA_CACHE_DIR` pointing at an empty "
                "directory)" if cold else "")
             + ". Seconds are wall (CPU); the machine is shared, so wall time waits for a core. "
             f"The worker setting is `{LEAN_ENV}=1` (see `ranking.kernel_cache`)."
             + (f" Reference: `{args.reference}`." if args.reference else ""), "",
             "| run | import s (CPU) | load s (CPU) | first search s (CPU) | total s (CPU) | "
             f"total vs {base}: wall, CPU | kernels compiled | heavy modules | load avg |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]

    def row(name: str, r: dict, m: dict) -> str:
        w, c = m["wall"], m["cpu"]
        ref = medians[base]
        ratio = (f"{w['total'] / ref['wall']['total']:.2f}x, "
                 f"{c['total'] / ref['cpu']['total']:.2f}x")
        loads = [x for run_ in (runs.get(name) or [r]) for x in run_["load_average_1min"]]
        return (f"| {name} | {w['import']:.3f} ({c['import']:.3f}) | {w['load']:.3f} "
                f"({c['load']:.3f}) | {w['search']:.4f} ({c['search']:.4f}) | "
                f"{w['total']:.3f} ({c['total']:.3f}) | {ratio} | {r['kernels_compiled']} | "
                f"{', '.join(r['heavy']) or 'none'} | {min(loads):.1f}-{max(loads):.1f} |")

    for name, r in runs.items():
        lines.append(row(f"{name} (median of {len(r)})",
                         {**r[-1], "kernels_compiled": max(x["kernels_compiled"] for x in r)},
                         medians[name]))
    if cold:
        lines.append(row("empty Numba cache", cold, {"wall": cold["wall"], "cpu": cold["cpu"]}))
    same = all(r["results"] == runs["this tree"][0]["results"] for rs in runs.values()
               for r in rs)
    lines += ["", "Every variant answered the same products in the same order: "
              + ("yes." if same else "**no**.")]
    if cold:
        slow = cold["kernels_compiled"] > 0
        lines += ["", f"Without its cache the process compiled {cold['kernels_compiled']} "
                  f"kernels and answered after {cold['wall']['total']:.1f} s: "
                  + ("a slow first start, not a failure." if slow else "no compile."),
                  "", "What `Ranker.warm` logged (logger `marginrank.kernels`):", "",
                  f"- with the cache: {_logged(runs['this tree'])}",
                  f"- with an empty cache: {_logged([cold])}"]
    targets = _targets(runs, medians, cold)
    lines += ["", "## Targets (issue 17)", "", *target_table(targets)]
    write_report(args.out, lines, {"runs": runs, "medians": medians, "empty_cache": cold,
                                   "targets": [dict(t) for t in targets]}, cmd, report_env)
    print("\n".join(lines))


def _targets(runs: dict[str, list[dict]], medians: dict, cold: dict | None) -> list[dict]:
    """Issue 17's cold-start targets (:func:`report_env.target`), as this run measured them."""
    from report_env import target

    served = medians["this tree, worker setting"]["wall"]["total"]
    default = medians["this tree"]["wall"]["total"]
    banned = ("pandas", "xgboost", "sklearn", "cvxpy")
    seen = sorted({m for rs in runs.values() for r in rs for m in r["heavy"] if m in banned})
    out = [target("new process to first answered search <= 0.5 s (wall)",
                  f"{served:.3f} s with the workers' setting, {default:.3f} s as a library "
                  "(median wall; see the load average)", served <= 0.5),
           target("nothing on the serving path imports pandas, cvxpy, scikit-learn or xgboost",
                  f"imported: {', '.join(seen) or 'none of them'}", not seen)]
    if cold is None:
        out.append(target("a missing Numba cache still works, reported as a slow first start",
                          "not run (--no-empty-cache)", None))
    else:
        logged = any("slow first start" in line for line in cold["warnings"])
        out.append(target("a missing Numba cache still works, reported as a slow first start",
                          f"{cold['kernels_compiled']} kernels compiled, answered "
                          f"{len(cold['results'])} results after {cold['wall']['total']:.1f} s; "
                          f"warning logged: {'yes' if logged else 'no'}",
                          bool(cold["results"]) and logged))
    return out


def _logged(runs: list[dict]) -> str:
    lines = sorted({line for r in runs for line in r["warnings"]})
    return "; ".join(f"`{line}`" for line in lines) if lines else "nothing"


if __name__ == "__main__":
    main()
