"""The top of every benchmark report: the exact command and the environment it ran in.

A figure means little without the command that printed it and the machine that measured it, so
every report the benchmark scripts write into ``docs/`` starts the same way: the command as typed
from the repository root, then Python, the CPU, the load average before (and after) the run,
the commit with any uncommitted changes, and the date. One module builds that header for all
the scripts, so the reports agree on what they state, and the JSON beside each report carries
the same fields under ``"command"`` and ``"environment"``.

    from report_env import command, environment, finish, header, write_report

    cmd, env = command(__file__, argv), environment("numpy", "xgboost")  # load before
    ...                                                                 # the benchmark
    env = finish(env)                                                   # load after, seconds
    report = write_report(out, header("Title", cmd, env) + body_lines, data, cmd, env)

Scripts import it as ``report_env`` after putting ``benchmarks/`` on ``sys.path`` (benchmarks
are scripts, not a package).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def command(script: str | Path, argv: Sequence[str] | None = None) -> str:
    """The command that reruns this benchmark, shell-quoted, from the repository root:
    ``python benchmarks/<script>.py <its arguments>`` (``argv`` defaults to ``sys.argv[1:]``)."""
    path = Path(script).resolve()
    try:
        shown = str(path.relative_to(ROOT))
    except ValueError:
        shown = str(path)
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["python", shown, *args])


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(*modules: str) -> dict[str, Any]:
    """Where and when the benchmark runs, taken at its start.

    ``modules`` names libraries whose versions the figures depend on (``"numpy"``,
    ``"xgboost"``...); each is imported and its ``__version__`` recorded. The load average is
    the one before the run; :func:`finish` adds the one after and the wall time.
    """
    status = _git("status", "--porcelain", "--untracked-files=no")
    versions = {}
    for name in modules:
        module = importlib.import_module(name)
        versions[name] = str(getattr(module, "__version__", "unknown"))
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_files": None if status is None else len(status.splitlines()),
        "python": platform.python_version(),
        "versions": versions,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count() or 1,
        "nice": os.nice(0),  # a benchmark run at a lower priority waits longer for a core
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "started": time.time(),
    }


def finish(env: dict[str, Any]) -> dict[str, Any]:
    """``env`` with the load average after the run and the run's wall seconds."""
    return {**env, "load_after": [round(x, 2) for x in os.getloadavg()],
            "seconds": round(time.time() - env["started"], 1)}


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{x:.1f}" for x in values)


def environment_lines(env: dict[str, Any]) -> list[str]:
    """The environment as markdown bullets: date and commit, Python and libraries, CPU and load
    (and the wall time, once :func:`finish` has run)."""
    commit = env.get("commit") or "unknown"
    if env.get("uncommitted_files"):
        commit += f" (plus uncommitted changes in {env['uncommitted_files']} tracked files)"
    versions = "".join(f", {name} {v}" for name, v in env.get("versions", {}).items())
    load = f"load average (1, 5, 15 min) {_load(env['load_before'])} before"
    if env.get("nice"):
        load = f"run at nice {env['nice']}; " + load
    if "load_after" in env:
        load += f", {_load(env['load_after'])} after"
    return [f"- Date: {env['date']}; commit {commit}",
            f"- Python {env['python']}{versions}; {env['platform']}",
            f"- CPU: {env['cpu']}, {env['cpus']} cores, shared with other jobs; {load}"
            + (f"; the run took {env['seconds']:,.0f} s" if "seconds" in env else "")]


def header(title: str, cmd: str, env: dict[str, Any], *, simulated: bool = False) -> list[str]:
    """The report's first lines (markdown): title, command, then the environment (the machine
    is shared: its load average says how busy it was)."""
    lines = [f"# {title}", "", "```bash", cmd, "```", ""]
    if simulated:
        lines += ["**Every figure on this page is SIMULATED.**", ""]
    return lines + ["Written by the script with the command above, run from the repository root; "
                    "rerun it to regenerate this page.", "", *environment_lines(env), ""]


def report_paths(out: str | Path) -> tuple[Path, Path]:
    """``<out>.md`` and ``<out>.json``: ``out`` is a path prefix (a ``.md`` or ``.json`` suffix
    is dropped, so ``--out docs/x.json`` and ``--out docs/x`` name the same pair)."""
    prefix = Path(out)
    if prefix.suffix in (".md", ".json"):
        prefix = prefix.with_suffix("")
    return prefix.with_name(prefix.name + ".md"), prefix.with_name(prefix.name + ".json")


def write_report(out: str | Path, markdown: str | Sequence[str], data: dict[str, Any],
                 cmd: str, env: dict[str, Any], *, indent: int | None = 2) -> dict[str, Any]:
    """Write the report pair of :func:`report_paths`: the markdown, and the JSON of ``data``
    with the command and environment first (``indent=None`` for a compact file, when the data
    holds per-query rows). Returns that JSON's content, as written."""
    md, js = report_paths(out)
    md.parent.mkdir(parents=True, exist_ok=True)
    text = markdown if isinstance(markdown, str) else "\n".join(markdown)
    md.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    payload = json.loads(json.dumps({"command": cmd, "environment": env, **data},
                                    default=_json_default))
    js.write_text(json.dumps(payload, indent=indent) + "\n", encoding="utf-8")
    return payload


def _json_default(value: object) -> object:
    if hasattr(value, "tolist"):
        return value.tolist()  # numpy scalars and arrays
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def target(name: str, measured: str, met: bool | None) -> dict[str, str]:
    """One target of an issue as a report states it: what was asked, what this run measured,
    and the verdict (``None``: not measured in this run). Reports keep these under
    ``"targets"`` in their JSON, so :mod:`speed_targets` gathers every verdict without knowing
    each report's layout."""
    verdict = "NOT MEASURED" if met is None else ("MET" if met else "MISSED")
    return {"target": name, "measured": measured, "verdict": verdict}


def target_table(targets: Sequence[dict[str, str]]) -> list[str]:
    """:func:`target` rows as a markdown table."""
    return ["| target | measured | verdict |", "| --- | --- | --- |",
            *(f"| {t['target']} | {t['measured']} | {t['verdict']} |" for t in targets)]
