"""``marginrank bench quality``: runs ``benchmarks/quality.py`` of the source checkout.

Benchmarks are scripts beside the packages, not installed modules (they import everything and
carry the reference comparisons), so the command loads the script by its path, the way the
demo finds its data: it works from a source checkout, and says so elsewhere.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from clv.errors import MarginRankError

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
#: Benchmarks the command can run, by name (each is ``benchmarks/<name>.py`` with ``main``).
NAMES = ("quality",)


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``bench``."""
    parser = subparsers.add_parser(
        "bench", help="run a benchmark script of the source checkout (quality)")
    parser.add_argument("name", choices=NAMES, help="which benchmark")
    parser.add_argument("args", nargs=argparse.REMAINDER,
                        help="the benchmark's own options (see: marginrank bench quality -h)")
    parser.set_defaults(run=run)


def load_script(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` by path (registered in ``sys.modules``, which its
    dataclasses need)."""
    script = BENCHMARKS / f"{name}.py"
    if not script.is_file():
        raise MarginRankError(f"{script}: benchmark script not found; benchmarks run from a "
                              "source checkout")
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_on_workers(client: object, name: str) -> None:
    """Load ``benchmarks/<name>.py`` on every Dask worker (under the name :func:`load_script`
    gives it), so that tasks can refer to its functions and classes by module."""
    client.run(_load_quietly, name)  # type: ignore[attr-defined]


def _load_quietly(name: str) -> None:
    load_script(name)


def run(args: argparse.Namespace) -> int:
    """Run the named script's ``main`` with the rest of the line."""
    return int(load_script(args.name).main(args.args))
