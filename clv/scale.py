"""CLV out of core on a Dask cluster: the same results as the one-process path, in partitions.

Transactions too large for one process arrive as a partitioned dataset (a directory or glob of
Parquet / CSV files). ``dask.dataframe`` reads it one partition per file, and each partition is
validated by :func:`clv.transactions.validate_transactions` itself, so errors name the file and
line as a one-file load would, and the exclusion reports are summed. The validated lines are
then written to disk in buckets by a hash of the customer id (a shuffle through files: every
customer's lines end up in one bucket, and no worker holds more than one bucket), and each
bucket runs the one-process building blocks on its customers:

- :func:`clv.rfm.rfm_summary` with the global observation end: rows equal the pandas path's;
- the distinct (frequency, recency, T) and (frequency, monetary_value) rows with counts, summed
  over buckets, which stay small however many customers there are; BG/NBD and Gamma-Gamma are
  fitted on them by :class:`clv.model.CLVModel`'s own fitting steps (weights = counts);
- per-customer CLV (:meth:`CLVModel.customer_clv`) and per-product partial sums of buyer CLV,
  merged into :func:`clv.segments.product_clv_affinity`'s estimator.

Nothing here imports ``dask`` at module import: the functions take a ``distributed.Client``.
"""

from __future__ import annotations

import glob
import json
import math
import shutil
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clv.errors import ArgumentError, CLVFitError, DataError
from clv.model import (
    MAX_FREQ_MONETARY_CORR,
    CLVModel,
    _pearson,
    bgnbd_log_likelihood,
)
from clv.rfm import rfm_summary
from clv.segments import _prior_strength, _shrunk_affinity
from clv.tables import ExclusionReport, read_table
from clv.transactions import (
    ID_COLUMNS,
    MAX_QUANTITY,
    TRANSACTION_COLUMNS,
    utc_naive,
    validate_transactions,
)

_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv", ".tsv.gz")
_BG_KEYS = ["frequency", "recency", "T"]
_SPEND_KEYS = ["frequency", "monetary_value"]


# --------------------------------------------------------------------------- inputs

def transaction_files(path_or_glob: str | Path) -> list[Path]:
    """The files of a partitioned dataset, sorted: one file, a directory (searched
    recursively for Parquet / CSV files) or a glob pattern."""
    text = str(path_or_glob)
    path = Path(text)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file()
                       and p.name.lower().endswith(_SUFFIXES))
    else:
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    if not files:
        raise DataError("no Parquet or CSV files found (give a file, a directory or a glob)",
                        file=text)
    return files


