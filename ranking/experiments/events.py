"""The event contract: impressions (what a search showed) and outcomes (what the customer did).

Both are flat tables with a fixed pyarrow schema, written as Parquet (the default) or JSON lines
and read back from a directory ``DIR/impressions/*`` and ``DIR/outcomes/*``. Every reader and
writer goes through the same validation, so a readout never meets a row the contract forbids,
and a bad row is reported the way the other loaders report one: file, line (JSON lines) or row
(Parquet), column and value.

Impressions are one row per shown product; a search that showed nothing still writes one row
(``position`` -1, ``product_id`` null) so that it counts as a search. The raw query text is kept
by default next to ``query_hash`` (the first 16 hex digits of SHA-256 of the NFC query);
``keep_query=False`` writes the hash only. Ids are strings, Unicode NFC and stripped; ``NA``,
``NULL`` and ``None`` are ids like any other, never missing values.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clv.errors import DataError
from clv.tables import ExclusionReport

#: Outcome types, in funnel order.
OUTCOME_TYPES = ("click", "add_to_cart", "purchase", "return")
#: Outcome types that carry money: quantity and unit price are required.
MONEY_TYPES = ("purchase", "return")
#: Hex digits of SHA-256 kept in ``query_hash``: 64 bits, collisions negligible per query log.
QUERY_HASH_DIGITS = 16
#: Position of the single row a search that showed nothing writes.
NO_RESULT_POSITION = -1

TIMESTAMP = pa.timestamp("us", tz="UTC")

IMPRESSION_SCHEMA = pa.schema([
    pa.field("request_id", pa.string(), nullable=False),
    pa.field("timestamp", TIMESTAMP, nullable=False),
    pa.field("customer_id", pa.string()),  # null: an anonymous search (in no arm)
    pa.field("query", pa.string()),  # null when written with keep_query=False
    pa.field("query_hash", pa.string(), nullable=False),
    pa.field("config_version", pa.string(), nullable=False),
    pa.field("bundle_version", pa.string()),
    pa.field("experiment", pa.string()),
    pa.field("arm", pa.string()),  # null: base weights (outside every arm)
    pa.field("segment", pa.string()),  # CLV segment of the customer; null: defaults
    pa.field("product_id", pa.string()),  # null only on a no-result row (position -1)
    pa.field("position", pa.int32(), nullable=False),  # 1-based; -1: nothing shown
    pa.field("score", pa.float64()),  # null for a pinned product
    pa.field("propensity", pa.float64()),  # P(this product here); null unless randomized
    pa.field("randomized", pa.bool_()),  # the search was shuffled by exploration; null: unknown
])

OUTCOME_SCHEMA = pa.schema([
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("request_id", pa.string(), nullable=False),
    pa.field("product_id", pa.string(), nullable=False),
    pa.field("type", pa.string(), nullable=False),
    pa.field("timestamp", TIMESTAMP, nullable=False),
    pa.field("quantity", pa.int32()),  # required for purchase and return (units, >= 1)
    pa.field("unit_price", pa.float64()),  # required for purchase and return (>= 0)
    pa.field("unit_margin", pa.float64()),  # price - cost per unit; null: unknown
])

_ID_COLUMNS = {
    "impressions": ("request_id", "customer_id", "query", "config_version", "bundle_version",
                    "experiment", "arm", "segment", "product_id", "query_hash"),
    "outcomes": ("event_id", "request_id", "product_id", "type"),
}


def query_hash(query: str) -> str:
    """The stable short hash of a query: SHA-256 of its NFC form, first 16 hex digits."""
    return hashlib.sha256(unicodedata.normalize("NFC", query).encode()).hexdigest()[
        :QUERY_HASH_DIGITS]


def normalize_id(value: str) -> str:
    """An id as the contract stores it: Unicode NFC, surrounding whitespace stripped."""
    return unicodedata.normalize("NFC", value).strip()


# ---------------------------------------------------------------------------------------------
# Where a row came from, for error messages


@dataclass(frozen=True)
class _Source:
    """Names the origin of rows: a file (JSON lines: ``lines`` maps rows to file lines;
    Parquet: row numbers) or a list of records (``records[i]``)."""

    name: str
    lines: Sequence[int] | None = None
    records: bool = False

    def error(self, row: int, column: str | None, reason: str, value: object = None) -> DataError:
        if self.lines is not None:
            return DataError(reason, file=self.name, line=int(self.lines[row]), column=column,
                             value=value)
        where = f"records[{row}]" if self.records else f"row {row + 1}"
        return DataError(f"{where}: {reason}", file=self.name, column=column, value=value)


# ---------------------------------------------------------------------------------------------
# Validation: one column at a time, raising at the first bad row


def _as_arrow(values: pa.Array | pa.ChunkedArray | list[Any]) -> pa.Array | None:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return None


def _strings(values: Any, column: str, nullable: bool, src: _Source) -> pa.Array:
    """A string column, NFC and stripped; non-strings (a number as an id) are refused, since
    ``00123`` read as a number would become another id."""
    arr = _as_arrow(values)
    if arr is None or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
                           or pa.types.is_null(arr.type)):
        py = values if arr is None else arr.to_pylist()
        for row, v in enumerate(py):
            if v is not None and not isinstance(v, str):
                raise src.error(row, column, "must be text (an id or a name); quote numbers, "
                                "e.g. \"00123\", so they stay what they are", v)
        arr = pa.array(py, pa.string())
    arr = arr.cast(pa.string())
    if len(arr) and arr.null_count < len(arr):
        arr = pc.utf8_trim_whitespace(pc.utf8_normalize(arr, "NFC"))
    if not nullable and arr.null_count:
        row = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise src.error(row, column, "missing value")
    return arr


def _booleans(values: Any, column: str, src: _Source) -> pa.Array:
    """A nullable boolean column (an absent column is all null); anything else is refused."""
    arr = _as_arrow(values)
    if arr is not None and (pa.types.is_boolean(arr.type) or pa.types.is_null(arr.type)):
        return arr.cast(pa.bool_())
    py = values if arr is None else arr.to_pylist()
    for row, v in enumerate(py):
        if v is not None and not isinstance(v, bool):
            raise src.error(row, column, "not true or false", v)
    return pa.array(py, pa.bool_())


def _numbers(values: Any, column: str, src: _Source, *, integer: bool) -> pa.Array:
    """A float64 or int32 column; booleans, text and non-finite numbers are refused."""
    arr = _as_arrow(values)
    if arr is not None and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
                            or pa.types.is_null(arr.type)):
        py = None
    else:
        py = values if arr is None else arr.to_pylist()
        for row, v in enumerate(py):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise src.error(row, column, "not a number", v)
        arr = pa.array(py, pa.float64())
    as_float = arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
    bad = ~np.isfinite(as_float) & ~arr.is_null().to_numpy(zero_copy_only=False)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise src.error(row, column, "not a finite number", float(as_float[row]))
    if not integer:
        return arr.cast(pa.float64())
    frac = np.isfinite(as_float) & (as_float != np.round(as_float))
    if frac.any():
        row = int(np.flatnonzero(frac)[0])
        raise src.error(row, column, "not a whole number", float(as_float[row]))
    too_big = np.isfinite(as_float) & (np.abs(as_float) > 2**31 - 1)
    if too_big.any():
        row = int(np.flatnonzero(too_big)[0])
        raise src.error(row, column, "out of range", float(as_float[row]))
    return pa.array(np.where(np.isfinite(as_float), as_float, 0).astype(np.int32),
                    pa.int32(), mask=arr.is_null().to_numpy(zero_copy_only=False))


def _timestamps(values: Any, column: str, src: _Source) -> pa.Array:
    """UTC timestamps: Arrow timestamps (naive ones are read as UTC) or ISO 8601 text
    (``2026-12-07T10:00:00Z``; without an offset, UTC)."""
    arr = _as_arrow(values)
    if arr is not None and pa.types.is_timestamp(arr.type):
        if arr.type.tz is None:
            arr = pc.assume_timezone(arr, "UTC")
        out = arr.cast(TIMESTAMP)
    else:
        py = values if arr is None else arr.to_pylist()
        parsed: list[datetime | None] = []
        for row, v in enumerate(py):
            if isinstance(v, datetime):
                stamp = v
            elif isinstance(v, str):
                try:
                    stamp = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
                except ValueError:
                    raise src.error(row, column, "not an ISO 8601 date-time", v) from None
            elif v is None:
                raise src.error(row, column, "missing value")
            else:
                raise src.error(row, column, "not an ISO 8601 date-time", v)
            parsed.append(stamp.astimezone(UTC) if stamp.tzinfo else stamp.replace(tzinfo=UTC))
        out = pa.array(parsed, TIMESTAMP)
    if out.null_count:
        row = int(np.flatnonzero(out.is_null().to_numpy(zero_copy_only=False))[0])
        raise src.error(row, column, "missing value")
    return out


def _column(data: Mapping[str, Any], schema_field: pa.Field, n: int, src: _Source) -> pa.Array:
    name = schema_field.name
    values = data.get(name)
    if values is None:
        values = pa.nulls(n, pa.string())
    if pa.types.is_string(schema_field.type):
        return _strings(values, name, schema_field.nullable, src)
    if pa.types.is_timestamp(schema_field.type):
        return _timestamps(values, name, src)
    if pa.types.is_boolean(schema_field.type):
        return _booleans(values, name, src)
    arr = _numbers(values, name, src, integer=pa.types.is_integer(schema_field.type))
    if not schema_field.nullable and arr.null_count:
        row = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise src.error(row, name, "missing value")
    return arr


_REQUIRED = {
    "impressions": ("request_id", "timestamp", "config_version", "position"),
    "outcomes": ("event_id", "request_id", "product_id", "type", "timestamp"),
}


def _conform(kind: str, data: Mapping[str, Any], n: int, src: _Source) -> pa.Table:
    schema = IMPRESSION_SCHEMA if kind == "impressions" else OUTCOME_SCHEMA
    missing = [c for c in _REQUIRED[kind] if c not in data]
    if kind == "impressions" and "query" not in data and "query_hash" not in data:
        missing.append("query (or query_hash)")
    if missing:
        raise DataError(f"missing required column(s) {missing}; found {sorted(data)}",
                        file=src.name)
    data = dict(data)
    if kind == "impressions" and "query_hash" not in data:
        queries = _strings(data["query"], "query", False, src)
        data["query"] = queries
        data["query_hash"] = pa.array([query_hash(q) for q in queries.to_pylist()], pa.string())
    columns = [_column(data, f, n, src) for f in schema]
    table = pa.Table.from_arrays(columns, schema=schema)
    (_check_impressions if kind == "impressions" else _check_outcomes)(table, src)
    return table


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _np(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy()


def _check_impressions(table: pa.Table, src: _Source) -> None:
    position = _np(table, "position")
    no_product = table.column("product_id").is_null().to_numpy(zero_copy_only=False)
    if (row := _first((position < 1) & (position != NO_RESULT_POSITION))) is not None:
        raise src.error(row, "position", "positions are 1-based (-1: the search showed "
                        "nothing)", int(position[row]))
    if (row := _first(no_product & (position != NO_RESULT_POSITION))) is not None:
        raise src.error(row, "product_id", "missing value (only a row with position -1, a "
                        "search that showed nothing, has no product)")
    if (row := _first(~no_product & (position == NO_RESULT_POSITION))) is not None:
        raise src.error(row, "product_id", "a row with position -1 (nothing shown) must have "
                        "no product", table.column("product_id")[row].as_py())
    empty = pc.equal(table.column("product_id"), "").to_numpy(zero_copy_only=False)
    if (row := _first(np.asarray(empty, bool) & ~no_product)) is not None:
        raise src.error(row, "product_id", "empty id")
    prop = table.column("propensity").to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(prop) & ((prop <= 0.0) | (prop > 1.0))
    if (row := _first(bad)) is not None:
        raise src.error(row, "propensity", "a propensity is a probability in (0, 1]",
                        float(prop[row]))
    keys = pc.binary_join_element_wise(table.column("request_id"),
                                       pc.cast(table.column("position"), pa.string()), "\x00")
    dup = _duplicated(keys.to_numpy(zero_copy_only=False))
    if (row := _first(dup)) is not None:
        raise src.error(row, "position", "a request shows one product per position; this "
                        "(request_id, position) repeats", int(position[row]))


def _check_outcomes(table: pa.Table, src: _Source) -> None:
    kinds = table.column("type").to_numpy(zero_copy_only=False)
    bad = ~np.isin(kinds, OUTCOME_TYPES)
    if (row := _first(bad)) is not None:
        raise src.error(row, "type", f"must be one of {', '.join(OUTCOME_TYPES)}", kinds[row])
    money = np.isin(kinds, MONEY_TYPES)
    qty = table.column("quantity")
    qty_null = qty.is_null().to_numpy(zero_copy_only=False)
    if (row := _first(money & qty_null)) is not None:
        raise src.error(row, "quantity", f"required for a {kinds[row]}")
    q = qty.fill_null(1).to_numpy()
    if (row := _first(q < 1)) is not None:
        raise src.error(row, "quantity", "units are >= 1 (a return is type 'return', not a "
                        "negative quantity)", int(q[row]))
    price = table.column("unit_price").to_numpy(zero_copy_only=False)
    if (row := _first(money & np.isnan(price))) is not None:
        raise src.error(row, "unit_price", f"required for a {kinds[row]}")
    with np.errstate(invalid="ignore"):
        if (row := _first(price < 0)) is not None:
            raise src.error(row, "unit_price", "a price is >= 0", float(price[row]))


def _duplicated(values: np.ndarray) -> np.ndarray:
    """True at every repeat (not the first occurrence) of a value."""
    _, first = np.unique(values, return_index=True)
    dup = np.ones(values.shape[0], bool)
    dup[first] = False
    return dup


# ---------------------------------------------------------------------------------------------
# Public: building rows, validating, writing, reading


def impression_rows(request_id: str, customer_id: str | None, query: str,
                    results: Iterable[Any], *, config_version: str,
                    experiment: str | None = None, arm: str | None = None,
                    segment: str | None = None, bundle_version: str | None = None,
                    timestamp: datetime | None = None,
                    propensities: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """The impression rows of one search: one per shown result (``SearchResult`` objects or
    dicts with ``product_id``, ``rank`` and ``score``), or a single ``position`` -1 row when
    nothing was shown. What the service's logger and the simulator write."""
    stamp = timestamp or datetime.now(UTC)
    base = {"request_id": request_id, "timestamp": stamp, "customer_id": customer_id,
            "query": query, "query_hash": query_hash(query), "config_version": config_version,
            "bundle_version": bundle_version, "experiment": experiment, "arm": arm,
            "segment": segment}
    rows = []
    for i, result in enumerate(results):
        mapping = isinstance(result, Mapping)
        get = result.get if mapping else result.__getattribute__

        def own(name: str, r: Any = result, m: bool = mapping) -> Any:
            return r.get(name) if m else getattr(r, name, None)

        rows.append({**base, "product_id": get("product_id"), "position": int(get("rank")),
                     "score": get("score"),
                     "propensity": own("propensity") if propensities is None
                     else float(propensities[i]),
                     "randomized": own("randomized")})
    if not rows:
        rows.append({**base, "product_id": None, "position": NO_RESULT_POSITION,
                     "score": None, "propensity": None})
    return rows


