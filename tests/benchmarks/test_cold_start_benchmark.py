"""benchmarks/cold_start.py: its windows and grouping on small frames, and its core on a slice of
UCI Online Retail (skipped when the file is absent). Figures are printed by the script, never
asserted here beyond being well formed."""

from __future__ import annotations

import json
import math
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from clv import UCI_ONLINE_RETAIL_COLUMNS, load_transactions
from clv.transactions import UCI_ONLINE_RETAIL_NON_PRODUCTS
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def cold_start() -> ModuleType:
    return load_benchmark("cold_start")


def test_grouping_is_last_word_then_first_word(cold_start: ModuleType) -> None:
    descriptions = pd.Series({"1": "JUMBO BAG RED RETROSPOT", "2": "PACK OF 72 CAKE CASES",
                              "3": "WHITE HANGING HEART T-LIGHT HOLDER"})
    groups = cold_start.product_groups(["1", "2", "3", "4"], descriptions)
    assert groups.loc["1"].tolist() == ["RETROSPOT", "JUMBO"]
    assert groups.loc["2"].tolist() == ["CASE", "PACK"]
    assert groups.loc["3"].tolist() == ["HOLDER", "WHITE"]
    assert groups.loc["4"].isna().all()


def test_velocity_and_return_observations(cold_start: ModuleType) -> None:
    lines = pd.DataFrame({
        "customer_id": ["a", "a", "b", "a"],
        "product_id": ["p", "p", "p", "q"],
        "timestamp": pd.to_datetime(["2011-01-01", "2011-01-03", "2011-01-03", "2011-01-04"]),
        "quantity": [4, -1, 2, 5],
        "unit_price": [1.0] * 4,
    })
    stats = cold_start.velocity_stats(lines, ["p", "q", "r"], pd.Timestamp("2011-01-04"))
    # p: days 1..4 with units 4, 0, 2, 0 -> mean 1.5; q: one day, 5 units; r: never sold.
    assert stats["n"].tolist() == [4.0, 1.0, 0.0]
    assert stats.loc["p", "mean"] == pytest.approx(1.5)
    assert stats.loc["p", "var"] == pytest.approx(np.var([4, 0, 2, 0], ddof=1))
    assert stats.loc["q", "mean"] == 5.0 and np.isnan(stats.loc["r", "mean"])
    obs = cold_start.return_observations(lines).sort_values(["p", "y"])
    assert obs["y"].tolist() == [0.0, 0.25, 0.0]


def test_core_on_a_slice_of_uci_online_retail(cold_start: ModuleType) -> None:
    path = cold_start.DEFAULT_DATA
    if not path.exists():
        pytest.skip(f"UCI Online Retail is not at {path}")
    tx, exclusions = load_transactions(path, columns=UCI_ONLINE_RETAIL_COLUMNS,
                                       non_product_ids=UCI_ONLINE_RETAIL_NON_PRODUCTS)
    customers = np.sort(tx["customer_id"].unique())[::3]  # a third of the customers
    tx = tx[tx["customer_id"].isin(customers)].reset_index(drop=True)
    report = cold_start.cold_start_report(tx, exclusions, cold_start.load_descriptions(path),
                                          min_buyers=2)
    products, people = report["products"], report["customers"]
    assert products["new_products_scored"] > 20
    for table in products["tables"]:
        assert [r["predictor"] for r in table["rows"]][0].startswith("hierarchical")
        for row in table["rows"]:
            assert math.isfinite(row["mae"])
            if "prior_minus_this" in row:
                d = row["prior_minus_this"]
                assert d["low"] <= d["mean"] <= d["high"]
    for fit in products["fits"].values():
        assert fit["sigma2"] > 0 and fit["products_from_prior"] == products["new_products"]
    assert people["customers"] > 20
    assert people["mae_diff"]["low"] <= people["mae_diff"]["mean"] <= people["mae_diff"]["high"]
    text = cold_start.to_markdown(report)
    assert text.splitlines()[3] == cold_start.COMMAND
    json.dumps(report)