def _read_partition(path: str, rename: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One file, read as :func:`clv.transactions.load_transactions` reads it."""
    mapping = dict(rename or {})
    source_of = {ours: theirs for theirs, ours in mapping.items()}
    frame = read_table(path, dtype={source_of.get(c, c): str for c in ID_COLUMNS})
    return frame.rename(columns=mapping) if mapping else frame


def read_transactions(files: Sequence[Path], columns: Mapping[str, str] | None = None) -> Any:
    """A ``dask.dataframe`` with one partition per file (nothing is read until computed)."""
    import dask.dataframe as dd

    # meta is given (columns unknown until read) so that no file is read on the client.
    return dd.from_map(_read_partition, [str(f) for f in files], rename=columns,
                       meta=pd.DataFrame(), enforce_metadata=False, label="read-transactions")


def sum_reports(reports: Sequence[ExclusionReport], source: str) -> ExclusionReport:
    """One report for the whole dataset: rows and exclusion counts summed over partitions,
    notes kept with their file."""
    total = ExclusionReport(source=source)
    for report in reports:
        total.total_rows += report.total_rows
        for reason, count in report.excluded.items():
            total.exclude(reason, count)
        total.notes.extend(f"{report.source}: {note}" for note in report.notes)
    return total


# --------------------------------------------------------------------------- ids as bytes

#: ASCII bytes that str.strip() removes (tab, line feed, vertical tab, form feed, carriage
#: return, file/group/record/unit separators, space).
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True


def _string_buffers(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (n + 1, int64) and bytes (uint8) of an Arrow string column, without copying
    the characters into Python objects."""
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    array = array.cast(pa.large_string())
    _, offsets, data = array.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[array.offset: array.offset + len(array) + 1]
    return offsets, (np.frombuffer(data, dtype=np.uint8) if data is not None
                     else np.zeros(0, np.uint8))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads every input bit over the 64 output bits."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _hash_strings(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """A 64-bit hash of every string's bytes (a multilinear hash with per-position weights,
    then mixed), vectorized over all bytes at once: the same string gives the same hash in
    every process. It only places customers in buckets (a collision puts two customers in one
    bucket, which is harmless); ids are grouped by their strings."""
    lengths = np.diff(offsets)
    start, stop = int(offsets[0]), int(offsets[-1])
    total = np.zeros(len(lengths), np.uint64)
    if stop > start:
        position = np.arange(stop - start) - np.repeat(offsets[:-1] - start, lengths)
        with np.errstate(over="ignore"):
            terms = data[start:stop].astype(np.uint64) * _mix(position + 1)
        present = lengths > 0
        total[present] = np.add.reduceat(terms, (offsets[:-1] - start)[present])
    with np.errstate(over="ignore"):
        return _mix(total ^ (lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))


def _clean_ids(column: Any) -> bool:
    """True when every value of an Arrow string column is already its normalized id: present,
    ASCII (so NFC and NFKC leave it alone and it holds no zero-width character), not blank and
    without surrounding whitespace. Such ids pass :func:`clv.tables.normalize_ids` unchanged and
    cannot collide, so checking them is all the id validation they need."""
    if column.null_count:
        return False
    offsets, data = _string_buffers(column)
    lengths = np.diff(offsets)
    if not len(lengths):
        return True
    if (lengths == 0).any() or data[offsets[0]:offsets[-1]].max() >= 128:
        return False
    return not (_SPACE[data[offsets[:-1]]] | _SPACE[data[offsets[1:] - 1]]).any()


# --------------------------------------------------------------------------- fast validation

def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def fast_validate(table: Any, source: str, now: Any = None,
                  non_product_ids: Collection[str] = ()) -> tuple[Any, ExclusionReport] | None:
    """:func:`clv.transactions.validate_transactions` of an Arrow table, vectorized, for the
    common case of a typed Parquet file: timestamps, integer quantities, numeric prices and
    clean ASCII ids (every one already normalized), order ids present, no non-product line,
    no line after the current time unless ``now`` is given. It returns the kept lines (in file
    order, unsorted) and the same report as the reference; anything else (text timestamps, a
    bad value to name, ids to normalize, notes to write) returns None, and the caller runs the
    reference, which raises its errors and writes its notes."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = set(table.column_names)
    if not {*TRANSACTION_COLUMNS, "order_id"} <= names:
        return None
    kinds = {name: table.schema.field(name).type for name in (*TRANSACTION_COLUMNS, "order_id")}
    if not (pa.types.is_timestamp(kinds["timestamp"]) and pa.types.is_integer(kinds["quantity"])
            and (pa.types.is_floating(kinds["unit_price"])
                 or pa.types.is_integer(kinds["unit_price"]))
            and all(_is_text(kinds[c]) for c in ID_COLUMNS)):
        return None
    if table["timestamp"].null_count or table["quantity"].null_count:
        return None
    customer = table["customer_id"]
    missing_customer = customer.is_null()
    if not all(_clean_ids(table[c]) for c in ("product_id", "order_id")) or not _clean_ids(
            customer.filter(pc.invert(missing_customer))):
        return None
    if non_product_ids and pc.any(pc.is_in(table["product_id"], value_set=pa.array(
            sorted(map(str, non_product_ids))))).as_py():
        return None
    stamp = kinds["timestamp"]
    timestamp = table["timestamp"]
    if stamp.tz is not None:  # Arrow keeps UTC instants: dropping the zone is the UTC wall time
        timestamp = timestamp.cast(pa.timestamp(stamp.unit))
    moments = timestamp.to_numpy()
    quantity = table["quantity"].to_numpy().astype(np.int64)
    if np.abs(quantity).max(initial=0) > MAX_QUANTITY:
        return None
    price = table["unit_price"].to_numpy().astype(np.float64)  # null -> NaN
    report = ExclusionReport(source=source, total_rows=table.num_rows)
    keep = ~missing_customer.to_numpy(zero_copy_only=False)
    report.exclude("missing customer_id", int((~keep).sum()))
    if now is not None:
        future = keep & (moments > np.datetime64(utc_naive(now).to_datetime64()))
        report.exclude("timestamp after now", int(future.sum()))
        keep &= ~future
    elif len(moments) and moments.max() > np.datetime64(
            pd.Timestamp.now(tz="UTC").tz_localize(None).to_datetime64()):
        return None  # the reference notes rows dated in the future
    with np.errstate(invalid="ignore"):
        for reason, mask in (("missing unit_price", np.isnan(price)),
                             ("non-positive unit_price", price <= 0),
                             ("zero quantity", quantity == 0)):
            hit = keep & mask
            report.exclude(reason, int(hit.sum()))
            keep &= ~hit
    lines = pa.table({
        "customer_id": customer.cast(pa.large_string()),
        "timestamp": timestamp,
        "product_id": table["product_id"].cast(pa.large_string()),
        "quantity": pa.array(quantity),
        "unit_price": pa.array(price),
        "order_id": table["order_id"].cast(pa.large_string()),
    })
    return (lines if keep.all() else lines.filter(pa.array(keep))), report


