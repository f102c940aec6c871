"""The public-data loader and the seeded business-field simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clv.errors import DataError
from clv.transactions import validate_transactions
from objectives.catalog import validate_catalog
from objectives.public_data import load_home_depot
from objectives.simulate import SIMULATED_COLUMNS, simulate_business_fields, simulate_transactions


@pytest.mark.realdata
def test_home_depot_loads_into_the_generic_contract(home_depot: Path) -> None:
    catalog, judgments, notes = load_home_depot(home_depot)
    assert len(catalog) == 54_667 and len(judgments) == 74_067
    assert judgments["query_id"].nunique() == 11_795
    assert judgments["grade"].between(1.0, 3.0).all()
    assert any("two titles" in n for n in notes)


def test_home_depot_loader_names_a_missing_column(tmp_path: Path) -> None:
    bad = tmp_path / "train.csv"
    bad.write_text("id,product_uid,product_title,relevance\n1,100001,Drill,3\n", encoding="latin-1")
    with pytest.raises(DataError, match="search_term"):
        load_home_depot(bad)


def _catalog(n: int = 500) -> pd.DataFrame:
    frame = pd.DataFrame({"product_id": [f"P{i}" for i in range(n)],
                          "title": [f"item {i}" for i in range(n)]})
    return validate_catalog(frame)[0]


def test_simulation_is_seeded_plausible_and_valid() -> None:
    first, filled = simulate_business_fields(_catalog(), seed=3)
    again, _ = simulate_business_fields(_catalog(), seed=3)
    other, _ = simulate_business_fields(_catalog(), seed=4)
    assert filled == list(SIMULATED_COLUMNS)
    pd.testing.assert_frame_equal(first, again)
    assert not first["price"].equals(other["price"])
    validate_catalog(first)  # every simulated value is inside the contract's ranges
    margin = 1.0 - first["cost"] / first["price"]
    assert 0.25 < margin.mean() < 0.40 and (margin < 0).any()
    assert 0.02 < (first["stock"] == 0).mean() < 0.07


def test_simulation_never_replaces_real_values() -> None:
    catalog = _catalog()
    catalog["price"] = np.arange(len(catalog)) + 1.0
    out, filled = simulate_business_fields(catalog, seed=0)
    assert "price" not in filled
    assert out["price"].tolist() == catalog["price"].tolist()


def test_simulated_transactions_follow_the_contract() -> None:
    catalog, _ = simulate_business_fields(_catalog(), seed=0)
    tx = simulate_transactions(catalog, seed=0, customers=2_000)
    frame, report = validate_transactions(tx)
    assert report.excluded == {} and len(frame) == len(tx)
    assert tx["customer_id"].nunique() == 2_000
    assert (tx["quantity"] < 0).any()  # some returns
    assert tx["product_id"].isin(catalog["product_id"]).all()
    repeat = tx[tx["quantity"] > 0].groupby("customer_id").size()
    assert (repeat > 1).mean() > 0.2  # a real repeat-purchase structure for BG/NBD
