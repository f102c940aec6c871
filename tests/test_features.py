"""Features: hand-checked values on a tiny catalog."""

from __future__ import annotations

import numpy as np
import pytest

from ranking import features
from ranking.bm25 import MultiFieldIndex
from ranking.text import Analyzer

CATALOG = {
    "title": ["Acme Cordless Drill 20V", "Drill Bit Set", "Garden Hose"],
    "description": ["A cordless drill.", "Bits for a drill.", ""],
    "category": ["Tools/Drills", "Tools/Accessories", "Garden/Hoses"],
    "brand": ["Acme", "Bitco", "Hosey"],
    "attributes": ["voltage=20V", "pieces=10", "length=50 ft"],
}


@pytest.fixture(scope="module")
def index() -> MultiFieldIndex:
    a = Analyzer()
    tokens = {f: [a(t) for t in texts] for f, texts in CATALOG.items()}
    tokens["all"] = [sum((tokens[f][i] for f in CATALOG), []) for i in range(3)]
    return MultiFieldIndex.build(tokens)


def column(X: np.ndarray, name: str) -> np.ndarray:
    return X[:, features.FEATURE_NAMES.index(name)]


def test_match_features(index: MultiFieldIndex) -> None:
    q = index.vocab.lookup(Analyzer()("acme cordless drill"))
    X = features.extract(index, q, np.arange(3), np.full((3, 2), np.nan, np.float32))
    assert X.shape == (3, len(features.FEATURE_NAMES)) and X.dtype == np.float32
    assert column(X, "cover_title").tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    assert column(X, "phrase_title").tolist() == [1.0, 0.0, 0.0]
    assert column(X, "bigram_title").tolist() == [1.0, 0.0, 0.0]
    assert column(X, "first_pos_title").tolist() == [0.0, 0.0, 1.0]
    assert column(X, "brand_in_query").tolist() == [1.0, 0.0, 0.0]
    assert column(X, "bm25_title")[0] > column(X, "bm25_title")[1] > column(X, "bm25_title")[2]
    assert np.isnan(column(X, "rating")).all()


def test_unknown_and_empty_queries(index: MultiFieldIndex) -> None:
    priors = np.zeros((3, 2), np.float32)
    X = features.extract(index, index.vocab.lookup(["zzz", "drill"]), np.arange(3), priors)
    assert column(X, "query_unknown").tolist() == [0.5] * 3
    X = features.extract(index, index.vocab.lookup([]), np.arange(3), priors)
    assert np.isfinite(X).all() and column(X, "query_unknown").tolist() == [1.0] * 3
