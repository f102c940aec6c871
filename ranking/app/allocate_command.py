"""``marginrank experiment allocate``: move a running experiment's traffic toward the arm that
earns the most, per CLV segment, by Thompson sampling, and write the new shares back into the
weights YAML (comments kept) for the service to swap in.

Reads the event directory (impressions and outcomes), takes each arm's reward per search per
customer (margin per search by default), freezes at share 0 the arms whose readout misses a
non-inferiority verdict on clicks or conversion, keeps control at its minimum share, and prints
the old and new shares of every segment with the reasons. See docs/bandit.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: Defaults repeated here so that ``--help`` does not import the experiments package.
_REWARDS = ("margin_per_search", "revenue_per_search", "conversion_per_search",
            "clicks_per_search")


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``allocate`` on the ``experiment`` group."""
    parser = subparsers.add_parser(
        "allocate", help="Thompson-sampling arm shares per CLV segment, written to the YAML")
    parser.add_argument("--events", type=Path, required=True,
                        help="event directory: impressions/*.parquet|jsonl, outcomes/*")
    parser.add_argument("--config", type=Path, required=True,
                        help="weights YAML running the experiment")
    parser.add_argument("--reward", choices=_REWARDS, default="margin_per_search",
                        help="what the bandit maximizes (default: margin_per_search)")
    parser.add_argument("--min-control", type=float, default=0.2,
                        help="control's smallest share of every segment (default 0.2)")
    parser.add_argument("--control", default=None,
                        help="control arm (default: 'control', else the first arm)")
    parser.add_argument("--delta", type=float, default=None,
                        help="relative drop in clicks/conversion the guardrail allows "
                             "(default: the file's max_ndcg_drop)")
    parser.add_argument("--freeze", action="append", default=[], metavar="ARM",
                        help="freeze an arm at share 0 by hand (repeatable)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the new YAML (default: --config, in place)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the allocation (posteriors, reasons) as JSON")
    parser.add_argument("--seed", type=int, default=0, help="Monte Carlo seed (default 0)")
    parser.add_argument("--draws", type=int, default=20_000,
                        help="Monte Carlo draws per segment (default 20000)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the new shares without writing the YAML")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Allocate, print the shares and write the YAML (unless --dry-run)."""
    import json

    from clv.errors import ArgumentError
    from objectives.config import load_config
    from ranking.experiments.bandit import allocate_events
    from ranking.experiments.events import load_events
    from ranking.experiments.shares_yaml import write_allocated_yaml

    if args.draws < 100:
        raise ArgumentError(f"--draws must be at least 100, got {args.draws}")
    if args.delta is not None and not 0 <= args.delta < 1:
        raise ArgumentError(f"--delta is a relative drop in [0, 1), got {args.delta}")
    config = load_config(args.config)
    allocation = allocate_events(config, load_events(args.events), reward=args.reward,
                                 min_control=args.min_control, control=args.control,
                                 delta=args.delta, freeze=args.freeze, seed=args.seed,
                                 draws=args.draws)
    print(allocation_text(allocation))
    if args.json is not None:
        args.json.write_text(json.dumps(allocation.to_dict(), indent=2) + "\n",
                             encoding="utf-8")
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    out = write_allocated_yaml(args.config, allocation.config, args.out or args.config)
    print(f"wrote {out}")
    return 0


def allocation_text(allocation) -> str:  # noqa: ANN001 - an Allocation, imported lazily
    """Old and new shares per segment, each arm's posterior, and the reasons."""
    lines = [f"experiment {allocation.experiment}: reward {allocation.reward}, control "
             f"{allocation.control} (at least {allocation.min_control:g}), seed "
             f"{allocation.seed}"]
    lines += [f"frozen: {arm}: {why}" for arm, why in allocation.frozen.items()]
    for seg in allocation.segments:
        lines.append(f"\nsegment {seg.segment}")
        lines.append(f"  {'arm':<16} {'old':>7} {'new':>7} {'P(best)':>8} "
                     f"{'reward/search (posterior)':>27} {'customers':>10}")
        for post in seg.posteriors:
            lines.append(f"  {post.arm:<16} {seg.old[post.arm]:>7.4f} {seg.new[post.arm]:>7.4f} "
                         f"{seg.prob_best[post.arm]:>8.3f} "
                         f"{post.mean:>16.4f} +- {post.sd:<8.4f} {post.customers:>10,}")
        lines += [f"  why: {reason}" for reason in seg.reasons]
    return "\n".join(lines)
