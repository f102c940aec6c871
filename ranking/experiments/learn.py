"""LambdaMART from logs: debiased interaction labels as training targets, the products actually
shown as each query's group, features recomputed from the bundle that served them.

Feature logging is made exact by recomputing, not by storing: the impressions name the bundle
version that ranked them, and :func:`training_set` refuses a bundle whose version differs (its
features could differ from what was served). Labels (:mod:`ranking.experiments.click_labels`)
are mean gains when examined, continuous; ``rank:ndcg`` wants small integers, so they are put
on a 0..:data:`LABEL_LEVELS` scale by a fixed factor (the same for debiased and raw labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from clv.errors import DataError
from ranking.experiments.click_labels import InteractionLabels

#: Highest integer label given to ``rank:ndcg``.
LABEL_LEVELS = 8
#: Integer label per unit of mean gain when examined.
LABEL_SCALE = 3.0


@dataclass(frozen=True)
class TrainingSet:
    """Feature rows, integer labels and query ids of the shown (query, product) pairs."""

    X: np.ndarray
    y: np.ndarray
    qid: np.ndarray
    queries: list[str]
    labels_used: str  # "debiased interactions" or "raw interactions"


def integer_labels(values: np.ndarray) -> np.ndarray:
    """Mean gains on the integer scale ``rank:ndcg`` needs (0..LABEL_LEVELS)."""
    return np.clip(np.rint(np.asarray(values, np.float64) * LABEL_SCALE), 0,
                   LABEL_LEVELS).astype(np.int64)


def check_bundle_version(logged_versions: Any, bundle_version: str | None) -> None:
    """Refuse logs served by another bundle: their features cannot be recomputed exactly."""
    seen = sorted({str(v) for v in logged_versions if v is not None})
    if bundle_version is not None and seen and seen != [bundle_version]:
        raise DataError(f"the impressions were served by bundle version(s) {seen[:3]}, not "
                        f"{bundle_version}: features are recomputed from the serving bundle; "
                        "give that bundle (or filter the logs to it)")


def training_set(ranker: Any, labels: InteractionLabels, *, debiased: bool = True,
                 queries: set[str] | None = None) -> TrainingSet:
    """Features of every shown (query, product) of ``labels`` from ``ranker``'s bundle, with
    the debiased (or raw) labels; ``queries`` restricts to those queries."""
    index = ranker.catalog.row_of
    values = labels.label if debiased else labels.raw
    order = np.argsort(labels.query.astype(str), kind="stable")
    X_parts, y_parts, q_parts, names = [], [], [], []
    q_all = labels.query[order]
    bounds = np.flatnonzero(q_all[1:] != q_all[:-1]) + 1
    for chunk in np.split(order, bounds):
        query = str(labels.query[chunk[0]])
        if queries is not None and query not in queries:
            continue
        known = [i for i in chunk if labels.product_id[i] in index]
        if len(known) < 2:
            continue
        rows = np.array([index[labels.product_id[i]] for i in known], np.int64)
        X_parts.append(ranker.feature_space.extract(query, rows, ranker.catalog.priors))
        y_parts.append(integer_labels(values[known]))
        q_parts.append(np.full(len(known), len(names), np.int64))
        names.append(query)
    if not names:
        raise DataError("no query in the logs showed two known products: nothing to train on")
    return TrainingSet(np.vstack(X_parts), np.concatenate(y_parts), np.concatenate(q_parts),
                       names, "debiased interactions" if debiased else "raw interactions")