def _validated_table(path: str, rename: Mapping[str, str] | None, now: Any,
                     non_product_ids: Collection[str]) -> tuple[Any, ExclusionReport]:
    """One file's validated lines as an Arrow table: :func:`fast_validate` when it applies,
    else the reference :func:`validate_transactions` (which names file and line on errors)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.lower().endswith(".parquet"):
        table = pq.read_table(path)
        if rename:
            table = table.rename_columns([rename.get(c, c) for c in table.column_names])
        fast = fast_validate(table, path, now, non_product_ids)
        if fast is not None:
            return fast
    lines, report = validate_transactions(_read_partition(path, rename), source=path, now=now,
                                          non_product_ids=non_product_ids)
    table = pa.Table.from_pandas(lines, preserve_index=False)
    return table.cast(pa.schema([pa.field(f.name, pa.large_string()) if _is_text(f.type)
                                 else f for f in table.schema])), report


# --------------------------------------------------------------------------- tasks

def _bucket_dir(scratch: Path, bucket: int) -> Path:
    return scratch / f"bucket={bucket:05d}"


def _customer_buckets(customer: Any, n_buckets: int) -> np.ndarray:
    """Bucket of every line from a hash of its customer id's bytes (the same in every
    process, so all of a customer's lines meet in one bucket)."""
    return (_hash_strings(*_string_buffers(customer)) % np.uint64(n_buckets)).astype(np.int64)


def _stage_file(path: str, index: int, scratch: str, n_buckets: int, now: Any,
                non_product_ids: Collection[str], rename: Mapping[str, str] | None,
                run: str = "") -> pd.DataFrame:
    """Read and validate one file, and write its lines into the customer buckets (Arrow IPC,
    lz4): each bucket receives the file's lines of its customers in file order. One row: the
    report (JSON), the last timestamp and the number of lines kept. ``run`` only makes each
    job's task keys its own (a second job on the same files must stage them again)."""
    import pyarrow as pa

    lines, report = _validated_table(path, rename, now, non_product_ids)
    if lines.num_rows:
        bucket = _customer_buckets(lines["customer_id"], n_buckets)
        order = np.argsort(bucket, kind="stable")
        counts = np.bincount(bucket, minlength=n_buckets)
        grouped = lines.take(pa.array(order))
        options = pa.ipc.IpcWriteOptions(compression="lz4")
        for b, start in zip(np.flatnonzero(counts), np.cumsum(counts)[counts > 0]
                            - counts[counts > 0], strict=True):
            out = _bucket_dir(Path(scratch), int(b))
            out.mkdir(parents=True, exist_ok=True)
            with pa.ipc.new_file(out / f"part-{index:06d}.arrow", grouped.schema,
                                 options=options) as writer:
                writer.write_table(grouped.slice(int(start), int(counts[b])))
    last = lines["timestamp"].to_numpy().max() if lines.num_rows else None
    return pd.DataFrame({"report": [json.dumps(report.to_dict())],
                         "last": [None if last is None else pd.Timestamp(last).isoformat()],
                         "rows": [lines.num_rows]})


