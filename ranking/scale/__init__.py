"""Building on a Dask cluster: the serving index in partitions, feature rows in partitions
grouped by query, LambdaMART with ``xgboost.dask``. Each function takes a
``distributed.Client``; dask is imported only when one runs."""

from ranking.scale.features import load_space, pool_features_partitioned, save_space
from ranking.scale.index import build_feature_space, merge_partitions, split_catalog
from ranking.scale.ltr import fit_distributed, train_and_cross_fit_distributed

__all__ = [
    "build_feature_space",
    "fit_distributed",
    "load_space",
    "merge_partitions",
    "pool_features_partitioned",
    "save_space",
    "split_catalog",
    "train_and_cross_fit_distributed",
]
