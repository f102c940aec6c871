"""The quality benchmark's pieces: per-query figures, the frontier comparison, the tuned YAML
round trip, and the benchmark and ``tune`` commands end to end on a small generated world.
(That evaluation ranks as the ranker serves is tests/objectives/test_plan.py's.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clv.errors import MarginRankError
from objectives.config import TERM_NAMES, load_config, parse_config
from objectives.groups import QueryGroups
from objectives.quality import CurvePoint, frontier_gaps, pareto, per_query_figures
from objectives.tuned_yaml import tuned_yaml_text
from ranking.app.bench_command import load_script
from ranking.app.cli import main

DEMO_WEIGHTS = Path(__file__).resolve().parents[2] / "data" / "demo" / "weights.yaml"


def test_per_query_figures_average_the_top_k() -> None:
    groups = QueryGroups(np.array([0, 3], np.int64), np.array([3.0, 2.0, 1.0]),
                         np.zeros((3, 4), np.float32), np.array([2.0, 0.0, 1.0]),
                         np.array([10.0, 20.0, 30.0]))
    values = {"margin": groups.margin, "return_rate": np.array([0.1, 0.2, 0.3]),
              "out_of_stock": np.array([0.0, 1.0, 0.0]), "weeks_of_cover": np.ones(3),
              "clv_affinity": np.array([5.0, 7.0, 9.0])}
    figures = per_query_figures(groups, groups.relevance, values, 2)
    assert figures["margin"].tolist() == [15.0]
    assert figures["out_of_stock"].tolist() == [0.5]
    assert np.isclose(figures["return_rate"][0], 0.15)
    assert 0 < figures["ndcg"][0] < 1


def test_frontier_gaps_compare_the_fronts_at_the_naive_levels() -> None:
    tuned = [CurvePoint("t0", 0.90, 0.0), CurvePoint("t1", 0.89, 0.40),
             CurvePoint("t2", 0.88, 0.60), CurvePoint("worse", 0.87, 0.50)]
    naive = [CurvePoint("n0", 0.90, 0.0), CurvePoint("n1", 0.885, 0.30)]
    assert [p.label for p in pareto(tuned)] == ["t2", "t1", "t0"]
    gaps = {g["ndcg"]: g for g in frontier_gaps(tuned, naive)}
    assert np.isclose(gaps[0.885]["tuned"], 0.5) and np.isclose(gaps[0.885]["gap"], 0.2)
    assert gaps[0.90]["gap"] == 0.0
    beyond = frontier_gaps(tuned, [CurvePoint("n", 0.95, 0.1)])
    assert np.isnan(beyond[0]["tuned"])


def test_oracle_orders_sort_by_grade_and_break_ties_by_model_or_margin() -> None:
    """The headroom's reference orders: grade first (even against a far larger tie-break),
    equal grades by the model or by margin, so both have the same NDCG and the margin order
    has the larger margin@k."""
    quality = load_script("quality")
    grades = np.array([1.0, 2.0, 2.0, 2.0, 1.0 / 3.0, 0.0])
    margin = np.array([50.0, 1.0, 9.0, 5.0, 70.0, 90.0])
    groups = QueryGroups(np.array([0, 6], np.int64), np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0]),
                         np.zeros((6, 4), np.float32), grades, margin)
    z, z_margin = groups.z_relevance(), quality.pool_z(groups, margin)
    scores = quality.oracle_scores(groups, z, z_margin)
    by_model, by_margin = (groups.orders(scores[n])[0] for n in
                           (quality.ORACLE_BY_MODEL, quality.ORACLE_BY_MARGIN))
    assert by_model.tolist() == [1, 2, 3, 0, 4, 5]
    assert by_margin.tolist() == [2, 3, 1, 0, 4, 5]
    for k in (1, 2, 3):
        assert groups.ndcg(scores[quality.ORACLE_BY_MARGIN], k) == pytest.approx(
            groups.ndcg(scores[quality.ORACLE_BY_MODEL], k))
    assert groups.value_at_k(scores[quality.ORACLE_BY_MARGIN], margin, 2)[0] == 7.0
    assert groups.value_at_k(scores[quality.ORACLE_BY_MODEL], margin, 2)[0] == 5.0
    # one product without a margin counts as the pool's mean; the others keep their order
    gap = quality.pool_z(groups, np.where(np.arange(6) == 0, np.nan, margin))
    assert np.isfinite(gap).all() and gap[2] > gap[3] > gap[1] and gap[5] > gap[4]


def test_tuned_yaml_keeps_comments_and_reads_back_as_the_tuned_config() -> None:
    text = DEMO_WEIGHTS.read_text()
    config = load_config(DEMO_WEIGHTS)
    tuned = config.tuned(np.array([0.12, 0.01, 0.0, 0.05] + [0.0] * (len(TERM_NAMES) - 4)))
    written = tuned_yaml_text(text, tuned, note="tuned in a test")
    assert parse_config(written) == tuned
    assert written.startswith("# tuned in a test\n")
    for line in text.splitlines():  # every comment survives, in order
        if "#" in line:
            assert line[line.index("#"):] in written
    assert "margin: 0.12 " in written and "Outdoors/Patio" in written
    with pytest.raises(MarginRankError, match="mapping"):
        tuned_yaml_text("- a list\n", tuned)


def test_tuned_yaml_adds_terms_the_file_left_out() -> None:
    text = "# mine\nversion: 1\nweights:\n  margin: 0.5  # only margin\n"
    later = [0.0] * (len(TERM_NAMES) - 4)  # terms declared after the first four
    tuned = parse_config(text).tuned(np.array([0.25, 0.0, 0.1, 0.0] + later))
    written = tuned_yaml_text(text, tuned)
    assert re.search(r"margin: 0.25 +# only margin", written) and "returns: 0.1" in written
    assert parse_config(written) == tuned


def test_quality_benchmark_runs_on_a_small_world(small_world: Path, tmp_path: Path) -> None:
    quality = load_script("quality")
    out = tmp_path / "q"
    markdown = quality.run(quality.parse_args([
        "--catalog", str(small_world / "catalog.csv"),
        "--judgments", str(small_world / "judgments.csv"),
        "--transactions", str(small_world / "transactions.csv.gz"),
        "--k", "5", "--folds", "2", "--out", str(out)]), quality.Progress(enabled=False))
    for k in (3, 5, 10):
        assert f"## k = {k}" in markdown
    report = json.loads(out.with_suffix(".json").read_text())
    judged = pd.read_csv(small_world / "judgments.csv")["query"].nunique()
    assert len(report["per_query"]) == judged  # every query held out exactly once
    row = report["per_query"][0]
    assert set(row["tuned blend"]["3"]) >= {"ndcg", "margin", "return_rate", "out_of_stock"}
    assert out.with_suffix(".png").stat().st_size > 0
    names = [r["name"] for r in report["tables"]["10"]]
    assert names == ["BM25", "LambdaMART", "relevance served", "naive blend (within tolerance)",
                     "naive blend (0.5% drop)", "tuned blend"]
    assert "## Headroom" in markdown
    for row in report["headroom"]:  # the ideal order loses no NDCG; margin ties add margin
        assert row["ideal_ndcg_gain"] >= 0.0 and row["equal_grade_lift"] >= 0.0


@pytest.fixture(scope="module")
def small_bundle(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ranking.app.build import BuildInputs, BuildSettings, build

    out = tmp_path_factory.mktemp("tune") / "bundle"
    build(BuildInputs(small_world / "catalog.csv", small_world / "judgments.csv",
                      small_world / "transactions.csv.gz", DEMO_WEIGHTS), out,
          BuildSettings(seed=5))
    return out


def test_cli_tune_writes_the_merchandisers_file_back(small_bundle: Path, small_world: Path,
                                                    tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "tuned.yaml"
    code = main(["tune", "--bundle", str(small_bundle), "--judgments",
                 str(small_world / "judgments.csv"), "--config", str(DEMO_WEIGHTS),
                 "--k", "10", "--out", str(out)])
    assert code == 0
    text = out.read_text()
    assert "# Outdoors" not in text and "# Patio stock is seasonal" in text  # comments kept
    tuned = load_config(out)
    report = json.loads(out.with_suffix(".json").read_text())
    assert tuned.weight_vector().tolist() == list(report["tuned_weights"].values())
    assert "epsilon" in out.with_suffix(".md").read_text()
    assert "tuned weights file" in capsys.readouterr().out


def test_cli_tune_and_bench_errors(small_bundle: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    missing = tmp_path / "nope.csv"
    assert main(["tune", "--bundle", str(small_bundle), "--judgments", str(missing)]) == 2
    assert "nope.csv" in capsys.readouterr().err
    assert main(["tune", "--bundle", str(small_bundle), "--judgments", str(missing),
                 "--k", "0"]) == 2
    capsys.readouterr()
    other_target = tmp_path / "target.yaml"  # the bundle's terms were built for 8 weeks
    other_target.write_text("version: 1\ninventory: {target_weeks_of_cover: 3}\n")
    assert main(["tune", "--bundle", str(small_bundle), "--judgments", str(missing),
                 "--config", str(other_target)]) == 2
    err = capsys.readouterr().err
    assert "target.yaml" in err and "target_weeks_of_cover" in err
