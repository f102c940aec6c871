"""``marginrank search``: search a bundle and print the results as a table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ranking.ranker import SearchResult


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``search``."""
    search = subparsers.add_parser("search", help="search a bundle and print a table")
    search.add_argument("query", help="the search text, in quotes if it has spaces")
    search.add_argument("--bundle", type=Path, required=True,
                        help="bundle folder written by demo or build")
    search.add_argument("--k", type=int, default=10, help="how many results (default: 10)")
    search.add_argument("--customer", default=None, help="customer id (selects the segment)")
    search.add_argument("--explain", action="store_true", help="show each term's contribution")
    search.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ranking.ranker import Ranker

    ranker = Ranker.load(args.bundle)
    results = ranker.search(args.query, customer_id=args.customer, k=args.k, explain=args.explain)
    print(format_results(results, explain=args.explain))
    return 0


def format_results(results: list[SearchResult], explain: bool) -> str:
    """A plain-text table of search results, with each term's contribution under each row."""
    if not results:
        return "no results"
    lines = [f"{'#':>3}  {'product':<10} {'score':>7}  title"]
    if explain:
        from objectives.term_registry import contributions_header

        lines.append(" " * 23 + "contributions: " + contributions_header())
    for r in results:
        score = "pinned" if r.pinned else f"{r.score:7.3f}"
        lines.append(f"{r.rank:>3}  {r.product_id:<10} {score:>7}  {r.title}")
        if r.contributions:
            lines.append(" " * 23 + "  ".join(f"{n} {v:+.3f}" for n, v in r.contributions.items()))
        if r.from_prior:
            lines.append(" " * 23 + "from priors (no own data): " + ", ".join(r.from_prior))
    return "\n".join(lines)
