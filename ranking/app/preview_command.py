"""``marginrank preview``: what a new weights file would change on real queries, before it is
applied (the comparison itself is :mod:`ranking.app.preview`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from clv.errors import MarginRankError
from ranking.app.help_text import sentence

HELP = "what a new weights file changes on real queries, before applying it"


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``preview``."""
    parser = subparsers.add_parser("preview", help=HELP, description=sentence(HELP))
    parser.add_argument("file", type=Path, metavar="NEW.yaml", help="the weights file to try")
    parser.add_argument("--bundle", type=Path, required=True, help="the bundle serving now")
    parser.add_argument("--judgments", type=Path, help="judgments (query, product_id, grade): "
                        "adds NDCG@10 and previews their queries")
    parser.add_argument("--queries", type=int, default=200, help="queries sampled (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the query sample")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Load the bundle, validate NEW.yaml against it, preview and print."""
    from ranking.app.preview import (
        format_report,
        load_preview_judgments,
        preview,
        sample_queries,
    )
    from ranking.ranker import Ranker

    if args.queries < 1:
        raise MarginRankError(f"--queries must be at least 1, got {args.queries}")
    current = Ranker.load(args.bundle)
    new = current.variant(args.file)
    judgments = (load_preview_judgments(args.judgments, current) if args.judgments else None)
    queries = sample_queries(args.bundle, judgments, args.queries, args.seed)
    report = preview(current, new, queries, judgments)
    print(format_report(report, f"{args.bundle}/weights.yaml", str(args.file)))
    return 0
