"""``marginrank experiment position-bias`` and ``marginrank experiment estimate``: examination by
position, and what a proposed weights file would earn, read from logged events
(:mod:`ranking.experiments.estimate`). Registered on the ``experiment`` group."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``position-bias`` and ``estimate`` on the ``experiment`` group."""
    bias = subparsers.add_parser(
        "position-bias",
        help="examination by position from logs (randomized searches when present, else EM)")
    bias.add_argument("--events", type=Path, required=True,
                      help="event directory: impressions/*, outcomes/*")
    bias.add_argument("--out", type=Path, default=Path("position_bias"),
                      help="report path without suffix: writes .json and .md")
    bias.add_argument("--bootstrap", type=int, default=30,
                      help="cluster bootstrap resamples for the EM intervals (default 30)")
    bias.add_argument("--method", choices=("auto", "harvest"), default="auto",
                      help="auto: randomized searches where exploration reaches, EM elsewhere; "
                           "harvest: intervention harvesting across experiment arms that "
                           "ranked the same products at different positions (needs >= 2 arms)")
    bias.set_defaults(run=run_position_bias)

    est = subparsers.add_parser(
        "estimate",
        help="off-policy clicks and margin per search of a proposed weights file (IPS, SNIPS, "
             "DR), from logs carrying exploration propensities")
    est.add_argument("config", type=Path, help="the proposed weights YAML")
    est.add_argument("--events", type=Path, required=True,
                     help="event directory: impressions/*, outcomes/*")
    est.add_argument("--bundle", type=Path, required=True, help="the bundle that served the logs")
    est.add_argument("--max-weight", type=float, default=None,
                     help="clip importance weights at this value (stated in the report)")
    est.add_argument("--max-unsupported", type=float, default=0.05,
                     help="share of the target's placements without logging support above "
                          "which the estimate is not claimable for the whole policy: the "
                          "report's first line says so and gives the supported part's IPS "
                          "beside the whole-policy DR (default 0.05)")
    est.add_argument("--out", type=Path, default=Path("estimate"),
                     help="report path without suffix: writes .json and .md")
    est.set_defaults(run=run_estimate)


def _write(out: Path, payload: dict, markdown: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown)
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


def examination_table(payload: dict) -> str:
    """Markdown table of an :meth:`Examination.to_dict`."""
    lines = ["| position | examination / position 1 | 95% interval | impressions | clicks |",
             "|---:|---:|---|---:|---:|"]
    for p in payload["positions"]:
        lines.append(f"| {p['position']} | {p['examination']:.3f} | "
                     f"[{p['low']:.3f}, {p['high']:.3f}] | {p['impressions']:,} | "
                     f"{p['clicks']:,} |")
    return "\n".join(lines)


def run_position_bias(args: argparse.Namespace) -> int:
    from ranking.experiments.estimate import examination, harvested, logged
    from ranking.experiments.events import load_events

    events = load_events(args.events)
    rows = logged(events.impressions, events.outcomes)
    if args.method == "harvest":
        exam = harvested(rows, bootstrap=args.bootstrap)
        arms = sorted({a or "(no arm)" for a in rows.arm[~rows.randomized].tolist()})
        text = (f"# Examination by position: intervention harvesting\n\nEvents: "
                f"`{args.events}`; {rows.searches:,} searches of the arms {arms}. The arms "
                "(randomized between customers) placed the same (query, segment, product) at "
                "different positions; propensity-weighted clicks at each position of a pair "
                "give the ratio (Agarwal et al., WSDM 2019), pooled over pairs. Intervals: "
                f"{args.bootstrap} bootstrap resamples of (query, segment) contexts. Ratios "
                "are relative to position 1.\n\n" + examination_table(exam.to_dict()))
        _write(args.out, {"events": str(args.events), "arms": arms, "used": "harvest",
                          "harvest": exam.to_dict(), "combined": exam.to_dict()}, text + "\n")
        print(examination_table(exam.to_dict()))
        return 0
    bias = examination(rows, bootstrap=args.bootstrap)
    payload = {"events": str(args.events), **bias.to_dict()}
    parts = [f"# Examination by position\n\nEvents: `{args.events}`; {bias.searches:,} "
             f"searches, {bias.randomized_searches:,} shuffled by exploration. Ratios are "
             "relative to position 1 (the absolute level is not identified by clicks).\n"]
    if bias.randomized is not None:
        parts.append("## From randomized searches (CTR ratios, delta-method intervals "
                     "clustered by search)\n\n" + examination_table(bias.randomized.to_dict()))
    if bias.em is not None:
        parts.append("## EM under the position-based model (cluster-bootstrap intervals)\n\n"
                     + examination_table(bias.em.to_dict()))
    parts.append(f"Used: **{bias.combined.method}** (randomized ratios where exploration "
                 "reaches, EM below).")
    _write(args.out, payload, "\n\n".join(parts) + "\n")
    print(examination_table(bias.combined.to_dict()))
    return 0