def _from_rows(kind: str, rows: Any, src: _Source) -> pa.Table:
    if isinstance(rows, pa.Table):
        return _conform(kind, {n: rows.column(n) for n in rows.column_names}, rows.num_rows, src)
    records = list(rows)
    names: dict[str, None] = {}
    for row, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise src.error(row, None, "each record must be an object (a JSON dict)",
                            type(record).__name__)
        names.update(dict.fromkeys(record))
    data = {n: [r.get(n) for r in records] for n in names}
    return _conform(kind, data, len(records), src)


def validate_impressions(rows: Any, *, source: str = "<impressions>",
                         keep_query: bool = True) -> pa.Table:
    """An Arrow table of :data:`IMPRESSION_SCHEMA` from dicts or an Arrow table; raises a
    :class:`DataError` naming the record, column and value of the first bad row."""
    table = _from_rows("impressions", rows,
                       _Source(source, records=not isinstance(rows, pa.Table)))
    return table if keep_query else _drop_query(table)


def validate_outcome_records(records: Any, *, source: str = "<outcomes>") -> pa.Table:
    """An Arrow table of :data:`OUTCOME_SCHEMA` from a list of dicts (a ``POST /events``
    batch) or an Arrow table. Raises :class:`DataError` at the first bad record
    (``records[i]``, column, value). Event ids repeated within the batch with the same content
    are kept once (idempotent retries); with different content they are an error."""
    table = _from_rows("outcomes", records,
                       _Source(source, records=not isinstance(records, pa.Table)))
    deduped, _ = _dedupe_outcomes(table, _Source(source, records=True))
    return deduped


