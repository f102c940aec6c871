"""Compiled trees: the Numba forest must serve XGBoost's own margins (missing values, values
exactly on a threshold, one tree, stumps, a root-only tree, real features) in both layouts
(complete trees, and the node lists for deep trees or a -inf threshold), LambdaMART's bundle
round trip must serve the same scores, and models it cannot evaluate are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from ranking import features
from ranking.ltr import COMPILED_MAX_ROWS, LambdaMART, ModelError, grade_labels
from ranking.trees import CompiledTrees
from tests.conftest import load_benchmark

TOL = {"rtol": 1e-5, "atol": 1e-5}


def ranking_data(seed: int, n_queries: int = 80, per_query: int = 12) -> tuple[np.ndarray, ...]:
    """Synthetic graded ranking data; columns 2, 4 and 5 are missing (NaN) on many rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_queries * per_query, 6)).astype(np.float32)
    signal = X[:, 0] + 0.5 * X[:, 1] - 0.5 * np.nan_to_num(X[:, 2])
    y = np.clip(np.rint(signal + rng.normal(0, 0.5, len(X))) + 1, 0, 3).astype(np.int64)
    for column, share in ((2, 0.2), (4, 0.4), (5, 0.1)):
        X[rng.random(len(X)) < share, column] = np.nan
    return X, y, np.repeat(np.arange(n_queries), per_query)


def train(params: dict[str, object], rounds: int, seed: int = 0) -> tuple[xgb.Booster, np.ndarray]:
    X, y, qid = ranking_data(seed)
    dtrain = xgb.DMatrix(X, label=y, qid=qid)
    booster = xgb.train({"objective": "rank:ndcg", "tree_method": "hist", "seed": seed,
                         "nthread": 1, **params},
                        dtrain, num_boost_round=rounds)
    return booster, X


def xgboost_margin(booster: xgb.Booster, X: np.ndarray) -> np.ndarray:
    return booster.predict(xgb.DMatrix(X), output_margin=True)


def on_thresholds(compiled: CompiledTrees, n_rows: int) -> np.ndarray:
    """Rows whose values sit exactly on split thresholds (those rows must go right)."""
    inner = np.flatnonzero(compiled.left != np.arange(compiled.left.size))
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n_rows, compiled.n_features)).astype(np.float32)
    for row in range(n_rows):
        for node in rng.choice(inner, size=3):
            X[row, compiled.split_feature[node]] = compiled.threshold[node]
    return X


def test_parity_with_missing_values_and_values_on_thresholds() -> None:
    booster, X = train({"max_depth": 6, "eta": 0.1, "subsample": 0.8}, rounds=100)
    compiled = CompiledTrees.from_booster(booster)
    node_lists = CompiledTrees.from_booster(booster, max_complete_depth=5)
    assert compiled.n_trees == 100 and compiled.depths.max() == 6
    assert compiled.complete is not None and compiled.complete.depth == 6
    assert node_lists.complete is None  # deeper than allowed: served from the node lists
    assert (compiled.depths < 6).any()  # shallow trees are padded in the complete layout
    all_missing = np.full((3, X.shape[1]), np.nan, dtype=np.float32)
    for rows in (X, all_missing, on_thresholds(compiled, 300), X[:1], X[:13]):
        reference = xgboost_margin(booster, rows)
        np.testing.assert_allclose(compiled.predict(rows), reference, **TOL)
        np.testing.assert_allclose(node_lists.predict(rows), reference, **TOL)


def test_minus_infinity_threshold_falls_back_to_node_lists() -> None:
    """A missing value read as -inf would go right of a -inf threshold; XGBoost sends it left."""
    booster, X = train({"max_depth": 3}, rounds=4)
    model = json.loads(booster.save_raw("json"))
    root = model["learner"]["gradient_booster"]["model"]["trees"][0]
    root["split_conditions"][0], root["default_left"][0] = float("-inf"), 1
    edited = xgb.Booster()
    edited.load_model(bytearray(json.dumps(model).encode()))
    compiled = CompiledTrees.from_booster(edited)
    assert compiled.complete is None
    rows = X.copy()
    rows[::2, root["split_indices"][0]] = np.nan
    np.testing.assert_allclose(compiled.predict(rows), xgboost_margin(edited, rows), **TOL)


@pytest.mark.parametrize("params, rounds, depth", [
    ({"max_depth": 6}, 1, 6),  # a single tree
    ({"max_depth": 1}, 30, 1),  # stumps
    ({"max_depth": 4, "min_split_loss": 1e9}, 3, 0),  # no split pays: each tree is its root
])
def test_parity_for_small_models(params: dict[str, object], rounds: int, depth: int) -> None:
    booster, X = train(params, rounds, seed=3)
    compiled = CompiledTrees.from_booster(booster)
    assert compiled.n_trees == rounds and compiled.depths.max() == depth
    assert compiled.complete is not None and compiled.complete.depth == depth
    np.testing.assert_allclose(compiled.predict(X), xgboost_margin(booster, X), **TOL)