def _bucket_lines(scratch: str, bucket: int, products: bool = True
                  ) -> tuple[pd.DataFrame, Any, Any]:
    """Every line of the bucket's customers in the one-process order (partitions in file
    order, then a stable sort by customer and timestamp, as :func:`validate_transactions`
    sorts), with customer, order and (``products``) product ids as integer codes (Arrow's
    dictionary encoding: exact, in C++); and the customer and product ids of the codes.
    Grouping integers, not strings, is what makes the bucket fast."""
    import pyarrow as pa
    import pyarrow.compute as pc

    files = sorted(_bucket_dir(Path(scratch), bucket).glob("part-*.arrow"))
    table = pa.concat_tables([pa.ipc.open_file(pa.memory_map(str(f))).read_all()
                              for f in files])
    codes = {}
    names = {}
    for column in ID_COLUMNS if products else ("customer_id", "order_id"):
        encoded = pc.dictionary_encode(table[column]).combine_chunks()
        codes[column] = encoded.indices.to_numpy()
        names[column] = encoded.dictionary
    timestamp = table["timestamp"].to_numpy()
    order = np.lexsort((timestamp, codes["customer_id"]))
    frame = pd.DataFrame({
        "customer_id": codes["customer_id"][order], "timestamp": timestamp[order],
        "quantity": table["quantity"].to_numpy()[order],
        "unit_price": table["unit_price"].to_numpy()[order],
        "order_id": codes["order_id"][order]})
    if products:
        frame["product_id"] = codes["product_id"][order]
    return frame, names["customer_id"], names.get("product_id")


def _ids(dictionary: Any, codes: np.ndarray) -> pd.Index:
    """The string ids of integer codes, as the one-process frame holds them (``str``)."""
    return pd.Index(dictionary.take(codes).to_pandas().astype(str).to_numpy(), dtype=str)


def _summarize_bucket(scratch: str, bucket: int, end: str, freq: str, buyers: bool = True
                      ) -> dict[str, Any]:
    """RFM summary of one bucket (written next to its lines), its distinct BG/NBD and spend
    rows with counts, and (``buyers``) its net (product, customer) purchases (written too)."""
    directory = _bucket_dir(Path(scratch), bucket)
    if not directory.exists():
        return {"n_without": 0, "bg": None, "spend": None, "customers": 0,
                "observation_end": None}
    lines, customers, products = _bucket_lines(scratch, bucket, products=buyers)
    # rfm_summary groups integer customer and order codes here: the same groups as the
    # strings (codes are one-to-one), the same line order within each group, so the same sums.
    summary = rfm_summary(lines, observation_end=end, freq=freq)
    attrs = dict(summary.attrs)
    summary.index = _ids(customers, summary.index.to_numpy())
    summary.index.name = "customer_id"
    summary = summary.sort_index()
    summary.attrs = attrs
    summary.to_parquet(directory / "summary.parquet")
    if buyers:
        net = lines.groupby(["product_id", "customer_id"], sort=False)["quantity"].sum()
        net = net[net > 0].index
        pd.DataFrame({"product_id": _ids(products, net.get_level_values(0).to_numpy()),
                      "customer_id": _ids(customers, net.get_level_values(1).to_numpy())}
                     ).to_parquet(directory / "buyers.parquet", index=False)
    repeat = summary[summary["frequency"] > 0]
    return {
        "n_without": int(attrs["n_customers_without_purchase"]),
        "bg": summary.groupby(_BG_KEYS, sort=True).size().rename("weight").reset_index(),
        "spend": repeat.groupby(_SPEND_KEYS, sort=True).size().rename("weight").reset_index(),
        "customers": len(summary), "observation_end": attrs["observation_end"],
    }


