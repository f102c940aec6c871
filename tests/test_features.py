"""Features: hand-checked values on a tiny catalog, missing fields as NaN, and a bundle round
trip that computes the same matrix."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from objectives.catalog import validate_catalog
from ranking import features
from ranking.bm25 import IndexError_, MultiFieldIndex
from ranking.text import Analyzer

CATALOG = {
    "product_id": ["A", "B", "C", "D"],
    "title": ["Acme Cordless Drill 20V", "Drill Bit Set", "Garden Hose 3/4 in. x 50 ft",
              "Copper Pipe 1/2 in."],
    "description": ["A cordless drill.", "Bits for drilling.", "", ""],
    "category": ["Tools/Drills", "Tools/Accessories", "Garden/Hoses", "Plumbing"],
    "brand": ["Acme", "Bitco", "Hosey", ""],
    "attributes": ["voltage=20V", "pieces=10", "length=50 ft", ""],
}
NO_PRIORS = np.full((4, len(features.PRIORS)), np.nan, np.float32)


@pytest.fixture(scope="module")
def space() -> features.FeatureSpace:
    catalog, _ = validate_catalog(pd.DataFrame(CATALOG))
    return features.FeatureSpace.build(catalog, Analyzer())


def column(X: np.ndarray, name: str) -> np.ndarray:
    return X[:, features.COLUMN[name]]


def test_match_features(space: features.FeatureSpace) -> None:
    X = space.extract("acme cordless drill", np.arange(4), NO_PRIORS)
    assert X.shape == (4, len(features.FEATURE_NAMES)) and X.dtype == np.float32
    assert column(X, "cover_title").tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.0])
    assert column(X, "phrase_title").tolist() == [1.0, 0.0, 0.0, 0.0]
    assert column(X, "bigram_title").tolist() == [1.0, 0.0, 0.0, 0.0]
    assert column(X, "last_token_title").tolist() == [1.0, 1.0, 0.0, 0.0]
    assert column(X, "first_pos_title").tolist() == [0.0, 0.0, 1.0, 1.0]
    title_lengths = [len(space.stem_analyzer(t)) for t in CATALOG["title"][:2]]
    assert column(X, "title_in_query")[:2].tolist() == pytest.approx(
        [3 / title_lengths[0], 1 / title_lengths[1]])
    assert column(X, "brand_in_query")[:3].tolist() == [1.0, 0.0, 0.0]
    missing = column(X, "idf_missing_title")  # B lacks acme and cordless, C everything
    assert missing[0] == 0.0 < missing[1] <= missing[2]
    X_set = space.extract("cordless drill bit set", np.arange(4), NO_PRIORS)
    assert column(X_set, "title_last_in_query").tolist() == [0.0, 1.0, 0.0, 0.0]
    assert column(X, "bm25_title")[0] > column(X, "bm25_title")[1:].max()
    assert np.isnan(column(X, "rating")).all()


def test_stemming_reaches_what_exact_tokens_miss(space: features.FeatureSpace) -> None:
    X = space.extract("bits drilling", np.arange(2), NO_PRIORS[:2])
    # neither word is an exact title token; stemmed, they are "bit drill" and B is "drill bit"
    assert column(X, "cover_exact_title").tolist() == [0.0, 0.0]
    assert column(X, "cover_title").tolist() == [0.5, 1.0]
    assert column(X, "bm25_title")[1] == 0.0 < column(X, "bm25_stem_title")[1]
    assert column(X, "bigram_unordered_title").tolist() == [0.0, 1.0]  # "Drill Bit": reversed
    assert column(X, "bigram_title").tolist() == [0.0, 0.0]


def test_empty_fields_are_missing_not_zero(space: features.FeatureSpace) -> None:
    X = space.extract("garden hose", np.arange(4), NO_PRIORS)
    for name in ("bm25_description", "cover_description", "bm25_stem_brand", "brand_in_query"):
        assert np.isnan(column(X, name)[3]), name
    assert column(X, "bm25_description")[2] != column(X, "bm25_description")[2]  # C: empty
    assert column(X, "cover_brand")[:2].tolist() == [0.0, 0.0]


def test_units_typos_and_query_statistics(space: features.FeatureSpace) -> None:
    X = space.extract("0.75 inch gardn hose", np.arange(4), NO_PRIORS)
    assert column(X, "unit_match").tolist() == [0.0, 0.0, 1.0, 0.0]
    assert column(X, "unit_conflict").tolist() == [0.0, 0.0, 0.0, 1.0]  # 1/2 in., not 3/4
    edit = column(X, "edit_sim_title")
    assert edit.tolist() == pytest.approx([edit_similarity(space.analyzer("0.75 inch gardn hose"),
                                                           space.analyzer(t))
                                           for t in CATALOG["title"]])
    assert edit[2] == edit.max()
    assert column(space.extract("gardn hose", np.arange(4), NO_PRIORS),
                  "query_unknown").tolist() == [0.5] * 4
    assert np.isnan(column(space.extract("hose", np.arange(4), NO_PRIORS), "unit_match")).all()
    X = space.extract("zzz", np.arange(4), NO_PRIORS)
    assert column(X, "query_unknown").tolist() == [1.0] * 4
    assert np.isnan(column(X, "query_idf_max")).all() and (column(X, "query_idf_sum") == 0).all()
    assert np.isnan(column(X, "idf_cover_title")).all()


def levenshtein(a: str, b: str) -> int:
    """Textbook dynamic programme, the reference for the kernel's one-row version."""
    table = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1,
                              table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return table[-1][-1]