@pytest.mark.realdata
def test_parity_on_real_home_depot_features(home_depot_sample) -> None:  # noqa: ANN001
    X, grades, qid = home_depot_sample
    order = np.argsort(qid, kind="stable")
    names = list(features.FEATURE_NAMES)
    dtrain = xgb.DMatrix(X[order], label=grade_labels(grades)[order], qid=qid[order],
                         feature_names=names)
    booster = xgb.train({"objective": "rank:ndcg", "max_depth": 6, "eta": 0.08, "nthread": 1,
                         "tree_method": "hist", "seed": 0}, dtrain, num_boost_round=150)
    X_missing = X.copy()
    X_missing[::7, 3] = np.nan
    X_missing[::5, 0] = np.nan
    reference = booster.predict(xgb.DMatrix(X_missing, feature_names=names), output_margin=True)
    model = LambdaMART(feature_names=features.FEATURE_NAMES, booster_=booster)
    assert model.trees_.n_trees == 150 and model.trees_.complete is not None
    np.testing.assert_allclose(model.trees_.predict(X_missing), reference, **TOL)
    for q in np.unique(qid)[:50]:  # one query's candidates at a time, as a search scores them
        np.testing.assert_allclose(model.predict(X_missing[qid == q]), reference[qid == q], **TOL)


def test_bundle_round_trip_predicts_identically(tmp_path: Path) -> None:
    X, y, qid = ranking_data(seed=7, n_queries=150)
    fit, valid = qid % 3 != 0, qid % 3 == 0
    model = LambdaMART(n_estimators=60, early_stopping_rounds=60, n_jobs=1)
    model.fit(X[fit], y[fit], qid[fit], X[valid], y[valid], qid[valid])
    model.save(tmp_path)
    loaded = LambdaMART.load(tmp_path)
    for name in ("left", "right", "split_feature", "threshold", "default_left", "leaf_value"):
        np.testing.assert_array_equal(getattr(loaded.trees_, name), getattr(model.trees_, name))
    for name in ("feature", "threshold", "leaf_value"):
        np.testing.assert_array_equal(getattr(loaded.trees_.complete, name),
                                      getattr(model.trees_.complete, name))
    assert X.shape[0] > COMPILED_MAX_ROWS  # the whole batch goes to XGBoost, a query to Numba
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict(X[:200]), model.predict(X[:200]))
    np.testing.assert_allclose(loaded.predict(X[:200]), loaded.predict(X)[:200], **TOL)


def test_tree_inference_benchmark_tiny(tmp_path: Path) -> None:
    out = tmp_path / "trees.json"
    report = load_benchmark("tree_inference").main(["--trees", "4", "--calls", "3",
                                                   "--out", str(out)])  # exits on a mismatch
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert [(c["rows"], c["trees"]) for c in report["cells"]] == [(6, 4), (50, 4), (200, 4),
                                                                 (1000, 4)]
    for cell in report["cells"]:
        assert all(cell[f"{name}_us_p50"] > 0 for name in ("xgboost_1_thread", "complete"))
        assert cell["speedup_vs_1_thread"] == (cell["xgboost_1_thread_us_p50"]
                                               / cell["complete_us_p50"])


def test_refuses_what_it_cannot_evaluate() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 4, 200), rng.normal(size=200)]).astype(np.float32)
    y, qid = rng.integers(0, 3, 200), np.repeat(np.arange(20), 10)
    categorical = xgb.DMatrix(X, label=y, qid=qid, feature_types=["c", "q"],
                              enable_categorical=True)
    booster = xgb.train({"objective": "rank:ndcg", "max_depth": 3, "nthread": 1}, categorical, 5)
    with pytest.raises(ModelError, match="categorical splits"):
        CompiledTrees.from_booster(booster)
    logistic = xgb.train({"objective": "binary:logistic", "nthread": 1},
                         xgb.DMatrix(X, label=y > 1), 3)
    with pytest.raises(ModelError, match="objective binary:logistic"):
        CompiledTrees.from_booster(logistic)
    compiled = CompiledTrees.from_booster(train({"max_depth": 2}, 3)[0])
    with pytest.raises(ModelError, match=r"expects \(rows, 6\)"):
        compiled.predict(np.zeros((4, 5), dtype=np.float32))
    with pytest.raises(ModelError, match=r"expects \(rows, 6\)"):
        compiled.predict(np.zeros(6, dtype=np.float32))


def test_a_search_process_reads_the_trees_without_xgboost_pandas_or_cvxpy(
        small_world: Path, tmp_path: Path) -> None:
    """Cold start: a new process imports the ranker, loads a built bundle and answers a
    search, with none of pandas, xgboost, scikit-learn or cvxpy imported; its scores equal
    those of the bundle's XGBoost booster (read in this process)."""
    import subprocess
    import sys

    from ranking.app.build import BuildInputs, BuildSettings, build

    out = tmp_path / "bundle"
    build(BuildInputs(small_world / "catalog.csv", small_world / "judgments.csv",
                      small_world / "transactions.csv.gz"), out, BuildSettings(seed=3))
    script = (
        "import json, sys\n"
        "from ranking.ranker import Ranker\n"
        f"ranker = Ranker.load({str(out)!r})\n"
        "hits = ranker.search('drill', k=5)\n"
        "heavy = [m for m in ('pandas', 'xgboost', 'sklearn', 'cvxpy') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'n': len(hits)}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600, cwd=Path(__file__).resolve().parents[2], check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["heavy"] == [] and report["n"] > 0
    loaded = LambdaMART.load(out)
    assert loaded.booster_ is None  # the trees came from the file, not from a booster
    X = np.random.default_rng(0).normal(size=(50, loaded.trees_.n_features)).astype(np.float32)
    booster = loaded._booster()
    reference = booster.predict(xgb.DMatrix(X, feature_names=list(loaded.feature_names)),
                                output_margin=True)
    np.testing.assert_allclose(loaded.predict(X), reference, rtol=1e-5, atol=1e-5)
