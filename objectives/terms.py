"""Per-product business terms, scaled to be comparable and oriented so "+weight = care more".

Each term is a float32 column: a robust z-score (median and MAD) of a raw business quantity,
clipped to ``[-clip, clip]`` so that one extreme product cannot dominate a ranking. Products
missing the underlying field get 0 (neutral) and are counted. Out-of-stock is deliberately not
a term: it is a guardrail applied by the blend core.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from objectives.term_registry import (
    MAX_WEEKS_OF_COVER,
    TERM_NAMES,
    TERMS,
    TermInputs,
    weeks_of_cover,
)

__all__ = ["MAX_WEEKS_OF_COVER", "TermTable", "compute_terms", "robust_z", "weeks_of_cover"]

#: Scales MAD to a standard deviation for normal data.
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class TermTable:
    """Scaled terms (n_products, len(names)) plus the raw values they came from."""

    names: tuple[str, ...]
    values: np.ndarray  # float32
    raw: dict[str, np.ndarray] = field(repr=False)
    missing: dict[str, int]
    in_stock: np.ndarray  # bool; products with unknown stock count as in stock

    def summary(self) -> str:
        gaps = ", ".join(f"{n}: {c:,}" for n, c in self.missing.items() if c) or "none"
        oos = int((~self.in_stock).sum())
        return (f"{len(self.names)} terms over {self.values.shape[0]:,} products; "
                f"neutral (missing) values: {gaps}; out of stock: {oos:,}")


def robust_z(values: np.ndarray, clip: float = 3.0, zero: float | None = None) -> np.ndarray:
    """(x - zero) / (1.4826 * MAD), clipped; NaN -> 0. Falls back to the SD if MAD is 0.

    ``zero`` is the value that maps to 0 (neutral), by default the median. The scale is always
    the spread around the median, so a fixed ``zero`` (a target) shifts the term without
    changing its units.
    """
    out = np.zeros(values.shape[0], dtype=np.float64)
    known = np.isfinite(values)
    if known.sum() < 2:
        return out.astype(np.float32)
    x = values[known]
    median = np.median(x)
    scale = MAD_TO_SD * np.median(np.abs(x - median))
    if scale <= 1e-12:
        scale = float(np.std(x))
    if scale > 1e-12:
        out[known] = np.clip((x - (median if zero is None else zero)) / scale, -clip, clip)
    return out.astype(np.float32)


def compute_terms(
    catalog: pd.DataFrame,
    clv_affinity: np.ndarray | None = None,
    *,
    target_weeks: float = 8.0,
    clip: float = 3.0,
) -> TermTable:
    """Business terms for every catalog row, in :data:`TERM_NAMES` order, as declared in
    :mod:`objectives.term_registry` (what each term means and where it is neutral).

    ``target_weeks`` is the YAML's ``inventory.target_weeks_of_cover``; ``clv_affinity`` the
    products' CLV affinity (mean future value of their buyers).
    """
    inputs = TermInputs(catalog, clv_affinity, target_weeks)
    raw = {t.name: t.raw(inputs) for t in TERMS}
    values = np.column_stack([robust_z(raw[t.name], clip, t.zero) for t in TERMS])
    raw["unit_margin"] = inputs.column("price") - inputs.column("cost")
    stock = inputs.column("stock")
    return TermTable(
        names=TERM_NAMES, values=np.ascontiguousarray(values, dtype=np.float32), raw=raw,
        missing={name: int((~np.isfinite(raw[name])).sum()) for name in TERM_NAMES},
        in_stock=~(stock <= 0),
    )
