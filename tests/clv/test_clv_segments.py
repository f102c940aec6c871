"""CLV quantiles, product CLV affinity (empirical-Bayes shrinkage) and the customer .npz file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clv import (
    DataError,
    clv_quantiles,
    load_customers,
    product_clv_affinity,
    save_customers,
)


def test_quantiles_average_ties_and_span_zero_to_one() -> None:
    np.testing.assert_allclose(clv_quantiles(np.array([10.0, 0.0, 5.0, 5.0, 20.0])),
                               [0.75, 0.0, 0.375, 0.375, 1.0])
    np.testing.assert_allclose(clv_quantiles(np.array([3.0, 3.0, 3.0])), 0.5)
    np.testing.assert_allclose(clv_quantiles(np.array([7.0])), [0.5])
    assert clv_quantiles(np.array([])).shape == (0,)


def test_top_decile_threshold_selects_a_tenth() -> None:
    values = np.random.default_rng(0).lognormal(size=1000)
    assert int((clv_quantiles(values) >= 0.9).sum()) == 100


def test_quantiles_equal_scipy_average_ranks() -> None:
    """pandas' average ranks (used to keep scipy.stats out of the service's imports) give
    exactly what scipy.stats.rankdata gives, ties included."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(0)
    for values in (rng.normal(size=500), np.round(rng.normal(size=500), 1), np.ones(4)):
        expected = (rankdata(values, method="average") - 1.0) / (values.size - 1.0)
        np.testing.assert_array_equal(clv_quantiles(values), expected)


def test_quantiles_refuse_nan() -> None:
    with pytest.raises(DataError, match="row 2: CLV values must be finite"):
        clv_quantiles(np.array([1.0, np.nan]))


def _buyers(product: str, customers: list[str], quantity: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": customers, "product_id": product,
                         "quantity": quantity})


@pytest.fixture(scope="module")
def market() -> tuple[pd.DataFrame, pd.Series]:
    """300 ordinary products (5-80 buyers, mild taste for CLV), a premium product with 200
    buyers drawn in proportion to CLV, and two-buyer products: "niche" bought by two
    customers at the 99th CLV percentile, "niche_top" by the two highest-CLV customers."""
    rng = np.random.default_rng(42)
    clv = pd.Series(rng.gamma(2.0, 50.0, 4000), index=[f"c{i}" for i in range(4000)])
    ids = clv.index.to_numpy()
    relative = (clv / clv.mean()).to_numpy()
    frames = []
    for k in range(300):
        taste = relative ** rng.normal(0.0, 0.3)
        chosen = rng.choice(ids, int(rng.integers(5, 80)), replace=False, p=taste / taste.sum())
        frames.append(_buyers(f"p{k}", list(chosen)))
    chosen = rng.choice(ids, 200, replace=False, p=relative / relative.sum())
    frames.append(_buyers("premium", list(chosen)))
    ranked = clv.sort_values().index
    frames.append(_buyers("niche", list(ranked[[-41, -40]])))
    frames.append(_buyers("niche_top", list(ranked[-2:])))
    return pd.concat(frames, ignore_index=True), clv


def test_two_buyers_do_not_make_a_star(market: tuple[pd.DataFrame, pd.Series]) -> None:
    tx, clv = market
    raw = clv.reindex(tx["customer_id"]).groupby(tx["product_id"].to_numpy()).mean()
    products = ["niche", "niche_top", "premium", "p0", "never-sold"]
    affinity, buyers = product_clv_affinity(tx, clv, products)
    niche, niche_top, premium, _, unsold = affinity
    assert buyers.tolist() == [2, 2, 200, int((tx["product_id"] == "p0").sum()), 0]
    assert buyers.dtype == np.int64 and affinity.dtype == np.float64
    ordinary = raw.drop(["niche", "niche_top"])
    assert raw["niche"] > ordinary.max() and raw["niche_top"] > raw["niche"]  # raw: stars
    # no buyers: the mean CLV of all distinct buyers
    assert unsold == pytest.approx(clv[tx["customer_id"].unique()].mean())
    # two good buyers do not outrank 200 buyers with a high mean; extreme ones are pulled
    # most of the way back to the population
    assert niche < premium
    assert (raw["niche_top"] - niche_top) > 0.8 * (raw["niche_top"] - unsold)
    # many buyers: barely shrunk
    assert premium == pytest.approx(raw["premium"], rel=0.05)


def test_returns_and_unknown_customers_are_not_buyers() -> None:
    clv = pd.Series({"a": 100.0, "b": 10.0, "c": 30.0})
    tx = pd.concat([
        _buyers("x", ["a", "b"]), _buyers("x", ["a"], quantity=-1),  # a returned it
        _buyers("y", ["a", "c", "ghost"]),                           # ghost has no CLV
    ], ignore_index=True)
    affinity, buyers = product_clv_affinity(tx, clv, ["y", "x"])
    assert buyers.tolist() == [2, 1]
    assert np.isfinite(affinity).all()


def test_no_signal_between_products_means_full_pooling() -> None:
    """Every product has the same buyers' spread: between-product variance <= 0."""
    clv = pd.Series({"a": 1.0, "b": 3.0})
    tx = pd.concat([_buyers("x", ["a", "b"]), _buyers("y", ["a", "b"])], ignore_index=True)
    affinity, _ = product_clv_affinity(tx, clv, ["x", "y"])
    np.testing.assert_allclose(affinity, [2.0, 2.0])


def test_customers_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "customers.npz"
    ids = ["00017", "c-2", "ü3"]
    save_customers(path, ids, np.array([1.5, 2.5, 0.0]), np.array([0.5, 1.0, 0.0]))
    loaded = load_customers(path)
    assert loaded.customer_ids.tolist() == ids and loaded.customer_ids.dtype.kind == "U"
    np.testing.assert_array_equal(loaded.clv, [1.5, 2.5, 0.0])
    np.testing.assert_array_equal(loaded.quantile, [0.5, 1.0, 0.0])


def test_customers_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="lengths differ"):
        save_customers(tmp_path / "bad.npz", ["a"], np.array([1.0, 2.0]), np.array([0.5]))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, customer_ids=np.array([{"a": 1}], dtype=object), clv=np.ones(1),
             quantile=np.ones(1))
    with pytest.raises(DataError, match="cannot read"):
        load_customers(pickled)
    with pytest.raises(DataError, match="cannot read"):
        load_customers(tmp_path / "missing.npz")