def _drop_query(table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("query")
    return table.set_column(i, IMPRESSION_SCHEMA.field("query"), pa.nulls(table.num_rows,
                                                                          pa.string()))


def _dedupe_outcomes(table: pa.Table, src: _Source) -> tuple[pa.Table, int]:
    """Drop exact repeats of an event id (a retried batch); raise on a conflicting one."""
    ids = table.column("event_id").to_numpy(zero_copy_only=False)
    dup = _duplicated(ids)
    if not dup.any():
        return table, 0
    rows = table.to_pylist()
    first: dict[str, dict[str, Any]] = {}
    for row, record in enumerate(rows):
        seen = first.setdefault(record["event_id"], record)
        if seen is not record and seen != record:
            raise src.error(row, "event_id", "event id repeated with different content",
                            record["event_id"])
    return table.filter(pa.array(~dup)), int(dup.sum())


def write_impressions(rows: Any, path: str | Path, *, keep_query: bool = True) -> Path:
    """Validate and write impressions to ``path`` (``.parquet``, or ``.jsonl``)."""
    return _write(validate_impressions(rows, source=str(path), keep_query=keep_query), path)


def write_outcomes(rows: Any, path: str | Path) -> Path:
    """Validate and write outcomes to ``path`` (``.parquet``, or ``.jsonl``)."""
    return _write(validate_outcome_records(rows, source=str(path)), path)


def _write(table: pa.Table, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.name.endswith(".jsonl"):
        with tmp.open("w", encoding="utf-8") as handle:
            for record in table.to_pylist():
                stamp = record["timestamp"]
                record["timestamp"] = stamp.isoformat().replace("+00:00", "Z")
                handle.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
    elif path.name.endswith(".parquet"):
        pq.write_table(table, tmp)
    else:
        raise DataError("unsupported event file type; use .parquet or .jsonl", file=path)
    tmp.replace(path)  # a reader never sees half a file
    return path


def _read_file(kind: str, path: Path) -> pa.Table:
    if path.name.endswith(".parquet"):
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"cannot read Parquet: {exc}", file=path) from exc
        return _conform(kind, {n: table.column(n) for n in table.column_names},
                        table.num_rows, _Source(str(path)))
    records, lines = [], []
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"not valid JSON: {exc.msg}", file=path, line=number) from None
            if not isinstance(record, dict):
                raise DataError("each line must be a JSON object", file=path, line=number)
            records.append(record)
            lines.append(number)
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    data = {n: [r.get(n) for r in records] for n in names}
    return _conform(kind, data, len(records), _Source(str(path), lines=lines))


