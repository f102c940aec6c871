"""The bulk index build gives the very arrays the per-product build gave.

``FeatureSpace.build`` analyzes text in bulk (:mod:`ranking.bulk_text`), maps tokens to ids by
pandas' factorize and parses quantities in bulk. Three checks hold it to the per-product path:
the sha256 of every array it builds on the Home Depot catalog equals the digest of the arrays
the per-product build (commit 44f0833) made; on a small catalog with every field filled, it
equals a per-product reference built here; and the bulk analyzer, quantity parser and head
counter equal the per-text ones on texts chosen to break them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from objectives.catalog import validate_catalog
from ranking import bulk_text, bulk_units
from ranking.bm25 import MultiFieldIndex
from ranking.features import QUANTITY_FIELDS, TEXT_FIELDS, FeatureSpace
from ranking.text import Analyzer
from ranking.title_text import HEAD_CUT, clip_heads, head_lengths
from ranking.units import QuantityTable, quantities
from ranking.vocab import Vocabulary

#: Per group of arrays, the digest of the per-product build's arrays on the Home Depot
#: catalog (``load_home_depot``'s products; ``n`` = the first n, 0 = all), computed with
#: :func:`_digests` on commit 44f0833, before the bulk build.
PER_PRODUCT_DIGESTS = {
    "0/default": {
        "bm25": "69795486100ba31e17b2", "quantities": "3ec8406b9bb9590e7764",
        "stem": "0e1b3fe1c79627b26fd1", "term_chars": "ffa2cc7a2fc4a0a9d594",
        "title_text": "8d57690ac3b44b67a5dc"},
    "5000/stopwords_nounits": {
        "bm25": "35b2f29646abe80a42b5", "quantities": "99b27475215edb429973",
        "stem": "58661b70febd3d75c70e", "term_chars": "6d8d53cf4fc1ac28a4b0",
        "title_text": "6104ff52e08e219ec3be"},
}
ANALYZERS = {"default": Analyzer(), "stopwords_nounits": Analyzer(stopwords=True, units=False)}

TRICKY = [
    "", " ", "Cordless Drill 20V", '3/4 in. x 50 ft Hose 60-Watt 3/4" 1 1/2 ft .5 gal',
    "2 x 4 x 8 in. stud", "drill in case", "12 gauge wire 12-ga", "ΟΔΟΣ Σ σ test ΣΑΣ",
    "a\u0301 e\u0301\u0301 \u0301start", "ﬁne ｆｕｌｌ１２ｉｎ ２×４", "1/0 in. 3/0 gal",
    "x1 1x 2x",
    "The Best of the In and Out", "20vmax 1t5 1.5.2 0.75in", "٣/٤ in ١٢ volt",
    "tab\there 12\tin and 5 -ft", "trailing 7", "45°  90 degrees", "Ünïcödé 3'' 2\u2032",
    "1,000 lb. and 3-1/2 in. (Pack of 2)", "line\nbreak 4\nin", "a\x00b 3\x00in",
]


def _digests(space: FeatureSpace) -> dict[str, str]:
    """sha256 per group of the space's arrays (bm25, stem, quantities, title_text,
    term_chars): dtype, shape and bytes of each array, and the vocabularies' tokens."""
    h: dict[str, str] = {}

    def add(name: str, a: np.ndarray) -> None:
        a = np.ascontiguousarray(a)
        h[name] = hashlib.sha256(str(a.dtype).encode() + str(a.shape).encode()
                                 + a.tobytes()).hexdigest()[:16]

    for label, index in (("bm25", space.index), ("stem", space.stem_index)):
        tokens = [index.vocab.token(i) for i in range(len(index.vocab))]
        h[f"{label}.vocab"] = hashlib.sha256(json.dumps(tokens).encode()).hexdigest()[:16]
        for field, field_index in index.fields.items():
            for key, value in field_index.arrays(field).items():
                add(f"{label}.{key}", value)
    for key, value in space.quantities.arrays().items():
        add(f"quantities.{key}", value)
    for key, value in space.title_text.arrays().items():
        add(f"title_text.{key}", value)
    for i, value in enumerate(space.term_chars):
        add(f"term_chars.{i}", value)
    groups: dict[str, list[str]] = {}
    for name in sorted(h):
        groups.setdefault(name.split(".")[0], []).append(f"{name}={h[name]}")
    return {g: hashlib.sha256("\n".join(v).encode()).hexdigest()[:20] for g, v in groups.items()}