def edit_similarity(query: list[str], title: list[str]) -> float:
    return float(np.mean([max(1 - levenshtein(q, t) / max(len(q), len(t)) for t in title)
                          for q in query]))


def trigram_similarity(a: str, b: str) -> float:
    """Dice of the multisets of character trigrams of " a " and " b "."""
    grams = [Counter(f" {w} "[i:i + 3] for i in range(len(w))) for w in (a, b)]
    return 2.0 * sum((grams[0] & grams[1]).values()) / (len(a) + len(b))


def typo_reference(query: list[str], title: list[str]) -> tuple[float, float]:
    """(edit, trigram) similarity of a title, every pair compared: what the kernel's skips and
    bit-parallel edit distance must reproduce exactly."""
    edit = sum(max(1.0 - levenshtein(q, t) / max(len(q), len(t)) for t in title) for q in query)
    gram = sum(max(trigram_similarity(q, t) for t in title) for q in query)
    return edit / len(query), gram / len(query)


def assert_typo_parity(space: features.FeatureSpace, query: str, docs: np.ndarray,
                       titles: list[str]) -> None:
    X = space.extract(query, docs, np.full((len(titles), len(features.PRIORS)), np.nan))
    got = X[:, [features.COLUMN["edit_sim_title"], features.COLUMN["trigram_sim_title"]]]
    want = [typo_reference(space.analyzer(query), space.analyzer(titles[d])) for d in docs]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.float32), err_msg=query)


def test_typo_similarity_matches_reference_on_random_words() -> None:
    """Words over a small alphabet (many near misses, repeated letters and trigrams), some
    longer than the 64 characters the bit-parallel edit distance handles in one word."""
    rng = np.random.default_rng(7)
    words = ["".join(rng.choice(list("abcdeé"), rng.integers(1, 9))) for _ in range(60)]
    words += ["".join(rng.choice(list("ab"), n)) for n in (63, 64, 65, 90)]
    titles = [" ".join(rng.choice(words, rng.integers(1, 7))) for _ in range(80)]
    catalog, _ = validate_catalog(pd.DataFrame({"product_id": [str(i) for i in range(80)],
                                                "title": titles}))
    space = features.FeatureSpace.build(catalog, Analyzer())
    for _ in range(30):
        query = " ".join(rng.choice(words + ["abcdeabcde", "b" * 70], rng.integers(1, 5)))
        assert_typo_parity(space, query, rng.permutation(80)[:50], titles)


def test_typo_similarity_matches_reference_on_home_depot(home_depot: Path) -> None:
    """Real queries (with their real typos) against the titles of their judged products."""
    frame = pd.read_csv(home_depot, encoding="latin-1", nrows=3000)
    products = frame.drop_duplicates("product_uid").reset_index(drop=True)
    titles = products["product_title"].tolist()
    catalog, _ = validate_catalog(pd.DataFrame({"product_id": products["product_uid"].astype(str),
                                                "title": titles}))
    space = features.FeatureSpace.build(catalog, Analyzer())
    rng = np.random.default_rng(3)
    for query in frame["search_term"].drop_duplicates().sample(40, random_state=2):
        assert_typo_parity(space, query, rng.choice(len(titles), 60, replace=False), titles)


def test_bundle_round_trip(space: features.FeatureSpace, tmp_path: Path) -> None:
    files = space.save(tmp_path)
    assert sorted(f.name for f in files) == sorted(features.BUNDLE_FILES)
    space.index.save(tmp_path)
    loaded = features.FeatureSpace.load(tmp_path, space.analyzer, MultiFieldIndex.load(tmp_path))
    assert loaded.stem_analyzer.stem and not loaded.analyzer.stem
    for query in ("acme cordless drills", "3/4 in hose", ""):
        np.testing.assert_array_equal(loaded.extract(query, np.arange(4), NO_PRIORS),
                                      space.extract(query, np.arange(4), NO_PRIORS))


def test_bad_candidate_rows_are_refused(space: features.FeatureSpace) -> None:
    with pytest.raises(IndexError_, match=r"doc ids must be in \[0, 4\); got 0\.\.4"):
        space.extract("drill", np.array([0, 4]), NO_PRIORS)
    with pytest.raises(IndexError_, match="1-d array of integers"):
        space.extract("drill", np.array([0.5]), NO_PRIORS)
