"""Ranking on a Dask LocalCluster (2 worker processes) against the one-process path: the serving
index built in partitions bit-identical, feature rows computed in query partitions identical,
LambdaMART trained with xgboost.dask within 0.002 NDCG@10 of the one-process model, and its
compiled trees predicting what its own booster predicts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from objectives.catalog import load_catalog, validate_catalog
from objectives.metrics import ndcg_at_k
from ranking import features
from ranking.app.build import pool_features, product_priors
from ranking.app.progress import Progress
from ranking.features import FeatureSpace
from ranking.ltr import LambdaMART, grade_labels
from ranking.scale import (
    build_feature_space,
    fit_distributed,
    pool_features_partitioned,
    save_space,
)
from ranking.scale.ltr import query_chunks
from ranking.text import Analyzer
from tests.conftest import ROOT

distributed = pytest.importorskip("distributed")
TOL = {"rtol": 1e-5, "atol": 1e-5}  # compiled trees vs XGBoost, as tests/ranking/test_trees.py


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address="127.0.0.1:0", host="127.0.0.1") as cluster, \
            distributed.Client(cluster) as dask_client:
        yield dask_client


def assert_same_space(ours: FeatureSpace, theirs: FeatureSpace) -> None:
    """Every array of both indexes, the vocabularies, quantities, title statistics, term
    characters: equal in dtype, shape and value."""
    for a, b in ((ours.index, theirs.index), (ours.stem_index, theirs.stem_index)):
        assert [a.vocab.token(i) for i in range(len(a.vocab))] == \
            [b.vocab.token(i) for i in range(len(b.vocab))]
        assert list(a.fields) == list(b.fields) and a.params == b.params
        for name in a.fields:
            x, y = a.fields[name].arrays(name), b.fields[name].arrays(name)
            for key in y:
                assert x[key].dtype == y[key].dtype, key
                np.testing.assert_array_equal(x[key], y[key], err_msg=key, strict=True)
    pairs = [*zip(dataclasses.astuple(ours.quantities), dataclasses.astuple(theirs.quantities),
                  strict=True),
             *zip(ours.title_text.arrays().values(), theirs.title_text.arrays().values(),
                  strict=True),
             *zip(ours.term_chars, theirs.term_chars, strict=True)]
    for x, y in pairs:
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y, strict=True)
    assert ours.stem_analyzer == theirs.stem_analyzer and ours.analyzer == theirs.analyzer


def test_demo_catalog_index_bit_identical(client: object) -> None:
    catalog, _ = load_catalog(ROOT / "data" / "demo" / "catalog.csv")
    single = FeatureSpace.build(catalog, Analyzer())
    for n in (1, 3, 7):
        assert_same_space(build_feature_space(client, catalog, Analyzer(), n_partitions=n),
                          single)


@pytest.mark.realdata
def test_home_depot_index_bit_identical(client: object, home_depot: Path) -> None:
    """All 54,667 Home Depot product titles, in 5 partitions."""
    frame = pd.read_csv(home_depot, encoding="latin-1")
    products = frame.drop_duplicates("product_uid")
    catalog, _ = validate_catalog(pd.DataFrame({
        "product_id": products["product_uid"].astype(str), "title": products["product_title"]}))
    single = FeatureSpace.build(catalog, Analyzer())
    assert_same_space(build_feature_space(client, catalog, Analyzer(), n_partitions=5), single)


def test_feature_rows_in_query_partitions_equal(client: object, tmp_path: Path) -> None:
    demo = ROOT / "data" / "demo"
    catalog, _ = load_catalog(demo / "catalog.csv")
    judgments = pd.read_csv(demo / "judgments.csv", dtype={"product_id": str})
    judgments["query_id"] = pd.factorize(judgments["query"])[0]
    space = FeatureSpace.build(catalog, Analyzer())
    rows = pd.Index(catalog["product_id"]).get_indexer(judgments["product_id"])
    priors = product_priors(catalog)
    single = pool_features(space, judgments, rows, priors, Progress(False))
    ours = pool_features_partitioned(client, save_space(space, tmp_path / "space"), judgments,
                                     rows, priors, n_parts=5)
    np.testing.assert_array_equal(ours, single, strict=True)


def test_query_chunks_end_at_query_boundaries() -> None:
    qid = np.repeat(np.arange(50), np.arange(50) % 7 + 1)
    sizes = query_chunks(qid, 4)
    ends = np.cumsum(sizes)
    assert ends[-1] == qid.size and len(sizes) == 4
    assert all(qid[e - 1] != qid[e] for e in ends[:-1])


@pytest.mark.realdata
def test_lambdamart_on_dask_matches_one_process(client: object,
                                                home_depot_sample: tuple) -> None:
    """400 real Home Depot queries (the shared sample, for CI time): 240 train, 60 validation
    (early stopping), 100 test. NDCG@10 on the test queries within 0.002; the compiled trees of
    the distributed model equal its booster's predictions."""
    X, grades, qid = home_depot_sample
    y = grade_labels(grades)
    queries = np.random.default_rng(0).permutation(np.unique(qid))
    train, valid = np.isin(qid, queries[:240]), np.isin(qid, queries[240:300])
    test = ~(train | valid)
    base = LambdaMART(feature_names=features.FEATURE_NAMES, n_estimators=300, max_depth=4,
                      learning_rate=0.05, min_child_weight=20.0, subsample=1.0,
                      colsample_bytree=1.0, n_jobs=1, seed=0)
    single = base.clone().fit(X[train], y[train], qid[train], X[valid], y[valid], qid[valid])
    ours = fit_distributed(base, client, X[train], y[train], qid[train],
                           X[valid], y[valid], qid[valid])
    assert ours.booster_ is not None and ours.trees_ is not None

    def mean_ndcg(model: LambdaMART) -> float:
        scores = model.predict(X[test])
        values = []
        for q in np.unique(qid[test]):
            at = qid[test] == q
            values.append(ndcg_at_k(grades[test][at][np.argsort(-scores[at], kind="stable")],
                                    10))
        return float(np.mean(values))

    assert abs(mean_ndcg(ours) - mean_ndcg(single)) <= 0.002
    reference = ours.booster_.predict(xgb.DMatrix(X, feature_names=list(features.FEATURE_NAMES)),
                                      output_margin=True)
    np.testing.assert_allclose(ours.trees_.predict(X), reference, **TOL)
    assert ours.trees_.n_trees == ours.booster_.num_boosted_rounds() == ours.best_iteration_ + 1


def test_quality_folds_as_dask_tasks_equal_one_process(client: object, small_world: Path,
                                                       tmp_path: Path) -> None:
    """`bench quality --cluster`: each fold is a task on the workers; every held-out query's
    figures equal the one-process run's."""
    from ranking.app.bench_command import load_script

    quality = load_script("quality")
    common = ["--catalog", str(small_world / "catalog.csv"), "--judgments",
              str(small_world / "judgments.csv"), "--transactions",
              str(small_world / "transactions.csv.gz"), "--k", "5", "--folds", "2"]
    reports = []
    for extra, name in (([], "single"), (["--cluster", client.scheduler.address], "dask")):
        quality.run(quality.parse_args([*common, *extra, "--out", str(tmp_path / name)]),
                    quality.Progress(enabled=False))
        reports.append(json.loads((tmp_path / f"{name}.json").read_text()))
    assert reports[0]["per_query"] == reports[1]["per_query"]
    assert reports[0]["tables"] == reports[1]["tables"]
