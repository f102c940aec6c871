"""The data audit: looks across rows of the catalog, transactions and judgments before a build.

:func:`audit_files` reads the tables as given (a product id on two rows or a return rate of 1.4
is a finding here, where the loaders would stop at the first one; a value that is not a number
still stops with file, line and column); :func:`audit_frames` runs every check on frames, which
is what ``build`` calls on the tables it loaded. The checks live in small modules:
:mod:`objectives.audit_duplicates`, :mod:`objectives.audit_stale`,
:mod:`objectives.audit_consistency`, :mod:`objectives.audit_coverage`,
:mod:`objectives.audit_events` (experiment event logs); the report writers in
:mod:`objectives.audit_report`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clv.tables import numeric_column, raise_at_first, read_table, require_columns
from clv.transactions import load_transactions
from objectives import audit_consistency as consistency
from objectives import audit_coverage as coverage
from objectives import audit_duplicates as duplicates
from objectives import audit_events as events_audit
from objectives import audit_stale as stale
from objectives.audit_findings import AuditResult, Finding, apply_severity, parse_severity
from objectives.audit_settings import DEFAULT_SETTINGS, AuditSettings
from objectives.catalog import NUMERIC_RANGES, TEXT_COLUMNS
from objectives.config import load_config


@dataclass(frozen=True)
class AuditTables:
    """What an audit reads; ``transactions``, ``judgments`` and ``events`` may be None."""

    catalog: pd.DataFrame
    transactions: pd.DataFrame | None = None
    judgments: pd.DataFrame | None = None
    pinned: tuple[str, ...] = ()
    sources: Mapping[str, str] | None = None
    events: events_audit.EventTables | None = None


def read_catalog(path: str | Path) -> pd.DataFrame:
    """The catalog as written, ids and titles checked, numbers parsed but not range-checked;
    a value that is not a number is a DataError naming file, line and column."""
    frame = read_table(path, dtype={"product_id": str})
    return prepare_catalog(frame, str(path))


def prepare_catalog(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Typed copy of a raw catalog frame: text columns as str ("" when missing), known numeric
    columns as float (NaN when missing or absent), other columns kept as they are."""
    require_columns(frame, ("product_id", "title"), file=source)
    out = frame.copy()
    raise_at_first(out["product_id"].isna().to_numpy(), out["product_id"], "product_id", source,
                   "empty product_id")
    out["product_id"] = out["product_id"].astype(str)
    for col in TEXT_COLUMNS:
        out[col] = frame[col].fillna("").astype(str) if col in frame.columns else ""
    for col in NUMERIC_RANGES:
        out[col] = (numeric_column(frame, col, file=source, allow_missing=True)
                    if col in frame.columns else np.nan)
    return out.reset_index(drop=True)


def read_judgments(path: str | Path) -> pd.DataFrame:
    """Judgments as written (products not checked against the catalog: that is a finding)."""
    frame = read_table(path, dtype={"product_id": str, "query_id": str, "query": str})
    require_columns(frame, ("query", "product_id"), file=str(path))
    qid = frame["query_id"] if "query_id" in frame.columns else frame["query"]
    return pd.DataFrame({"query_id": qid.astype(str), "product_id": frame["product_id"]
                         .astype(str)})


def audit_files(catalog: Path, transactions: Path | None = None, judgments: Path | None = None,
                config: Path | None = None, settings: AuditSettings = DEFAULT_SETTINGS,
                previous: Path | None = None, transaction_columns: Mapping[str, str] | None = None,
                non_product_ids: Collection[str] = (),
                events: events_audit.EventTables | None = None) -> AuditResult:
    """Read the files and audit them; ``previous`` is an earlier audit's JSON for drift;
    ``events`` the rows of an event directory as written (read by the caller)."""
    tx = (load_transactions(transactions, columns=transaction_columns,  # spellings reported
                            non_product_ids=non_product_ids, raw_ids=True)[0]
          if transactions else None)
    pinned: tuple[str, ...] = ()
    if config:
        cfg = load_config(config)
        pinned = tuple(p for ids in cfg.pins.values() for p in ids) + tuple(cfg.buries)
    sources = {"catalog": str(catalog), "transactions": str(transactions or ""),
               "judgments": str(judgments or ""), "config": str(config or ""),
               "events": events.source if events else ""}
    tables = AuditTables(read_catalog(catalog), tx,
                         read_judgments(judgments) if judgments else None, pinned, sources,
                         events)
    return audit_frames(tables, settings,
                        coverage.load_previous(previous) if previous else None)


