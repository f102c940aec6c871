"""``marginrank simulate traffic``: seeded, simulated searches and outcomes over a bundle,
ranked by the real ranker with each arm's weights, written in the event contract (see
:mod:`ranking.experiments.simulator` for the world it draws from)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ranking.app.help_text import sentence

HELP = "simulated traffic with a known truth (event logs for experiments)"


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``simulate`` group and its one action, ``traffic``."""
    parser = subparsers.add_parser("simulate", help=HELP, description=sentence(HELP))
    sub = parser.add_subparsers(required=True, metavar="WHAT")
    traffic = sub.add_parser("traffic", help="simulated searches and outcomes (event logs) "
                                             "with a known truth")
    traffic.add_argument("--bundle", type=Path, required=True,
                         help="bundle folder that serves the simulated searches")
    traffic.add_argument("--judgments", type=Path, required=True,
                         help="judgments: the queries (by frequency) and the true grades")
    traffic.add_argument("--out", type=Path, required=True, help="event directory to write")
    traffic.add_argument("--config", type=Path, default=None,
                         help="weights YAML whose experiment arms are served (default: the "
                              "bundle's)")
    traffic.add_argument("--catalog", type=Path, default=None,
                         help="catalog with prices (default: catalog.csv beside the judgments)")
    traffic.add_argument("--days", type=int, default=14,
                         help="how many days of traffic (default: 14)")
    traffic.add_argument("--searches-per-day", type=int, default=2000,
                         help="searches per simulated day (default: 2000)")
    traffic.add_argument("--k", type=int, default=10, help="results shown per search")
    traffic.add_argument("--seed", type=int, default=0,
                         help="random seed of the simulation (default: 0)")
    traffic.add_argument("--format", choices=("parquet", "jsonl"), default="parquet",
                         help="file format of the event logs (default: parquet)")
    traffic.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Simulate the days, write the event logs and ``truth.json``."""
    from clv.errors import ArgumentError
    from ranking.app.progress import Progress
    from ranking.experiments.simulator import TrafficSimulator, write_simulation

    if args.days < 1 or args.searches_per_day < 1:
        raise ArgumentError("--days and --searches-per-day must be >= 1")
    sim = TrafficSimulator(args.bundle, args.judgments, seed=args.seed, k=args.k,
                           catalog=args.catalog)
    arms = sim.arms(args.config)
    days = [sim.run_day(day, arms, searches=args.searches_per_day)
            for day in Progress().bar(range(args.days), "simulating days", total=args.days)]
    write_simulation(args.out, days, fmt=args.format)
    truth = {"simulated": True, "seed": args.seed, "days": args.days,
             "searches_per_day": args.searches_per_day, "config_version": arms.serving.version,
             "experiment": arms.serving.experiment, "notes": sim.notes,
             "expected": {str(name) if name is not None else "(none)": metrics
                          for name, metrics in sim.expected(arms).items()}}
    (args.out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    n_imp = sum(d.impressions.num_rows for d in days)
    n_out = sum(d.outcomes.num_rows for d in days)
    print(f"simulated {args.days * args.searches_per_day:,} searches ({n_imp:,} impressions, "
          f"{n_out:,} outcomes) into {args.out}; the expected value of every metric per arm is "
          f"in {args.out / 'truth.json'}")
    for note in sim.notes:
        print(f"note: {note}")
    return 0
