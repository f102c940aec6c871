"""``marginrank audit``: look across the rows of the tables before a build, and write a report
(markdown, JSON, HTML with plots). Exit code 1 when a finding is blocking, 0 otherwise."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from objectives.audit_findings import CODES
from objectives.audit_settings import AuditSettings
from ranking.app.help_text import sentence

if TYPE_CHECKING:
    from objectives.audit_events import EventTables

HELP = ("audit the tables before a build: duplicates, stale records, inconsistencies, coverage, "
        "drift")


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register ``audit``."""
    parser = subparsers.add_parser("audit", help=HELP, description=sentence(HELP))
    parser.add_argument("--catalog", type=Path, required=True, help="products table to audit")
    parser.add_argument("--transactions", type=Path,
                        help="order lines: stale customers and stock, returns, coverage")
    parser.add_argument("--judgments", type=Path,
                        help="graded (query, product) pairs: judged products missing from the "
                             "catalog")
    parser.add_argument("--config", type=Path, help="weights YAML whose pins and buries to check")
    parser.add_argument("--events", type=Path, metavar="DIR",
                        help="experiment event directory (DIR/impressions, DIR/outcomes): "
                             "duplicate ids, orphans, timing, funnel, assignment leaks, drift")
    parser.add_argument("--ctr-drift", type=float,
                        default=AuditSettings.events.ctr_drift_relative,
                        help="with --events: a day whose CTR differs from the log's by more "
                             "than this (relative) and by 4 standard errors is drift "
                             f"(default: {AuditSettings.events.ctr_drift_relative:g})")
    parser.add_argument("--previous", type=Path, help="an earlier audit.json, for drift")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--uci", action="store_true",
                        help="transactions are the UCI Online Retail file (its column names; "
                             "non-product stock codes left out)")
    parser.add_argument("--as-of", help="reference time (default: the last transaction)")
    parser.add_argument("--stale-days", type=int, default=AuditSettings.stale_days,
                        help="stock with no sale for this many days is stale (default: "
                             f"{AuditSettings.stale_days})")
    parser.add_argument("--horizon-days", type=float, default=AuditSettings.horizon_days,
                        help="customers with no order for this many days are stale (default: "
                             f"{AuditSettings.horizon_days:g})")
    parser.add_argument("--near-threshold", type=float,
                        default=AuditSettings.near_duplicate_threshold,
                        help="title similarity (Jaccard of 4-character shingles) from which two "
                             "titles in a category are near duplicates (default: "
                             f"{AuditSettings.near_duplicate_threshold:g})")
    parser.add_argument("--severity", action="append", default=[], metavar="CODE=LEVEL",
                        help=f"blocking, warning or off for a code (repeatable); codes: "
                             f"{', '.join(CODES)}")
    parser.set_defaults(run=run)


def read_events(directory: Path) -> EventTables:
    """Every row of ``DIR/impressions/*`` and ``DIR/outcomes/*``, each file validated by the
    event contract's reader (a bad row stops with file, line or row, column and value) but
    neither de-duplicated nor filtered as ``load_events`` does: the repeated event ids and the
    outcomes of unknown requests it sets aside are what the audit counts."""
    import pyarrow as pa

    from clv.errors import DataError
    from objectives.audit_events import EventTables
    from ranking.experiments import events as contract

    tables = {}
    for kind, schema in (("impressions", contract.IMPRESSION_SCHEMA),
                         ("outcomes", contract.OUTCOME_SCHEMA)):
        files = contract.event_files(directory, kind)
        if kind == "impressions" and not files:
            raise DataError("no impression files (expected impressions/*.parquet or *.jsonl)",
                            file=directory)
        parts = [contract._read_file(kind, path) for path in files]
        tables[kind] = (pa.concat_tables(parts) if parts else schema.empty_table()).to_pandas()
    return EventTables(tables["impressions"], tables["outcomes"], str(directory))


def run(args: argparse.Namespace) -> int:
    from clv.transactions import UCI_ONLINE_RETAIL_COLUMNS, UCI_ONLINE_RETAIL_NON_PRODUCTS
    from objectives.audit import audit_files
    from objectives.audit_findings import parse_severity
    from objectives.audit_report import write_reports
    from objectives.audit_settings import EventSettings

    settings = AuditSettings(
        stale_days=args.stale_days, horizon_days=args.horizon_days,
        near_duplicate_threshold=args.near_threshold, as_of=args.as_of,
        severity=tuple(parse_severity(args.severity).items()),
        events=EventSettings(ctr_drift_relative=args.ctr_drift))
    result = audit_files(args.catalog, args.transactions, args.judgments, args.config, settings,
                         args.previous,
                         transaction_columns=UCI_ONLINE_RETAIL_COLUMNS if args.uci else None,
                         non_product_ids=UCI_ONLINE_RETAIL_NON_PRODUCTS if args.uci else (),
                         events=read_events(args.events) if args.events else None)
    paths = write_reports(result, args.out)
    print("\n".join(result.summary_lines()))
    print(f"report: {', '.join(str(p) for p in paths)}")
    return 1 if result.blocking else 0
