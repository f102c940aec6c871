"""Loading and validating transaction tables (one row per order line; negative quantity = return).

Everything downstream (RFM summary, CLV fit, product affinity) assumes the frame this module
returns: typed columns, tz-naive UTC timestamps, one sort order. Malformed values stop the load
with a :class:`DataError` that names file, line, column and value; rows that are well formed but
unusable for CLV (no customer, a non-product line such as postage, in the future, no price, zero
quantity) are excluded and counted in an :class:`ExclusionReport`, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from clv.tables import (
    ExclusionReport,
    numeric_column,
    raise_at_first,
    read_table,
    require_columns,
)

TRANSACTION_COLUMNS = ("customer_id", "timestamp", "product_id", "quantity", "unit_price")
OPTIONAL_COLUMNS = ("order_id",)
ID_COLUMNS = ("customer_id", "product_id", "order_id")

#: Column mapping of the UCI Online Retail file (``online_retail.csv.gz``) onto our contract.
#: Cancellation invoices (``C...``) carry negative quantities and become returns.
UCI_ONLINE_RETAIL_COLUMNS = {
    "CustomerID": "customer_id",
    "InvoiceDate": "timestamp",
    "StockCode": "product_id",
    "Quantity": "quantity",
    "UnitPrice": "unit_price",
    "InvoiceNo": "order_id",
}

#: StockCodes of the UCI Online Retail file that are not goods: postage and carriage (POST, DOT,
#: C2, 23444 "Next Day Carriage", 23574 "PACKING CHARGE"), manual adjustments (M, m), discounts
#: (D), sample credits (S), fees (BANK CHARGES, AMAZONFEE, CRUK commission), bad-debt adjustments
#: (B), free cushion pads priced at 0.001 (PADS) and gift vouchers (gift_0001_*, 22016). Every
#: code of the file that does not start with five digits was read with its Description; the
#: others kept are products sold through the dotcom/eBay shop (DCGS...). As purchases they would
#: create BG/NBD "purchase days" that are only a postage charge or a manual credit, and
#: discounts would distort monetary values; pass this set as ``non_product_ids`` for CLV.
UCI_ONLINE_RETAIL_NON_PRODUCTS = frozenset({
    "POST", "DOT", "C2", "23444", "23574", "M", "m", "D", "S", "BANK CHARGES", "AMAZONFEE",
    "CRUK", "B", "PADS", "22016", "gift_0001_10", "gift_0001_20", "gift_0001_30",
    "gift_0001_40", "gift_0001_50",
})


def load_transactions(
    path: str | Path,
    *,
    now: str | datetime | pd.Timestamp | None = None,
    columns: Mapping[str, str] | None = None,
    non_product_ids: Collection[str] = (),
) -> tuple[pd.DataFrame, ExclusionReport]:
    """Read a transactions CSV / CSV.GZ / Parquet file and validate it.

    ``columns`` renames source columns onto the contract (for example
    :data:`UCI_ONLINE_RETAIL_COLUMNS`), so public datasets load without a conversion step.
    Id columns are read as strings so that "00123" keeps its leading zeros.
    ``non_product_ids`` is passed on to :func:`validate_transactions` (for example
    :data:`UCI_ONLINE_RETAIL_NON_PRODUCTS`).
    """
    mapping = dict(columns or {})
    source_of = {ours: theirs for theirs, ours in mapping.items()}
    dtype = {source_of.get(c, c): str for c in ID_COLUMNS}
    frame = read_table(path, dtype=dtype)
    if mapping:
        frame = frame.rename(columns=mapping)
    return validate_transactions(frame, source=str(path), now=now,
                                 non_product_ids=non_product_ids)


def validate_transactions(
    frame: pd.DataFrame,
    *,
    source: str = "<frame>",
    now: str | datetime | pd.Timestamp | None = None,
    non_product_ids: Collection[str] = (),
) -> tuple[pd.DataFrame, ExclusionReport]:
    """Check and normalize a transactions frame; return it with the report of excluded rows.

    Errors (a :class:`DataError` naming file, CSV line = position + 2, column and value):
    missing columns, a missing or unparsable timestamp, a missing product id, a non-numeric or
    non-integer quantity, a non-numeric or infinite unit price.

    Exclusions (counted by reason, each row under the first that applies, in this order):
    missing customer id, product id in ``non_product_ids`` (exact match; lines such as postage,
    fees or discounts that are no purchase of goods), timestamp after ``now`` (when given),
    missing or non-positive unit price, zero quantity. ``non_product_ids`` is empty by default,
    so no line is excluded for its product unless asked. Orders left with no line by that
    exclusion (for example an invoice of postage only) are counted in ``report.notes``. Without
    ``now``, rows dated after the current time are kept (a result must not depend on the day it
    is computed) but counted in ``report.notes``.

    Timestamps are parsed with UTC semantics, so offsets such as ``+02:00`` and naive stamps
    (taken as UTC) can share a column; they are returned tz-naive in UTC. Mixed time zones are
    thus normalized, never rejected; only a stamp that names a zone by abbreviation ("CET",
    "EST": ambiguous) or is not a date is an error. The result has the
    columns customer_id, timestamp, product_id, quantity (int64), unit_price (float64), order_id
    (str; when absent or missing, one order per customer and timestamp), stably sorted by
    (customer_id, timestamp) with a fresh index.
    """
    require_columns(frame, TRANSACTION_COLUMNS, file=source)
    report = ExclusionReport(source=source, total_rows=len(frame))

    timestamp = _parse_timestamps(frame["timestamp"], file=source)
    product_id = _id_strings(frame["product_id"])
    raise_at_first(product_id.isna().to_numpy(), frame["product_id"], "product_id", source,
                    "missing product_id")
    quantity = numeric_column(frame, "quantity", file=source)
    raise_at_first(quantity != np.round(quantity), frame["quantity"], "quantity", source,
                   "quantity is not an integer")
    unit_price = numeric_column(frame, "unit_price", file=source, allow_missing=True)

    customer_id = _id_strings(frame["customer_id"])
    missing_customer = customer_id.isna().to_numpy()
    keep = ~missing_customer
    report.exclude("missing customer_id", int(missing_customer.sum()))
    if non_product_ids:
        non_product = keep & product_id.isin(non_product_ids).to_numpy()
        report.exclude("non-product product_id", int(non_product.sum()))
        _note_orders_without_products(report, _order_keys(frame, customer_id, timestamp, keep),
                                      non_product[keep])
        keep &= ~non_product
    if now is not None:
        future = keep & (timestamp > utc_naive(now)).to_numpy()
        report.exclude("timestamp after now", int(future.sum()))
        keep &= ~future
    else:
        _note_future_rows(report, timestamp)
    missing_price = keep & np.isnan(unit_price)
    report.exclude("missing unit_price", int(missing_price.sum()))
    keep &= ~missing_price
    with np.errstate(invalid="ignore"):
        non_positive = keep & (unit_price <= 0)
    report.exclude("non-positive unit_price", int(non_positive.sum()))
    keep &= ~non_positive
    zero_quantity = keep & (quantity == 0)
    report.exclude("zero quantity", int(zero_quantity.sum()))
    keep &= ~zero_quantity

    out = pd.DataFrame({
        "customer_id": customer_id.to_numpy()[keep],
        "timestamp": timestamp.to_numpy()[keep],
        "product_id": product_id.to_numpy()[keep],
        "quantity": quantity[keep].astype(np.int64),
        "unit_price": unit_price[keep],
    })
    out["customer_id"] = out["customer_id"].astype(str)
    out["product_id"] = out["product_id"].astype(str)
    out["order_id"] = _order_keys(frame, customer_id, timestamp, keep)
    out = out.sort_values(["customer_id", "timestamp"], kind="stable", ignore_index=True)
    return out, report


def _order_keys(frame: pd.DataFrame, customer_id: pd.Series, timestamp: pd.Series,
                rows: np.ndarray) -> pd.Series:
    """order_id (str) of the selected ``rows`` (which have a customer id), fresh index; where
    the column is absent or the value missing, one order per customer and timestamp."""
    order_id = (_id_strings(frame["order_id"])[rows] if "order_id" in frame.columns
                else pd.Series(np.nan, index=customer_id.index[rows], dtype=object))
    order_id = order_id.astype(object).reset_index(drop=True)
    absent = order_id.isna().to_numpy()
    if absent.any():
        who = customer_id[rows].reset_index(drop=True)[absent]
        when = timestamp[rows].reset_index(drop=True)[absent].astype(str)
        order_id[absent] = who + "@" + when
    return order_id.astype(str)


def _note_orders_without_products(report: ExclusionReport, order: pd.Series,
                                  non_product: np.ndarray) -> None:
    """Say how many orders consisted only of non-product lines: with them excluded, an
    invoice of postage alone is no longer a purchase, which changes BG/NBD frequencies."""
    has_product = pd.Series(~non_product).groupby(order.to_numpy()).any()
    emptied = int((~has_product).sum())
    if emptied:
        report.notes.append(f"{emptied:,} of {len(has_product):,} orders consisted only of "
                            "non-product lines and were excluded with them")


def _parse_timestamps(raw: pd.Series, *, file: str) -> pd.Series:
    """Timestamps as tz-naive UTC datetime64 with a fresh index; NaT is an error."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        parsed = raw.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        parsed = raw
    else:
        return _parse_text_timestamps(raw, file=file)
    raise_at_first(parsed.isna().to_numpy(), raw, "timestamp", file, "missing timestamp")
    return parsed.reset_index(drop=True)