def event_files(directory: str | Path, kind: str) -> list[Path]:
    """``DIR/<kind>/*.parquet`` and ``*.jsonl``, sorted by name (rotation order)."""
    folder = Path(directory) / kind
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.name.endswith((".parquet", ".jsonl")))


@dataclass
class Events:
    """Validated impressions and outcomes of one event directory, with what was excluded."""

    impressions: pa.Table
    outcomes: pa.Table
    report: ExclusionReport = field(default_factory=lambda: ExclusionReport("outcomes"))

    @property
    def searches(self) -> int:
        return len(pc.unique(self.impressions.column("request_id")))


def load_events(directory: str | Path) -> Events:
    """Read and validate ``DIR/impressions/*`` and ``DIR/outcomes/*`` (Parquet or JSON lines).

    Any bad row raises a :class:`DataError` (file, line or row, column, value). Repeated
    impression rows (same request and position) across files are an error; an outcome event id
    repeated with the same content is kept once, with different content an error. Outcomes of
    requests with no impression (e.g. the impression file rotated away) are excluded and
    counted in ``report``, never silently dropped.
    """
    directory = Path(directory)
    imp_files = event_files(directory, "impressions")
    if not imp_files:
        raise DataError("no impression files (expected impressions/*.parquet or *.jsonl)",
                        file=directory)
    imp_parts = [_read_file("impressions", p) for p in imp_files]
    impressions = pa.concat_tables(imp_parts)
    if len(imp_parts) > 1:
        _check_impressions(impressions, _Source(f"{directory}/impressions (all files)"))
    out_parts = [_read_file("outcomes", p) for p in event_files(directory, "outcomes")]
    outcomes = (pa.concat_tables(out_parts) if out_parts else OUTCOME_SCHEMA.empty_table())
    report = ExclusionReport("outcomes", total_rows=outcomes.num_rows)
    outcomes, repeats = _dedupe_outcomes(outcomes, _Source(f"{directory}/outcomes"))
    report.exclude("repeated event id (same content)", repeats)
    known = pc.is_in(outcomes.column("request_id"),
                     value_set=pc.unique(impressions.column("request_id")))
    report.exclude("request_id not among the impressions", int(len(known) - pc.sum(
        known).as_py()) if len(known) else 0)
    outcomes = outcomes.filter(known)
    return Events(impressions, outcomes, report)


def write_events(directory: str | Path, impressions: Any, outcomes: Any, *,
                 name: str = "events", fmt: str = "parquet",
                 keep_query: bool = True) -> tuple[Path, Path]:
    """Write one impressions file and one outcomes file into the directory layout
    ``DIR/impressions/<name>.<fmt>`` and ``DIR/outcomes/<name>.<fmt>``."""
    if fmt not in ("parquet", "jsonl"):
        raise DataError(f"format must be parquet or jsonl, got {fmt!r}")
    directory = Path(directory)
    return (write_impressions(impressions, directory / "impressions" / f"{name}.{fmt}",
                              keep_query=keep_query),
            write_outcomes(outcomes, directory / "outcomes" / f"{name}.{fmt}"))
