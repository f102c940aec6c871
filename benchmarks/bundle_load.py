"""What the bundle checks add to ``Ranker.load``, side by side in one process.

Times ``Ranker.load(bundle, warm=False)`` (everything but the warm-up search, whose kernels
the checks do not touch) two ways, taking turns so that the load other processes put on a
shared machine falls on both alike:

- ``checked``: as served, every check of :mod:`ranking.bundle_checks` and
  :func:`ranking.bundle.verify` (symlink scan, manifest bounds, array ranges, ...);
- ``unchecked``: the same code with those checks replaced by no-ops and the ``.npz`` member
  pre-check skipped (the manifest's sha256 is still verified: that is the old baseline).

Also reports the time spent inside each check (summed per load, median over loads) and the
share of the load it is. The ratio of medians carries a 95% bootstrap interval over the
repeats. Without ``--bundle`` it builds the demo world's bundle first (data/demo)
into ``--work``. Writes ``docs/bundle_load.md`` and ``docs/bundle_load.json``.

    python benchmarks/bundle_load.py [--bundle PATH] [--repeats 15] [--out docs/bundle_load]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from report_env import command as rerun_command  # noqa: E402
from report_env import environment, finish, header  # noqa: E402

from ranking import bundle, bundle_checks  # noqa: E402
from ranking.ranker import Ranker  # noqa: E402

#: The checks timed and, for the unchecked run, replaced: name -> stand-in doing only the
#: reading the loader needs (None: skipped outright).
_READERS: dict[str, Callable[..., Any] | None] = {
    "check_npz": None, "check_dtype": None, "check_indptr": None, "check_ids": None,
    "check_finite": None, "check_increasing": None, "check_field": None,
    "check_products_npz": None,
}


def _plain_load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def _plain_read_json(path: Path, **_: object) -> Any:
    return json.loads(path.read_bytes())


class Patched:
    """Swap the checks for timers (``checked``) or no-ops (``unchecked``) while active."""

    def __init__(self, mode: str, spent: dict[str, float]) -> None:
        self.mode, self.spent, self.saved = mode, spent, {}

    def __enter__(self) -> Patched:
        targets = {**{name: (bundle_checks, name) for name in _READERS},
                   "load_npz": (bundle_checks, "load_npz"),
                   "read_json": (bundle_checks, "read_json"),
                   "check_index_arrays": (bundle_checks, "check_index_arrays"),
                   "check_entries_are_files": (bundle, "check_entries_are_files"),
                   "json_depth": (bundle_checks, "json_depth")}
        for name, (module, attr) in targets.items():
            original = getattr(module, attr)
            self.saved[name] = (module, attr, original)
            setattr(module, attr, self._replacement(name, original))
        return self

    def _replacement(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        if self.mode == "checked":
            def timed(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    self.spent[name] += time.perf_counter() - start
            return timed
        if name == "load_npz":
            return _plain_load_npz
        if name == "read_json":
            return _plain_read_json
        if name == "json_depth":
            return lambda data: 0
        if name == "check_index_arrays":
            return _unchecked_index_arrays
        return lambda *args, **kwargs: None

    def __exit__(self, *exc: object) -> None:
        for module, attr, original in self.saved.values():
            setattr(module, attr, original)


def _unchecked_index_arrays(source: object, data: dict[str, np.ndarray],
                            n_terms: int) -> tuple[list[str], tuple[str, float | None, float,
                                                                    float]]:
    """What the old loader did: read the fields and parameters, check nothing."""
    variant, k1, b, eps = (str(v) for v in data["__params__"])
    return ([str(f) for f in data["__fields__"]],
            (variant, None if k1 == "None" else float(k1), float(b), float(eps)))


def build_demo(work: Path) -> Path:
    from ranking.app.build import BuildInputs, BuildSettings, build

    out = work / "bundle"
    if not (out / bundle.MANIFEST).is_file():
        demo = ROOT / "data" / "demo"
        build(BuildInputs(demo / "catalog.csv", demo / "judgments.csv",
                          demo / "transactions.csv.gz", demo / "weights.yaml"), out,
              BuildSettings(seed=7))
    return out


def measure(directory: Path, repeats: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {"checked": [], "unchecked": []}
    per_check: list[dict[str, float]] = []
    Ranker.load(directory, warm=False)  # imports, page cache
    for i in range(repeats):
        for mode in (("checked", "unchecked") if i % 2 == 0 else ("unchecked", "checked")):
            spent: dict[str, float] = defaultdict(float)
            with Patched(mode, spent):
                start = time.perf_counter()
                Ranker.load(directory, warm=False)
                times[mode].append(time.perf_counter() - start)
            if mode == "checked":
                per_check.append(dict(spent))
    return {"times": times, "per_check": per_check}


def ratio_interval(a: list[float], b: list[float], n_boot: int = 5000,
                   seed: int = 0) -> tuple[float, float, float]:
    """Median(a) / median(b) with a 95% percentile bootstrap interval (resampling each)."""
    rng = np.random.default_rng(seed)
    x, y = np.asarray(a), np.asarray(b)
    boots = [np.median(rng.choice(x, x.size)) / np.median(rng.choice(y, y.size))
             for _ in range(n_boot)]
    return (float(np.median(x) / np.median(y)), float(np.percentile(boots, 2.5)),
            float(np.percentile(boots, 97.5)))


def report(directory: Path, result: dict[str, Any], env: dict[str, Any],
           command: str) -> tuple[str, dict[str, Any]]:
    times = result["times"]
    checked, unchecked = np.median(times["checked"]), np.median(times["unchecked"])
    ratio, lo, hi = ratio_interval(times["checked"], times["unchecked"])
    names = sorted({k for d in result["per_check"] for k in d})
    per_check = {n: float(np.median([d.get(n, 0.0) for d in result["per_check"]]))
                 for n in names}
    size = sum(p.stat().st_size for p in directory.iterdir())
    manifest = json.loads((directory / bundle.MANIFEST).read_text())
    n_products = len(json.loads((directory / "products.json").read_text())["product_id"])
    summary = {
        "bundle": str(directory), "bundle_bytes": size, "n_products": n_products,
        "files": len(manifest["files"]), "repeats": len(times["checked"]),
        "median_s": {"checked": float(checked), "unchecked": float(unchecked)},
        "added_s": float(checked - unchecked), "ratio": ratio, "ratio_ci95": [lo, hi],
        "per_check_median_s": per_check, "times_s": times,
        "command": command, "environment": env,
    }
    rows = "\n".join(f"| `{n}` | {v * 1e3:.2f} | {v / checked:.1%} |"
                     for n, v in sorted(per_check.items(), key=lambda kv: -kv[1]))
    head = "\n".join(header("Bundle load time: with the checks and without", command, env))
    text = f"""{head}