@pytest.mark.parametrize("config", sorted(PER_PRODUCT_DIGESTS))
def test_home_depot_arrays_equal_the_per_product_build(home_depot: Path, config: str) -> None:
    from objectives.public_data import load_home_depot

    n, analyzer = config.split("/")
    catalog = load_home_depot(home_depot).catalog
    if int(n):
        catalog = catalog.iloc[:int(n)]
    assert _digests(FeatureSpace.build(catalog, ANALYZERS[analyzer])) == \
        PER_PRODUCT_DIGESTS[config]


@pytest.mark.parametrize("analyzer", [
    Analyzer(lowercase=lower, stopwords=stop, units=units)
    for lower in (True, False) for stop in (True, False) for units in (True, False)])
def test_bulk_analysis_equals_the_analyzer_text_by_text(analyzer: Analyzer) -> None:
    """Every token and every stem, across chunk boundaries and in a chunk where a text holds
    a NUL (analyzed one text at a time)."""
    texts = TRICKY * 3
    bulk = bulk_text.analyze_many(analyzer, texts, chunk=7)
    assert bulk.lists() == [analyzer(t) for t in texts]
    stemmer = dataclasses.replace(analyzer, stem=True)
    stems = dataclasses.replace(bulk, tokens=bulk_text.stem_tokens(bulk))
    assert stems.lists() == [stemmer(t) for t in texts]
    assert bulk_text.token_counts(analyzer, texts).tolist() == [len(analyzer(t)) for t in texts]


def test_bulk_quantities_equal_the_parser_text_by_text() -> None:
    texts = TRICKY * 2
    table = QuantityTable.from_texts(texts, chunk=5)
    for i, text in enumerate(texts):
        got = list(zip(table.values[table.indptr[i]:table.indptr[i + 1]].tolist(),
                       table.units[table.indptr[i]:table.indptr[i + 1]].tolist(), strict=True))
        assert got == quantities(text), text


def test_head_lengths_equal_the_analyzer_on_each_head() -> None:
    analyzer = Analyzer()
    titles = [t for t in TRICKY if "\x00" not in t] + [
        "Cordless Drill with Battery", "Vanity Top in White", "Faucet, Chrome",
        "36 in. Fan - White", "(Pack of 2) Bulbs", "Shelf by Acme for 2x4"]
    lengths = np.array([len(analyzer(t)) for t in titles])
    expected = np.array([len(analyzer(HEAD_CUT.split(t, maxsplit=1)[0])) for t in titles])
    expected = np.minimum(expected, lengths)
    expected = np.where(expected > 0, expected, lengths)
    assert head_lengths(titles, analyzer, lengths).tolist() == expected.tolist()


def test_every_field_filled_equals_a_per_product_reference() -> None:
    """A catalog with text in every field (Home Depot has titles only): the bulk build's
    indexes, vocabularies (first-seen order field by field), ``all`` field and quantities
    equal those built text by text."""
    n = 60
    rng = np.random.default_rng(5)

    def pick() -> str:
        return " ".join(rng.choice(TRICKY[:-1], size=int(rng.integers(0, 3))))

    frame = pd.DataFrame({"product_id": [f"P{i}" for i in range(n)],
                          **{f: [pick() for _ in range(n)] for f in TEXT_FIELDS}})
    frame["title"] = [f"Title {i} {t}" for i, t in enumerate(frame["title"])]
    catalog, _ = validate_catalog(frame)
    analyzer = Analyzer()
    space = FeatureSpace.build(catalog, analyzer)
    for index, an in ((space.index, analyzer), (space.stem_index, space.stem_analyzer)):
        tokens = {f: [an(t) for t in catalog[f]] for f in TEXT_FIELDS}
        tokens["all"] = [sum((tokens[f][i] for f in TEXT_FIELDS), []) for i in range(n)]
        reference = MultiFieldIndex.build(tokens)
        assert [index.vocab.token(i) for i in range(len(index.vocab))] == \
            [reference.vocab.token(i) for i in range(len(reference.vocab))]
        for name, field in reference.fields.items():
            for key, value in field.arrays(name).items():
                np.testing.assert_array_equal(index.fields[name].arrays(name)[key], value)
    texts = catalog[list(QUANTITY_FIELDS)].astype(str).agg(" ".join, axis=1).tolist()
    assert QuantityTable.from_texts([]).indptr.tolist() == [0]
    flat = [q for t in texts for q in quantities(t)]
    assert space.quantities.values.tolist() == [v for v, _ in flat]
    assert space.quantities.units.tolist() == [u for _, u in flat]
    assert np.diff(space.quantities.indptr).tolist() == [len(quantities(t)) for t in texts]


