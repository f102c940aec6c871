"""Shared fixtures: paths to the real public datasets (skipped with a reason when absent) and
a reduced demo world generated once per session by the committed generator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
HOME_DEPOT = SHARED_DATA / "home-depot-search-relevance" / "train.csv"
ONLINE_RETAIL = SHARED_DATA / "uci-online-retail" / "online_retail.csv.gz"


def require_file(path: Path) -> Path:
    """Skip the calling test, saying which public dataset is missing and where it belongs."""
    if not path.is_file():
        pytest.skip(f"real dataset not present: {path} (see data/README.md for where to get it)")
    return path


@pytest.fixture(scope="session")
def home_depot() -> Path:
    return require_file(HOME_DEPOT)


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
