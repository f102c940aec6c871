"""BM25: exact parity with rank_bm25.BM25Okapi, deterministic top-k, edge cases, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rank_bm25 import BM25Okapi

from ranking import _bm25_kernels as kernels
from ranking.bm25 import BM25IndexError, BM25Params, FieldIndex, MultiFieldIndex
from ranking.text import Analyzer

CORPUS = [
    "cordless drill 20v", "drill bit set", "hammer drill", "led bulb 60 watt", "led bulb",
    "", "garden hose 50 ft", "drill drill drill", "the the the", "bulb",
]


def _reference_top(scores: np.ndarray, k: int) -> np.ndarray:
    order = np.lexsort((np.arange(scores.size), -scores))
    return order[:k]


def _build(texts: list[str]) -> tuple[MultiFieldIndex, list[list[str]]]:
    docs = [Analyzer()(t) for t in texts]
    return MultiFieldIndex.build({"title": docs}), docs


def test_scores_equal_rank_bm25_including_negative_idf_floor() -> None:
    index, docs = _build(CORPUS)
    ref = BM25Okapi(docs)
    field = index.fields["title"]
    for query in ["drill", "drill drill bulb", "the", "led bulb 60", "unknown words"]:
        tokens = Analyzer()(query)
        ours = field.score(index.vocab.lookup(tokens), np.arange(field.n_docs))
        np.testing.assert_allclose(ours, ref.get_scores(tokens), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(field.score_all(index.vocab.lookup(tokens)),
                                   ref.get_scores(tokens), rtol=1e-12, atol=1e-12)


def test_search_returns_matching_docs_best_first_ties_by_index() -> None:
    index, docs = _build(CORPUS)
    field = index.fields["title"]
    tokens = ["bulb"]
    ids, scores = field.search(index.vocab.lookup(tokens), 10)
    ref = BM25Okapi(docs).get_scores(tokens)
    matching = np.flatnonzero([("bulb" in d) for d in docs])
    expected = _reference_top(ref, 10)
    expected = expected[np.isin(expected, matching)]
    assert ids.tolist() == expected.tolist()
    np.testing.assert_allclose(scores, ref[ids])


def test_edge_cases() -> None:
    index, _ = _build(CORPUS)
    field = index.fields["title"]
    empty = np.zeros(0, dtype=np.int64)
    assert field.search(empty, 5)[0].size == 0
    assert field.search(index.vocab.lookup(["nope"]), 5)[0].size == 0
    assert not field.score_all(empty).any()
    long_query = index.vocab.lookup(["drill"] * 10_000)
    ids, _ = field.search(long_query, 3)
    assert ids.size == 3
    with pytest.raises(BM25IndexError):
        field.search(index.vocab.lookup(["drill"]), 0)
    with pytest.raises(BM25IndexError):
        field.score(index.vocab.lookup(["drill"]), np.array([99]))


def test_queries_of_nothing_known_give_nothing() -> None:
    stop = Analyzer(stopwords=True)
    index = MultiFieldIndex.build({"title": [stop(t) for t in CORPUS]})
    field = index.fields["title"]
    for text in ["", "   ", "the of and", "zzz qqq", "日本語"]:
        q = index.vocab.lookup(stop(text))
        ids, scores = field.search(q, 10)
        assert ids.size == 0 and scores.size == 0, text
        assert not field.score(q, np.arange(field.n_docs)).any()


def test_ten_thousand_token_queries_match_rank_bm25() -> None:
    index, docs = _build(CORPUS)
    field = index.fields["title"]
    ref = BM25Okapi(docs)
    repeated = ["drill", "bulb", "led"] * 3_334
    distinct = [f"sku{i}" for i in range(9_998)] + ["drill", "hose"]  # most unknown
    for tokens in (repeated, distinct):
        q = index.vocab.lookup(tokens)
        expected = ref.get_scores(tokens)
        ids, scores = field.search(q, 100)
        assert ids.tolist() == _reference_top(expected, 100)[: ids.size].tolist()
        np.testing.assert_allclose(scores, expected[ids], rtol=1e-12)
        np.testing.assert_allclose(field.score(q, np.arange(field.n_docs)), expected, rtol=1e-12)


def test_non_latin_scripts_are_indexed_and_found() -> None:
    index, docs = _build(["Дрель аккумуляторная 18 В", "電動ドリル 18V", "مثقاب كهربائي",
                          "cordless drill"])
    field = index.fields["title"]
    for text, doc in [("дрель", 0), ("電動ドリル", 1), ("مثقاب", 2)]:
        ids, _ = field.search(index.vocab.lookup(Analyzer()(text)), 5)
        assert ids.tolist() == [doc], text


def test_k_larger_than_the_catalog_gives_every_match() -> None:
    index, docs = _build(CORPUS)
    field = index.fields["title"]
    q = index.vocab.lookup(["drill", "bulb"])
    ids, _ = field.search(q, 1_000_000)
    matching = [i for i, d in enumerate(docs) if {"drill", "bulb"} & set(d)]
    assert sorted(ids.tolist()) == matching


@pytest.mark.parametrize("bad_k", [0, -3, 2.5, True, "10", None])
def test_bad_k_is_refused(bad_k: object) -> None:
    index, _ = _build(CORPUS)
    with pytest.raises(BM25IndexError, match="k must be a whole number"):
        index.fields["title"].search(index.vocab.lookup(["drill"]), bad_k)  # type: ignore[arg-type]


@pytest.mark.parametrize("docs", [[-1], [10], [0, 3, 10_000], [1.0, 2.0], [[0, 1]]])
def test_bad_doc_ids_are_refused(docs: list) -> None:
    index, _ = _build(CORPUS)
    with pytest.raises(BM25IndexError, match="doc ids"):
        index.fields["title"].score(index.vocab.lookup(["drill"]), np.array(docs))


def test_bad_query_ids_are_refused_before_the_kernels() -> None:
    index, _ = _build(CORPUS)
    field = index.fields["title"]
    for query in (np.array([len(index.vocab)]), np.array([[0, 1]]), np.array([0.5])):
        for call in (lambda q: field.search(q, 5), field.score_all,
                     lambda q: field.score(q, np.arange(3))):
            with pytest.raises(BM25IndexError):
                call(query)


def test_empty_catalog_gives_empty_results() -> None:
    index = MultiFieldIndex.build({"title": []})
    field = index.fields["title"]
    query = index.vocab.lookup(["drill"])
    assert field.search(query, 5)[0].size == 0
    assert field.score(query, np.zeros(0, np.int64)).size == 0
    assert field.score_all(query).size == 0
    with pytest.raises(BM25IndexError, match="doc ids"):
        field.score(query, np.array([0]))


def test_catalog_of_empty_documents_scores_nothing() -> None:
    index = MultiFieldIndex.build({"title": [[], [], []], "brand": [["acme"], [], []]})
    field = index.fields["title"]
    q = index.vocab.lookup(["acme"])
    assert field.search(q, 5)[0].size == 0
    assert field.score_all(q).tolist() == [0.0, 0.0, 0.0]


def test_both_top_k_kernels_equal_a_stable_sort_of_rank_bm25() -> None:
    """Seeded corpora full of ties and repeated terms: the MaxScore kernel (with pruning and
    block skipping) and the exhaustive kernels (NaN-marked, and zeroed where every IDF is
    positive) each return exactly the stable argsort of rank_bm25's scores, restricted to
    documents that contain a query term (in tiny corpora the IDF floor can be negative, and
    then a match scores below a non-match's 0)."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        n, vocab = int(rng.integers(50, 400)), int(rng.integers(3, 30))
        docs = [[f"w{x}" for x in np.minimum(rng.zipf(1.5, size=rng.integers(0, 12)), vocab)]
                for _ in range(n)]
        index = MultiFieldIndex.build({"t": docs})
        field, ref = index.fields["t"], BM25Okapi(docs)
        for _ in range(5):
            tokens = [f"w{x}" for x in np.minimum(rng.zipf(1.5, size=rng.integers(1, 6)), vocab)]
            q = index.vocab.lookup(tokens)
            expected = ref.get_scores(tokens)
            k = int(rng.integers(1, 30))
            order = _reference_top(expected, n)
            order = order[np.isin(order, _matching(field, q))][:k]
            for ids, scores in _both_kernels(field, q, k):
                assert ids.tolist() == order.tolist()
                assert scores.tolist() == expected[ids].tolist()


def _matching(field: FieldIndex, q: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate(
        [np.zeros(0, np.int32)]
        + [field.post_docs[field.post_indptr[t]:field.post_indptr[t + 1]] for t in q[q >= 0]]))


def _both_kernels(field: FieldIndex, q: np.ndarray, k: int) -> list[tuple[np.ndarray, ...]]:
    out = [kernels.search_exhaustive(q, field.post_indptr, field.post_docs, field.frac,
                                     field.idf, np.full(field.n_docs, np.nan), k)]
    if (field.idf[q[q >= 0]] > 0).all():  # the zeroed accumulator's precondition
        zeros = np.zeros(field.n_docs)
        out.append(kernels.search_accumulate(q, field.post_indptr, field.post_docs, field.frac,
                                             field.idf, zeros, k))
        assert not zeros.any()
    terms, slots = np.unique(q[q >= 0], return_inverse=True)
    if terms.size and (field.idf[terms] >= 0).all():
        ids, scores, done = kernels.search_maxscore(
            terms, slots.astype(np.int64), field.post_indptr, field.post_docs, field.frac,
            field.idf, field.n_docs, *field.blocks, k, 10**9)
        assert done
        out.append((ids, scores))
    return out


def test_lucene_variant_is_non_negative() -> None:
    docs = [Analyzer()(t) for t in CORPUS]
    index = MultiFieldIndex.build({"title": docs}, BM25Params(variant="lucene"))
    field: FieldIndex = index.fields["title"]
    assert (field.idf >= 0).all()
    assert field.params.k1_value == 1.2


def test_save_load_round_trip(tmp_path) -> None:  # noqa: ANN001
    index, _ = _build(CORPUS)
    index.save(tmp_path)
    loaded = MultiFieldIndex.load(tmp_path)
    q = index.vocab.lookup(["led", "bulb"])
    a, b = index.fields["title"].search(q, 5), loaded.fields["title"].search(q, 5)
    assert a[0].tolist() == b[0].tolist()
    np.testing.assert_array_equal(a[1], b[1])


def test_an_index_saved_with_float_term_frequencies_still_searches_the_same() -> None:
    """Bundles written before the postings' tf became uint16 stored it as float64."""
    index, _ = _build(CORPUS)
    field = index.fields["title"]
    arrays = field.arrays("title")
    arrays["title.post_tf"] = arrays["title.post_tf"].astype(np.float64)
    old = FieldIndex.from_arrays(arrays, "title", field.params)
    q = index.vocab.lookup(["led", "bulb", "drill"])
    for a, b in zip(field.search(q, 5), old.search(q, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(field.score_all(q), old.score_all(q))


@pytest.mark.realdata
@pytest.mark.parametrize("analyzer", [Analyzer(), Analyzer(stem=True)], ids=["units", "stemmed"])
def test_parity_on_home_depot_titles(home_depot, analyzer: Analyzer) -> None:  # noqa: ANN001
    """200 real queries over all 54,667 real titles, on the same tokens: every document's
    score within 1e-6 relative of rank_bm25's, and our top-100 ids equal to the stable argsort
    of rank_bm25's scores (ties by index). The search returns only documents that contain a
    query term, so when fewer than 100 do, the rest of rank_bm25's top 100 must score 0."""
    frame = pd.read_csv(home_depot, encoding="latin-1")
    titles = frame.drop_duplicates("product_uid")["product_title"].tolist()
    assert len(titles) == 54_667
    docs = [analyzer(t) for t in titles]
    index = MultiFieldIndex.build({"title": docs})
    field = index.fields["title"]
    ref = BM25Okapi(docs)
    queries = frame["search_term"].drop_duplicates().sample(200, random_state=0)
    for query in queries:
        tokens = analyzer(query)
        q = index.vocab.lookup(tokens)
        expected = ref.get_scores(tokens)
        np.testing.assert_allclose(field.score_all(q), expected, rtol=1e-6, atol=0)
        np.testing.assert_allclose(field.score(q, np.arange(field.n_docs)), expected,
                                   rtol=1e-6, atol=0)
        ids, scores = field.search(q, 100)
        reference = _reference_top(expected, 100)
        assert ids.size == min(100, _matching(field, q).size)
        assert ids.tolist() == reference[: ids.size].tolist()
        assert not expected[reference[ids.size:]].any()
        np.testing.assert_allclose(scores, expected[ids], rtol=1e-6, atol=0)


def test_search_leaves_its_accumulator_clean_and_costs_no_per_product_fill() -> None:
    """The exhaustive top k accumulates in a per-thread array that every query leaves all NaN
    again (so the next query starts clean without a fill of one slot per product), and a
    second thread gets its own."""
    import threading

    rng = np.random.default_rng(3)
    docs = [[f"w{x}" for x in rng.zipf(1.4, size=rng.integers(1, 9))] for _ in range(2_000)]
    index = MultiFieldIndex.build({"t": docs})
    field, ref = index.fields["t"], BM25Okapi(docs)
    for tokens in (["w1"], ["w2", "w3", "w2"], ["w40", "w1"], ["nope"]):
        q = index.vocab.lookup(tokens)
        ids, scores = field.search(q, 25)
        expected = ref.get_scores(tokens)
        order = _reference_top(expected, field.n_docs)
        order = order[np.isin(order, _matching(field, q))][:25]
        assert ids.tolist() == order.tolist()
        assert scores.tolist() == expected[ids].tolist()
        assert np.isnan(field._scratch()).all()
        assert not field._zeros().any()
    mine = field._scratch()
    other = []
    thread = threading.Thread(target=lambda: other.append(field._scratch()))
    thread.start()
    thread.join()
    assert other[0] is not mine and other[0].shape == mine.shape


def test_large_k_on_sparse_and_dense_queries_equals_a_stable_sort_of_rank_bm25() -> None:
    """k in the hundreds (the serving path asks for 200 candidates) on queries that touch few
    documents (the partition selection) and many (the dense pass), with ties and terms
    repeated, in a row (one pass adds them) or not: exactly rank_bm25's stable order and
    scores, and the accumulator left clean."""
    rng = np.random.default_rng(5)
    docs = [[f"w{x}" for x in np.minimum(rng.zipf(1.3, size=rng.integers(1, 10)), 3_000)]
            for _ in range(4_000)]
    index = MultiFieldIndex.build({"t": docs})
    field, ref = index.fields["t"], BM25Okapi(docs)
    queries = [["w1"], ["w2", "w5", "w2"], [f"w{i}" for i in range(30, 60)], ["w90", "w91"],
               [f"w{i}" for i in range(200, 400, 7)], ["w1", "w1", "w3", "w3", "w3"],
               ["w4", "nope", "w4", "w2"], ["w95", "w95", "w96"]]
    sparse = 0
    for tokens in queries:
        q = index.vocab.lookup(tokens)
        postings = (field.post_indptr[q[q >= 0] + 1] - field.post_indptr[q[q >= 0]]).sum()
        sparse += bool(kernels._SPARSE * postings < field.n_docs)
        expected = ref.get_scores(tokens)
        order = _reference_top(expected, field.n_docs)
        order = order[np.isin(order, _matching(field, q))]
        for k in (33, 200, 5_000):
            ids, scores = field.search(q, k)
            assert ids.tolist() == order[:k].tolist(), (tokens, k)
            assert scores.tolist() == expected[ids].tolist()
            assert not field._zeros().any()
    assert 0 < sparse < len(queries)