def _score_bucket(scratch: str, bucket: int, model: dict[str, Any], out: str | None
                  ) -> dict[str, Any]:
    """CLV of the bucket's customers and, per product, the count, mean and sum of squared
    deviations of its buyers' CLV (merged exactly by Chan's formula), plus the sum and count of
    distinct buyers' CLV for the global mean."""
    directory = _bucket_dir(Path(scratch), bucket)
    if not (directory / "summary.parquet").exists():
        return {"clv": None, "products": None, "buyer_sum": 0.0, "buyer_n": 0}
    summary = pd.read_parquet(directory / "summary.parquet")
    clv = pd.Series(CLVModel.from_dict(model).customer_clv(summary), index=summary.index,
                    name="clv")
    if out is not None:
        summary.assign(clv=clv.to_numpy()).to_parquet(Path(out) / f"part-{bucket:05d}.parquet")
    pairs = pd.read_parquet(directory / "buyers.parquet")
    pairs["clv"] = clv.reindex(pairs["customer_id"]).to_numpy()
    pairs = pairs[pairs["clv"].notna()]
    stats = pairs.groupby("product_id")["clv"].agg(["size", "mean", "var"])
    stats["m2"] = stats["var"].fillna(0.0) * (stats["size"] - 1)
    buyers = pairs.drop_duplicates("customer_id")["clv"]
    return {"clv": clv if out is None else None, "products": stats[["size", "mean", "m2"]],
            "buyer_sum": float(buyers.sum()), "buyer_n": len(buyers)}


# --------------------------------------------------------------------------- merging

def _merge_counts(tables: Sequence[pd.DataFrame | None], keys: list[str]) -> pd.DataFrame:
    """Distinct rows with their counts summed over buckets, sorted like ``_distinct``."""
    frames = [t for t in tables if t is not None and len(t)]
    if not frames:
        return pd.DataFrame({**{k: np.zeros(0) for k in keys}, "weight": np.zeros(0, np.int64)})
    return (pd.concat(frames, ignore_index=True).groupby(keys, sort=True)["weight"].sum()
            .reset_index())


def _merge_product_stats(parts: Sequence[pd.DataFrame | None]) -> pd.DataFrame:
    """Per-product (size, mean, var) of buyer CLV from per-bucket (size, mean, m2): buckets hold
    disjoint customers, so Chan's pairwise update gives the pooled moments."""
    frames = [p for p in parts if p is not None and len(p)]
    if not frames:
        return pd.DataFrame({"size": [], "mean": [], "var": []})
    stacked = pd.concat(frames)
    n = stacked["size"].groupby(level=0).sum()
    total = (stacked["size"] * stacked["mean"]).groupby(level=0).sum()
    mean = total / n
    deviation = stacked["mean"] - mean.reindex(stacked.index).to_numpy()
    m2 = (stacked["m2"] + stacked["size"] * deviation**2).groupby(level=0).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (m2 / (n - 1)).where(n > 1)
    return pd.DataFrame({"size": n, "mean": mean, "var": var})


