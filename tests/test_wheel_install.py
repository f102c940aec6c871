"""A plain (not editable) ``pip install .`` carries the demo world: the installed ``marginrank``
finds it inside the package from any directory, and it loads through the real loaders.

The install goes into a fresh virtual environment. Its dependencies come from this test's own
environment (a .pth line), so only marginrank itself is built and installed; the full demo on
the installed package (Numba compiling every kernel afresh) is in docs/guide/development.md.
"""

from __future__ import annotations

import filecmp
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT

DEMO_FILES = ("catalog.csv", "judgments.csv", "transactions.csv.gz", "weights.yaml", "README.md")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("wheel") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "marginrank_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                             "--no-deps", str(ROOT)], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return venv


def run(venv: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(cwd)})


def test_the_installed_command_finds_the_packaged_demo_world(installed: Path,
                                                             tmp_path: Path) -> None:
    python = str(installed / "bin" / "python")
    where = run(installed, [python, "-c", "import ranking.app.cli as c; print(c.__file__); "
                            "print(c.DEMO_DATA)"], cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    module, demo = (Path(line) for line in where.stdout.split())
    site = next((installed / "lib").glob("python3*/site-packages"))
    assert module.is_relative_to(site), module  # the wheel's copy, not the checkout
    assert demo == site / "ranking" / "app" / "demo_world"
    for name in DEMO_FILES:  # data/demo stays the source; the package carries the same bytes
        assert filecmp.cmp(demo / name, ROOT / "data" / "demo" / name, shallow=False), name
    version = run(installed, [str(installed / "bin" / "marginrank"), "--version"], cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("marginrank "), version.stderr
    help_ = run(installed, [str(installed / "bin" / "marginrank"), "demo", "--help"],
                cwd=tmp_path)
    assert help_.returncode == 0 and "--data" in help_.stdout, help_.stderr


def test_the_packaged_demo_world_loads(installed: Path, tmp_path: Path) -> None:
    code = (
        "from ranking.app.cli import DEMO_DATA as d\n"
        "from objectives.catalog import load_catalog, load_judgments\n"
        "from objectives.config import load_config\n"
        "from clv.transactions import load_transactions\n"
        "catalog = load_catalog(d / 'catalog.csv')[0]\n"
        "judgments = load_judgments(d / 'judgments.csv')\n"
        "judgments = judgments[0] if isinstance(judgments, tuple) else judgments\n"
        "tx = load_transactions(d / 'transactions.csv.gz')[0]\n"
        "config = load_config(d / 'weights.yaml', product_ids=set(catalog['product_id']))\n"
        "print(len(catalog), judgments['query'].nunique(), tx['customer_id'].nunique(),\n"
        "      config.guardrails.max_ndcg_drop)\n"
    )
    result = run(installed, [str(installed / "bin" / "python"), "-c", code], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    products, queries, customers, drop = result.stdout.split()
    # The figures data/demo/README.md states for the committed world.
    assert (int(products), int(queries), int(customers)) == (5000, 300, 5000)
    assert float(drop) == 0.002
