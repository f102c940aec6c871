"""``marginrank demo``: build, tune and evaluate on the embedded demo world, as ``build`` would
on your own tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from clv.errors import MarginRankError
from ranking.app.build_command import run_build

#: The embedded demo world: shipped inside the package (a wheel install), or, in a source
#: checkout or an editable install, its source in data/demo.
DEMO_DATA = next((d for d in (Path(__file__).resolve().parent / "demo_world",
                              Path(__file__).resolve().parents[2] / "data" / "demo")
                  if (d / "catalog.csv").is_file()),
                 Path(__file__).resolve().parent / "demo_world")


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``demo``."""
    demo = subparsers.add_parser("demo",
                                 help="build, tune and evaluate on the embedded demo world")
    demo.add_argument("--data", type=Path, default=DEMO_DATA,
                      help="folder of the demo world (default: the one shipped with marginrank)")
    demo.add_argument("--out", type=Path, default=Path("marginrank-demo"),
                      help="folder for the bundle and the report (default: marginrank-demo)")
    demo.add_argument("--seed", type=int, default=7,
                      help="random seed for the query split, training and tuning (default: 7)")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ranking.app.build import BuildInputs

    if not (args.data / "catalog.csv").is_file():
        raise MarginRankError(f"{args.data}: no demo world here (catalog.csv missing); "
                              "run from a source checkout or pass --data")
    config = args.data / "weights.yaml"
    inputs = BuildInputs(args.data / "catalog.csv", args.data / "judgments.csv",
                         args.data / "transactions.csv.gz", config if config.is_file() else None)
    return run_build(inputs, args.out, args.seed, title="marginrank demo (simulated world)")