def _parse_text_timestamps(raw: pd.Series, *, file: str) -> pd.Series:
    """ISO 8601 fast path; per-element parsing only for the rows it could not read.

    ``format="mixed"`` on every row would cost a dateutil call per row (seconds on a
    million rows). ``utc=True`` lets offsets and naive stamps share the column.
    """
    text = raw.astype(str).where(raw.notna())
    raise_at_first(text.isna().to_numpy(), raw, "timestamp", file, "missing timestamp")
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    failed = parsed.isna()
    if failed.any():
        parsed[failed] = pd.to_datetime(text[failed], utc=True, format="mixed", errors="coerce")
    raise_at_first(parsed.isna().to_numpy(), raw, "timestamp", file,
                   "unparsable timestamp (write ISO 8601 with a UTC offset such as +02:00, or "
                   "none for UTC; zone names such as CET are ambiguous)")
    return parsed.dt.tz_localize(None).reset_index(drop=True)


def utc_naive(moment: str | datetime | pd.Timestamp) -> pd.Timestamp:
    """A comparison bound in the same frame as the parsed timestamps (tz-naive UTC)."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _id_strings(raw: pd.Series) -> pd.Series:
    """Ids as strings, missing (NaN or blank) as NaN.

    A numeric id column with gaps arrives as float (17850.0); it is rendered as "17850",
    the way the source file wrote it.
    """
    values = raw.reset_index(drop=True)
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if (finite == np.round(finite)).all():
            values = values.astype("Int64")
    text = values.astype(str).where(values.notna())
    return text.where(text.str.strip() != "")


def _note_future_rows(report: ExclusionReport, timestamp: pd.Series) -> None:
    """Say how many rows are dated after the current UTC time, when ``now`` was not given: they
    usually mean a clock or time-zone error upstream, and BG/NBD would read them as purchases."""
    today = pd.Timestamp.now(tz="UTC").tz_localize(None)
    future = int((timestamp > today).sum())
    if future:
        stamp = today.strftime("%Y-%m-%d %H:%M")
        report.notes.append(f"{future:,} rows are dated after the current time ({stamp} UTC); "
                            "they were kept: pass now= to exclude them")