#: Pieces of the random texts below: numbers, units (also spelled across spaces), the
#: dimension "x", separators, and characters outside ASCII that change case, normalize or
#: count as digits, so that any segment cut where a match could cross shows as a difference.
PIECES = ["1", "2", "12", "3/4", ".5", "0.75", " ", "  ", "\t", "-", " - ", "x", "X", " x ",
          "\u00d7", "in", "In", "inch", "ft", "'", "''", '"', "\u201d", "\u2032", "gal", "v",
          "volt", "w", "a", "the", "drill", "Drills", ",", "(", ")", ".", "/", "\n", "\r",
          "\u00e9", "\u0301", "\u03a3", "\u03c2", "\u0663", "\uff11", "\ufb01", "\u00bd", "_",
          "k", "K", "\u212a", "\u0130", "\u0131", "sq", " ft", "sq ft", "sq. ft.",
          "square feet", "fl oz", "cu. ft.", "amp hour", "amp-hour", "lb", "pack", "ga",
          "with", "and", "for", "#", "+", "\u00b0", "deg", "\u00a0", "\x1c", "m", "mm"]


def _random_texts(seed: int, n: int = 4000) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(PIECES, size=int(rng.integers(0, 16)))) for _ in range(n)]


@pytest.mark.parametrize("analyzer", [
    Analyzer(), Analyzer(lowercase=False), Analyzer(stopwords=True), Analyzer(units=False),
    Analyzer(stem=True), Analyzer(lowercase=False, stopwords=True)])
def test_segment_analysis_equals_the_analyzer_on_random_texts(analyzer: Analyzer) -> None:
    """Tokens, token counts and the forward indexes (exact and stemmed ids, first-seen
    vocabularies) of the segment path equal the analyzer's, text by text."""
    texts = _random_texts(11) + TRICKY
    plain = dataclasses.replace(analyzer, stem=False)
    bulk = bulk_text.analyze_many(plain, texts, chunk=900)
    assert bulk.lists() == [plain(t) for t in texts]
    assert bulk_text.token_counts(analyzer, texts).tolist() == [len(analyzer(t)) for t in texts]
    vocab, stem_vocab = Vocabulary(), Vocabulary()
    (ids, indptr), (stem_ids, stem_indptr) = bulk_text.forward_ids(
        analyzer, texts, vocab, stem_vocab, chunk=900, cache=bulk_text.SegmentCache())
    ref_vocab, ref_stem = Vocabulary(), Vocabulary()
    ref_ids, ref_indptr = ref_vocab.add_docs([analyzer(t) for t in texts])
    stemmer = dataclasses.replace(analyzer, stem=True)
    ref_stem_ids, _ = ref_stem.add_docs([stemmer(t) for t in texts])
    assert ids.tolist() == ref_ids.tolist() and indptr.tolist() == ref_indptr.tolist()
    assert stem_ids.tolist() == ref_stem_ids.tolist()
    assert stem_indptr.tolist() == ref_indptr.tolist()
    assert [vocab.token(i) for i in range(len(vocab))] == \
        [ref_vocab.token(i) for i in range(len(ref_vocab))]
    assert [stem_vocab.token(i) for i in range(len(stem_vocab))] == \
        [ref_stem.token(i) for i in range(len(ref_stem))]


def test_segment_quantities_equal_the_parser_on_random_texts() -> None:
    texts = _random_texts(12) + TRICKY
    table = bulk_units.quantity_table(texts, chunk=900)
    for i, text in enumerate(texts):
        got = list(zip(table.values[table.indptr[i]:table.indptr[i + 1]].tolist(),
                       table.units[table.indptr[i]:table.indptr[i + 1]].tolist(), strict=True))
        assert got == quantities(text), text


def test_head_cuts_equal_the_regex_on_random_titles() -> None:
    analyzer = Analyzer()
    titles = [t for t in _random_texts(13) if "\x00" not in t] + [
        "Drill With Case", "Fan 2 in White", "Fan in White", "a AND b", "x OR y", "1 - 2"]
    lengths = np.array([len(analyzer(t)) for t in titles])
    expected = np.array([len(analyzer(HEAD_CUT.split(t, maxsplit=1)[0])) for t in titles])
    expected = np.minimum(expected, lengths)
    expected = np.where(expected > 0, expected, lengths)
    assert head_lengths(titles, analyzer, lengths).tolist() == expected.tolist()


def test_the_segment_rules_were_proven_against_the_current_regexes() -> None:
    """The segment cuts read the analyzer's and the quantity parser's regexes; a change to
    either turns the fast path off (correct but slow) until the rules are checked again."""
    assert bulk_text.SEGMENTS_SOUND and bulk_units.SEGMENTS_SOUND


