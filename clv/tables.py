"""Reading and validating input tables (CSV, CSV.GZ or Parquet) with precise error messages.

Shared by every loader (transactions here; catalog and judgments in ``objectives``) so that all
of them report problems the same way: file, line, column, value. Nothing is silently dropped:
loaders that exclude rows record why in an :class:`ExclusionReport`.
"""

from __future__ import annotations

import csv
import gzip
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clv.errors import DataError

_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")


def read_table(path: str | Path, *, dtype: dict[str, type] | None = None,
               encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or Parquet file into a DataFrame.

    ``dtype`` pins columns such as ids to ``str`` so that "00123" stays "00123". ``encoding``
    is for CSV files that predate UTF-8 (Home Depot's is latin-1). Any parse failure becomes a
    :class:`DataError` naming the file instead of a pandas traceback.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            frame = pd.read_parquet(path)
            if dtype:
                frame = frame.astype({c: t for c, t in dtype.items() if c in frame.columns})
            return frame
        if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
            sep = "\t" if ".tsv" in name else ","
            return pd.read_csv(path, sep=sep, dtype=dtype, keep_default_na=True,
                               encoding=encoding)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"cannot parse table: {exc}", file=path) from exc
    raise DataError("unsupported file type; use .csv, .csv.gz, .tsv or .parquet", file=path)


def line_of(file: str | Path, position: int) -> int | None:
    """1-based line of the CSV/TSV file where data row ``position`` (0-based) starts.

    Counts quoted newlines inside fields and skips blank lines as pandas does, so the number is
    the one an editor shows. Only computed when an error is raised, so a clean load pays nothing.
    None when ``file`` is not a CSV/TSV file on disk (Parquet, an in-memory frame).
    """
    path = Path(file)
    if not path.name.lower().endswith(_CSV_SUFFIXES) or not path.is_file():
        return None
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    csv.field_size_limit(sys.maxsize)  # pandas has no field size limit; neither may we
    with opener(path, "rt", newline="", encoding="utf-8", errors="replace") as handle:
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
