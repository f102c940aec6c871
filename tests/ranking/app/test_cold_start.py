"""Cold start in a build: missing sales velocities take their brand priors (return rates stay
neutral: measured worse on UCI),
explain says which term values are priors, older bundles without the flags still load, and
one-order customers get a CLV-based segment (the BG/NBD posterior), unknown ones the default."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from objectives.config import TERM_NAMES
from objectives.priors import catalog_with_priors
from ranking.app.build import BuildInputs, BuildSettings, build
from ranking.app.cli import format_results
from ranking.ranker import Catalog, Ranker


@pytest.fixture(scope="module")
def gappy(small_world: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The small world with a tenth of the return rates and sales velocities blanked."""
    world = tmp_path_factory.mktemp("gappy")
    for name in ("judgments.csv", "transactions.csv.gz"):
        shutil.copy(small_world / name, world / name)
    catalog = pd.read_csv(small_world / "catalog.csv", dtype={"product_id": str})
    rng = np.random.default_rng(0)
    blank = rng.random(len(catalog)) < 0.1
    catalog.loc[blank, ["return_rate", "daily_sales"]] = np.nan
    catalog.to_csv(world / "catalog.csv", index=False)
    out = world / "bundle"
    build(BuildInputs(world / "catalog.csv", world / "judgments.csv",
                      world / "transactions.csv.gz"), out, BuildSettings(seed=3))
    return catalog, blank, out


def test_catalog_with_priors_marks_what_it_filled() -> None:
    catalog = pd.DataFrame({"category": ["a/x", "a/x", "a/y", "a/y"], "brand": ["p", "p", "q", "q"],
                            "return_rate": [0.1, np.nan, 0.3, 0.3], "stock": [1.0, 2, 3, 4],
                            "daily_sales": [1.0, 1, 1, 1]})
    filled, flags, notes = catalog_with_priors(catalog, np.array([0, 3, 1, 1]),
                                               columns={"return_rate": "returns",
                                                        "daily_sales": "inventory"})
    assert np.isfinite(filled["return_rate"]).all() and catalog["return_rate"].isna().sum() == 1
    assert flags[:, TERM_NAMES.index("returns")].tolist() == [False, True, False, False]
    assert flags[:, TERM_NAMES.index("clv")].tolist() == [True, False, False, False]
    assert not flags[:, TERM_NAMES.index("inventory")].any()
    assert not flags[:, TERM_NAMES.index("margin")].any()
    assert len(notes) == 1 and "return_rate" in notes[0]
    # By default only sales velocity is filled (return rates measured worse; see PRIOR_COLUMNS).
    default, default_flags, _ = catalog_with_priors(catalog)
    assert default["return_rate"].isna().sum() == 1 and not default_flags.any()


def test_build_fills_gaps_and_explain_says_so(gappy) -> None:  # noqa: ANN001
    catalog, blank, out = gappy
    ranker = Ranker.load(out)
    flags = ranker.catalog.from_prior
    assert flags.shape == (len(catalog), len(TERM_NAMES))
    assert not flags[:, TERM_NAMES.index("returns")].any()  # return rates: neutral, as before
    assert not ranker.catalog.terms[blank, TERM_NAMES.index("returns")].any()
    stocked = np.isfinite(catalog["stock"].to_numpy(float))
    inventory = TERM_NAMES.index("inventory")
    assert np.array_equal(flags[:, inventory], blank & stocked)
    # A blanked product's inventory term comes from its prior velocity, not neutral 0.
    assert np.count_nonzero(ranker.catalog.terms[blank & stocked, inventory]) > 0.5 * blank.sum()
    seen = 0
    for query in ("drill", "paint", "light", "door", "saw"):
        for r in ranker.search(query, k=20, explain=True):
            row = ranker.catalog.row_of[r.product_id]
            expected = [n for n, f in zip(TERM_NAMES, flags[row], strict=True) if f]
            assert r.from_prior == expected
            seen += bool(r.from_prior and "inventory" in r.from_prior)
    assert seen, "no searched product had a prior-based term"
    results = ranker.search("drill", k=20, explain=True)
    assert ("from priors" in format_results(results, explain=True)) == any(
        r.from_prior for r in results)
    assert all(r.from_prior is None for r in ranker.search("drill", k=5))


def test_bundles_without_prior_flags_still_load(gappy, tmp_path: Path) -> None:  # noqa: ANN001
    _, _, out = gappy
    catalog = Catalog.load(out)
    old = Catalog(catalog.product_ids, catalog.titles, catalog.categories, catalog.terms,
                  catalog.in_stock, catalog.priors, catalog.unit_margin, catalog.return_rate)
    old.save(tmp_path)
    with np.load(tmp_path / "products.npz", allow_pickle=False) as npz:
        assert "from_prior" not in npz.files
    assert Catalog.load(tmp_path).from_prior is None


def test_one_order_customers_get_a_clv_segment_unknown_the_default(gappy) -> None:  # noqa: ANN001
    from clv.rfm import rfm_summary
    from clv.transactions import load_transactions

    _, _, out = gappy
    ranker = Ranker.load(out)
    tx, _ = load_transactions(out.parent / "transactions.csv.gz")
    summary = rfm_summary(tx)
    one_order = summary.index[summary["frequency"] == 0].astype(str)
    assert len(one_order) > 0
    quantiles = [ranker.customers.quantile_of(c) for c in one_order]
    assert all(q is not None and 0.0 <= q <= 1.0 for q in quantiles)
    assert len(set(quantiles)) > 1  # they differ by T: the BG/NBD posterior, not one default
    assert ranker.customers.quantile_of("no-such-customer") is None
