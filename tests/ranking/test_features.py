"""Features: hand-checked values on a tiny catalog, missing fields as NaN, and a bundle round
trip that computes the same matrix."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from objectives.catalog import validate_catalog
from ranking import features
from ranking.bm25 import BM25IndexError, MultiFieldIndex
from ranking.bundle import BundleError
from ranking.text import Analyzer
from ranking.title_text import HEAD_CUT

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
    """Typo columns and the exact coverage (computed beside them, from the same pass over
    the candidates' distinct title tokens) against the definitions."""
    X = space.extract(query, docs, np.full((len(titles), len(features.PRIORS)), np.nan))
    got = X[:, [features.COLUMN["edit_sim_title"], features.COLUMN["trigram_sim_title"]]]
    tokens = space.analyzer(query)
    want = [typo_reference(tokens, space.analyzer(titles[d])) for d in docs]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.float32), err_msg=query)
    cover = [sum(t in space.analyzer(titles[d]) for t in tokens) / len(tokens) for d in docs]
    np.testing.assert_array_equal(X[:, features.COLUMN["cover_exact_title"]],
                                  np.array(cover, dtype=np.float32), err_msg=query)


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


def home_depot_space(path: Path, rows: int
                     ) -> tuple[pd.DataFrame, list[str], features.FeatureSpace]:
    """The first ``rows`` judgments of Home Depot, their products' titles and a feature space
    over those titles."""
    frame = pd.read_csv(path, encoding="latin-1", nrows=rows)
    products = frame.drop_duplicates("product_uid").reset_index(drop=True)
    titles = products["product_title"].tolist()
    catalog, _ = validate_catalog(pd.DataFrame({"product_id": products["product_uid"].astype(str),
                                                "title": titles}))
    return frame, titles, features.FeatureSpace.build(catalog, Analyzer())


def test_typo_similarity_matches_reference_on_home_depot(home_depot: Path) -> None:
    """Real queries (with their real typos) against the titles of their judged products."""
    frame, titles, space = home_depot_space(home_depot, 3000)
    rng = np.random.default_rng(3)
    for query in frame["search_term"].drop_duplicates().sample(40, random_state=2):
        assert_typo_parity(space, query, rng.choice(len(titles), 60, replace=False), titles)


def test_bundle_round_trip(space: features.FeatureSpace, tmp_path: Path) -> None:
    files = space.save(tmp_path)
    assert sorted(f.name for f in files) == sorted(features.BUNDLE_FILES)
    space.index.save(tmp_path)
    loaded = features.FeatureSpace.load(tmp_path, space.analyzer, MultiFieldIndex.load(tmp_path))
    assert loaded.stem_analyzer.stem and not loaded.analyzer.stem
    for built, reloaded in zip(space.term_chars, loaded.term_chars, strict=True):
        np.testing.assert_array_equal(reloaded, built)
    for query in ("acme cordless drills", "3/4 in hose", ""):
        np.testing.assert_array_equal(loaded.extract(query, np.arange(4), NO_PRIORS),
                                      space.extract(query, np.arange(4), NO_PRIORS))


