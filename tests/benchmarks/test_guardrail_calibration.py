"""benchmarks/guardrail_calibration.py in quick mode: the study runs end to end and every row
carries the guardrail's verdict (issue 14, item 6). The figures themselves are the study's,
not the tests'."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from tests.conftest import HOME_DEPOT, ROOT, require_file


def _load() -> ModuleType:
    """The script as a module, registered in ``sys.modules`` (its dataclasses need it, which
    ``conftest.load_benchmark`` does not do)."""
    spec = importlib.util.spec_from_file_location(
        "benchmark_guardrail_calibration", ROOT / "benchmarks" / "guardrail_calibration.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


calibration = _load()


def test_quick_study_on_a_small_world_writes_rows_with_verdicts(small_world: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "calibration"
    report = calibration.main(["--quick", "--skip-home-depot", "--demo-dir", str(small_world),
                               "--folds", "2", "--max-ndcg-drop", "0.01", "--out", str(out)])
    for suffix in (".md", ".json", ".png"):
        assert Path(f"{out}{suffix}").stat().st_size > 0
    assert json.loads(Path(f"{out}.json").read_text(encoding="utf-8")) == report
    (row,) = report["rows"]  # one demo seed in quick mode
    assert isinstance(row["held"], bool) and isinstance(row["significant_drop"], bool)
    assert row["delta"] == report["max_ndcg_drop"] == 0.01  # the override reached the run
    assert row["k"] == calibration.DEMO_K and row["subset_seed"] is None
    judged = pd.read_csv(small_world / "judgments.csv")["query"].nunique()
    assert row["n_queries"] == judged  # every query held out exactly once
    assert row["ci_low"] <= row["diff"] <= row["ci_high"]
    # the verdict is the interval against -delta * NDCG, as objectives.metrics.verdict says
    assert row["held"] == (row["ci_high"] >= -row["delta"] * row["base_ndcg"] - 1e-12)
    assert row["significant_drop"] == (row["ci_high"] < 0)
    assert len(row["fold_strengths"]) == 2
    assert np.isclose(row["weight_strength"], np.mean(row["fold_strengths"]))
    assert np.isfinite(row["margin_lift"])
    assert report["summary"]["others"] == [{"dataset": row["dataset"], "seed": 0,
                                            "held": row["held"]}]
    markdown = Path(f"{out}.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Guardrail calibration")
    assert "Command: `python benchmarks/guardrail_calibration.py --quick" in markdown
    assert ("| held |" if row["held"] else "| missed |") in markdown


def test_subsets_are_seeded_distinct_queries_in_range() -> None:
    keys = np.repeat(np.arange(1000), 3)  # 1,000 query texts, three judgments each
    first = calibration.draw_subsets(keys, 4, calibration.SUBSET_SIZES)
    again = calibration.draw_subsets(keys, 4, calibration.SUBSET_SIZES)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
        n = np.unique(keys[a]).size
        assert calibration.SUBSET_SIZES[0] <= n <= calibration.SUBSET_SIZES[1]
        assert a.sum() == 3 * n  # whole queries, every judgment of each
    assert len({tuple(np.flatnonzero(m)[:5]) for m in first}) == 4


def test_home_depot_subsets_take_whole_queries_of_the_full_dataset() -> None:
    """The subsets are drawn over Home Depot's query texts (the key the folds group by)."""
    require_file(HOME_DEPOT)
    from objectives.public_data import load_home_depot

    judgments = load_home_depot(HOME_DEPOT).judgments
    keys = calibration.query_keys(judgments)
    masks = calibration.draw_subsets(keys, 20, calibration.SUBSET_SIZES)
    sizes = [np.unique(keys[m]).size for m in masks]
    assert all(200 <= n <= 400 for n in sizes) and len(set(sizes)) > 1
    for m in masks:  # a text in a subset brings all its judgments
        assert not np.isin(keys[~m], keys[m]).any()


def test_main_refuses_a_missing_home_depot_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not found"):
        calibration.main(["--quick", "--skip-demo", "--data", str(tmp_path / "none.csv"),
                          "--out", str(tmp_path / "x")])