def fit_from_counts(model: CLVModel, bg_rows: pd.DataFrame, spend_rows: pd.DataFrame,
                    freq: str) -> CLVModel:
    """Fit ``model`` on distinct rows with counts, as :meth:`CLVModel.fit` fits a summary.

    ``bg_rows``: distinct (frequency, recency, T) with ``weight`` over all customers;
    ``spend_rows``: distinct (frequency, monetary_value) with ``weight`` over repeat
    customers. CLVModel.fit groups a summary into exactly these rows before fitting; the steps
    below are its own (lifetimes' weighted fit, the trust-region fallback, the ridge notes,
    Gamma-Gamma), so parameters agree with a one-process fit of the same customers.
    """
    model._check_settings()
    if freq != model.time_unit:
        raise CLVFitError(f"the summary is in '{freq}' periods but time_unit is "
                          f"'{model.time_unit}'; horizon and discounting would be off")
    n = int(bg_rows["weight"].sum())
    n_repeat = int(spend_rows["weight"].sum())
    if n < 2:
        raise CLVFitError(f"cannot fit CLV on {n} customer(s): BG/NBD needs a population")
    if n_repeat == 0:
        raise CLVFitError(f"cannot fit BG/NBD: none of the {n} customers made a repeat "
                          "purchase; use a longer observation period")
    model.notes_ = []
    params = model._fit_bgnbd_rows(bg_rows)
    model.bgnbd_params_ = params
    model.log_likelihood_ = sum(
        w * bgnbd_log_likelihood(params, *(rows[k].to_numpy() for k in _BG_KEYS))
        for w, rows in bg_rows.groupby("weight"))
    model.n_customers_ = n
    model.n_repeat_customers_ = n_repeat
    frequency = spend_rows["frequency"].to_numpy()
    monetary = spend_rows["monetary_value"].to_numpy()
    weight = spend_rows["weight"].to_numpy()
    model.freq_monetary_corr_ = _weighted_pearson(frequency, monetary, weight)
    if abs(model.freq_monetary_corr_) > MAX_FREQ_MONETARY_CORR:
        model.notes_.append(
            f"frequency and spend are correlated (Pearson {model.freq_monetary_corr_:.2f} "
            f"over repeat customers, beyond +-{MAX_FREQ_MONETARY_CORR:g}); Gamma-Gamma "
            "assumes they are independent, so expected spend and CLV may be biased")
    spenders = monetary > 0
    model.mean_spend_ = (float(np.average(monetary[spenders], weights=weight[spenders]))
                         if spenders.any() else 0.0)
    # Gamma-Gamma's own step; it groups these repeated rows back into the same distinct rows.
    model.gg_params_ = model._fit_gamma_gamma(np.repeat(frequency[spenders], weight[spenders]),
                                              np.repeat(monetary[spenders], weight[spenders]))
    return model


def _weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """:func:`clv.model._pearson` of the rows repeated ``w`` times."""
    if w.sum() < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return _pearson(x[:0], y[:0])
    cov = np.cov(x, y, fweights=w)
    return float(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1]))


# --------------------------------------------------------------------------- the job

@dataclass
class ScaleCLVResult:
    """What :func:`fit_clv` made: the model, the summed report, and where the rest is."""

    model: CLVModel
    report: ExclusionReport
    observation_end: str
    n_customers: int
    n_customers_without_purchase: int
    bg_rows: pd.DataFrame
    spend_rows: pd.DataFrame
    n_buckets: int
    affinity: pd.DataFrame | None = None  # product_id -> affinity, buyers
    customers: pd.DataFrame | None = None  # when not written to disk
    timings: dict[str, float] = field(default_factory=dict)


