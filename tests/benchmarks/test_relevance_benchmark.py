"""The relevance benchmark: folds by query text, the judged-pool protocol, and a whole run on
generic catalog and judgments files (the reduced demo world), as a user would give them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from objectives.metrics import ndcg_at_k
from tests.conftest import load_benchmark

relevance = load_benchmark("relevance")


def test_one_query_text_sits_in_one_fold() -> None:
    judgments = pd.DataFrame({"query": ["Drill", " drill", "hose", "HOSE ", "saw"] * 4,
                              "query_id": [str(i) for i in range(20)]})
    fold = relevance.query_folds(judgments, n_folds=2, seed=0)
    key = judgments["query"].str.casefold().str.strip()
    assert (pd.Series(fold).groupby(key).nunique() == 1).all()
    assert set(fold) == {0, 1}


def test_pools_with_one_label_are_left_out_and_ties_break_alike() -> None:
    judgments = pd.DataFrame({"query_id": ["a"] * 3 + ["b"] * 2 + ["c"] * 3})
    labels = np.array([2, 0, 1, 1, 1, 0, 3, 0])
    groups, rows, query_ids = relevance.judged_groups(judgments, labels, seed=0)
    assert query_ids == ["a", "c"] and groups.n_queries == 2
    assert sorted(rows.tolist()) == [0, 1, 2, 5, 6, 7]
    perfect = labels.astype(float)
    tied = np.zeros(len(labels))
    ndcg = relevance.per_query_ndcg(groups, rows, {"perfect": perfect, "tied": tied})
    assert ndcg["perfect"]["ndcg@10_exp"].tolist() == [1.0, 1.0]
    shuffled = [ndcg_at_k(labels[rows[a:b]], 5, "linear")
                for a, b in zip(groups.qptr[:-1], groups.qptr[1:], strict=True)]
    assert ndcg["tied"]["ndcg@5_linear"].tolist() == shuffled  # ties keep the shuffled order


def test_runs_on_generic_tables(small_world: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "relevance.json"
    report = relevance.main(["--catalog", str(small_world / "catalog.csv"), "--judgments",
                             str(small_world / "judgments.csv"), "--folds", "2",
                             "--out", str(out)])
    printed = capsys.readouterr().out
    assert "| LambdaMART |" in printed and "| BM25 |" in printed
    saved = json.loads(out.read_text())
    n = saved["n_queries"]
    assert n == report["n_queries"] > 0 and len(saved["per_query"]["query_id"]) == n
    for ranker in relevance.RANKERS:
        for k, gain in relevance.METRICS:
            values = np.array(saved["per_query"][f"{ranker}/ndcg@{k}_{gain}"])
            assert values.shape == (n,) and ((values >= 0) & (values <= 1)).all()
    lm = saved["summary"]["LambdaMART"]["ndcg@10_exp"]
    assert lm["low"] <= lm["diff"] <= lm["high"] and "diff" not in saved["summary"]["BM25"][
        "ndcg@10_exp"]
    assert [f["fold"] for f in saved["lambdamart_folds"]] == [0, 1]
    assert set(saved["feature_importance"]) <= set(relevance.features.FEATURE_NAMES)
