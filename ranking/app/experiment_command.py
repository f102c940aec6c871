"""``marginrank experiment``: read out a running experiment from its event logs
(``report``) and turn the Open Bandit Dataset into those logs (``import-open-bandit``).

Other actions (``allocate``) register themselves on the same group with their own
``add_arguments(experiment_subparsers)``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def add_arguments(experiment_subparsers: argparse._SubParsersAction) -> None:
    """Register ``report`` and ``import-open-bandit`` on the ``experiment`` group."""
    report = experiment_subparsers.add_parser(
        "report", help="readout of every arm against the control, clustered by customer")
    report.add_argument("--events", type=Path, required=True,
                        help="event directory: impressions/*.parquet|jsonl, outcomes/*")
    report.add_argument("--out", type=Path, required=True, help="report folder (md, json, png)")
    report.add_argument("--control", default=None,
                        help="control arm (default: 'control', else the first arm by name)")
    report.add_argument("--delta", type=float, default=None,
                        help="relative drop the non-inferiority verdicts allow on clicks and "
                             "conversion (default: the config's max_ndcg_drop, else 0.002)")
    shares = report.add_mutually_exclusive_group()
    shares.add_argument("--config", type=Path, default=None,
                        help="weights YAML whose arm shares the sample-ratio test expects")
    shares.add_argument("--expected-shares", default=None, metavar="ARM=SHARE,...",
                        help="expected customer shares for the sample-ratio test")
    report.add_argument("--bundle", type=Path, default=None,
                        help="bundle whose customers' CLV gives 'CLV of customers reached'")
    report.add_argument("--power-at", type=float, default=0.05,
                        help="relative effect whose power is reported (default 0.05)")
    report.set_defaults(run=run_report)

    obd = experiment_subparsers.add_parser(
        "import-open-bandit",
        help="convert the Open Bandit Dataset's logs (random, bts) into the event contract")
    obd.add_argument("source", type=Path, help="open-bandit-dataset folder (random/, bts/)")
    obd.add_argument("--out", type=Path, required=True, help="event directory to write")
    obd.add_argument("--campaign", default="men",
                     help="the campaign folder to convert, as named in the dataset (default: men)")
    obd.add_argument("--report", type=Path, default=None,
                     help="also write the readout of the two logging policies here")
    obd.set_defaults(run=run_import_open_bandit)
    from ranking.app import estimate_command, learn_command  # learning from logs

    estimate_command.add_arguments(experiment_subparsers)
    learn_command.add_arguments(experiment_subparsers)


def run_report(args: argparse.Namespace) -> int:
    from clv.errors import ArgumentError
    from objectives.config import load_config
    from ranking.experiments.readout import (
        customer_clv,
        parse_shares,
        readout,
        shares_from_config,
    )

    expected = source = None
    delta = args.delta
    if args.config is not None:
        expected, source = shares_from_config(args.config), f"arm shares of {args.config}"
        config = load_config(args.config)
        if delta is None:
            delta = config.guardrails.max_ndcg_drop
        if any(e.shares_by_segment for e in config.experiments.values()):
            source += (" (the file also sets shares_by_segment: the overall split then depends "
                       "on the segments' sizes; pass --expected-shares for it)")
    elif args.expected_shares is not None:
        expected, source = parse_shares(args.expected_shares), "--expected-shares"
    if not 0 < args.power_at < 10:
        raise ArgumentError(f"--power-at is a relative effect such as 0.05, got {args.power_at}")
    clv = customer_clv(args.bundle) if args.bundle is not None else None
    result = readout(args.events, control=args.control,
                     delta=0.002 if delta is None else delta, expected_shares=expected,
                     shares_source=source, clv=clv, power_at=args.power_at)
    paths = result.write(args.out)
    print(summary_lines(result))
    print(f"wrote {paths['markdown']}, {paths['json']}, {paths['plot']}")
    return 0


def summary_lines(result) -> str:  # noqa: ANN001 - a Readout, imported lazily
    """A few terminal lines: SRM, then each arm's key lifts and verdicts."""
    lines = [f"control: {result.control}; sample ratio p = {result.srm.p_value:.3g}"
             + (" (MISMATCH)" if result.srm.mismatch else "")]
    for c in result.comparisons:
        parts = []
        for m in ("ctr", "conversion", "margin_per_search"):
            lf = c.lifts[m]
            parts.append(f"{m} {100 * lf.lift:+.2f}% [{100 * lf.lift_low:+.2f}%, "
                         f"{100 * lf.lift_high:+.2f}%]" if math.isfinite(lf.lift) else
                         f"{m} n/a")
        verdicts = ", ".join(f"{m} {v.status}" for m, v in c.verdicts.items())
        lines.append(f"{c.arm}: " + "; ".join(parts) + f"; non-inferiority: {verdicts}")
    return "\n".join(lines)


def run_import_open_bandit(args: argparse.Namespace) -> int:
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
