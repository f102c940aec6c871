"""Reading and validating input tables (CSV, CSV.GZ or Parquet) with precise error messages.

Shared by every loader (transactions here; catalog and judgments in ``objectives``) so that all
of them report problems the same way: file, line, column, value. Nothing is silently dropped:
loaders that exclude rows record why in an :class:`ExclusionReport`.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import sys
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from clv.errors import DataError

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.zip", ".tsv", ".tsv.gz", ".tsv.zip")
#: Largest text read from one input file, after decompression (a 2 MB gzip can expand to
#: gigabytes): :envvar:`MARGINRANK_MAX_INPUT_BYTES` overrides it.
MAX_INPUT_BYTES = 2 << 30
MAX_INPUT_ENV = "MARGINRANK_MAX_INPUT_BYTES"
#: pandas' default missing-value spellings, applied to every column but the text ones (ids,
#: queries): there ``NA``, ``NULL``, ``None`` or ``nan`` is an id like any other.
NA_SPELLINGS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                "nan", "null")


def read_table(path: str | Path, *, dtype: dict[str, type] | None = None,
               encoding: str = "utf-8", max_bytes: int | None = None) -> pd.DataFrame:
    """Read a CSV/TSV (optionally ``.gz`` or ``.zip``) or Parquet file into a DataFrame.

    ``dtype`` pins columns such as ids to ``str`` so that "00123" stays "00123"; those
    columns are text, never missing: ``NA``, ``NULL``, ``None``, ``nan`` are read as written
    (an empty field stays ""), while the other columns keep pandas' missing spellings.
    ``encoding`` is for CSV files that predate UTF-8 (Home Depot's is latin-1). The text read
    is bounded by ``max_bytes`` after decompression (default :data:`MAX_INPUT_BYTES`); a
    decode error names its line, and a repeated column name is refused (pandas would rename
    the second ``price.1`` and the loader would silently ignore it). Any failure is a
    :class:`DataError` naming the file instead of a pandas traceback.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    name = path.name.lower()
    text_columns = {c for c, t in (dtype or {}).items() if t is str}
    try:
        if name.endswith(".parquet"):
            frame = pd.read_parquet(path)
            _refuse_repeated_columns([str(c) for c in frame.columns], path)
            if dtype:
                frame = frame.astype({c: t for c, t in dtype.items() if c in frame.columns})
            return frame
        if name.endswith(_CSV_SUFFIXES):
            sep = "\t" if ".tsv" in name else ","
            data = read_capped(path, max_bytes)
            _check_decodes(data, encoding, path)
            header = _header(data, encoding, sep)
            _refuse_repeated_columns(header, path)
            na = {c: list(NA_SPELLINGS) for c in header if c not in text_columns}
            return pd.read_csv(io.BytesIO(data), sep=sep, dtype=dtype, keep_default_na=False,
                               na_values=na, encoding=encoding)
    except DataError:
        raise  # already names the file and line (a DataError is also a ValueError)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"cannot parse table: {exc}", file=path) from exc
    raise DataError("unsupported file type; use .csv, .tsv (optionally .gz or .zip) or "
                    ".parquet", file=path)


def max_input_bytes(max_bytes: int | None = None) -> int:
    """The decompressed-size bound in force: ``max_bytes``, else the environment's, else
    :data:`MAX_INPUT_BYTES`."""
    if max_bytes is not None:
        return max_bytes
    configured = os.environ.get(MAX_INPUT_ENV, "")
    if configured:
        try:
            return int(configured)
        except ValueError as exc:
            raise DataError(f"{MAX_INPUT_ENV} must be a whole number of bytes, got "
                            f"{configured!r}") from exc
    return MAX_INPUT_BYTES


@contextmanager
def open_binary(path: Path) -> Iterator[IO[bytes]]:
    """The decompressed bytes of ``path``: plain, ``.gz``, or a ``.zip`` of one file."""
    name = path.name.lower()
    if name.endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            yield handle
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
            if len(members) != 1:
                raise DataError(f"a .zip input must hold exactly one file, found {len(members)}",
                                file=path)
            with archive.open(members[0]) as handle:
                yield handle
    else:
        with path.open("rb") as handle:
            yield handle


def read_capped(path: Path, max_bytes: int | None = None) -> bytes:
    """The decompressed bytes of ``path``, refused as soon as they pass the bound (so a
    small archive that expands without end costs at most the bound in memory)."""
    limit = max_input_bytes(max_bytes)
    chunks, total = [], 0
    try:
        with open_binary(path) as handle:
            while chunk := handle.read(min(1 << 24, limit + 1 - total)):
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise DataError(f"decompresses to more than {limit:,} bytes, the input "
                                    f"limit (set {MAX_INPUT_ENV} to raise it)", file=path)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read: {exc}", file=path) from exc
    return b"".join(chunks)


def _check_decodes(data: bytes, encoding: str, path: Path) -> None:
    """Refuse text that is not ``encoding``, naming the line of the first bad byte."""
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise DataError(f"not valid {encoding}: byte 0x{data[exc.start]:02x} at column "
                        f"{column} cannot be decoded (save the file as {encoding})",
                        file=path, line=line) from exc
    except LookupError as exc:
        raise DataError(f"unknown encoding {encoding!r}", file=path) from exc


def _header(data: bytes, encoding: str, sep: str) -> list[str]:
    """The column names as written (read here: pandas renames a repeated one)."""
    head = data[:1 << 20].decode(encoding, errors="replace")
    csv.field_size_limit(sys.maxsize)
    return next(csv.reader(io.StringIO(head), delimiter=sep), [])


def _refuse_repeated_columns(header: list[str], path: Path) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(header, 1):
        key = name.strip()
        if key in seen:
            raise DataError(f"column name {key!r} appears twice (columns {seen[key]} and {i}); "
                            "rename or remove one", file=path, line=1, column=key)
        seen[key] = i


#: Characters removed from ids wherever they are: invisible, so two ids differing by one
#: would look the same (zero-width space, non-joiner, joiner, word joiner, byte-order mark).
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
ID_RULE = ("Unicode NFC, surrounding whitespace and zero-width characters removed")


def normalize_id(text: str) -> str:
    """An id as compared and stored: Unicode NFC (composed "café" equals decomposed), with
    zero-width characters removed and surrounding whitespace stripped. NFKC is not applied:
    it would also fold "²" into "2" or "ﬁ" into "fi", changing ids that differ on purpose;
    ids that only NFKC would join (full-width "Ｐ00001" and "P00001") are refused instead by
    :func:`normalize_ids`."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFC", text)).strip()


def normalize_ids(values: pd.Series, column: str, file: str | Path) -> pd.Series:
    """``values`` with every id normalized (:func:`normalize_id`; missing, or blank once
    normalized, as NaN, fresh index), refusing two different spellings in one file that
    become the same id, or that differ only in width or compatibility form (NFKC), naming
    both rows. Each distinct spelling is normalized once (a million rows hold a few
    thousand ids)."""
    codes, uniques = pd.factorize(values.reset_index(drop=True), use_na_sentinel=True)
    spellings = pd.Series(np.asarray(uniques, dtype=object)).astype(str)
    present = codes >= 0
    # factorize numbers spellings in order of appearance: the first row of each, ascending
    _, first_rows = np.unique(codes[present], return_index=True)
    spellings.index = np.flatnonzero(present)[first_rows]
    normal = spellings.map(normalize_id)
    _refuse_joined(spellings, normal, column, file,
                   f"are the same id after normalization ({ID_RULE})")
    kept = ~normal.duplicated()
    _refuse_joined(spellings[kept], normal[kept].map(lambda t: unicodedata.normalize("NFKC", t)),
                   column, file, "look alike: they differ only in character width or "
                   "compatibility form (Unicode NFKC); write one spelling")
    table = np.append(normal.to_numpy(dtype=object), np.nan)
    table[:-1][table[:-1] == ""] = np.nan
    return pd.Series(table[np.where(present, codes, -1)], dtype=object)


def _refuse_joined(raw: pd.Series, key: pd.Series, column: str, file: str | Path,
                   reason: str) -> None:
    """Raise if two different ``raw`` spellings share a ``key``, naming both rows."""
    repeated = key.duplicated(keep=False)
    if not repeated.any():
        return
    clash = key[repeated].iloc[0]
    rows = key.index[key == clash][:2]
    first, second = (where(file, int(r)) for r in rows)
    line = line_of(file, int(rows[1]))
    raise DataError(f"ids {raw[rows[0]]!r} ({first}) and {raw[rows[1]]!r} ({second}) "
                    f"{reason}", file=file, line=line, column=column, value=raw[rows[1]])


def where(file: str | Path, position: int) -> str:
    """"line N" of data row ``position`` in ``file``, or "row N" where there are no lines."""
    line = line_of(file, position)
    return f"line {line}" if line is not None else f"row {position + 1}"


def line_of(file: str | Path, position: int) -> int | None:
    """1-based line of the CSV/TSV file where data row ``position`` (0-based) starts.

    Counts quoted newlines inside fields and skips blank lines as pandas does, so the number is
    the one an editor shows. Only computed when an error is raised, so a clean load pays nothing.
    None when ``file`` is not a CSV/TSV file on disk (Parquet, an in-memory frame).
    """
    path = Path(file)
    if not path.name.lower().endswith(_CSV_SUFFIXES) or not path.is_file():
        return None
    csv.field_size_limit(sys.maxsize)  # pandas has no field size limit; neither may we
    with open_binary(path) as binary:
        handle = io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(handle, delimiter="\t" if ".tsv" in path.name.lower() else ",")
        previous_end, record = 0, -1  # record -1 is the header
        try:
            for fields in reader:
                if any(f.strip() for f in fields):  # pandas skips blank lines, spaces or not
                    if record == position:
                        return previous_end + 1
                    record += 1
                previous_end = reader.line_num
        except csv.Error:
            return None
    return None


def locate(file: str | Path, position: int, reason: str) -> tuple[int | None, str]:
    """(line, reason) for a DataError about data row ``position``: the file line when there
    is one, otherwise the row number goes into the reason."""
    line = line_of(file, position)
    return (line, reason) if line is not None else (None, f"row {position + 1}: {reason}")


def require_columns(frame: pd.DataFrame, required: Iterable[str], *, file: str | Path) -> None:
    """Raise a :class:`DataError` listing every required column that is missing."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing required column(s) {missing}; found {list(frame.columns)}", file=file
        )