@pytest.mark.parametrize("analyzer", [Analyzer(), Analyzer(stopwords=True, units=False),
                                      Analyzer(lowercase=False)])
def test_heads_read_off_the_title_segments_equal_the_regex_cut(analyzer: Analyzer) -> None:
    """The build's head lengths (:func:`ranking.bulk_text.title_forward_ids`: the tokens of
    the segments before the cut) equal the regex-cut heads analyzed alone, across chunks, in
    a chunk where a title holds a NUL, and for titles outside ASCII."""
    titles = _random_texts(14) + TRICKY + [
        "Drill With Case", "Fan 2 in White", "Fan in White", "a AND b", "x OR y", "1 - 2",
        "2 - 4 in. Hose", "3 x 4, Blue", "ｗｉｔｈ Drill with bit", "Σ Drill, ΣΑΣ"]
    lengths = np.array([len(analyzer(t)) for t in titles])
    expected = np.array([len(analyzer(HEAD_CUT.split(t, maxsplit=1)[0])) for t in titles])
    expected = np.where(np.minimum(expected, lengths) > 0, np.minimum(expected, lengths),
                        lengths)
    vocab, stem_vocab = Vocabulary(), Vocabulary()
    (ids, indptr), _, heads = bulk_text.title_forward_ids(
        analyzer, titles, vocab, stem_vocab, bulk_text.SegmentCache(), chunk=700)
    assert np.diff(indptr).tolist() == lengths.tolist()
    assert clip_heads(heads, lengths).tolist() == expected.tolist()


#: Pieces heavy in numbers, spaces, fractions and units: where the segment rules split at the
#: whitespace after a digit unless a fraction, a dimension or a unit may follow.
NUMBER_PIECES = ["1", "2", "12", "40", "3/4", "/", ".", ".5", " ", "  ", "\t", "\n", "-", " - ",
                 "x", "X", "\u00d7", "in", "in.", "ft", "'", '"', "gal", "v", "volt", "w",
                 "sq", " ft", "sq ft", "amp hour", "lb", "\u00b0", "a", "the", "\u0663",
                 "\u00a0", "\x0b", "oz", "fl oz", "mm", ",", "(", "-in"]


def test_number_heavy_texts_equal_the_analyzer_and_the_parser() -> None:
    rng = np.random.default_rng(15)
    texts = ["".join(rng.choice(NUMBER_PIECES, size=int(rng.integers(0, 14))))
             for _ in range(6000)]
    table = bulk_units.quantity_table(texts, chunk=1100)
    for i, text in enumerate(texts):
        got = list(zip(table.values[table.indptr[i]:table.indptr[i + 1]].tolist(),
                       table.units[table.indptr[i]:table.indptr[i + 1]].tolist(), strict=True))
        assert got == quantities(text), text
    analyzer = Analyzer()
    vocab, stem_vocab = Vocabulary(), Vocabulary()
    (ids, indptr), (stem_ids, _), heads = bulk_text.title_forward_ids(
        analyzer, texts, vocab, stem_vocab, bulk_text.SegmentCache(), chunk=1100)
    ref_vocab = Vocabulary()
    ref_ids, ref_indptr = ref_vocab.add_docs([analyzer(t) for t in texts])
    assert ids.tolist() == ref_ids.tolist() and indptr.tolist() == ref_indptr.tolist()
    assert stem_ids.tolist() == Vocabulary().add_docs(
        [dataclasses.replace(analyzer, stem=True)(t) for t in texts])[0].tolist()
    lengths = np.diff(ref_indptr)
    expected = np.array([len(analyzer(HEAD_CUT.split(t, maxsplit=1)[0])) for t in texts])
    expected = np.where(np.minimum(expected, lengths) > 0, np.minimum(expected, lengths),
                        lengths)
    assert clip_heads(heads, lengths).tolist() == expected.tolist()


def test_the_build_leaves_the_cycle_collector_as_it_found_it() -> None:
    """The build pauses Python's cycle collector (:func:`ranking.bulk_text.cyclic_gc_paused`)
    and puts it back as it was, also when the build fails."""
    import gc

    catalog, _ = validate_catalog(pd.DataFrame({"product_id": ["a", "b"],
                                                "title": ["Drill 20V", "Saw"]}))
    assert gc.isenabled()
    FeatureSpace.build(catalog, Analyzer())
    assert gc.isenabled()
    gc.disable()
    try:
        FeatureSpace.build(catalog, Analyzer())
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(KeyError):
        FeatureSpace.build(catalog.drop(columns=["description"]), Analyzer())
    assert gc.isenabled()
