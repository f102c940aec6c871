"""Stale-record checks of the audit: stock that does not sell, prices not updated, customers
past the CLV horizon, judged or pinned products that left the catalog."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from objectives.audit_findings import Finding, finding

N_EXAMPLES = 5


def stale_stock(catalog: pd.DataFrame, tx: pd.DataFrame, as_of: pd.Timestamp,
                days: int) -> Finding | None:
    """Products with stock > 0 and no sale (positive quantity) in the ``days`` before
    ``as_of``; products never sold count, with last sale "never"."""
    sales = tx[tx["quantity"] > 0]
    last = sales.groupby("product_id")["timestamp"].max()
    last_of = last.reindex(catalog["product_id"]).to_numpy()
    stocked = (catalog["stock"].to_numpy(np.float64) > 0)
    cutoff = as_of - pd.Timedelta(days=days)
    sold_since = pd.Series(last_of).gt(cutoff).to_numpy()  # NaT (never sold) compares False
    stale = stocked & ~sold_since
    at = np.flatnonzero(stale)
    examples = [{"product_id": catalog["product_id"].iat[i],
                 "stock": float(catalog["stock"].iat[i]),
                 "last_sale": "never" if pd.isna(last_of[i]) else str(last_of[i])[:10]}
                for i in at[:N_EXAMPLES]]
    return finding("stale_stock", catalog["product_id"].to_numpy()[at], examples,
                   f"no sale since {cutoff.date()} ({days} days before {as_of.date()}); "
                   f"{int(pd.isna(last_of[at]).sum()):,} never sold")


def stale_price(catalog: pd.DataFrame, column: str, before: pd.Timestamp) -> Finding | None:
    """Products whose ``column`` timestamp (last price update) is before ``before``."""
    stamp = pd.to_datetime(catalog[column], errors="coerce", utc=True).dt.tz_localize(None)
    at = np.flatnonzero((stamp < before).to_numpy())
    examples = [{"product_id": catalog["product_id"].iat[i], column: str(stamp.iat[i])[:10]}
                for i in at[:N_EXAMPLES]]
    return finding("stale_price", catalog["product_id"].to_numpy()[at], examples,
                   f"{column} before {before.date()}")


def stale_customers(tx: pd.DataFrame, as_of: pd.Timestamp, horizon_days: float) -> Finding | None:
    """Customers whose last order is more than ``horizon_days`` before ``as_of``."""
    last = tx.groupby("customer_id")["timestamp"].max()
    cutoff = as_of - pd.Timedelta(days=horizon_days)
    stale = last[last < cutoff].sort_values()
    examples = [{"customer_id": c, "last_order": str(t)[:10]}
                for c, t in stale.head(N_EXAMPLES).items()]
    return finding("stale_customer", stale.index, examples,
                   f"last order before {cutoff.date()} (CLV horizon {horizon_days:g} days "
                   f"before {as_of.date()}); {len(stale) / max(len(last), 1):.1%} of "
                   f"{len(last):,} customers")


def missing_products(code: str, wanted: Iterable[str], catalog_ids: pd.Index,
                     where: str) -> Finding | None:
    """Products named in judgments or pins that the catalog does not have."""
    wanted = pd.Series(list(wanted), dtype=object)
    gone = wanted[~wanted.isin(catalog_ids)]
    examples = [{"product_id": p, "rows": int(n)} for p, n in
                gone.value_counts().head(N_EXAMPLES).items()]
    return finding(code, gone.unique(), examples, f"{len(gone):,} {where}")
