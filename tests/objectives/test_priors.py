"""Hierarchical shrinkage priors (objectives.priors): strengths recovered from synthetic data,
products with much data keep their own value, new products get their brand's or category's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from objectives.priors import (
    MIN_PSEUDO_COUNT,
    grouped_tau2,
    product_stats,
    shrink_hierarchical,
)


def _world(seed: int = 0, products: int = 3000, m: float = 20.0):
    """Three-level normal world: category means N(0, 1), brand effects N(0, 0.5^2), product
    effects N(0, sigma^2 / m), observations N(theta, sigma^2) with sigma = 1."""
    rng = np.random.default_rng(seed)
    cat = rng.integers(0, 10, products)
    brand = rng.integers(0, 8, products)
    cat_mean = rng.normal(0.0, 1.0, 10)
    brand_effect = rng.normal(0.0, 0.5, (10, 8))
    theta = cat_mean[cat] + brand_effect[cat, brand] + rng.normal(0.0, np.sqrt(1.0 / m), products)
    n = rng.integers(1, 60, products)
    obs = [rng.normal(t, 1.0, k) for t, k in zip(theta, n, strict=True)]
    mean = np.array([o.mean() for o in obs])
    var = np.array([o.var(ddof=1) if o.size > 1 else np.nan for o in obs])
    groups = pd.DataFrame({"category": cat.astype(str), "brand": brand.astype(str)})
    return groups, n.astype(float), mean, var, theta


@pytest.mark.parametrize("m", [5.0, 20.0, 80.0])
def test_recovers_a_known_pseudo_count(m: float) -> None:
    groups, n, mean, var, theta = _world(m=m)
    fit = shrink_hierarchical(groups, n, mean, var)
    assert fit.pseudo_count == pytest.approx(m, rel=0.35)
    assert fit.sigma2 == pytest.approx(1.0, rel=0.05)
    assert fit.tau2["brand"] == pytest.approx(0.25, rel=0.35)
    # Shrinkage helps: closer to the truth than the products' own means.
    assert np.abs(fit.estimate - theta).mean() < 0.9 * np.abs(mean - theta).mean()


def test_a_product_with_lots_of_data_keeps_its_own_value() -> None:
    groups, n, mean, var, _ = _world()
    n[0], mean[0], var[0] = 1e6, 7.5, 1.0
    fit = shrink_hierarchical(groups, n, mean, var)
    assert fit.estimate[0] == pytest.approx(7.5, abs=1e-3)
    assert not fit.from_prior[0]


def test_new_products_get_their_brand_then_category_prior() -> None:
    groups, n, mean, var, _ = _world()
    extra = pd.DataFrame({"category": ["3", "3", "new-cat"], "brand": ["2", "new-brand", "x"]})
    groups = pd.concat([groups, extra], ignore_index=True)
    n = np.append(n, [0, 0, 0])
    mean = np.append(mean, [np.nan] * 3)
    var = np.append(var, [np.nan] * 3)
    fit = shrink_hierarchical(groups, n, mean, var)
    brand = fit.group_estimates["brand"]["3/2"]
    category = fit.group_estimates["category"]["3"]
    assert fit.estimate[-3] == pytest.approx(brand)
    assert fit.estimate[-2] == pytest.approx(category)
    assert fit.estimate[-1] == pytest.approx(fit.catalog_mean)
    assert fit.from_prior[-3:].all() and not fit.from_prior[:-3].any()
    # The brand prior is near the brand's data mean (lots of products), not the catalog's.
    in_brand = (groups["category"] == "3") & (groups["brand"] == "2") & (n > 0)
    raw = float((n[in_brand] * mean[in_brand]).sum() / n[in_brand].sum())
    assert abs(brand - raw) < 0.1
    assert abs(brand - fit.catalog_mean) > 0.1 or abs(raw - fit.catalog_mean) < 0.1


def test_no_signal_between_products_pools_them() -> None:
    rng = np.random.default_rng(1)
    products = 500
    n = np.full(products, 10.0)
    obs = rng.normal(2.0, 1.0, (products, 10))
    groups = pd.DataFrame({"category": ["a"] * products})
    fit = shrink_hierarchical(groups, n, obs.mean(axis=1), obs.var(axis=1, ddof=1))
    assert fit.tau2["product"] < 0.02
    assert fit.pseudo_count >= MIN_PSEUDO_COUNT
    assert np.ptp(fit.estimate) < 0.5 * np.ptp(obs.mean(axis=1))


def test_missing_keys_are_a_group_of_their_own() -> None:
    groups = pd.DataFrame({"category": ["a", "a", None, None], "brand": [None, "b", None, "c"]})
    fit = shrink_hierarchical(groups, np.array([5.0, 5, 5, 0]), np.array([1.0, 2, 3, np.nan]),
                              np.array([1.0, 1, 1, np.nan]))
    assert np.isfinite(fit.estimate).all()
    assert "(missing)/(missing)" in fit.group_estimates["brand"]


def test_grouped_tau2_is_zero_without_pairs() -> None:
    assert grouped_tau2(np.array([1.0, 5.0]), np.array([1.0, 1.0]), np.array([0, 1])) == 0.0


def test_product_stats() -> None:
    stats = product_stats(["a", "b", "c"], ["a", "a", "b"], [1.0, 3.0, 5.0])
    assert stats["n"].tolist() == [2, 1, 0]
    assert stats["mean"].tolist()[:2] == [2.0, 5.0]
    assert stats["var"].iloc[0] == 2.0 and np.isnan(stats["var"].iloc[1])


def test_fill_from_priors_gives_missing_products_their_brand_prior() -> None:
    from objectives.priors import fill_from_priors

    rng = np.random.default_rng(2)
    rows = []
    for c in range(6):
        for b in range(5):
            level = 0.02 * c + 0.05 * b
            rows += [{"category": f"Top{c % 2}/Cat{c}", "brand": f"B{b}",
                      "return_rate": level + rng.normal(0, 0.005)} for _ in range(12)]
    catalog = pd.DataFrame(rows)
    catalog.loc[[0, 13], "return_rate"] = np.nan  # Cat0/B0 and Cat0/B1
    catalog = pd.concat([catalog, pd.DataFrame([{"category": "Top0/Cat0", "brand": "New",
                                                  "return_rate": np.nan}])], ignore_index=True)
    filled, from_prior, fit = fill_from_priors(catalog, "return_rate")
    assert from_prior.tolist() == [i in (0, 13, len(catalog) - 1) for i in range(len(catalog))]
    assert filled[0] == pytest.approx(0.0, abs=0.02)  # category mean: 0.1
    assert filled[13] == pytest.approx(0.05, abs=0.02)
    # An unseen brand: its category's estimate (between that category's brands).
    assert 0.0 < filled[-1] < 0.2
    assert fit is not None and fit.pseudo_count < 5  # brands differ far more than noise
    kept = ~from_prior
    assert np.array_equal(filled[kept], catalog["return_rate"].to_numpy()[kept])


def test_fill_from_priors_without_gaps_changes_nothing() -> None:
    from objectives.priors import fill_from_priors

    catalog = pd.DataFrame({"category": ["a", "b"], "brand": ["x", "y"], "daily_sales": [1.0, 2]})
    filled, from_prior, fit = fill_from_priors(catalog, "daily_sales")
    assert filled.tolist() == [1.0, 2.0] and not from_prior.any() and fit is None
