"""The embedded demo world: reproducible from its seed, and shaped the way the rest relies on.

The generator is run as a script (it is standalone on purpose), so these tests call it through
``sys.executable`` exactly as a user would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
GENERATOR = DEMO / "generate.py"
FILES = ("catalog.csv", "judgments.csv", "transactions.csv.gz")
SMALL = ("--products", "600", "--queries", "40", "--customers", "400")

CATALOG_COLUMNS = ["product_id", "title", "description", "category", "brand", "attributes",
                   "price", "cost", "return_rate", "stock", "daily_sales", "rating",
                   "review_count"]
JUDGMENT_COLUMNS = ["query_id", "query", "product_id", "grade"]
TRANSACTION_COLUMNS = ["order_id", "customer_id", "timestamp", "product_id", "quantity",
                       "unit_price"]


def generate(out: Path, *args: str) -> dict[str, bytes]:
    """Run the generator into ``out`` and return the bytes of each file it writes."""
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(out), *args], check=True,
                   capture_output=True, text=True, timeout=300)
    return {name: (out / name).read_bytes() for name in FILES}


def spearman(a: pd.Series, b: pd.Series) -> float:
    return float(np.corrcoef(a.rank().to_numpy(), b.rank().to_numpy())[0, 1])


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    return pd.read_csv(DEMO / "catalog.csv", dtype={"product_id": str})


@pytest.fixture(scope="module")
def judgments() -> pd.DataFrame:
    return pd.read_csv(DEMO / "judgments.csv", dtype={"query_id": str, "product_id": str})


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return pd.read_csv(DEMO / "transactions.csv.gz",
                       dtype={"order_id": str, "customer_id": str, "product_id": str})


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", "--seed", "7", *SMALL)
    again = generate(tmp_path / "b", "--seed", "7", *SMALL)
    other = generate(tmp_path / "c", "--seed", "8", *SMALL)
    for name in FILES:
        assert first[name] == again[name], f"{name} differs between two runs with one seed"
        assert first[name] != other[name], f"{name} is the same for seeds 7 and 8"


def test_committed_files_equal_a_fresh_default_run(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    for name in FILES:
        assert (DEMO / name).read_bytes() == fresh[name], (
            f"data/demo/{name} is not what generate.py writes; rerun "
            "`python data/demo/generate.py` and commit the result")


def test_tables_have_the_contract_columns(catalog: pd.DataFrame, judgments: pd.DataFrame,
                                          transactions: pd.DataFrame) -> None:
    assert list(catalog.columns) == CATALOG_COLUMNS
    assert list(judgments.columns) == JUDGMENT_COLUMNS
    assert list(transactions.columns) == TRANSACTION_COLUMNS


def test_catalog_values_are_in_range(catalog: pd.DataFrame) -> None:
    assert catalog["product_id"].is_unique
    assert catalog.notna().all().all()
    assert (catalog["price"] > 0).all() and (catalog["cost"] > 0).all()
    assert (catalog["cost"] < catalog["price"]).mean() > 0.95  # a few loss leaders only
    assert catalog["return_rate"].between(0, 0.5).all()
    assert catalog["rating"].between(1, 5).all()
    assert (catalog["stock"] >= 0).all() and (catalog["daily_sales"] >= 0).all()
    assert (catalog["category"].str.count("/") == 2).all()


def test_inventory_has_out_of_stock_and_overstock(catalog: pd.DataFrame) -> None:
    weeks_of_cover = catalog["stock"] / (catalog["daily_sales"] * 7)
    assert (catalog["stock"] == 0).any()
    assert (weeks_of_cover > 26).any()


def test_judged_pools_are_rankable(catalog: pd.DataFrame, judgments: pd.DataFrame) -> None:
    assert judgments["product_id"].isin(catalog["product_id"]).all()
    assert judgments["grade"].between(0, 3).all()
    assert not judgments.duplicated(["query_id", "product_id"]).any()
    pools = judgments.groupby("query_id")
    assert (pools.size() >= 12).all()
    assert (pools["grade"].nunique() >= 2).all()
    assert (judgments.groupby("query")["query_id"].nunique() == 1).all()


def test_margin_is_not_relevance(catalog: pd.DataFrame, judgments: pd.DataFrame) -> None:
    joined = judgments.merge(catalog, on="product_id")
    margin_rate = 1 - joined["cost"] / joined["price"]
    unit_margin = joined["price"] - joined["cost"]
    assert abs(spearman(joined["grade"], margin_rate)) < 0.15
    assert abs(spearman(joined["grade"], unit_margin)) < 0.15


def test_transactions_have_returns_of_earlier_purchases(catalog: pd.DataFrame,
                                                        transactions: pd.DataFrame) -> None:
    assert transactions["product_id"].isin(catalog["product_id"]).all()
    assert (transactions["unit_price"] > 0).all()
    assert (transactions["quantity"] != 0).all()
    returns = transactions[transactions["quantity"] < 0]
    purchases = transactions[transactions["quantity"] > 0]
    assert len(returns) > 0
    matched = returns.merge(purchases, on=["order_id", "product_id"], suffixes=("", "_bought"))
    assert len(matched) == len(returns)
    assert (matched["timestamp"] > matched["timestamp_bought"]).all()
    assert (-matched["quantity"] <= matched["quantity_bought"]).all()
    stamps = pd.to_datetime(transactions["timestamp"], format="%Y-%m-%dT%H:%M:%S")
    assert stamps.min() >= pd.Timestamp("2024-01-01")
    assert stamps.max() < pd.Timestamp("2026-01-01")
