"""LambdaMART on a Dask cluster with ``xgboost.dask``; the result is an ordinary
:class:`ranking.ltr.LambdaMART` (booster truncated at the smoothed early-stopping peak, trees
compiled), so saving, compiling and serving do not change.

Rows are sorted by query and cut into chunks at query boundaries, so no query group is split
across partitions or workers (what ``DaskXGBRanker(allow_group_split=True)`` would otherwise have
to tolerate); ``xgboost.dask.train`` then builds each tree from the workers' histograms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clv.errors import ModelError
from ranking.ltr import (
    HYPERPARAMETER_GRID,
    HyperparameterSearch,
    LambdaMART,
    cross_fit_relevance,
    search_hyperparameters,
    smoothed_best,
)
from ranking.trees import CompiledTrees


def query_chunks(qid: np.ndarray, n_chunks: int) -> tuple[int, ...]:
    """Chunk sizes of qid-sorted rows, about equal, each ending at a query boundary."""
    n = qid.shape[0]
    starts = np.flatnonzero(np.r_[True, qid[1:] != qid[:-1]]) if n else np.zeros(0, np.int64)
    targets = np.linspace(0, n, max(1, n_chunks) + 1)[1:-1]
    cuts = np.unique(starts[np.minimum(np.searchsorted(starts, targets), starts.size - 1)])
    bounds = np.r_[0, cuts[cuts > 0], n]
    return tuple(int(s) for s in np.diff(bounds) if s > 0)


def dask_matrix(client: Any, X: np.ndarray, y: np.ndarray, qid: np.ndarray,
                feature_names: tuple[str, ...], n_chunks: int) -> Any:
    """A ``DaskDMatrix`` of qid-sorted rows in query-aligned chunks spread over the workers."""
    import dask.array as da
    import xgboost as xgb
    import xgboost.dask  # noqa: F401  (registers xgb.dask)

    if len(X) == 0:
        raise ModelError("no training rows: every query needs judged candidates")
    order = np.argsort(qid, kind="stable")
    chunks = query_chunks(qid[order], n_chunks)
    X_d = da.from_array(np.ascontiguousarray(X[order]), chunks=(chunks, X.shape[1]))
    y_d = da.from_array(y[order], chunks=(chunks,))
    q_d = da.from_array(qid[order], chunks=(chunks,))
    X_d, y_d, q_d = client.persist([X_d, y_d, q_d])
    return xgb.dask.DaskDMatrix(client, X_d, y_d, qid=q_d,
                                feature_names=list(feature_names) or None)


def fit_distributed(model: LambdaMART, client: Any, X: np.ndarray, y: np.ndarray,
                    qid: np.ndarray, X_val: np.ndarray | None = None,
                    y_val: np.ndarray | None = None, qid_val: np.ndarray | None = None,
                    n_chunks: int | None = None) -> LambdaMART:
    """:meth:`LambdaMART.fit` with the boosting spread over ``client``'s workers."""
    n_chunks = n_chunks or 2 * max(1, len(client.scheduler_info()["workers"]))
    train = dask_matrix(client, X, y, qid, model.feature_names, n_chunks)
    valid = (None if X_val is None or y_val is None or qid_val is None else
             dask_matrix(client, X_val, y_val, qid_val, model.feature_names, n_chunks))
    return train_matrices(model, client, train, valid)


def train_matrices(model: LambdaMART, client: Any, train: Any, valid: Any | None
                   ) -> LambdaMART:
    """Boost on ``DaskDMatrix`` objects (rows already grouped by query within partitions)."""
    import xgboost as xgb
    import xgboost.dask  # noqa: F401  (registers xgb.dask)

    if not isinstance(train.worker_map, dict) or not train.worker_map:
        raise ModelError("no training rows on the cluster")
    params = model._params()
    params.pop("nthread")  # each worker boosts with its own threads
    fitted = model.clone()
    if valid is None:
        output = xgb.dask.train(client, params, train, num_boost_round=model.n_estimators)
        fitted.booster_ = output["booster"]
        fitted.best_iteration_ = model.n_estimators - 1
    else:
        output = xgb.dask.train(client, params, train, num_boost_round=model.n_estimators,
                                evals=[(valid, "valid")],
                                early_stopping_rounds=model.early_stopping_rounds,
                                verbose_eval=False)
        curve = np.asarray(next(iter(output["history"]["valid"].values())))
        fitted.best_iteration_, fitted.best_score_ = smoothed_best(curve,
                                                                   model.smoothing_rounds)
        fitted.booster_ = output["booster"][: fitted.best_iteration_ + 1]
    fitted.booster_.set_param({"nthread": model.n_jobs})
    fitted.trees_ = CompiledTrees.from_booster(fitted.booster_)
    return fitted


def train_and_cross_fit_distributed(
    client: Any, base: LambdaMART, X: np.ndarray, y: np.ndarray, qid: np.ndarray,
    fit_mask: np.ndarray, valid_mask: np.ndarray,
) -> tuple[LambdaMART, HyperparameterSearch, np.ndarray]:
    """:func:`ranking.ltr.train_and_cross_fit` on a cluster: each hyperparameter trial is a
    task (:func:`search_hyperparameters` on one grid setting), the chosen model boosts with
    ``xgboost.dask`` while the cross-fitted scores are computed in a task of their own
    (:func:`cross_fit_relevance`, early-stopping folds of the chosen setting)."""
    Xf, yf, qf = client.scatter([X[fit_mask], y[fit_mask], qid[fit_mask]])
    trials = client.gather([client.submit(search_hyperparameters, base, Xf, yf, qf,
                                          grid=(params,), pure=False)
                            for params in HYPERPARAMETER_GRID])
    best = max(trials, key=lambda t: t.trials[0]["valid_ndcg"])  # first of equals, as in order
    search = HyperparameterSearch(best.best, best.n_trees,
                                  tuple(t.trials[0] for t in trials))
    chosen = base.clone(**search.best)
    cross = client.submit(cross_fit_relevance, chosen, X, y, qid, fit_mask, valid_mask,
                          pure=False)
    model = fit_distributed(chosen, client, X[fit_mask], y[fit_mask], qid[fit_mask],
                            X[valid_mask], y[valid_mask], qid[valid_mask])
    relevance = np.where(fit_mask, cross.result(), model.predict(X))
    return model, search, relevance
