"""Learned relevance: XGBoost LambdaMART (``rank:ndcg``) trained on query groups.

Uses the plain ``xgboost.train`` API with a qid ``DMatrix`` (``XGBRanker`` would pull in
scikit-learn). Models are saved as UBJ, truncated to the best early-stopping iteration so that
what is saved is exactly what is served. Searches are scored by the same trees compiled into
Numba (:mod:`ranking.trees`), which is faster than XGBoost's own call at serving batch sizes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clv.errors import ModelError
from ranking.trees import CompiledTrees

if TYPE_CHECKING:  # imported where a booster is trained or loaded, not by a search process
    import xgboost as xgb

#: Largest label XGBoost's ``rank:ndcg`` accepts with exponential gain.
MAX_LABEL = 31
#: Largest batch scored by the compiled trees; larger ones go to XGBoost and its threads.
#: Measured (benchmarks/tree_inference.py, 100 and 300 trees of depth 6; figures in the README,
#: "Tree inference"): on one thread the compiled trees are faster than XGBoost at every size
#: measured, 6 to 1000 rows, whether XGBoost runs on one thread (as served: ``load`` sets it)
#: or on two. Larger batches (bulk scoring while building) are not measured; XGBoost keeps them.
COMPILED_MAX_ROWS = 1000
#: The settings :func:`search_hyperparameters` tries, on training queries only. Graded rater
#: averages are noisy, and on Home Depot the validation curve of deep, fast models peaks after a
#: few dozen trees and then falls; these are shallow to medium trees with a slow learning rate
#: and large leaves (``min_child_weight`` is a sum of LambdaMART hessians), each early-stopped.
#: Three settings keep a five-fold benchmark within the time two shared cores allow.
HYPERPARAMETER_GRID: tuple[dict[str, float], ...] = (
    {"max_depth": 3, "learning_rate": 0.05, "min_child_weight": 50.0},
    {"max_depth": 4, "learning_rate": 0.03, "min_child_weight": 20.0},
    {"max_depth": 6, "learning_rate": 0.03, "min_child_weight": 50.0},
)


def smoothed_best(curve: np.ndarray, window: int) -> tuple[int, float]:
    """(round, score) where the mean of ``window`` validation scores ending at that round peaks.

    On flat, noisy validation curves (rater averages over small pools) the raw maximum is often
    a spike a few trees in, and which spike wins changes with the split; the round that is good
    for a while is a steadier choice. ``window`` 1 is the raw maximum.
    """
    if window <= 1 or curve.shape[0] < window:
        return int(np.argmax(curve)), float(np.max(curve))
    means = np.convolve(curve, np.ones(window) / window, mode="valid")
    return int(np.argmax(means)) + window - 1, float(np.max(means))


def grade_labels(grades: np.ndarray) -> np.ndarray:
    """Integer relevance labels for ``rank:ndcg`` (exponential gain needs small ints).

    Call it once on all judgments, so one grade gets one label in every split. Integer grades
    >= 0 are used as they are. Fractional grades are rater averages (Home Depot averages 1-3
    over up to 3 raters): shifted so the lowest whole grade is 0 and counted in thirds, so
    1, 1.33, ..., 3 become 0, 1, ..., 6. Grades that would map above :data:`MAX_LABEL` raise
    :class:`ModelError`; callers with a file check :func:`label_values` first to name the line.
    """
    values = label_values(grades)
    if (values > MAX_LABEL).any():
        raise ModelError(f"grades map to labels above {MAX_LABEL}; use grades such as 0-3")
    return values.astype(np.int64)


def label_values(grades: np.ndarray) -> np.ndarray:
    """The labels of :func:`grade_labels` as floats, before the range check and the cast."""
    grades = np.asarray(grades, dtype=np.float64)
    if not np.isfinite(grades).all():
        raise ModelError("grades must be finite numbers")
    if np.all(grades == np.round(grades)) and grades.min(initial=0) >= 0:
        return grades
    return np.rint((grades - np.floor(grades.min())) * 3)


@dataclass
class LambdaMART:
    """LambdaMART ranker. Parameters are set at construction; ``fit`` learns ``booster_``.

    ``trees_`` is ``booster_`` compiled for fast scoring, built with it by ``fit`` and ``load``.
    """

    n_estimators: int = 1000
    learning_rate: float = 0.08
    max_depth: int = 6
    min_child_weight: float = 1.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    eval_at: int = 10
    early_stopping_rounds: int = 100
    #: The kept tree count is where the validation NDCG, averaged over this many rounds, peaks.
    smoothing_rounds: int = 25
    n_jobs: int = 2
    seed: int = 0
    feature_names: tuple[str, ...] = ()
    booster_: xgb.Booster | None = field(default=None, repr=False)
    best_iteration_: int | None = None
    best_score_: float | None = None  # validation NDCG at ``best_iteration_``
    trees_: CompiledTrees | None = field(default=None, repr=False, compare=False)
    #: The model file a loaded model's booster is read from when first needed (training
    #: reuse, batches above :data:`COMPILED_MAX_ROWS`, importances, save): serving reads only
    #: the compiled trees, and never imports xgboost.
    model_file_: Path | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.booster_ is not None and self.trees_ is None:
            self.trees_ = CompiledTrees.from_booster(self.booster_)

    def _params(self) -> dict[str, object]:
        return {
            "objective": "rank:ndcg", "eval_metric": f"ndcg@{self.eval_at}",
            "eta": self.learning_rate, "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight, "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree, "nthread": self.n_jobs,
            "seed": self.seed, "tree_method": "hist",
        }

    def clone(self, **params: object) -> LambdaMART:
        """An unfitted copy with ``params`` changed (for folds and hyperparameter trials)."""
        return dataclasses.replace(self, **params, booster_=None, best_iteration_=None,
                                   trees_=None, model_file_=None, best_score_=None)

    def fit(
        self,
        X: np.ndarray, y: np.ndarray, qid: np.ndarray,
        X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
        qid_val: np.ndarray | None = None,
    ) -> LambdaMART:
        """Train on (X, y) grouped by ``qid``; stop early on the held-out validation queries.

        ``y`` holds integer labels from :func:`grade_labels`. Rows are stably sorted by qid
        first, because XGBoost requires contiguous groups. Without validation rows exactly
        ``n_estimators`` trees are grown: for a refit on all training queries with a tree
        count that early stopping chose before (:func:`search_hyperparameters`).
        """
        import xgboost as xgb

        train = self._dmatrix(X, y, qid)
        if X_val is None or y_val is None or qid_val is None:
            self.booster_ = xgb.train(self._params(), train, num_boost_round=self.n_estimators)
            self.best_iteration_ = self.n_estimators - 1
        else:
            valid = self._dmatrix(X_val, y_val, qid_val)
            history: dict[str, dict[str, list[float]]] = {}
            booster = xgb.train(
                self._params(), train, num_boost_round=self.n_estimators,
                evals=[(valid, "valid")], early_stopping_rounds=self.early_stopping_rounds,
                evals_result=history, verbose_eval=False,
            )
            curve = np.asarray(next(iter(history["valid"].values())))
            self.best_iteration_, self.best_score_ = smoothed_best(curve, self.smoothing_rounds)
            self.booster_ = booster[: self.best_iteration_ + 1]
        self.trees_ = CompiledTrees.from_booster(self.booster_)
        return self

    def _dmatrix(self, X: np.ndarray, y: np.ndarray, qid: np.ndarray) -> xgb.DMatrix:
        import xgboost as xgb

        if len(X) == 0:
            raise ModelError("no training rows: every query needs judged candidates")
        if y.dtype.kind not in "iu" or y.min() < 0 or y.max() > MAX_LABEL:
            raise ModelError(f"labels must be integers from 0 to {MAX_LABEL}: use grade_labels")
        order = np.argsort(qid, kind="stable")
        names = list(self.feature_names) or None
        return xgb.DMatrix(X[order], label=y[order], qid=qid[order], feature_names=names)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Relevance scores (the raw margin) for the rows of ``X``.

        Up to :data:`COMPILED_MAX_ROWS` rows (a search's candidates) are scored by the
        compiled trees, the sizes where they were measured faster; larger batches by XGBoost.
        Both give XGBoost's margins.
        """
        if self.trees_ is None:
            raise ModelError("model is not fitted")
        if X.shape[0] <= COMPILED_MAX_ROWS:
            return self.trees_.predict(X)
        return self._booster().inplace_predict(X, predict_type="margin").astype(np.float64)

    def _booster(self) -> xgb.Booster:
        """The booster, read from :attr:`model_file_` the first time a loaded model needs it."""
        if self.booster_ is None and self.model_file_ is not None:
            self.booster_ = _read_booster(self.model_file_)
        if self.booster_ is None:
            raise ModelError("model is not fitted")
        return self.booster_

    def feature_importance(self) -> dict[str, float]:
        """Total gain per feature, normalized to sum to 1."""
        gain = self._booster().get_score(importance_type="total_gain")
        total = sum(gain.values()) or 1.0
        return {k: v / total for k, v in sorted(gain.items(), key=lambda kv: -kv[1])}

    def save(self, directory: Path) -> list[Path]:
        """Write ``model.ubj`` and ``model.json`` (feature names, settings); return paths."""
        booster = self._booster()
        model, meta = directory / "model.ubj", directory / "model.json"
        booster.save_model(model)
        meta.write_text(json.dumps({
            "feature_names": list(self.feature_names), "best_iteration": self.best_iteration_,
            "n_trees": booster.num_boosted_rounds(), "params": self._params(),
        }, indent=2))
        return [model, meta]

    @classmethod
    def load(cls, directory: Path) -> LambdaMART:
        from ranking import bundle_checks

        meta = bundle_checks.read_json(directory / "model.json")
        path = directory / "model.ubj"
        trees = CompiledTrees.from_model_file(path)
        return cls(feature_names=tuple(meta["feature_names"]), trees_=trees, model_file_=path,
                   best_iteration_=meta["best_iteration"])


