"""Loaders for the catalog and the relevance judgments (formats: docs/guide/data-formats.md).

Both validate and say exactly what is wrong (file, line, column, value). Business fields of the
catalog are optional: a missing value is kept as NaN, counted in :class:`CatalogReport`, and the
terms give it a neutral value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clv.errors import DataError
from clv.tables import (
    normalize_ids,
    numeric_column,
    raise_at_first,
    read_table,
    require_columns,
    unique_column,
)
from objectives.term_registry import TERM_COLUMNS

TEXT_COLUMNS = ("title", "description", "category", "brand", "attributes")
#: Optional numeric columns with their allowed range (inclusive): those the business terms read
#: (declared in :mod:`objectives.term_registry`), then the review fields the priors read.
NUMERIC_RANGES: dict[str, tuple[float, float]] = {
    **TERM_COLUMNS, "rating": (0.0, 5.0), "review_count": (0.0, np.inf),
}
#: Numeric columns that count units, so a fraction is a data error (``2.0`` is fine).
WHOLE_COLUMNS = ("stock", "review_count")


@dataclass
class CatalogReport:
    """What the catalog loader saw: rows, and missing values per optional field."""

    source: str
    rows: int
    missing: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        gaps = ", ".join(f"{c}: {n:,}" for c, n in self.missing.items() if n) or "none"
        return f"{self.source}: {self.rows:,} products; missing business values: {gaps}"


def load_catalog(path: str | Path) -> tuple[pd.DataFrame, CatalogReport]:
    """Read and validate a catalog file; see :func:`validate_catalog`."""
    frame = read_table(path, dtype={"product_id": str})
    return validate_catalog(frame, source=str(path))


def validate_catalog(
    frame: pd.DataFrame, *, source: str = "<catalog>"
) -> tuple[pd.DataFrame, CatalogReport]:
    """Check a catalog and return it with every known column present and typed.

    Missing text becomes ""; missing numbers stay NaN (counted). Errors: missing required
    columns, empty or duplicate product ids, empty titles, non-numeric or out-of-range numbers
    such as a negative price.
    """
    require_columns(frame, ("product_id", "title"), file=source)
    if frame.empty:
        raise DataError("the catalog has no products", file=source)
    out = pd.DataFrame({"product_id": _ids(frame, "product_id", source)})
    _reject_blank(out["product_id"], "product_id", source)
    unique_column(out, "product_id", file=source)
    _reject_blank(frame["title"].astype("string"), "title", source)
    for col in TEXT_COLUMNS:
        out[col] = frame[col].fillna("").astype(str) if col in frame.columns else ""
    report = CatalogReport(source=source, rows=len(frame))
    for col, (lo, hi) in NUMERIC_RANGES.items():
        if col not in frame.columns:
            out[col] = np.nan
            report.missing[col] = len(frame)
            continue
        out[col] = numeric_column(frame, col, file=source, allow_missing=True,
                                  min_value=lo, max_value=hi)
        if col in WHOLE_COLUMNS:
            raise_at_first(out[col].to_numpy() % 1 > 0, frame[col], col, source,
                           "not a whole number")
        report.missing[col] = int(out[col].isna().sum())
    out["product_id"] = out["product_id"].astype(str)
    return out.reset_index(drop=True), report


def load_judgments(path: str | Path, product_ids: pd.Index | None = None) -> pd.DataFrame:
    """Read and validate judgments; see :func:`validate_judgments`."""
    frame = read_table(path, dtype={"product_id": str, "query_id": str, "query": str})
    return validate_judgments(frame, source=str(path), product_ids=product_ids)


def validate_judgments(
    frame: pd.DataFrame, *, source: str = "<judgments>", product_ids: pd.Index | None = None
) -> pd.DataFrame:
    """Check judgments: columns, finite grades, known products, no repeated (query, product).

    Without a ``query_id`` column each distinct query text is its own query.
    """
    require_columns(frame, ("query", "product_id", "grade"), file=source)
    out = pd.DataFrame({
        "query": frame["query"].astype("string"),
        "product_id": _ids(frame, "product_id", source),
    })
    _reject_blank(out["query"], "query", source)
    _reject_blank(out["product_id"], "product_id", source)
    out["grade"] = numeric_column(frame, "grade", file=source, min_value=0.0)
    out["query_id"] = (_ids(frame, "query_id", source) if "query_id" in frame.columns
                       else frame["query"].astype("string"))
    _reject_blank(out["query_id"], "query_id", source)
    if product_ids is not None:
        raise_at_first(~out["product_id"].isin(product_ids).to_numpy(), out["product_id"],
                       "product_id", source, "unknown product")
    raise_at_first(out.duplicated(["query_id", "product_id"]).to_numpy(), out["product_id"],
                   "product_id", source, "repeated (query_id, product_id) judgment")
    return out.astype({"query": str, "product_id": str, "query_id": str}).reset_index(drop=True)


def _ids(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    """An id column as normalized text (see :func:`clv.tables.normalize_ids`), on the frame's
    index; the loaders read id columns as text, so ``NA`` or ``None`` is an id."""
    ids = normalize_ids(frame[column].astype("string"), column, source)
    return ids.set_axis(frame.index).astype("string")


def _reject_blank(values: pd.Series, column: str, source: str) -> None:
    blank = (values.isna() | (values.fillna("").str.strip() == "")).to_numpy()
    raise_at_first(blank, values, column, source, f"empty {column}")
