"""``marginrank experiment import-open-bandit``: the Open Bandit Dataset's logs (random, bts)
converted into the event contract, and optionally read out
(:mod:`ranking.experiments.open_bandit`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``import-open-bandit`` on the ``experiment`` group."""
    obd = subparsers.add_parser(
        "import-open-bandit",
        help="convert the Open Bandit Dataset's logs (random, bts) into the event contract")
    obd.add_argument("source", type=Path, help="open-bandit-dataset folder (random/, bts/)")
    obd.add_argument("--out", type=Path, required=True, help="event directory to write")
    obd.add_argument("--campaign", default="men",
                     help="the campaign folder to convert, as named in the dataset (default: men)")
    obd.add_argument("--report", type=Path, default=None,
                     help="also write the readout of the two logging policies here")
    obd.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Convert the logs; with --report also read them out."""
    from ranking.app.report_command import summary_lines
    from ranking.experiments.open_bandit import convert_open_bandit, open_bandit_readout

    written = convert_open_bandit(args.source, args.out, campaign=args.campaign)
    print(f"wrote {written.impressions:,} impressions and {written.clicks:,} clicks "
          f"({', '.join(f'{k}: {v}' for k, v in written.clicks_by_policy.items())}) into "
          f"{args.out}")
    if args.report is not None:
        result = open_bandit_readout(args.out)
        paths = result.write(args.report)
        print(summary_lines(result))
        print(f"wrote {paths['markdown']}, {paths['json']}, {paths['plot']}")
    return 0