def fit_clv(
    client: Any,
    path_or_glob: str | Path,
    scratch: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    non_product_ids: Collection[str] = (),
    now: Any = None,
    freq: str = "D",
    n_buckets: int | None = None,
    product_ids: Sequence[str] | None = None,
    customers_out: str | Path | None = None,
    model: CLVModel | None = None,
    note: Callable[[str], None] = lambda _: None,
) -> ScaleCLVResult:
    """Validate, summarize, fit and score a partitioned transactions dataset on ``client``.

    ``scratch`` receives the customer buckets (deleted at the end). ``n_buckets`` defaults to
    the number of files, so a bucket is about as large as an input file. Customers' rows (RFM +
    ``clv``) are written to ``customers_out`` as Parquet parts when given, else returned.
    Product affinity is computed for ``product_ids`` (or every product bought) when asked.
    """
    import time

    if freq not in ("D", "W"):
        raise ArgumentError(f"freq must be 'D' (days) or 'W' (weeks), not {freq!r}")
    files = transaction_files(path_or_glob)
    n_buckets = n_buckets or len(files)
    scratch = _fresh(Path(scratch))
    timings: dict[str, float] = {}
    try:
        start = time.perf_counter()
        report, end, summaries = _stage_and_summarize(
            client, files, scratch, columns=columns, non_product_ids=non_product_ids, now=now,
            freq=freq, n_buckets=n_buckets, source=str(path_or_glob))
        note(report.summary())
        bg_rows = _merge_counts([s["bg"] for s in summaries], _BG_KEYS)
        spend_rows = _merge_counts([s["spend"] for s in summaries], _SPEND_KEYS)
        buckets = list(range(n_buckets))
        timings["validate + rfm summary"] = time.perf_counter() - start

        start = time.perf_counter()
        model = fit_from_counts(model or CLVModel(time_unit=freq), bg_rows, spend_rows, freq)
        timings["fit"] = time.perf_counter() - start

        start = time.perf_counter()
        if customers_out is not None:
            Path(customers_out).mkdir(parents=True, exist_ok=True)
        scored = client.gather(client.map(
            _score_bucket, [str(scratch)] * n_buckets, buckets, model=model.to_dict(),
            out=None if customers_out is None else str(customers_out), pure=False))
        stats = _merge_product_stats([s["products"] for s in scored])
        buyer_n = sum(s["buyer_n"] for s in scored)
        global_mean = sum(s["buyer_sum"] for s in scored) / buyer_n if buyer_n else 0.0
        wanted = list(stats.index.astype(str)) if product_ids is None else product_ids
        affinity = _affinity(stats, global_mean, buyer_n, wanted)
        customers = (None if customers_out is not None else
                     pd.concat([s["clv"] for s in scored if s["clv"] is not None]).sort_index())
        timings["score + affinity"] = time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ScaleCLVResult(
        model=model, report=report, observation_end=end,
        n_customers=sum(s["customers"] for s in summaries),
        n_customers_without_purchase=sum(s["n_without"] for s in summaries),
        bg_rows=bg_rows, spend_rows=spend_rows, n_buckets=n_buckets, affinity=affinity,
        customers=customers, timings=timings)


def rfm_summary_partitioned(
    client: Any, path_or_glob: str | Path, scratch: str | Path, *,
    columns: Mapping[str, str] | None = None, non_product_ids: Collection[str] = (),
    now: Any = None, freq: str = "D", n_buckets: int | None = None,
) -> tuple[pd.DataFrame, ExclusionReport]:
    """The RFM summary of a partitioned dataset gathered into one frame sorted by customer_id,
    with the summed exclusion report (for summaries that fit in memory; :func:`fit_clv` keeps
    them on disk). Equal, row for row and in ``attrs``, to :func:`clv.rfm.rfm_summary` of the
    whole dataset loaded at once."""
    files = transaction_files(path_or_glob)
    scratch = _fresh(Path(scratch))
    try:
        report, _, summaries = _stage_and_summarize(
            client, files, scratch, columns=columns, non_product_ids=non_product_ids, now=now,
            freq=freq, n_buckets=n_buckets or len(files), source=str(path_or_glob))
        parts = [pd.read_parquet(p) for p in sorted(scratch.glob("bucket=*/summary.parquet"))]
        summary = pd.concat(parts).sort_index()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary.attrs.update(freq=freq, observation_end=next(
        s["observation_end"] for s in summaries if s["observation_end"]),
                         n_customers_without_purchase=sum(s["n_without"] for s in summaries))
    return summary, report


