"""``marginrank tune``: tune a bundle's weights on judged queries and write the YAML back, with
its reports (the job itself is :mod:`ranking.app.tune`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from clv.errors import MarginRankError
from ranking.app.help_text import sentence

HELP = "tune a bundle's weights on judged queries; writes the YAML back"


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``tune``."""
    parser = subparsers.add_parser("tune", help=HELP, description=sentence(HELP))
    parser.add_argument("--bundle", type=Path, required=True, help="the bundle to tune for")
    labels = parser.add_mutually_exclusive_group(required=True)
    labels.add_argument("--judgments", type=Path,
                        help="judgments (query, product_id, grade) to tune on")
    labels.add_argument("--events", type=Path,
                        help="no judgments: tune on this bundle's logged interactions "
                             "(impressions/, outcomes/), debiased for position")
    parser.add_argument("--config", type=Path,
                        help="weights YAML to tune (default: the bundle's weights.yaml)")
    parser.add_argument("--k", type=int, default=10, help="NDCG cut-off (default 10)")
    parser.add_argument("--out", type=Path, default=Path("tuned.yaml"),
                        help="tuned weights file; reports go beside it as .md and .json")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed for the tuner's folds and bootstrap (default: 0)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Tune, write, and print the report."""
    from ranking.app.tune import report_markdown, tune_bundle

    if args.k < 1:
        raise MarginRankError(f"--k must be at least 1, got {args.k}")
    outcome = tune_bundle(args.bundle, args.judgments, args.config, args.k, args.out, args.seed,
                          events=args.events)
    print(report_markdown(outcome, args.k))
    print(f"tuned weights file: {outcome.yaml_path}\nreports: "
          f"{args.out.with_suffix('.md')}, {args.out.with_suffix('.json')}")
    return 0
