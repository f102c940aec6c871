"""Loading and validating transaction tables (one row per order line; negative quantity = return).

Everything downstream (RFM summary, CLV fit, product affinity) assumes the frame this module
returns: typed columns, tz-naive UTC timestamps, one sort order. Malformed values stop the load
with a :class:`DataError` that names file, line, column and value; rows that are well formed but
unusable for CLV (no customer, a non-product line such as postage, in the future, no price, zero
quantity) are excluded and counted in an :class:`ExclusionReport`, never dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from clv.tables import (
    ExclusionReport,
    normalize_ids,
    numeric_column,
    raise_at_first,
    read_table,
    require_columns,
    where,
)

TRANSACTION_COLUMNS = ("customer_id", "timestamp", "product_id", "quantity", "unit_price")
OPTIONAL_COLUMNS = ("order_id",)
ID_COLUMNS = ("customer_id", "product_id", "order_id")
#: Largest quantity held exactly: quantities are parsed as float64, whose integers are exact
#: up to 2**53; a larger one would be rounded, and past 2**63 wrap around as int64.
MAX_QUANTITY = 2**53
#: A day/month/year date (separator ``/``, ``.`` or ``-``, a four-digit year), with an
#: optional time: the one non-ISO format read, and only when the file says which part is
#: the day (see :func:`_parse_day_month`).
_DAY_MONTH = re.compile(r"^\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{4})"
                        r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?)?\s*$")

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
    raw_ids: bool = False,
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
                                 non_product_ids=non_product_ids, raw_ids=raw_ids)


def validate_transactions(
    frame: pd.DataFrame,
    *,
    source: str = "<frame>",
    now: str | datetime | pd.Timestamp | None = None,
    non_product_ids: Collection[str] = (),
    raw_ids: bool = False,
) -> tuple[pd.DataFrame, ExclusionReport]:
    """Check and normalize a transactions frame; return it with the report of excluded rows.

    Errors (a :class:`DataError` naming file, CSV line = position + 2, column and value):
    missing columns, a missing or unparsable timestamp, a missing product id, a non-numeric or
    non-integer quantity, a non-numeric or infinite unit price.

    Ids are text (``NA``, ``NULL`` and ``None`` are ids) and normalized (Unicode NFC, no
    zero-width characters or surrounding spaces); two spellings that become one id, or that
    differ only in width (``Ｐ00001``, ``P00001``), are a :class:`DataError` naming both rows.
    ``raw_ids`` keeps the ids as written instead, for the data audit, which reports such
    spellings rather than stopping at the first. A quantity beyond ±2**53 is an error
    (integer overflow), and timestamps follow one format per file (see
    :func:`_parse_text_timestamps`).

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
    normalize = not raw_ids
    product_id = _id_strings(frame["product_id"], "product_id", source, normalize)
    raise_at_first(product_id.isna().to_numpy(), frame["product_id"], "product_id", source,
                    "missing product_id")
    quantity = numeric_column(frame, "quantity", file=source)
    raise_at_first(np.abs(quantity) > MAX_QUANTITY, frame["quantity"], "quantity", source,
                   f"integer overflow: beyond ±2**53 ({MAX_QUANTITY:,}), the largest quantity "
                   "held exactly")
    raise_at_first(quantity != np.round(quantity), frame["quantity"], "quantity", source,
                   "quantity is not an integer")
    unit_price = numeric_column(frame, "unit_price", file=source, allow_missing=True)

    customer_id = _id_strings(frame["customer_id"], "customer_id", source, normalize)
    missing_customer = customer_id.isna().to_numpy()
    keep = ~missing_customer
    report.exclude("missing customer_id", int(missing_customer.sum()))
    if non_product_ids:
        non_product = keep & product_id.isin(non_product_ids).to_numpy()
        report.exclude("non-product product_id", int(non_product.sum()))
        _note_orders_without_products(report, _order_keys(frame, customer_id, timestamp, keep,
                                                          source, normalize),
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
    out["order_id"] = _order_keys(frame, customer_id, timestamp, keep, source, normalize)
    out = out.sort_values(["customer_id", "timestamp"], kind="stable", ignore_index=True)
    return out, report


def _order_keys(frame: pd.DataFrame, customer_id: pd.Series, timestamp: pd.Series,
                rows: np.ndarray, source: str = "<frame>", normalize: bool = True) -> pd.Series:
    """order_id (str) of the selected ``rows`` (which have a customer id), fresh index; where
    the column is absent or the value missing, one order per customer and timestamp."""
    order_id = (_id_strings(frame["order_id"], "order_id", source, normalize)[rows]
                if "order_id" in frame.columns
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
    """Timestamps written as text, in one format per file: ISO 8601 (offsets and naive
    stamps, taken as UTC, may share the column), or day/month/year dates whose order the
    file settles (:func:`_parse_day_month`). A file mixing the two, or holding anything
    else, is refused at the first line that differs. ``utc=True`` lets offsets and naive
    stamps share the column."""
    text = raw.astype(str).where(raw.notna()).reset_index(drop=True)
    raise_at_first(text.isna().to_numpy(), raw, "timestamp", file, "missing timestamp")
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    failed = parsed.isna().to_numpy()
    if failed.any():
        day_month = text.str.match(_DAY_MONTH).to_numpy()
        iso = np.flatnonzero(~failed)
        if iso.size == 0 and day_month.all():
            return _parse_day_month(text, raw, file)
        bad = failed if iso.size else ~day_month
        first = int(np.flatnonzero(bad)[0])
        if iso.size and day_month[first]:
            raise_at_first(np.arange(len(text)) == first, raw, "timestamp", file,
                           "a day/month date in a file of ISO 8601 timestamps (as at "
                           f"{where(file, int(iso[0]))}): one format per file; write ISO 8601")
        raise_at_first(bad, raw, "timestamp", file,
                       "unparsable timestamp (write ISO 8601 with a UTC offset such as "
                       "+02:00, or none for UTC; zone names such as CET are ambiguous)")
    return parsed.dt.tz_localize(None).reset_index(drop=True)


def _parse_day_month(text: pd.Series, raw: pd.Series, file: str) -> pd.Series:
    """Dates such as ``02/01/2011 08:26``, read day first or month first as the whole file
    says: a first part above 12 makes it day first, a second part above 12 month first.
    Refused: a file where both happen (naming the line that contradicts the first), and a
    file where neither does while some date reads differently each way (02/01/2011 is 2
    January or 1 February): nothing settles it, so the first such line is named."""
    parts = text.str.extract(_DAY_MONTH)
    first, second = parts[0].astype(int).to_numpy(), parts[2].astype(int).to_numpy()
    day_first, month_first = first > 12, second > 12
    if day_first.any() and month_first.any():
        a, b = int(np.flatnonzero(day_first)[0]), int(np.flatnonzero(month_first)[0])
        settled, contradicts = min(a, b), max(a, b)
        order = "day first" if settled == a else "month first"
        raise_at_first(np.arange(len(text)) == contradicts, raw, "timestamp", file,
                       f"contradicts {where(file, settled)} ({text[settled].strip()}, {order})"
                       ": one date order per file; write ISO 8601 (YYYY-MM-DD)")
    if not (day_first.any() or month_first.any()):
        raise_at_first(first != second, raw, "timestamp", file,
                       "ambiguous date: day/month or month/day, and no line of the file has a "
                       "part above 12 to settle it; write ISO 8601 (YYYY-MM-DD)")
    day, month = (first, second) if day_first.any() else (second, first)
    clock = parts[4].fillna("0").str.zfill(2) + ":" + parts[5].fillna("00") + ":" + \
        parts[6].fillna("00").str.zfill(2)
    iso = (parts[3] + "-" + pd.Series(month).astype(str).str.zfill(2) + "-"
           + pd.Series(day).astype(str).str.zfill(2) + "T" + clock)
    parsed = pd.to_datetime(iso, format="ISO8601", errors="coerce")
    raise_at_first(parsed.isna().to_numpy(), raw, "timestamp", file,
                   f"not a date ({'day' if day_first.any() else 'month'} first, as the file "
                   "reads)")
    return parsed.reset_index(drop=True)


def utc_naive(moment: str | datetime | pd.Timestamp) -> pd.Timestamp:
    """A comparison bound in the same frame as the parsed timestamps (tz-naive UTC)."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _id_strings(raw: pd.Series, column: str = "id", source: str = "<frame>",
                normalize: bool = True) -> pd.Series:
    """Ids as normalized strings (:func:`clv.tables.normalize_ids`: NFC, no zero-width or
    surrounding space; two spellings of one id in a file are refused), missing (NaN, or
    blank once normalized) as NaN. ``NA``, ``NULL``, ``None`` are ids like any other: the
    loader reads id columns as text.

    A numeric id column with gaps arrives as float (17850.0); it is rendered as "17850",
    the way the source file wrote it.
    """
    values = raw.reset_index(drop=True)
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if (finite == np.round(finite)).all():
            values = values.astype("Int64")
    if normalize:
        return normalize_ids(values, column, source)
    text = values.astype(str).where(values.notna())
    return text.where(text.fillna("").str.strip() != "")


def _note_future_rows(report: ExclusionReport, timestamp: pd.Series) -> None:
    """Say how many rows are dated after the current UTC time, when ``now`` was not given: they
    usually mean a clock or time-zone error upstream, and BG/NBD would read them as purchases."""
    today = pd.Timestamp.now(tz="UTC").tz_localize(None)
    future = int((timestamp > today).sum())
    if future:
        stamp = today.strftime("%Y-%m-%d %H:%M")
        report.notes.append(f"{future:,} rows are dated after the current time ({stamp} UTC); "
                            "they were kept: pass now= to exclude them")