def test_vocabulary_characters_are_computed_once_per_build(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The title statistics and the typo kernels read the same per-token characters: one pass
    over the vocabulary (the real function, counted) serves both, and searches add none."""
    calls = []
    real = features._vocab_chars
    monkeypatch.setattr(features, "_vocab_chars", lambda index: calls.append(1) or real(index))
    catalog, _ = validate_catalog(pd.DataFrame(CATALOG))
    space = features.FeatureSpace.build(catalog, Analyzer())
    space.extract("acme cordless drils", np.arange(4), NO_PRIORS)
    assert len(calls) == 1
    for shared, fresh in zip(space.term_chars, real(space.index), strict=True):
        np.testing.assert_array_equal(shared, fresh)


def test_bad_candidate_rows_are_refused(space: features.FeatureSpace) -> None:
    with pytest.raises(BM25IndexError, match=r"doc ids must be in \[0, 4\); got 0\.\.4"):
        space.extract("drill", np.array([0, 4]), NO_PRIORS)
    with pytest.raises(BM25IndexError, match="1-d array of integers"):
        space.extract("drill", np.array([0.5]), NO_PRIORS)


HEAD_TITLES = ["Cordless Drill with Battery", "Vanity Top in White", "36 in Vanity, Oak",
               "Drill Bit Set (10-Piece)", "-- ; --"]


@pytest.fixture(scope="module")
def head_space() -> features.FeatureSpace:
    catalog, _ = validate_catalog(pd.DataFrame({"product_id": list("VWXYZ"),
                                                "title": HEAD_TITLES}))
    return features.FeatureSpace.build(catalog, Analyzer())


def test_title_head_is_cut_at_joining_words(head_space: features.FeatureSpace) -> None:
    # "36 in" is a quantity (inches), not the joining word "in"; the last title has no token
    assert head_space.title_text.head_len.tolist() == [2, 2, 4, 3, 0]
    X = head_space.extract("cordless drills", np.arange(5), np.full((5, 3), np.nan))
    assert column(X, "head_last_in_query")[:4].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert column(X, "head_last_is_query_last")[:4].tolist() == [1.0, 0.0, 0.0, 0.0]
    sim = column(X, "head_last_sim")  # "drills" against "drill" and "bit"
    assert sim[0] == pytest.approx(trigram_similarity("drills", "drill"))
    assert sim[3] == pytest.approx(trigram_similarity("drills", "bit"))
    X = head_space.extract("vanity tpo", np.arange(5), np.full((5, 3), np.nan))
    assert column(X, "head_last_in_query")[:4].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert column(X, "head_last_sim")[1] == pytest.approx(trigram_similarity("tpo", "top"))
    for name in ("head_last_in_query", "head_last_sim", "char3_cover_title"):
        assert np.isnan(column(X, name)[4]), name  # a title without tokens: missing


def test_character_trigrams_by_hand(head_space: features.FeatureSpace) -> None:
    X = head_space.extract("drill", np.arange(5), np.full((5, 3), np.nan))
    # " drill " has the trigrams " dr", "dri", "ril", "ill", "ll "; "Drill Bit Set" has all five
    assert column(X, "char3_cover_title")[3] == 1.0
    assert column(X, "char3_cover_title")[1] == 0.0  # vanity top in white
    cosine = column(X, "char3_cosine_title")
    assert cosine[0] > cosine[1] == 0.0 and 0.0 < cosine[3] < 1.0


def char_grams(tokens: list[str]) -> Counter:
    """Trigrams of the tokens joined by spaces, padded: what the kernel must reproduce."""
    text = " " + " ".join(tokens) + " "
    return Counter(text[i:i + 3] for i in range(len(text) - 2)) if tokens else Counter()


def title_text_reference(space: features.FeatureSpace, titles: list[str], grams: list[Counter],
                         df: Counter, query: str, doc: int) -> list[float]:
    """[cover, cosine, head last in query, is query last, head Dice] of one title, written
    from the definitions; ``grams`` are every title's :func:`char_grams`, ``df`` how many
    titles have each trigram."""
    idf = {g: np.log((len(titles) + 1) / (df.get(g, 0) + 1)) + 1 for g in char_grams(
        space.analyzer(query)) | df}
    q, t = char_grams(space.analyzer(query)), grams[doc]
    weight = {g: (1 + np.log(k)) * idf[g] for g, k in q.items()}
    t_weight = {g: (1 + np.log(k)) * idf[g] for g, k in t.items()}
    dot = sum(w * t_weight.get(g, 0.0) for g, w in weight.items())
    norms = np.sqrt(sum(w * w for w in weight.values()) * sum(w * w for w in t_weight.values()))
    head = space.analyzer(HEAD_CUT.split(titles[doc], maxsplit=1)[0]) or space.analyzer(
        titles[doc])
    tokens, stems = space.analyzer(query), space.stem_analyzer(query)
    last_stem = space.stem_analyzer(" ".join(head))[-1]
    return [sum(g in t for g in q) / len(q), dot / norms, float(last_stem in stems),
            float(last_stem == stems[-1]),
            max(trigram_similarity(w, head[-1]) for w in tokens)]


TITLE_TEXT_COLUMNS = ["char3_cover_title", "char3_cosine_title", "head_last_in_query",
                      "head_last_is_query_last", "head_last_sim"]


def assert_title_text_parity(space: features.FeatureSpace, titles: list[str], query: str,
                             docs: np.ndarray) -> None:
    X = space.extract(query, docs, np.full((len(titles), len(features.PRIORS)), np.nan))
    got = X[:, [features.COLUMN[n] for n in TITLE_TEXT_COLUMNS]]
    grams = [char_grams(space.analyzer(t)) for t in titles]
    df = Counter(g for c in grams for g in c)
    want = [title_text_reference(space, titles, grams, df, query, d) for d in docs]
    np.testing.assert_allclose(got, np.array(want, dtype=np.float32), rtol=1e-5, err_msg=query)


def test_title_text_features_match_reference_on_random_words() -> None:
    """Short words over a small alphabet: trigrams repeat within and across words (the
    trigram across each space included) and many titles share tokens."""
    rng = np.random.default_rng(11)
    words = ["".join(rng.choice(list("abé"), rng.integers(1, 5))) for _ in range(30)]
    titles = [" ".join(rng.choice(words, rng.integers(1, 7))) for _ in range(60)]
    titles += ["ab with ba", "ab, ba"]
    catalog, _ = validate_catalog(pd.DataFrame({"product_id": [str(i) for i in range(62)],
                                                "title": titles}))
    space = features.FeatureSpace.build(catalog, Analyzer())
    for _ in range(20):
        query = " ".join(rng.choice(words + ["zz"], rng.integers(1, 5)))
        assert_title_text_parity(space, titles, query, rng.permutation(62)[:40])


def test_title_text_features_match_reference_on_home_depot(home_depot: Path) -> None:
    """Real titles (commas, "with", "in", sizes) and real queries with their typos."""
    frame, titles, space = home_depot_space(home_depot, 1500)
    rng = np.random.default_rng(5)
    for query in frame["search_term"].drop_duplicates().sample(15, random_state=4):
        assert_title_text_parity(space, titles, query, rng.choice(len(titles), 20,
                                                                  replace=False))


def test_title_text_of_another_catalog_is_refused(space: features.FeatureSpace,
                                                  tmp_path: Path) -> None:
    space.save(tmp_path)
    space.index.save(tmp_path)
    arrays = space.title_text.arrays()
    np.savez(tmp_path / features.TITLE_TEXT, **{**arrays, "head_len": arrays["head_len"][:3]})
    with pytest.raises(BundleError, match=r"title_text\.npz: head_len is int64 of shape \(3,\), "
                       r"expected integer of shape \(4,\); rebuild the bundle"):
        features.FeatureSpace.load(tmp_path, space.analyzer, MultiFieldIndex.load(tmp_path))


@pytest.mark.parametrize("meta", [{"feature_names": ["bm25_all"]}, {}, ["bm25_all"],
                                  {"feature_names": list(features.FEATURE_NAMES)}])
def test_features_json_of_other_features_is_refused(space: features.FeatureSpace,
                                                    tmp_path: Path, meta: object) -> None:
    """Another version's feature list, or none at all, names the file and the field."""
    space.save(tmp_path)
    space.index.save(tmp_path)
    (tmp_path / "features.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"features\.json: (feature_names is|stem_analyzer "
                       r"is missing).*rebuild the bundle"):
        features.FeatureSpace.load(tmp_path, space.analyzer, MultiFieldIndex.load(tmp_path))


def test_skipped_field_kernels_would_give_the_same_columns(
        head_space: features.FeatureSpace) -> None:
    """A titles-only catalog: extract calls no kernel for the empty fields, and reuses the
    ``all`` columns for the title (the same index); each is what the kernel gives."""
    assert head_space._same_field["title"] == "all"
    docs = np.arange(5)
    for query in ("cordless drill", "drill bit set oak", "vanity"):
        X = head_space.extract(query, docs, np.full((5, 3), np.nan))
        exact = head_space.index.vocab.lookup(head_space.analyzer(query))
        stemmed = head_space.stem_index.vocab.lookup(head_space.stem_analyzer(query))
        for name in features.INDEXED_FIELDS:
            kernel = features.kernels.field_columns(
                exact, stemmed, features._bm25_arrays(head_space.index.fields[name]),
                features._bm25_arrays(head_space.stem_index.fields[name]), docs)
            got = X[:, [features.COLUMN[f"{c}_{name}"] for c in ("bm25", "bm25_stem", "cover")]]
            np.testing.assert_array_equal(got, kernel[:, :3].astype(np.float32), err_msg=name)
        assert np.isnan(column(X, "brand_in_query")).all()
