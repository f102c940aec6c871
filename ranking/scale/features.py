"""Feature rows of judged (query, product) pairs computed in partitions grouped by query.

The feature space is written once as bundle files (the ranker's own ``bm25.*`` and
``analyzer.json`` plus :meth:`FeatureSpace.save`'s files) into a directory every worker can
read; each worker loads it once (cached per process and directory) and computes its queries'
rows with :func:`ranking.app.build.pool_features`, the one-process loop. A query's pool never
spans partitions, so every row equals the one-process row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ranking.bm25 import MultiFieldIndex
from ranking.features import FeatureSpace
from ranking.text import Analyzer

ANALYZER_FILE = "analyzer.json"
_LOADED: dict[tuple[str, int], FeatureSpace] = {}


def save_space(space: FeatureSpace, directory: Path) -> Path:
    """Write the indexes the workers load; returns ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    space.index.save(directory)
    (directory / ANALYZER_FILE).write_text(json.dumps(space.analyzer.to_dict()))
    space.save(directory)
    return directory


def load_space(directory: str | Path) -> FeatureSpace:
    """The feature space saved in ``directory``, loaded once per worker process."""
    directory = Path(directory)
    key = (str(directory.resolve()), (directory / "bm25.npz").stat().st_mtime_ns)
    if key not in _LOADED:
        analyzer = Analyzer.from_dict(json.loads((directory / ANALYZER_FILE).read_text()))
        _LOADED.clear()  # one bundle at a time per worker
        _LOADED[key] = FeatureSpace.load(directory, analyzer, MultiFieldIndex.load(directory))
    return _LOADED[key]


def _pool_part(directory: str, judgments: pd.DataFrame, rows: np.ndarray,
               priors: np.ndarray) -> np.ndarray:
    from ranking.app.build import pool_features
    from ranking.app.progress import Progress

    return pool_features(load_space(directory), judgments, rows, priors, Progress(False))


def query_partitions(query_id: np.ndarray, n_parts: int) -> list[np.ndarray]:
    """Row positions split into ``n_parts`` sets of whole queries of about equal size."""
    codes, _ = pd.factorize(query_id)
    order = np.argsort(codes, kind="stable")
    if order.size == 0:
        return []
    from ranking.scale.ltr import query_chunks

    sizes = query_chunks(codes[order], n_parts)
    return np.split(order, np.cumsum(sizes)[:-1])


def pool_features_partitioned(client: Any, directory: Path, judgments: pd.DataFrame,
                              rows: np.ndarray, priors: np.ndarray,
                              n_parts: int | None = None) -> np.ndarray:
    """:func:`ranking.app.build.pool_features` for every judgment, computed on the workers
    from the feature space saved in ``directory`` (:func:`save_space`)."""
    n_parts = n_parts or 4 * max(1, len(client.scheduler_info()["workers"]))
    [priors_f] = client.scatter([priors], broadcast=True)
    parts = query_partitions(judgments["query_id"].to_numpy(), n_parts)
    futures = [client.submit(_pool_part, str(directory),
                             judgments.iloc[at][["query_id", "query"]].reset_index(drop=True),
                             rows[at], priors_f, pure=False) for at in parts]
    out = None
    for at, X in zip(parts, client.gather(futures), strict=True):
        if out is None:
            out = np.empty((len(judgments), X.shape[1]), dtype=X.dtype)
        out[at] = X
    if out is None:
        raise ValueError("no judgments to compute features for")
    return out