def audit_frames(tables: AuditTables, settings: AuditSettings = DEFAULT_SETTINGS,
                 previous: dict[str, float] | None = None) -> AuditResult:
    """Run every check on loaded tables; see :class:`AuditSettings` for the thresholds."""
    overrides = parse_severity(dict(settings.severity))
    catalog, tx, judgments = tables.catalog, tables.transactions, tables.judgments
    exact, groups = duplicates.exact_duplicates(catalog)
    near, repeats = duplicates.near_duplicates(catalog, groups,
                                               settings.near_duplicate_threshold)
    # Robust statistics are taken over distinct listings: a later exact or near duplicate of a
    # product does not count twice in its category's median.
    reference = ~(repeats | (pd.Series(groups).duplicated().to_numpy() & (groups >= 0)))
    found: list[Finding | None] = [
        duplicates.duplicate_ids(catalog), exact, near,
        *consistency.range_findings(catalog), consistency.price_below_cost(catalog),
        consistency.margin_outliers(catalog, settings.margin_z, reference),
        consistency.return_rate_high(catalog, settings.return_rate_z, reference),
        consistency.stock_without_velocity(catalog),
        consistency.single_product_categories(catalog),
        consistency.price_scale(catalog, reference), consistency.mixed_currency(catalog),
    ]
    as_of = None
    if tx is not None and len(tx):
        as_of = (pd.Timestamp(settings.as_of) if settings.as_of else tx["timestamp"].max())
        found += [duplicates.duplicate_customers(tx["customer_id"]),
                  stale.stale_stock(catalog, tx, as_of, settings.stale_days),
                  stale.stale_customers(tx, as_of, settings.horizon_days)]
    if settings.price_updated_column in catalog.columns:
        base = as_of or pd.Timestamp(settings.as_of or pd.Timestamp.now())
        found.append(stale.stale_price(catalog, settings.price_updated_column,
                                       base - pd.Timedelta(days=settings.price_stale_days)))
    ids = pd.Index(catalog["product_id"])
    if judgments is not None:
        found.append(stale.missing_products("judged_product_missing", judgments["product_id"],
                                            ids, "judgment rows"))
    if tables.pinned:
        found.append(stale.missing_products("pinned_product_missing", tables.pinned, ids,
                                            "pins and buries"))
    if tables.events is not None:
        found += events_audit.event_findings(
            tables.events, ids, None if tx is None else tx["customer_id"].astype(str).unique(),
            settings.events)
    shares = coverage.missing_shares(catalog)
    found.append(coverage.mostly_missing(shares))
    findings = apply_severity(found, overrides)
    metrics = _metrics(tables, findings, shares)
    if previous is not None:
        findings += apply_severity([coverage.drift(previous, metrics, settings.drift_relative,
                                                   settings.drift_share)], overrides)
    cover: dict[str, object] = {"missing_share": shares}
    if tables.events is not None:
        cover["events"] = events_audit.event_summary(tables.events)
    if judgments is not None:
        cover["judged_queries_per_category"] = coverage.judged_queries_per_category(catalog,
                                                                                    judgments)
    return AuditResult(sources=dict(tables.sources or {}), findings=findings, coverage=cover,
                       metrics=metrics, settings={**asdict(settings),
                                                  "as_of": str(as_of) if as_of else None})


def _metrics(tables: AuditTables, findings: list[Finding],
             shares: dict[str, float]) -> dict[str, float]:
    """Flat figures the next audit's drift check compares."""
    catalog = tables.catalog
    price, cost = catalog["price"].to_numpy(np.float64), catalog["cost"].to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(price > 0, (price - cost) / price, np.nan)
    out: dict[str, float] = {"products": float(len(catalog))}
    for name, values in (("price_median", price), ("margin_rate_median", rate),
                         ("return_rate_mean", catalog["return_rate"].to_numpy(np.float64))):
        if np.isfinite(values).any():
            out[name] = float(np.nanmedian(values) if "median" in name else np.nanmean(values))
    if tables.transactions is not None:
        out["transaction_lines"] = float(len(tables.transactions))
        out["customers"] = float(tables.transactions["customer_id"].nunique())
    if tables.judgments is not None:
        out["judged_queries"] = float(tables.judgments["query_id"].nunique())
    out |= {f"findings.{f.code}": float(f.count) for f in findings}
    out |= {f"missing.{c}": s for c, s in shares.items()}
    if tables.events is not None:
        summary = events_audit.event_summary(tables.events)
        out |= {f"events.{k}": float(summary[k]) for k in ("searches", "shown", "ctr",
                                                            "no_result_share")
                if summary[k] is not None}
    return out
