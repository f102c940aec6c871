"""Shared fixtures: paths to the real public datasets (skipped with a reason when absent), LTR
features of a real Home Depot sample, and a reduced demo world generated once per session by
the committed generator."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from objectives.catalog import validate_catalog
from ranking import features
from ranking.text import Analyzer

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
HOME_DEPOT = SHARED_DATA / "home-depot-search-relevance" / "train.csv"
ONLINE_RETAIL = SHARED_DATA / "uci-online-retail" / "online_retail.csv.gz"


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (benchmarks are scripts, not a package) for testing."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}",
                                                  ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require_file(path: Path) -> Path:
    """Skip the calling test, saying which public dataset is missing and where it belongs."""
    if not path.is_file():
        pytest.skip(f"real dataset not present: {path} (see data/README.md for where to get it)")
    return path


@pytest.fixture(scope="session")
def home_depot() -> Path:
    return require_file(HOME_DEPOT)


@pytest.fixture(scope="session")
def home_depot_sample(home_depot: Path) -> tuple[np.ndarray, ...]:
    """Features, grades and qids for 400 real Home Depot queries over their judged pools
    (titles only; product priors missing), shared by the LambdaMART and compiled-tree tests."""
    frame = pd.read_csv(home_depot, encoding="latin-1")
    queries = frame["search_term"].drop_duplicates().sample(400, random_state=1)
    frame = frame[frame["search_term"].isin(queries)].reset_index(drop=True)
    products = frame.drop_duplicates("product_uid").reset_index(drop=True)
    catalog, _ = validate_catalog(pd.DataFrame({"product_id": products["product_uid"].astype(str),
                                                "title": products["product_title"]}))
    space = features.FeatureSpace.build(catalog, Analyzer())
    rows = pd.Index(products["product_uid"]).get_indexer(frame["product_uid"])
    priors = np.full((len(products), len(features.PRIORS)), np.nan, dtype=np.float32)
    X = np.empty((len(frame), len(features.FEATURE_NAMES)), np.float32)
    for _, at in frame.groupby("search_term").indices.items():
        X[at] = space.extract(frame["search_term"].iat[at[0]], rows[at], priors)
    qid = pd.factorize(frame["search_term"])[0]
    return X, frame["relevance"].to_numpy(), qid


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reduced demo world (same generator as data/demo, fewer products/queries/customers)."""
    out = tmp_path_factory.mktemp("small_world")
    subprocess.run(
        [sys.executable, str(ROOT / "data" / "demo" / "generate.py"), "--out", str(out),
         "--products", "900", "--queries", "60", "--customers", "700", "--seed", "11"],
        check=True, capture_output=True, text=True,
    )
    return out
