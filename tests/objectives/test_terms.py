"""Business terms: scaling, orientation ("+weight = care more"), neutral missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from objectives.config import TERM_NAMES
from objectives.terms import MAX_WEEKS_OF_COVER, compute_terms, robust_z, weeks_of_cover


def catalog(**columns: list[float]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {c: [np.nan] * n for c in ("price", "cost", "return_rate", "stock", "daily_sales")}
    base.update(columns)
    return pd.DataFrame(base)


def test_robust_z_is_median_mad_scaled_clipped_and_neutral_for_nan() -> None:
    z = robust_z(np.array([1.0, 2.0, 3.0, 4.0, 1000.0, np.nan]))
    assert z[2] == 0.0  # the median
    assert z[4] == 3.0  # clipped
    assert z[5] == 0.0  # missing -> neutral
    assert z.dtype == np.float32
    assert np.all(robust_z(np.array([5.0, 5.0, 5.0])) == 0)


def test_orientation_positive_means_care_more() -> None:
    frame = catalog(price=[10, 10, 10, 10, 10], cost=[9, 7, 5, 3, 1],
                    return_rate=[0.0, 0.05, 0.1, 0.2, 0.4],
                    stock=[0, 10, 70, 700, 7000], daily_sales=[1, 1, 1, 1, 1])
    terms = compute_terms(frame, clv_affinity=np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert terms.names == TERM_NAMES
    for name in ("margin", "clv"):
        assert np.all(np.diff(terms.values[:, TERM_NAMES.index(name)]) > 0), name
    assert np.all(np.diff(terms.values[:, TERM_NAMES.index("returns")]) < 0)
    assert np.all(np.diff(terms.values[:, TERM_NAMES.index("inventory")]) > 0)
    assert terms.in_stock.tolist() == [False, True, True, True, True]


def test_missing_fields_are_neutral_and_counted() -> None:
    frame = catalog(price=[10, np.nan, 30, 12], cost=[5, 5, np.nan, 6])
    terms = compute_terms(frame)
    margin = terms.values[:, TERM_NAMES.index("margin")]
    assert margin[1] == 0 and margin[2] == 0
    assert terms.missing["margin"] == 2 and terms.missing["clv"] == 4
    assert terms.in_stock.all()  # unknown stock is not out of stock
    assert "margin: 2" in terms.summary()


def test_weeks_of_cover_edges() -> None:
    cover = weeks_of_cover(np.array([14.0, 5.0, 0.0, np.nan]), np.array([1.0, 0.0, 0.0, 1.0]))
    assert cover[0] == 2.0
    assert cover[1] == MAX_WEEKS_OF_COVER  # stock that never sells
    assert cover[2] == 0.0
    assert np.isnan(cover[3])


def test_inventory_is_neutral_at_the_target_and_the_target_moves_it() -> None:
    daily = [1.0] * 6
    frame = catalog(stock=[7 * w for w in (2, 4, 8, 8, 16, 32)], daily_sales=daily)
    inventory = TERM_NAMES.index("inventory")
    at_8 = compute_terms(frame, target_weeks=8.0).values[:, inventory]
    assert at_8[2] == at_8[3] == 0.0  # exactly 8 weeks of cover
    assert at_8[0] < at_8[1] < 0.0 < at_8[4] < at_8[5]
    at_4 = compute_terms(frame, target_weeks=4.0).values[:, inventory]
    assert at_4[1] == 0.0
    assert np.all(at_4 >= at_8) and np.any(at_4 > at_8)  # a lower target: more is overstock
