"""How long ``marginrank --help`` and ``marginrank --version`` take, as a user types them.

Issue 15 asks for ``--help`` in at most 0.3 s: the command imports no numpy, pandas, scipy,
cvxpy, XGBoost, Numba or pydantic up front (``tests/ranking/app/test_cli.py`` checks
``sys.modules``), so its cost is the interpreter's start and the argument parser. Each run is a
fresh process of the installed console script (``<venv>/bin/marginrank``, beside the Python
that runs this script); the report gives the median and slowest wall time, and the median CPU
time (user + system of the child), over ``--runs`` runs of each command. On a loaded machine
the wall time includes waiting for a core; the CPU time does not.

    python benchmarks/cli_startup.py [--runs 20] [--out docs/cli_startup]

Writes ``<out>.md`` and ``<out>.json`` with the command and environment at the top
(:mod:`report_env`). To see what the command imports:
``.venv/bin/python -X importtime -m ranking.app.cli --help``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks")]
from report_env import (  # noqa: E402
    command,
    environment,
    finish,
    header,
    report_paths,
    write_report,
)

#: Issue 15's bound on ``marginrank --help``, seconds of wall time.
TARGET_S = 0.3
COMMANDS = (("--help",), ("--version",))


def time_once(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the child) of one run; fails if it fails."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user
           + after.children_system - before.children_system)
    return wall, cpu


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each command")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "cli_startup",
                        help="report path prefix (.md, .json)")
    args = parser.parse_args(argv)
    script = Path(sys.executable).parent / "marginrank"
    if not script.is_file():
        sys.exit(f"{script}: no marginrank console script beside this Python; install the "
                 "project into this environment first")
    cmd, env = command(__file__, argv), environment()
    results = []
    for extra in COMMANDS:
        runs = [time_once([str(script), *extra]) for _ in range(args.runs)]
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        results.append({"command": f"marginrank {' '.join(extra)}", "runs": args.runs,
                        "wall_median_s": statistics.median(walls), "wall_max_s": max(walls),
                        "cpu_median_s": statistics.median(cpus)})
    env = finish(env)
    help_median = results[0]["wall_median_s"]
    lines = header("Command-line start-up", cmd, env) + [
        f"Each command run {args.runs} times, each a fresh process of `{script.name}`; wall "
        "time, and the CPU time of the process (user + system).", "",
        "| command | wall median s | wall slowest s | CPU median s |", "| --- | --- | --- | --- |",
        *[f"| `{r['command']}` | {r['wall_median_s']:.3f} | {r['wall_max_s']:.3f} | "
          f"{r['cpu_median_s']:.3f} |" for r in results], "",
        f"Target: `marginrank --help` in at most {TARGET_S:g} s (median wall time): "
        f"**{'met' if help_median <= TARGET_S else 'missed'}** ({help_median:.3f} s)."]
    report = write_report(args.out, lines, {"target_s": TARGET_S, "results": results}, cmd, env)
    print("\n".join(lines))
    print("written: " + ", ".join(map(str, report_paths(args.out))))
    return report


if __name__ == "__main__":
    main()
