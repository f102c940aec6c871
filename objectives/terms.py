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

from objectives.config import TERM_NAMES

#: Scales MAD to a standard deviation for normal data.
MAD_TO_SD = 1.4826
#: Weeks of cover credited to a product that has stock but no sales (caps the log ratio).
MAX_WEEKS_OF_COVER = 104.0


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


def weeks_of_cover(stock: np.ndarray, daily_sales: np.ndarray) -> np.ndarray:
    """Stock over weekly sales; capped for products that have stock but do not sell."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = stock / (7.0 * daily_sales)
    cover = np.where((stock > 0) & (daily_sales <= 0), MAX_WEEKS_OF_COVER, cover)
    cover = np.where((stock <= 0) & np.isfinite(stock) & np.isfinite(daily_sales), 0.0, cover)
    return np.minimum(cover, MAX_WEEKS_OF_COVER)


def compute_terms(
    catalog: pd.DataFrame,
    clv_affinity: np.ndarray | None = None,
    *,
    target_weeks: float = 8.0,
    clip: float = 3.0,
) -> TermTable:
    """Business terms for every catalog row, in :data:`TERM_NAMES` order.

    margin: unit margin (price - cost) on a signed log scale, because unit margins are as skewed
    as prices and a linear z-score would clip every expensive product to the same value.
    returns: minus the expected return rate. inventory: log of weeks of cover over
    ``target_weeks`` (the YAML's ``inventory.target_weeks_of_cover``), scaled but not
    re-centered, so a product exactly at the target is neutral, overstock pushes up and
    scarce stock down.
    clv: the product's CLV affinity (mean future value of its buyers).
    """
    price = catalog["price"].to_numpy(np.float64)
    cover = weeks_of_cover(catalog["stock"].to_numpy(np.float64),
                           catalog["daily_sales"].to_numpy(np.float64))
    unit_margin = price - catalog["cost"].to_numpy(np.float64)
    raw = {
        "margin": np.sign(unit_margin) * np.log1p(np.abs(unit_margin)),
        "clv": (np.full(len(catalog), np.nan) if clv_affinity is None
                else np.asarray(clv_affinity, dtype=np.float64)),
        "returns": -catalog["return_rate"].to_numpy(np.float64),
        "inventory": np.log((cover + 0.5) / (target_weeks + 0.5)),
    }
    zero = {"inventory": 0.0}  # at the target; the others are centered at their median
    values = np.column_stack([robust_z(raw[name], clip, zero.get(name)) for name in TERM_NAMES])
    raw["unit_margin"] = unit_margin
    stock = catalog["stock"].to_numpy(np.float64)
    return TermTable(
        names=TERM_NAMES, values=np.ascontiguousarray(values, dtype=np.float32), raw=raw,
        missing={name: int((~np.isfinite(raw[name])).sum()) for name in TERM_NAMES},
        in_stock=~(stock <= 0),
    )
