"""The one-call feature kernel (:mod:`ranking._extract_kernels`) gives the matrix the
column-by-column extraction gave, to the bit: on real Home Depot queries (a digest computed
with the per-column ``FeatureSpace.extract`` of commit 24b96db), and for the parts it computes
itself (numpy's summation order, the query columns)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest

from objectives.catalog import validate_catalog
from ranking import _extract_kernels as kernels
from ranking import features
from ranking.text import Analyzer

#: :func:`extract_digest` of the Home Depot catalog as 24b96db's ``extract`` computed it
#: (its per-column Python over the field, title and quantity kernels).
HOME_DEPOT_DIGEST = "05d545312bfca45c73f691801b41ef04"
N_QUERIES = 600


def extract_digest(train_csv: Path, n_queries: int = N_QUERIES) -> str:
    """sha256 of ``extract`` over ``n_queries`` seeded real queries, each against its judged
    products and 120 seeded random rows, with seeded priors (some missing)."""
    from objectives.public_data import load_home_depot

    data = load_home_depot(train_csv)
    catalog, judgments = data.catalog, data.judgments
    space = features.FeatureSpace.build(catalog, Analyzer())
    rng = np.random.default_rng(17)
    n = len(catalog)
    priors = rng.normal(3.0, 1.0, (n, len(features.PRIORS))).astype(np.float32)
    priors[rng.random(priors.shape) < 0.3] = np.nan
    row = {p: i for i, p in enumerate(catalog["product_id"])}
    judged = judgments.groupby("query", sort=True)["product_id"].agg(list)
    picked = judged.sample(n_queries, random_state=17)
    digest = hashlib.sha256()
    for query, ids in picked.items():
        docs = np.concatenate([[row[p] for p in ids], rng.integers(0, n, 120)]).astype(np.int64)
        X = space.extract(query, docs, priors)
        digest.update(query.encode() + X.tobytes())
    return digest.hexdigest()[:32]


@pytest.mark.realdata
def test_home_depot_features_equal_the_per_column_extraction(home_depot: Path) -> None:
    assert extract_digest(home_depot) == HOME_DEPOT_DIGEST


@pytest.mark.parametrize("n", [0, 1, 5, 7, 8, 9, 15, 16, 17, 100, 128, 129, 130, 257, 1000, 3001])
def test_pairwise_sum_is_numpys_sum_to_the_bit(n: int) -> None:
    rng = np.random.default_rng(n)
    for scale in (1.0, 1e-9, 1e9):
        values = rng.random(n) * scale * rng.choice([1.0, 1e-6, 1e6], n)
        got = kernels.pairwise_sum(values)
        assert np.float64(got).tobytes() == values.sum().tobytes()


def test_query_columns_are_the_numpy_formulas() -> None:
    rng = np.random.default_rng(3)
    idf = rng.random(50) * 8
    for nq in range(0, 20):
        exact = rng.integers(-1, 50, nq)
        stemmed = rng.integers(-1, 50, nq)
        known = idf[stemmed[stemmed >= 0]]
        expected = [nq, 1.0 - (exact >= 0).sum() / nq if nq else 1.0, known.sum(),
                    known.max() if known.size else np.nan,
                    known.min() if known.size else np.nan]
        got = kernels.query_columns(exact, stemmed, idf)
        assert np.array(expected, np.float64).tobytes() == got.tobytes()


CATALOG = {
    "product_id": ["A", "B", "C"],
    "title": ["Acme Cordless Drill 20V", "Drill Bit Set", "Garden Hose 3/4 in."],
    "description": ["A cordless drill.", "", "Hose for the garden."],
    "category": ["Tools", "Tools", "Garden"],
    "brand": ["Acme", "", "Hosey"],
    "attributes": ["", "", ""],
}


@pytest.fixture(scope="module")
def space() -> features.FeatureSpace:
    catalog, _ = validate_catalog(pd.DataFrame(CATALOG))
    return features.FeatureSpace.build(catalog, Analyzer())


def test_fields_are_one_numba_type(space: features.FeatureSpace) -> None:
    """The kernel picks a field by a run-time number, which needs one type for every field:
    here four fields are computed (attributes is empty, so never computed)."""
    plan = space._extract_plan
    assert len(plan.fields) == 5
    assert isinstance(numba.typeof(plan.fields), numba.types.UniTuple)
    assert set(plan.field_map[:, 1]) == set(range(5))
    attributes = [features.COLUMN[f"{c}_attributes"] for c in ("bm25", "bm25_stem", "cover")]
    assert not set(attributes) & set(plan.field_map[:, 0])
    X = space.extract("acme drill", np.arange(3), np.zeros((3, len(features.PRIORS))))
    assert np.isnan(X[:, attributes]).all()
    assert not np.isnan(X[:, features.COLUMN["bm25_description"]][[0, 2]]).any()


def test_priors_without_a_row_for_a_candidate_are_refused(space: features.FeatureSpace) -> None:
    with pytest.raises(ValueError, match="priors has 2 rows; candidate row 2 has none"):
        space.extract("drill", np.arange(3), np.zeros((2, len(features.PRIORS))))
    with pytest.raises(ValueError, match=r"priors must be \(n_products, 3\); got \(3, 2\)"):
        space.extract("drill", np.arange(3), np.zeros((3, 2)))
