"""The guarantee end to end: a model that loses to BM25 is not tuned on, BM25 is served
instead and every report says so; the held-out verdict is stated in the build report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from objectives.catalog import load_catalog
from objectives.guardrail import DEFAULT_MAX_NDCG_DROP, compare_with_bm25
from ranking import features
from ranking.app.build import BuildInputs, BuildSettings, build, judged_features
from ranking.app.cli import main
from ranking.app.progress import Progress
from ranking.ranker import RELEVANCE_BM25, Ranker


@pytest.fixture(scope="module")
def bm25_world(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small world with its grades replaced by BM25's own order within each pool (the
    best third of a pool by BM25 gets 2, the next third 1, the rest 0): BM25 is then a
    perfect ranker, so no learned model can be ahead of it."""
    out = tmp_path_factory.mktemp("bm25_world")
    catalog, _ = load_catalog(small_world / "catalog.csv")
    judgments = pd.read_csv(small_world / "judgments.csv", dtype={"product_id": str})
    X, _ = judged_features(catalog, judgments, Progress(enabled=False))
    bm25 = pd.Series(X[:, features.FEATURE_NAMES.index("bm25_all")].astype(np.float64))
    rank = bm25.groupby(judgments["query_id"]).rank(method="min", ascending=False, pct=True)
    judgments["grade"] = np.select([rank <= 1 / 3, rank <= 2 / 3], [2, 1], 0)
    judgments.to_csv(out / "judgments.csv", index=False)
    for name in ("catalog.csv", "transactions.csv.gz"):
        (out / name).write_bytes((small_world / name).read_bytes())
    return out


def test_a_model_that_loses_to_bm25_is_not_tuned_on(bm25_world: Path, tmp_path: Path) -> None:
    inputs = BuildInputs(bm25_world / "catalog.csv", bm25_world / "judgments.csv",
                         bm25_world / "transactions.csv.gz")
    result = build(inputs, tmp_path / "bundle", BuildSettings(seed=3))
    assert not result.relevance_check.model_ahead
    assert result.relevance_source == RELEVANCE_BM25
    assert np.all(result.tune.weights == 0) and "not tuned" in result.tune.message
    assert any("WARNING: LambdaMART does not beat BM25" in w for w in result.warnings)
    # the tuned blend row is what the bundle serves: BM25's order, so it is at BM25's NDCG
    ev = result.evaluation
    assert ev.row("tuned blend").ndcg == pytest.approx(ev.row("BM25").ndcg)
    ranker = Ranker.load(tmp_path / "bundle")
    assert ranker.relevance == RELEVANCE_BM25
    # the served relevance is BM25 of the retrieved candidates, z-scored over them
    query = result.sample_query
    cand, scores = ranker.index.fields["all"].search(
        ranker.index.vocab.lookup(ranker.analyzer(query)), ranker.n_candidates)
    z = dict(zip(cand.tolist(), (scores - scores.mean()) / scores.std(), strict=True))
    results = ranker.search(query, k=10, explain=True)
    assert results
    for r in results:
        row = ranker.catalog.row_of[r.product_id]
        assert r.contributions["relevance"] == pytest.approx(z[row], abs=1e-6)


def test_the_cli_says_so_loudly(bm25_world: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--data", str(bm25_world), "--out", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    assert "**WARNING: LambdaMART does not beat BM25" in printed
    assert "relevance served: BM25 (LambdaMART did not beat it)" in printed
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["relevance_served"] == "bm25"
    assert report["relevance_check"]["model_ahead"] is False
    assert set(report["tuned_weights"].values()) == {0.0}


def test_build_report_states_the_verdict_the_bound_and_delta(small_world: Path,
                                                             tmp_path: Path,
                                                             capsys) -> None:  # noqa: ANN001
    assert main(["demo", "--data", str(small_world), "--out", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if x.startswith("- NDCG guardrail at k = 10"))
    assert ("held:" in line or "missed:" in line)
    assert f"max_ndcg_drop {DEFAULT_MAX_NDCG_DROP:g}" in line
    assert all(any(x.startswith(f"- NDCG guardrail at k = {c} ") for x in printed.splitlines())
               for c in (3, 5))
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert set(report["guardrail"]) == {"3", "5", "10"}
    verdict = report["guardrail"]["10"]
    assert verdict["max_ndcg_drop"] == DEFAULT_MAX_NDCG_DROP and isinstance(verdict["held"], bool)
    assert verdict["drop_bound"] >= max(verdict["drop"], 0.0) - 1e-12
    assert report["tuner"]["max_ndcg_drop"] == DEFAULT_MAX_NDCG_DROP


def test_relevance_check_is_a_point_comparison() -> None:
    model = np.array([0.9, 0.8, 0.7])
    assert compare_with_bm25(model, model - 0.01, 10).model_ahead
    assert not compare_with_bm25(model, model, 10).model_ahead  # a tie is not ahead
    assert not compare_with_bm25(model, model + 0.01, 10).model_ahead