def numeric_column(
    frame: pd.DataFrame,
    column: str,
    *,
    file: str | Path,
    allow_missing: bool = False,
    min_value: float | None = None,
    max_value: float | None = None,
) -> np.ndarray:
    """Return ``frame[column]`` as float64, or raise at the first bad row.

    Bad means: not a number, NaN/inf (unless ``allow_missing``, which lets NaN through as
    "not given"), or outside ``[min_value, max_value]``.
    """
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    unparsable = np.isnan(values) & raw.notna().to_numpy()
    raise_at_first(unparsable, raw, column, file, "not a number")
    if not allow_missing:
        raise_at_first(np.isnan(values), raw, column, file, "missing value (NaN)")
    raise_at_first(np.isinf(values), raw, column, file, "infinite value")
    with np.errstate(invalid="ignore"):
        if min_value is not None:
            raise_at_first(values < min_value, raw, column, file, f"value below {min_value}")
        if max_value is not None:
            raise_at_first(values > max_value, raw, column, file, f"value above {max_value}")
    return values


def unique_column(frame: pd.DataFrame, column: str, *, file: str | Path) -> None:
    """Raise at the first repeated value of an id column."""
    dup = frame[column].duplicated(keep="first").to_numpy()
    raise_at_first(dup, frame[column], column, file, "duplicate id")


