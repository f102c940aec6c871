"""Issue 17's speed targets in one table, gathered from the reports that measured them.

Each speed benchmark writes its own report (``docs/<name>.md`` and ``.json``) with the command,
commit, date and load of its run, and its targets under ``"targets"``
(:func:`report_env.target`). This script copies nothing by hand: it reads those JSON files and
writes ``docs/speed_targets.md`` (and ``.json``), one section per report with the report's
command, commit, date and load beside its verdicts, so every figure stays next to the command
that measured it. A report that is missing is listed as not run.

    python benchmarks/speed_targets.py [--docs docs] [--out docs/speed_targets]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from report_env import command, environment, finish, header, target_table, write_report  # noqa: E402

#: (report, what it measures), in the order a query meets them.
REPORTS = (
    ("build_speed", "Serving index build, 55k to 1M products, against Tantivy"),
    ("bm25_speed", "BM25 retrieval against rank_bm25, bm25s and Tantivy"),
    ("search_latency", "Search end to end, stage by stage"),
    ("first_search", "Cold start: a new process to its first search"),
    ("service_overhead", "HTTP: server CPU per search and two-worker scaling"),
)


def section(docs: Path, name: str, title: str) -> tuple[list[str], dict]:
    path = docs / f"{name}.json"
    if not path.exists():
        return [f"## {title}", "", f"Not run: `{path.name}` is missing.", ""], {}
    data = json.loads(path.read_text(encoding="utf-8"))
    env, targets = data.get("environment", {}), data.get("targets", [])
    load = env.get("load_before", ["?"])[0], env.get("load_after", ["?"])[0]
    lines = [f"## {title}", "", "```bash", data.get("command", "?"), "```", "",
             f"[{name}.md]({name}.md): commit {env.get('commit', '?')}, {env.get('date', '?')}, "
             f"1-minute load {load[0]} before, {load[1]} after.", ""]
    lines += target_table(targets) if targets else ["This report states no targets."]
    return lines + [""], {"report": name, "commit": env.get("commit"), "date": env.get("date"),
                          "load": list(load), "targets": targets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "speed_targets")
    args = parser.parse_args()
    cmd, env = command(__file__), environment()
    lines = ["Each section is copied by this script from the report named in it; the report's "
             "own command, commit and load are the ones that count. Figures are for a 2-core "
             "machine; a MISSED line is a miss.", ""]
    sections = []
    for name, title in REPORTS:
        body, data = section(args.docs, name, title)
        lines += body
        if data:
            sections.append(data)
    counts = {v: sum(t["verdict"] == v for s in sections for t in s["targets"])
              for v in ("MET", "MISSED", "NOT MEASURED")}
    lines.insert(0, "Verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".")
    lines.insert(1, "")
    env = finish(env)
    write_report(args.out, header("Speed targets of issue 17", cmd, env) + lines,
                 {"reports": sections, "counts": counts}, cmd, env)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
