"""Inconsistency checks of the audit: ranges (a pandera schema), price below cost, margin and
return-rate outliers (robust z), stock without sales velocity, one-product categories, price
scale and currency mixes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from objectives.audit_findings import Finding, finding

N_EXAMPLES = 5
#: 1.4826 * MAD estimates the standard deviation of normal data.
MAD_SCALE = 1.4826
#: Fewest products a category needs before its return rates are compared with its median.
MIN_CATEGORY = 5
#: A high return rate must also exceed its category's median by this much (absolute): with
#: mostly-zero rates the MAD is tiny and a robust z alone flags ordinary values.
MIN_RETURN_EXCESS = 0.05
#: A price this many times above or below its category's median suggests a unit mix.
PRICE_SCALE = 20.0

_NON_NEGATIVE = ("price", "cost", "stock", "daily_sales")


def range_findings(catalog: pd.DataFrame) -> list[Finding | None]:
    """Values outside their contract range, found by a pandera schema validated lazily (every
    failure collected): negative prices, costs, stock or sales; return rates outside [0, 1]."""
    import pandera.pandas as pa  # import here: it is slow to import, only audits pay it
    from pandera.errors import SchemaErrors

    columns = {c: pa.Column(float, pa.Check.ge(0), nullable=True, required=False)
               for c in _NON_NEGATIVE}
    columns["return_rate"] = pa.Column(float, pa.Check.in_range(0.0, 1.0), nullable=True,
                                       required=False)
    frame = catalog[[c for c in columns if c in catalog.columns]].reset_index(drop=True)
    try:
        pa.DataFrameSchema(columns).validate(frame, lazy=True)
        failures = pd.DataFrame(columns=["column", "index", "failure_case"])
    except SchemaErrors as exc:
        failures = exc.failure_cases
    failures = failures[failures["index"].notna()]
    ids = catalog["product_id"].to_numpy()
    out: list[Finding | None] = []
    for code, cols in (("negative_value", _NON_NEGATIVE), ("return_rate_out_of_range",
                                                           ("return_rate",))):
        rows = failures[failures["column"].isin(cols)]
        at = rows["index"].astype(np.int64).to_numpy()
        examples = [{"product_id": ids[i], "column": c, "value": float(v)} for i, c, v in
                    zip(at[:N_EXAMPLES], rows["column"], rows["failure_case"], strict=False)]
        by_column = rows["column"].value_counts().to_dict()
        out.append(finding(code, ids[np.unique(at)], examples,
                           ", ".join(f"{c}: {n:,}" for c, n in by_column.items())))
    return out


def price_below_cost(catalog: pd.DataFrame) -> Finding | None:
    price, cost = catalog["price"].to_numpy(np.float64), catalog["cost"].to_numpy(np.float64)
    with np.errstate(invalid="ignore"):
        at = np.flatnonzero(price < cost)
    examples = [{"product_id": catalog["product_id"].iat[i], "price": float(price[i]),
                 "cost": float(cost[i])}
                for i in at[:N_EXAMPLES]]
    return finding("price_below_cost", catalog["product_id"].to_numpy()[at], examples)


def robust_z(values: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """(x - median) / (1.4826 MAD), median and MAD over the finite ``reference`` values;
    NaN where x is not finite or the MAD is 0."""
    finite = np.isfinite(values) & (True if reference is None else reference)
    if not finite.any():
        return np.full(values.shape, np.nan)
    med = np.median(values[finite])
    mad = MAD_SCALE * np.median(np.abs(values[finite] - med))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (values - med) / mad if mad > 0 else np.full(values.shape, np.nan)


def margin_outliers(catalog: pd.DataFrame, z_max: float,
                    reference: np.ndarray | None = None) -> Finding | None:
    """Margin rates (price - cost) / price with |robust z| above ``z_max``, over products sold
    at or above cost (those below are :func:`price_below_cost`'s). The median and MAD are of
    the ``reference`` rows (default all): a duplicate listing must not count twice."""
    price, cost = catalog["price"].to_numpy(np.float64), catalog["cost"].to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where((price > 0) & (price >= cost), (price - cost) / price, np.nan)
    z = robust_z(rate, reference)
    with np.errstate(invalid="ignore"):
        at = np.flatnonzero(np.abs(z) > z_max)
    examples = [{"product_id": catalog["product_id"].iat[i],
                 "margin_rate": round(float(rate[i]), 4), "robust_z": round(float(z[i]), 1)}
                for i in at[np.argsort(-np.abs(z[at]))][:N_EXAMPLES]]
    return finding("margin_outlier", catalog["product_id"].to_numpy()[at], examples,
                   f"|robust z| > {z_max:g} of the margin rate")


def _by_category(catalog: pd.DataFrame, values: np.ndarray, reference: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: its category's median and 1.4826 MAD of ``values`` and the category size,
    over the ``reference`` rows (default all)."""
    kept = values if reference is None else np.where(reference, values, np.nan)
    frame = pd.DataFrame({"c": catalog["category"].to_numpy(), "v": kept})
    grouped = frame.groupby("c")["v"]
    med = grouped.transform("median").to_numpy()
    frame["d"] = np.abs(kept - med)
    mad = MAD_SCALE * frame.groupby("c")["d"].transform("median").to_numpy()
    return med, mad, grouped.transform("count").to_numpy()


def return_rate_high(catalog: pd.DataFrame, z_max: float,
                     reference: np.ndarray | None = None) -> Finding | None:
    """Return rates in [0, 1] more than ``z_max`` robust standard deviations and
    :data:`MIN_RETURN_EXCESS` above their category's median (categories of at least
    :data:`MIN_CATEGORY` rated products)."""
    rate = catalog["return_rate"].to_numpy(np.float64)
    rate = np.where((rate >= 0) & (rate <= 1), rate, np.nan)
    med, mad, size = _by_category(catalog, rate, reference)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (rate - med) / mad
        at = np.flatnonzero((size >= MIN_CATEGORY) & (mad > 0) & (z > z_max)
                            & (rate - med >= MIN_RETURN_EXCESS))
    examples = [{"product_id": catalog["product_id"].iat[i], "return_rate": float(rate[i]),
                 "category_median": round(float(med[i]), 4), "robust_z": round(float(z[i]), 1)}
                for i in at[:N_EXAMPLES]]
    return finding("return_rate_high", catalog["product_id"].to_numpy()[at], examples,
                   f"robust z > {z_max:g} and {MIN_RETURN_EXCESS:g} above the category median")


def stock_without_velocity(catalog: pd.DataFrame) -> Finding | None:
    """Stock > 0 with daily_sales 0 or missing (when the catalog has daily_sales at all):
    weeks of cover is infinite or unknown."""
    sales = catalog["daily_sales"].to_numpy(np.float64)
    if np.isnan(sales).all():
        return None
    stock = catalog["stock"].to_numpy(np.float64)
    with np.errstate(invalid="ignore"):
        at = np.flatnonzero((stock > 0) & ~(sales > 0))
    examples = [{"product_id": catalog["product_id"].iat[i], "stock": float(stock[i]),
                 "daily_sales": None if np.isnan(sales[i]) else float(sales[i])}
                for i in at[:N_EXAMPLES]]
    return finding("stock_without_velocity", catalog["product_id"].to_numpy()[at], examples)


def single_product_categories(catalog: pd.DataFrame) -> Finding | None:
    category = catalog["category"].fillna("")
    counts = category[category != ""].value_counts()
    lonely = counts[counts == 1].index
    rows = catalog[category.isin(lonely)]
    examples = [{"category": c, "product_id": p} for c, p in
                zip(rows["category"].head(N_EXAMPLES), rows["product_id"], strict=False)]
    return finding("single_product_category", lonely, examples,
                   f"of {len(counts):,} categories")


def price_scale(catalog: pd.DataFrame, reference: np.ndarray | None = None) -> Finding | None:
    """Prices :data:`PRICE_SCALE` times above or below their category's median (categories of
    at least :data:`MIN_CATEGORY` priced products)."""
    price = catalog["price"].to_numpy(np.float64)
    med, _, size = _by_category(catalog, np.where(price > 0, price, np.nan), reference)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = price / med
        at = np.flatnonzero((size >= MIN_CATEGORY) & ((ratio > PRICE_SCALE)
                                                      | (ratio < 1 / PRICE_SCALE)))
    examples = [{"product_id": catalog["product_id"].iat[i], "price": float(price[i]),
                 "category_median": float(med[i])} for i in at[:N_EXAMPLES]]
    return finding("price_scale_outlier", catalog["product_id"].to_numpy()[at], examples)


def mixed_currency(catalog: pd.DataFrame) -> Finding | None:
    """More than one value in a ``currency`` column, when there is one."""
    if "currency" not in catalog.columns:
        return None
    counts = catalog["currency"].dropna().astype(str).str.strip().str.upper().value_counts()
    if len(counts) < 2:
        return None
    return finding("mixed_currency", counts.index, [{"currency": c, "products": int(n)}
                                                    for c, n in counts.items()])