def run_estimate(args: argparse.Namespace) -> int:
    from ranking.app.events_api import bundle_version
    from ranking.experiments.estimate import claimability, estimate_policy, examination, logged
    from ranking.experiments.events import load_events
    from ranking.ranker import Ranker

    if not 0.0 <= args.max_unsupported <= 1.0:  # before the logs are read
        from clv.errors import DataError

        raise DataError(f"--max-unsupported must lie in [0, 1], got {args.max_unsupported}")
    events = load_events(args.events)
    rows = logged(events.impressions, events.outcomes)
    target = Ranker.load(args.bundle).variant(args.config)
    bias = examination(rows, bootstrap=10, em=None)
    result = estimate_policy(rows, target, examination_ratios=bias.combined,
                             max_weight=args.max_weight)
    claim = claimability(result, args.max_unsupported)
    served = bundle_version(args.bundle)
    logged_versions = sorted({str(v) for v in rows.bundle_version.tolist()})
    payload = {"events": str(args.events), "config": str(args.config),
               "bundle": str(args.bundle), "bundle_version": served,
               "logged_bundle_versions": logged_versions, **result.to_dict(),
               "claimability": claim}
    lines = [] if claim["claimable"] else [_not_claimable_line(claim) + "\n"]
    lines += [f"# Off-policy estimate of `{args.config}`\n",
             f"Logs `{args.events}`: {result.searches:,} searches with exploration "
             f"propensities. Item-position model (a product's reward depends on the product "
             f"and its place). Target placements without logging support: "
             f"**{result.unsupported_share:.1%}** (IPS and SNIPS cannot see them; DR fills "
             f"them with its reward model).",
             f"Weights clipped at: {args.max_weight or 'no clipping'}.\n",
             "| reward per search | logged policy | estimator | estimate | 95% interval | "
             "effective sample size | clipped rows |", "|---|---:|---|---:|---|---:|---:|"]
    for reward, by in result.estimates.items():
        for name, e in by.items():
            lines.append(f"| {reward} | {result.logged_value[reward]:.4f} | {name} | "
                         f"{e['value']:.4f} | [{e['low']:.4f}, {e['high']:.4f}] | "
                         f"{e['effective_n']:,.0f} | {e['clipped']} |")
    if served is not None and logged_versions not in ([served], ["None"]):
        lines.append(f"\nNote: the logs name bundle version(s) {logged_versions}; the bundle "
                     f"given is {served}. The target ranking is computed with the given one.")
    text = "\n".join(lines) + "\n"
    _write(args.out, payload, text)
    print(text)
    return 0


def _not_claimable_line(claim: dict) -> str:
    """The report's first line when too many target placements lack logging support."""
    def figures(by: dict) -> str:
        return ", ".join(f"{r} {e['value']:.4f} [{e['low']:.4f}, {e['high']:.4f}]"
                         for r, e in by.items())

    return (f"**Not claimable for the whole policy:** {claim['unsupported_share']:.1%} of the "
            f"target's placements have no logging support (above --max-unsupported "
            f"{claim['max_unsupported']:.1%}). Supported part (IPS on supported placements), "
            f"per search: {figures(claim['supported_part'])}; whole policy (DR, which fills "
            f"the unsupported placements from its reward model): "
            f"{figures(claim['whole_policy'])}.")
