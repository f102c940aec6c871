"""Seeded, documented stand-ins for the business data that public relevance datasets lack.

Home Depot's judgments (and WANDS', and most others') come without prices, costs, returns, stock
or purchases, yet margin lift and the tuner need them. These generators fill them in so the
benchmarks can run; every figure computed from them must be labelled **simulated**. They are
deliberately independent of relevance: a product's simulated margin says nothing about whether it
matches a query, so any margin the tuner finds comes from reordering, not from a planted link.

The distributions (all seeded with ``numpy.random.default_rng(seed)``):

- ``price``: lognormal, median $40, sigma 0.9, at least $1.00, rounded to cents;
- ``cost``: price x (1 - margin rate), margin rate ~ Beta(4, 8) (mean 33%); 1% of products are
  loss leaders with a margin rate uniform in [-15%, -2%];
- ``return_rate``: lognormal around 6% (sigma 0.6), clipped to [0.2%, 50%];
- ``daily_sales``: lognormal (sigma 1) scaled by (price / 40)^-0.5, so cheap items sell faster;
- ``stock``: weeks of cover lognormal around 8 weeks; 4% of products out of stock and 10%
  overstocked (26-60 weeks of cover);
- transactions: a BG/NBD world (see :func:`simulate_transactions`).

Only columns that are entirely missing are filled; a catalog's real values are never replaced.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Business columns this module can simulate, in catalog order.
SIMULATED_COLUMNS = ("price", "cost", "return_rate", "stock", "daily_sales")
TARGET_WEEKS_OF_COVER = 8.0


def simulate_business_fields(catalog: pd.DataFrame,
                             seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    """The catalog with each entirely-missing business column simulated, and their names."""
    rng = np.random.default_rng(seed)
    n = len(catalog)
    price = np.round(np.maximum(np.exp(rng.normal(np.log(40.0), 0.9, n)), 1.0), 2)
    rate = rng.beta(4.0, 8.0, n)
    leaders = rng.random(n) < 0.01
    rate[leaders] = rng.uniform(-0.15, -0.02, int(leaders.sum()))
    daily_sales = np.round(np.exp(rng.normal(0.0, 1.0, n)) * (price / 40.0) ** -0.5, 3)
    values = {
        "price": price,
        "cost": np.maximum(np.round(price * (1.0 - rate), 2), 0.01),
        "return_rate": np.round(np.clip(np.exp(rng.normal(np.log(0.06), 0.6, n)), 0.002, 0.5), 3),
        "stock": _stock(rng, daily_sales),
        "daily_sales": np.maximum(daily_sales, 0.001),
    }
    out = catalog.copy()
    filled = [c for c in SIMULATED_COLUMNS if c not in out.columns or out[c].isna().all()]
    for column in filled:
        out[column] = values[column]
    return out, filled


def _stock(rng: np.random.Generator, daily_sales: np.ndarray) -> np.ndarray:
    """Units in stock from weeks of cover: ~4% out of stock, ~10% overstocked."""
    n = len(daily_sales)
    weeks = np.clip(np.exp(rng.normal(np.log(TARGET_WEEKS_OF_COVER), 0.45, n)), 1.0, 24.0)
    kind = rng.random(n)
    weeks[kind < 0.10] = rng.uniform(26.0, 60.0, int((kind < 0.10).sum()))
    stock = np.maximum(np.round(daily_sales * 7.0 * weeks), 1.0)
    stock[kind > 0.96] = 0.0
    return stock.astype(np.int64)


def simulate_transactions(catalog: pd.DataFrame, seed: int = 0, customers: int = 20_000,
                          days: int = 730, start: str = "2024-01-01") -> pd.DataFrame:
    """Invoice lines from a BG/NBD world over ``days`` days, in the transactions contract.

    Each customer makes a first purchase uniformly in the first 60% of the window, then buys at a
    Poisson rate lambda ~ Gamma(0.75, scale 1/30 per day) and drops out after each purchase with
    probability p ~ Beta(0.8, 2.5) (the shapes of the paper's CDNOW fit, in days). Products are
    drawn in proportion to ``daily_sales`` (uniformly if the catalog has none), 1-3 units at the
    catalog price (or $10); a line is returned (a negative line 7 days later) with the product's
    ``return_rate``.
    """
    rng = np.random.default_rng(seed)
    starts = rng.uniform(0.0, 0.6 * days, customers)
    rate = rng.gamma(0.75, 1.0 / 30.0, customers)
    drop = rng.beta(0.8, 2.5, customers)
    who, when = _purchase_days(rng, starts, rate, drop, float(days))
    weights = _column(catalog, "daily_sales", 1.0)
    product = rng.choice(len(catalog), size=len(who), p=weights / weights.sum())
    quantity = rng.integers(1, 4, len(who))
    lines = pd.DataFrame({
        "order_id": [f"S{i:08d}" for i in range(len(who))],
        "customer_id": [f"C{c:06d}" for c in who],
        "day": when, "product": product, "quantity": quantity,
    })
    returned = rng.random(len(lines)) < _column(catalog, "return_rate", 0.0)[product]
    back = lines[returned & (when + 7.0 < days)].assign(day=lambda f: f["day"] + 7.0,
                                                         quantity=lambda f: -f["quantity"])
    lines = pd.concat([lines, back], ignore_index=True).sort_values("day", kind="stable")
    price = _column(catalog, "price", 10.0)
    return pd.DataFrame({
        "order_id": lines["order_id"].to_numpy(),
        "customer_id": lines["customer_id"].to_numpy(),
        "timestamp": (pd.Timestamp(start) + pd.to_timedelta(lines["day"], unit="D")).dt.floor("s")
        .dt.strftime("%Y-%m-%dT%H:%M:%S").to_numpy(),
        "product_id": catalog["product_id"].to_numpy()[lines["product"]],
        "quantity": lines["quantity"].to_numpy(),
        "unit_price": price[lines["product"]],
    })


def _purchase_days(rng: np.random.Generator, starts: np.ndarray, rate: np.ndarray,
                   drop: np.ndarray, days: float) -> tuple[np.ndarray, np.ndarray]:
    """(customer, day) of every purchase: the first at ``starts``, then Poisson gaps until the
    customer drops out or the window ends. Vectorized one purchase round at a time."""
    who, when = [np.arange(len(starts))], [starts]
    alive, now = np.ones(len(starts), bool), starts.copy()
    while alive.any():
        alive &= rng.random(len(now)) >= drop  # drop out right after a purchase
        now = now + rng.exponential(1.0, len(now)) / np.maximum(rate, 1e-9)
        alive &= now < days
        who.append(np.flatnonzero(alive))
        when.append(now[alive])
    return np.concatenate(who), np.concatenate(when)


def _column(catalog: pd.DataFrame, name: str, default: float) -> np.ndarray:
    """A numeric catalog column as float64, with NaN (or a missing column) as ``default``."""
    if name not in catalog.columns:
        return np.full(len(catalog), default)
    return catalog[name].astype(np.float64).fillna(default).to_numpy()