On a shared, loaded machine absolute times are inflated; the two ways took turns, load by load,
so the ratio is the figure to read.

Bundle: `{directory.name}` ({n_products:,} products, {summary['files']} files,
{size / 1e6:.1f} MB). `Ranker.load(bundle, warm=False)`, {summary['repeats']} loads each way.

| | median load (ms) |
| --- | ---: |
| unchecked (sha256 only, the old loader) | {unchecked * 1e3:.1f} |
| checked (as served) | {checked * 1e3:.1f} |
| **added by the checks** | **{(checked - unchecked) * 1e3:.1f}** |

Ratio checked / unchecked: **{ratio:.3f}** (95% bootstrap interval {lo:.3f} to {hi:.3f}).

Time inside each check, median per load (nested checks count in their callers too:
`check_index_arrays` includes `check_field`, which includes `check_indptr` and `check_ids`;
`load_npz` includes `check_npz` and the array reads themselves; `read_json` includes
`json_depth` and the parsing):

| check | ms | share of the checked load |
| --- | ---: | ---: |
{rows}
"""
    return text, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle to load (default: build the demo)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/marginrank-bundle-load"))
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bundle_load",
                        help="report path without suffix (.md and .json are written)")
    args = parser.parse_args(argv)
    command = rerun_command(__file__, argv)
    directory = args.bundle or build_demo(args.work)
    env = environment("numpy")
    result = measure(directory, args.repeats)
    text, summary = report(directory, result, finish(env), command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
