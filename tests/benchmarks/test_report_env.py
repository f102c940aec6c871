"""benchmarks/report_env.py: the command and environment at the top of every benchmark report."""

from __future__ import annotations

import json
import os
import platform
import shlex
from pathlib import Path

import numpy as np

from tests.conftest import ROOT, load_benchmark

report_env = load_benchmark("report_env")


def test_command_is_the_rerunnable_shell_line_from_the_repository_root() -> None:
    cmd = report_env.command(ROOT / "benchmarks" / "relevance.py", ["--out", "a b", "--k", "3"])
    assert cmd == "python benchmarks/relevance.py --out 'a b' --k 3"
    assert shlex.split(cmd)[1:] == ["benchmarks/relevance.py", "--out", "a b", "--k", "3"]


def test_environment_names_python_cpu_load_commit_and_versions() -> None:
    env = report_env.environment("numpy")
    assert env["python"] == platform.python_version()
    assert env["versions"] == {"numpy": np.__version__}
    assert env["cpus"] == os.cpu_count() and env["cpu"]
    assert len(env["load_before"]) == 3 and all(x >= 0 for x in env["load_before"])
    assert env["commit"] and len(env["commit"]) >= 7  # this is a git checkout
    assert env["date"].endswith("UTC")
    done = report_env.finish(env)
    assert len(done["load_after"]) == 3 and done["seconds"] >= 0 and "load_after" not in env


def test_header_puts_the_command_under_the_title_then_the_environment() -> None:
    env = report_env.finish(report_env.environment())
    lines = report_env.header("A title", "python benchmarks/x.py --y", env, simulated=True)
    assert lines[:5] == ["# A title", "", "```bash", "python benchmarks/x.py --y", "```"]
    text = "\n".join(lines)
    assert "SIMULATED" in text and f"Python {env['python']}" in text
    assert f"commit {env['commit']}" in text and "load average (1, 5, 15 min)" in text
    assert "before" in text and "after" in text and "the run took" in text


def test_write_report_writes_the_pair_with_command_and_environment(tmp_path: Path) -> None:
    env = report_env.environment()
    cmd = "python benchmarks/x.py"
    data = {"figure": np.float64(1.5), "rows": np.arange(3)}
    written = report_env.write_report(tmp_path / "r.json", ["# r", "", "body"], data, cmd, env)
    md, js = report_env.report_paths(tmp_path / "r.json")
    assert (md, js) == (tmp_path / "r.md", tmp_path / "r.json")
    assert md.read_text(encoding="utf-8") == "# r\n\nbody\n"
    saved = json.loads(js.read_text(encoding="utf-8"))
    assert saved == written
    assert list(saved)[:2] == ["command", "environment"] and saved["command"] == cmd
    assert saved["figure"] == 1.5 and saved["rows"] == [0, 1, 2]
