"""LambdaMART: label mapping, training on real judgments, save/load that serves the same
scores as XGBoost's own predict, and a clear error for a corrupted model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from ranking import features
from ranking.ltr import (
    LambdaMART,
    ModelError,
    cross_fit_relevance,
    grade_labels,
    search_hyperparameters,
    smoothed_best,
)


def test_grade_labels() -> None:
    assert grade_labels(np.array([0, 1, 3])).tolist() == [0, 1, 3]
    home_depot = np.array([1.0, 1.33, 1.67, 2.0, 2.33, 2.67, 3.0])
    assert grade_labels(home_depot).tolist() == [0, 1, 2, 3, 4, 5, 6]
    with pytest.raises(ModelError):
        grade_labels(np.array([1.0, np.nan]))


@pytest.mark.realdata
def test_train_save_load_serves_xgboost_scores(home_depot_sample, tmp_path: Path) -> None:  # noqa: ANN001
    X, grades, qid = home_depot_sample
    y = grade_labels(grades)
    train, valid = qid % 4 != 0, qid % 4 == 0
    model = LambdaMART(n_estimators=60, feature_names=features.FEATURE_NAMES)
    model.fit(X[train], y[train], qid[train], X[valid], y[valid], qid[valid])
    model.save(tmp_path)
    loaded = LambdaMART.load(tmp_path)
    X_missing = X.copy()
    X_missing[::7, features.COLUMN["bm25_title"]] = np.nan
    reference = model.booster_.predict(xgb.DMatrix(X_missing, feature_names=list(
        features.FEATURE_NAMES)), output_margin=True)
    np.testing.assert_allclose(loaded.predict(X_missing), reference, rtol=1e-5, atol=1e-5)
    importance = loaded.feature_importance()
    assert importance and abs(sum(importance.values()) - 1) < 1e-9
    oof = cross_fit_relevance(model, X, y, qid, train, valid, n_folds=2)
    assert np.all(oof[valid] == 0) and np.isfinite(oof[train]).all()


def test_corrupted_model_file_is_a_clear_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.random((60, 3)).astype(np.float32), rng.integers(0, 3, 60)
    with pytest.raises(ModelError, match="labels must be integers"):
        LambdaMART().fit(X, y * 20, np.repeat(np.arange(6), 10), X, y, np.zeros(60, int))
    qid = np.repeat(np.arange(6), 10)
    model = LambdaMART(n_estimators=5, early_stopping_rounds=2).fit(X, y, qid, X, y, qid)
    model.save(tmp_path)
    (tmp_path / "model.ubj").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="model.ubj: cannot load model"):
        LambdaMART.load(tmp_path)
    with pytest.raises(ModelError, match="not fitted"):
        LambdaMART().predict(X)
    with pytest.raises(ModelError, match="no training rows"):
        LambdaMART().fit(X[:0], y[:0], qid[:0], X, y, qid)


def test_saved_model_serves_xgboost_scores_on_synthetic_data(tmp_path: Path) -> None:
    """Runs without the real data: save/load must serve what XGBoost itself predicts."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 4)).astype(np.float32)
    y = np.clip(np.rint(X[:, 0] + 0.5 * X[:, 1] + rng.normal(0, 0.5, 600)) + 1, 0, 3)
    qid = np.repeat(np.arange(60), 10)
    X[::5, 2] = np.nan
    train, valid = qid % 3 != 0, qid % 3 == 0
    model = LambdaMART(n_estimators=40).fit(X[train], grade_labels(y[train]), qid[train],
                                            X[valid], grade_labels(y[valid]), qid[valid])
    model.save(tmp_path)
    reference = model.booster_.predict(xgb.DMatrix(X), output_margin=True)
    np.testing.assert_allclose(LambdaMART.load(tmp_path).predict(X), reference, rtol=1e-6)


def test_huge_grades_are_refused_not_overflowed() -> None:
    with pytest.raises(ModelError, match="above 31"):
        grade_labels(np.array([0.0, 1e20]))
    with pytest.raises(ModelError, match="above 31"):
        grade_labels(np.array([0, 40]))


def test_hyperparameter_search_picks_the_best_validated_setting() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(800, 4)).astype(np.float32)
    y = grade_labels(np.clip(np.rint(X[:, 0] + rng.normal(0, 0.3, 800)) + 1, 0, 3))
    qid = np.repeat(np.arange(80), 10)
    grid = ({"max_depth": 1, "learning_rate": 1e-6, "min_child_weight": 1.0},
            {"max_depth": 3, "learning_rate": 0.1, "min_child_weight": 1.0})
    search = search_hyperparameters(LambdaMART(n_estimators=50, early_stopping_rounds=10),
                                    X, y, qid, grid=grid)
    assert [set(t) for t in search.trials] == [{*grid[0], "valid_ndcg", "n_trees"}] * 2
    assert search.best == grid[1]
    assert search.trials[1]["valid_ndcg"] > search.trials[0]["valid_ndcg"]
    assert search.n_trees == max(1, round(search.trials[1]["n_trees"] / 0.75))
    refit = LambdaMART().clone(**search.best, n_estimators=search.n_trees).fit(X, y, qid)
    assert refit.booster_.num_boosted_rounds() == search.n_trees and refit.max_depth == 3


def test_smoothed_best_prefers_a_lasting_peak_to_a_spike() -> None:
    curve = np.array([0.5, 0.9, 0.5, 0.6, 0.7, 0.7, 0.7, 0.7, 0.6])
    assert smoothed_best(curve, 1) == (1, 0.9)
    assert smoothed_best(curve, 4) == (7, pytest.approx(0.7))
    assert smoothed_best(curve[:2], 4) == (1, 0.9)  # shorter than the window: the raw maximum