def _read_booster(path: Path) -> xgb.Booster:
    """An XGBoost booster from its model file, single-threaded (a search must not start a
    thread pool)."""
    import xgboost as xgb

    booster = xgb.Booster()
    try:
        booster.load_model(path)
    except xgb.core.XGBoostError as exc:
        raise ModelError(f"{path}: cannot load model: {exc}") from exc
    booster.set_param({"nthread": 1})
    return booster


def cross_fit_relevance(
    model: LambdaMART, X: np.ndarray, y: np.ndarray, qid: np.ndarray,
    fit_mask: np.ndarray, valid_mask: np.ndarray, n_folds: int = 3,
) -> np.ndarray:
    """Out-of-fold relevance scores for the ``fit_mask`` rows (zeros elsewhere).

    Scores a model gives its own training queries are overconfident; the tuner needs scores
    like those it will see on new queries, so each fold of training queries is scored by a
    model trained on the other folds (early stopping on ``valid_mask`` rows).
    """
    out = np.zeros(len(X), dtype=np.float64)
    queries = np.unique(qid[fit_mask])
    rng = np.random.default_rng(model.seed)
    fold_of = dict(zip(rng.permutation(queries), np.arange(queries.size) % n_folds, strict=True))
    fold = np.array([fold_of.get(q, -1) for q in qid])
    for f in range(n_folds):
        held = fit_mask & (fold == f)
        rest = fit_mask & (fold != f)
        fitted = model.clone()
        fitted.fit(X[rest], y[rest], qid[rest], X[valid_mask], y[valid_mask], qid[valid_mask])
        out[held] = fitted.predict(X[held])
    return out


