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


@dataclass(frozen=True)
class EventLabels:
    """Debiased interaction labels of an event directory and the bundle that served it."""

    labels: InteractionLabels
    examination: Any  # position_bias.Examination (randomized where exploration reaches, EM below)
    ranker: Any  # ranking.ranker.Ranker of the serving bundle
    events: str

    def frame(self, *, debiased: bool = True) -> Any:
        """The labels in the judgments format (query, product_id, grade, query_id, shown):
        integer grades on the 0..LABEL_LEVELS scale, products the bundle does not know left
        out; groups are the products actually shown for each query."""
        import pandas as pd

        lab = self.labels
        known = np.array([p in self.ranker.catalog.row_of for p in lab.product_id], bool)
        values = lab.label if debiased else lab.raw
        return pd.DataFrame({"query": lab.query[known].astype(str),
                             "product_id": lab.product_id[known].astype(str),
                             "grade": integer_labels(values[known]),
                             "query_id": lab.query[known].astype(str),
                             "shown": lab.shown[known]})

    def description(self, *, debiased: bool = True) -> str:
        """One line for a report: which labels, how they were made, what was clipped."""
        lab = self.labels
        kind = "debiased interactions" if debiased else "raw interactions"
        return (f"{kind} from {self.events} (gains {dict(lab.gains)}, inverse-examination "
                f"weights clipped at {lab.max_weight:g}: {lab.clipped_rows:,} rows clipped; "
                f"examination: {self.examination.method}; mean gain when examined x "
                f"{LABEL_SCALE:g}, rounded, 0..{LABEL_LEVELS})")


def labels_from_events(events: Any, bundle: Any, *, max_weight: float = 10.0,
                       bootstrap: int = 10) -> EventLabels:
    """Load an event directory, refuse it unless ``bundle`` served it, estimate examination
    (randomized searches where exploration reaches, EM elsewhere) and debias the labels."""
    from ranking.app.events_api import bundle_version
    from ranking.experiments.click_labels import interaction_labels
    from ranking.experiments.estimate import examination, logged
    from ranking.experiments.events import load_events
    from ranking.ranker import Ranker

    loaded = load_events(events)
    rows = logged(loaded.impressions, loaded.outcomes)
    check_bundle_version(rows.bundle_version.tolist(), bundle_version(bundle))
    ranker = Ranker.load(bundle)
    bias = examination(rows, bootstrap=bootstrap, em=None)
    labels = interaction_labels(loaded.impressions, loaded.outcomes, bias.combined,
                                max_weight=max_weight)
    return EventLabels(labels, bias.combined, ranker, str(events))


def judgments_beside(interactions: Any, judgments: Any) -> tuple[Any, str]:
    """Judgments and interaction labels in one table: a query with judgments keeps them (a
    rater's grade is the better label); every other logged query gets its interaction labels.
    Returns the table and a line saying how many queries each source gave."""
    import pandas as pd

    def key(s: Any) -> Any:
        return s.str.casefold().str.strip()

    judged = set(key(judgments["query"]))
    extra = interactions[~key(interactions["query"]).isin(judged)]
    cols = ["query", "product_id", "grade", "query_id"]
    both = pd.concat([judgments[cols], extra[cols]], ignore_index=True)
    note = (f"{len(judged):,} queries labelled by judgments, "
            f"{extra['query'].nunique():,} by interactions (queries with judgments keep them)")
    return both, note