def write_rfm_summary(
    client: Any, path_or_glob: str | Path, scratch: str | Path, out: str | Path, *,
    columns: Mapping[str, str] | None = None, non_product_ids: Collection[str] = (),
    now: Any = None, freq: str = "D", n_buckets: int | None = None,
) -> tuple[dict[str, Any], ExclusionReport]:
    """The RFM summary of a partitioned dataset written as Parquet parts into ``out`` (one per
    customer bucket, each sorted by customer_id; disjoint customers), for summaries too large
    to gather into one process. Returns the summary's ``attrs`` plus ``n_customers`` and the
    summed exclusion report. The parts concatenated and sorted equal
    :func:`rfm_summary_partitioned`'s frame."""
    files = transaction_files(path_or_glob)
    scratch = _fresh(Path(scratch))
    out = _fresh(Path(out))
    try:
        report, _, summaries = _stage_and_summarize(
            client, files, scratch, columns=columns, non_product_ids=non_product_ids, now=now,
            freq=freq, n_buckets=n_buckets or len(files), source=str(path_or_glob),
            buyers=False)
        for part in sorted(scratch.glob("bucket=*/summary.parquet")):
            shutil.move(str(part), str(out / f"part-{part.parent.name.split('=')[1]}.parquet"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    attrs = {"freq": freq, "observation_end": next(
        s["observation_end"] for s in summaries if s["observation_end"]),
             "n_customers_without_purchase": sum(s["n_without"] for s in summaries),
             "n_customers": sum(s["customers"] for s in summaries)}
    return attrs, report


def _fresh(scratch: Path) -> Path:
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    return scratch


def _stage_and_summarize(
    client: Any, files: Sequence[Path], scratch: Path, *, columns: Mapping[str, str] | None,
    non_product_ids: Collection[str], now: Any, freq: str, n_buckets: int, source: str,
    buyers: bool = True,
) -> tuple[ExclusionReport, str, list[dict[str, Any]]]:
    """Pass 1 (validate each partition, bucket its lines by customer) and pass 2 (summarize
    each bucket at the global observation end): the summed report, the end, per-bucket
    results."""
    import dask.dataframe as dd

    meta = pd.DataFrame({"report": pd.Series(dtype=object), "last": pd.Series(dtype=object),
                         "rows": pd.Series(dtype=np.int64)})
    staged = client.compute(dd.from_map(
        _stage_file, [str(f) for f in files], list(range(len(files))), scratch=str(scratch),
        n_buckets=n_buckets, now=now, non_product_ids=tuple(non_product_ids), rename=columns,
        meta=meta, enforce_metadata=False, label="validate-and-bucket",
        run=uuid.uuid4().hex)).result()
    report = sum_reports([ExclusionReport(**{k: v for k, v in json.loads(r).items()
                                             if k != "kept_rows"}) for r in staged["report"]],
                         source=source)
    lasts = [pd.Timestamp(t) for t in staged["last"] if t is not None and t == t]
    if not lasts:
        raise DataError("no usable transaction lines", file=source)
    end = max(lasts).isoformat()
    summaries = client.gather(client.map(_summarize_bucket, [str(scratch)] * n_buckets,
                                         list(range(n_buckets)), end=end, freq=freq,
                                         buyers=buyers, pure=False))
    return report, end, summaries


def _affinity(stats: pd.DataFrame, global_mean: float, n_buyers: int,
              product_ids: Sequence[str]) -> pd.DataFrame:
    """:func:`clv.segments.product_clv_affinity`'s shrunk means from the merged moments."""
    wanted = pd.Index([str(p) for p in product_ids])
    if n_buyers == 0:
        return pd.DataFrame({"affinity": np.zeros(len(wanted)),
                             "buyers": np.zeros(len(wanted), np.int64)}, index=wanted)
    stats = stats.copy()
    stats.index = stats.index.astype(str)
    # Where every product has one buyer, _prior_strength reads the pairs' CLVs: those are the
    # products' means then.
    strength = _prior_strength(pd.DataFrame({"clv": stats["mean"].to_numpy()}), stats)
    affinity, n = _shrunk_affinity(stats, wanted, strength, global_mean)
    return pd.DataFrame({"affinity": affinity, "buyers": n},
                        index=pd.Index(wanted, name="product_id"))
