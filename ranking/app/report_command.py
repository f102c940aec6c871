"""``marginrank experiment report``: read out a running experiment from its event logs, every arm
against the control, with intervals clustered by customer, a sample-ratio test and
non-inferiority verdicts (:mod:`ranking.experiments.readout`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``report`` on the ``experiment`` group."""
    report = subparsers.add_parser(
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
    report.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Read the events out, write the report and print its summary."""
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