@dataclass(frozen=True)
class HyperparameterSearch:
    """The chosen setting, its early-stopped tree count, and every trial's figures."""

    best: dict[str, float]
    n_trees: int
    trials: tuple[dict[str, float], ...]


def search_hyperparameters(
    model: LambdaMART, X: np.ndarray, y: np.ndarray, qid: np.ndarray, *,
    grid: tuple[dict[str, float], ...] = HYPERPARAMETER_GRID, valid_fraction: float = 0.25,
) -> HyperparameterSearch:
    """Pick the grid setting with the best validation NDCG@``eval_at`` on held-out queries.

    Only the rows given are used (pass the training queries, never test ones): a seeded
    ``valid_fraction`` of their queries is held out, each setting is trained on the rest with
    early stopping on them, and the winner's tree count is scaled up by the held-out share, so
    that a refit on all the given queries (``model.clone(**best, n_estimators=n_trees)``) grows
    about as many trees per training row.
    """
    queries = np.unique(qid)
    rng = np.random.default_rng(model.seed)
    held = np.isin(qid, rng.permutation(queries)[: max(1, int(valid_fraction * queries.size))])
    trials = []
    for params in grid:
        fitted = model.clone(**params).fit(X[~held], y[~held], qid[~held],
                                           X[held], y[held], qid[held])
        trials.append({**params, "valid_ndcg": float(fitted.best_score_ or 0.0),
                       "n_trees": int(fitted.best_iteration_ or 0) + 1})
    best = max(trials, key=lambda t: t["valid_ndcg"])
    n_trees = max(1, int(round(best["n_trees"] / (1.0 - valid_fraction))))
    chosen = {k: best[k] for k in grid[trials.index(best)]}
    return HyperparameterSearch(chosen, n_trees, tuple(trials))


def train_and_cross_fit(
    base: LambdaMART, X: np.ndarray, y: np.ndarray, qid: np.ndarray,
    fit_mask: np.ndarray, valid_mask: np.ndarray,
) -> tuple[LambdaMART, HyperparameterSearch, np.ndarray]:
    """The relevance model as a bundle is built, and relevance scores for every row.

    Hyperparameters are searched on the ``fit_mask`` rows, the chosen setting is early-stopped
    on the ``valid_mask`` rows, and the scores are cross-fitted for the ``fit_mask`` rows
    (:func:`cross_fit_relevance`) and the model's own elsewhere. The build and the quality
    benchmark both call this, so the benchmark measures the model that is served.
    """
    search = search_hyperparameters(base, X[fit_mask], y[fit_mask], qid[fit_mask])
    model = base.clone(**search.best)
    model.fit(X[fit_mask], y[fit_mask], qid[fit_mask],
              X[valid_mask], y[valid_mask], qid[valid_mask])
    relevance = np.where(fit_mask, cross_fit_relevance(model, X, y, qid, fit_mask, valid_mask),
                         model.predict(X))
    return model, search, relevance