def raise_at_first(
    bad: np.ndarray, raw: pd.Series, column: str, file: str | Path, reason: str
) -> None:
    """Raise a :class:`DataError` at the first row flagged in ``bad``, with the total count."""
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        count = int(bad.sum())
        suffix = f" ({count} rows in all)" if count > 1 else ""
        line, where = locate(file, pos, reason + suffix)
        raise DataError(where, file=file, line=line, column=column,
                        value=raw.iloc[pos])


@dataclass
class ExclusionReport:
    """Counts of rows a loader excluded, by reason, so that nothing disappears unreported."""

    source: str
    total_rows: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    #: What the counts do not say: rows kept that look wrong (dated in the future), orders
    #: that lost every line to an exclusion.
    notes: list[str] = field(default_factory=list)

    def exclude(self, reason: str, count: int) -> None:
        """Record ``count`` rows excluded for ``reason`` (zero counts are not recorded)."""
        if count:
            self.excluded[reason] = self.excluded.get(reason, 0) + int(count)

    @property
    def kept_rows(self) -> int:
        return self.total_rows - sum(self.excluded.values())

    def summary(self) -> str:
        """One human line: kept/total and each exclusion reason with its count."""
        head = f"{self.source}: kept {self.kept_rows:,} of {self.total_rows:,} rows"
        if self.excluded:
            reasons = "; ".join(f"{n:,} {why}" for why, n in sorted(self.excluded.items()))
            head += f" (excluded: {reasons})"
        return "; ".join([head, *self.notes])

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "total_rows": self.total_rows,
                "kept_rows": self.kept_rows, "excluded": dict(self.excluded),
                "notes": list(self.notes)}
