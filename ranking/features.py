"""The named feature vector of one (query, candidate) pair, for LambdaMART.

:class:`FeatureSpace` holds what the features read: the retrieval index over exact tokens,
a second index over stemmed tokens (so "drills" meets "drill" without giving up the exact
match), each with the analyzer that made it, the quantities of every product
(:mod:`ranking.units`), the characters of every exact token (for typo-tolerant matching) and
the titles' heads and character-trigram statistics (:mod:`ranking.title_text`).
Every feature is computed for all candidates of one query at once, in Numba kernels
(:mod:`ranking._bm25_kernels`, :mod:`ranking._feature_kernels`, :mod:`ranking._title_kernels`);
Python only loops over the fixed list of fields. ``FEATURES`` documents each column; a test
holds the README's feature table to it, so the two cannot drift.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ranking import _extract_kernels as extract_kernels
from ranking import _feature_kernels as kernels
from ranking import bulk_text, bundle
from ranking.bm25 import BM25IndexError, FieldIndex, MultiFieldIndex
from ranking.query import AnalyzedQuery, query_chars
from ranking.text import Analyzer
from ranking.title_text import TitleText
from ranking.units import QuantityTable, query_arrays
from ranking.vocab import Vocabulary

if TYPE_CHECKING:  # the serving path never imports pandas
    import pandas as pd

#: Text fields of the catalog that get their own index; ``all`` concatenates them.
TEXT_FIELDS = ("title", "description", "category", "brand", "attributes")
INDEXED_FIELDS = ("all", *TEXT_FIELDS)
#: Fields whose quantities (sizes, volts, gallons...) a product is matched on.
QUANTITY_FIELDS = ("title", "attributes")
#: A quantity starts with a digit (:func:`ranking.units.quantities`), so text without one
#: has none.
_HAS_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Prior:
    """A product prior: a per-product feature column, the same for every query."""

    name: str
    meaning: str
    column: str | None  # the catalog column it reads; None: units sold in the transactions
    log1p: bool  # the feature is log(1 + value)


#: The product priors, the last feature columns, in the order the model reads them:
#: :func:`product_priors` computes them from this declaration.
PRIORS: tuple[Prior, ...] = (
    Prior("rating", "product rating (missing if the catalog has none)", "rating", False),
    Prior("log_reviews", "log(1 + review count) (missing if the catalog has none)",
          "review_count", True),
    Prior("log_sales", "log(1 + units sold in the transactions) (missing without transactions)",
          None, True),
)
_EMPTY = "(missing if the product's field is empty)"

#: (name, meaning) of every feature column, in column order.
FEATURES: tuple[tuple[str, str], ...] = (
    *((f"bm25_{f}", f"BM25 (okapi) of the query's exact tokens against the {f} field {_EMPTY}")
      for f in INDEXED_FIELDS),
    *((f"bm25_stem_{f}", f"BM25 (okapi) of the query's stemmed tokens against the stemmed {f} "
      f"field {_EMPTY}") for f in INDEXED_FIELDS),
    *((f"cover_{f}", f"share of the query's stemmed tokens found in the {f} field {_EMPTY}")
      for f in INDEXED_FIELDS),
    ("cover_exact_title", "share of the query's exact tokens found in the title"),
    ("idf_cover_title", "IDF-weighted share of the query's known stemmed tokens in the title"),
    ("phrase_title", "1 if the whole stemmed query (2+ tokens) appears contiguously in the title"),
    ("bigram_title", "share of the query's adjacent stemmed token pairs adjacent, in order, in "
     "the title"),
    ("bigram_unordered_title", "share of the query's adjacent stemmed token pairs within 3 "
     "positions of each other, either order, in the title"),
    ("first_pos_title", "position of the first matching title token / title length (1 = none)"),
    ("last_token_title", "1 if the query's last stemmed token (often the product type) is in "
     "the title"),
    ("title_in_query", "share of the title's stemmed tokens that the query contains"),
    ("idf_missing_title", "summed IDF of the query's known stemmed tokens absent from the title"),
    ("title_last_in_query", "1 if the title's last stemmed token (often the product type) is in "
     "the query"),
    ("brand_in_query", f"share of the product's stemmed brand tokens that the query contains "
     f"{_EMPTY}"),
    ("edit_sim_title", "mean over query tokens of the best 1 - edit distance / length against a "
     "title token (typo-tolerant)"),
    ("trigram_sim_title", "mean over query tokens of the best character-trigram Dice against a "
     "title token (typo-tolerant)"),
    ("char3_cover_title", "share of the query's distinct character trigrams (its tokens joined by "
     "spaces) that the title's trigrams contain"),
    ("char3_cosine_title", "cosine of the query's and the title's character-trigram TF-IDF "
     "vectors (IDF over the catalog's titles)"),
    ("head_last_in_query", "1 if the last stemmed token of the title's head (the title before "
     "the first comma, \" - \", \"(\" or with/for/by/and/or/in, not the inch of \"36 in\"; "
     "usually the product type) is in the query"),
    ("head_last_is_query_last", "1 if the title head's last stemmed token is the query's last "
     "stemmed token"),
    ("head_last_sim", "best character-trigram Dice of the title head's last token against a "
     "query token (typo-tolerant)"),
    ("unit_match", "share of the query's quantities (\"3/4 in.\" = \"0.75 inch\") the product "
     "states (missing if the query has none)"),
    ("unit_conflict", "share of the query's quantities whose unit the product states only with "
     "other values (missing if the query has none)"),
    ("title_len", "title length in tokens"),
    ("query_len", "query length in tokens"),
    ("query_unknown", "share of query tokens absent from the vocabulary"),
    ("query_idf_sum", "sum of the IDF (stemmed all field) of the query's known tokens"),
    ("query_idf_max", "largest IDF of the query's known tokens (missing if none is known)"),
    ("query_idf_min", "smallest IDF of the query's known tokens (missing if none is known)"),
    *((p.name, p.meaning) for p in PRIORS),
)
FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _ in FEATURES)
COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}


#: The feature of each column of :func:`ranking._title_kernels.title_columns`, in its order.
TITLE_TEXT_COLUMNS = ("edit_sim_title", "trigram_sim_title", "char3_cover_title",
                      "char3_cosine_title", "head_last_in_query", "head_last_is_query_last",
                      "head_last_sim", "cover_exact_title")
#: Title features that are a :data:`ranking._feature_kernels.MATCH_COLUMNS` column of the
#: stemmed title.
_TITLE_MATCH = {"idf_cover_title": "idf_cover", "phrase_title": "phrase",
                "bigram_title": "bigram", "bigram_unordered_title": "bigram_unordered",
                "first_pos_title": "first_pos", "last_token_title": "last_token",
                "title_in_query": "field_in_query", "idf_missing_title": "idf_missing",
                "title_last_in_query": "field_last_in_query"}
#: Where :func:`ranking._extract_kernels.extract_rows` writes what is not a field kernel's
#: column, in the order of its offsets: title length, the columns that are the same for
#: every candidate (they let the trees tell easy queries from hard ones), the title kernel's,
#: the quantity kernel's, the priors.
_PLACES = np.array([COLUMN[name] for name in (
    "title_len", "query_len", "query_unknown", "query_idf_sum", "query_idf_max",
    "query_idf_min", *TITLE_TEXT_COLUMNS, "unit_match", "unit_conflict",
    *(p.name for p in PRIORS))], dtype=np.int64)
_PLACES.flags.writeable = False
_FIELD = kernels.FIELD  # column of field_columns by name


def product_priors(catalog: pd.DataFrame, tx: pd.DataFrame | None = None) -> np.ndarray:
    """(n, len(PRIORS)) float32, the :data:`PRIORS` in order, NaN where unknown (no rating or
    reviews in the catalog; no transactions at all)."""
    sales = np.full(len(catalog), np.nan)
    if tx is not None:
        sold = tx[tx["quantity"] > 0].groupby("product_id")["quantity"].sum()
        sales = sold.reindex(catalog["product_id"]).fillna(0.0).to_numpy(np.float64)
    columns = []
    for prior in PRIORS:
        values = sales if prior.column is None else catalog[prior.column].to_numpy(np.float64)
        columns.append(np.log1p(values) if prior.log1p else values)
    return np.column_stack(columns).astype(np.float32)


def field_tokens(catalog: pd.DataFrame, analyzer: Analyzer) -> dict[str, list[list[str]]]:
    """Tokens of each text field, plus ``all`` (every field concatenated) for retrieval."""
    out = {}
    for f in TEXT_FIELDS:
        analyzed = bulk_text.analyze_many(analyzer, catalog[f].tolist())
        if analyzer.stem:
            analyzed = dataclasses.replace(analyzed, tokens=bulk_text.stem_tokens(analyzed))
        out[f] = analyzed.lists()
    out["all"] = [sum((out[f][i] for f in TEXT_FIELDS), []) for i in range(len(catalog))]
    return out


def quantity_texts(catalog: pd.DataFrame) -> list[str]:
    """Per product, the text its quantities are read from: the :data:`QUANTITY_FIELDS` as
    strings joined by spaces (column by column, not row by row)."""
    columns = [catalog[f].astype(str).tolist() for f in QUANTITY_FIELDS]
    return [" ".join(values) for values in zip(*columns, strict=True)]


@dataclass(frozen=True)
class FeatureSpace:
    """Everything the features of a (query, candidates) batch are computed from."""

    analyzer: Analyzer  # exact tokens: retrieval and the exact-match features
    index: MultiFieldIndex
    stem_analyzer: Analyzer
    stem_index: MultiFieldIndex
    quantities: QuantityTable
    title_text: TitleText  # head lengths and trigram IDF of the titles
    #: (indptr, code points, sorted trigram keys) of every exact token (:func:`_vocab_chars`),
    #: for the typo-tolerant and trigram kernels: computed once from ``index``, when the space
    #: is built (the title statistics read them too) or loaded, so searches only compare.
    term_chars: tuple[np.ndarray, np.ndarray, np.ndarray]

    @classmethod
    def build(cls, catalog: pd.DataFrame, analyzer: Analyzer) -> FeatureSpace:
        """Indexes of a validated catalog (every text field present) under ``analyzer`` and
        under the same analyzer with stemming."""
        from concurrent.futures import ThreadPoolExecutor

        from ranking import bulk_units  # index builds only

        stem_analyzer = dataclasses.replace(analyzer, stem=True)
        vocab, stem_vocab = Vocabulary(), Vocabulary()
        forward, stem_forward = {}, {}
        segments = bulk_text.SegmentCache()  # each distinct segment analyzed once per build
        titles = catalog["title"].astype(str).tolist()
        # A second thread reads the quantities, then indexes the stemmed tokens, while this
        # one analyzes the text and indexes the exact tokens: their kernels release the GIL,
        # so on two cores they overlap. Neither shares a mutable object with the other.
        with (bulk_text.cyclic_gc_paused(),
              ThreadPoolExecutor(max_workers=1, thread_name_prefix="feature-build") as pool):
            quantities = pool.submit(lambda: bulk_units.quantity_table(quantity_texts(catalog)))
            for name in TEXT_FIELDS:  # field by field: the vocabularies' first-seen order
                if name == "title":  # the heads' token counts from the same segments
                    forward[name], stem_forward[name], heads = bulk_text.title_forward_ids(
                        analyzer, titles, vocab, stem_vocab, segments)
                else:
                    forward[name], stem_forward[name] = bulk_text.forward_ids(
                        analyzer, catalog[name].tolist(), vocab, stem_vocab, cache=segments)
            del segments
            forward["all"] = bulk_text.concat_fields([forward[f] for f in TEXT_FIELDS])
            stem_forward["all"] = bulk_text.concat_fields([stem_forward[f] for f in TEXT_FIELDS])
            stem_index = pool.submit(MultiFieldIndex.from_forward, stem_vocab, stem_forward)
            index = MultiFieldIndex.from_forward(vocab, forward)
            term_chars = _vocab_chars(index)
            title_text = TitleText.build(titles, analyzer, index.fields["title"],
                                         *term_chars[:2], heads=heads)
            return cls(analyzer, index, stem_analyzer, stem_index.result(), quantities.result(),
                       title_text, term_chars)

    def analyze(self, text: str) -> AnalyzedQuery:
        """The query ``text`` analyzed once, for every stage of a search: tokens and term ids
        under both analyzers, the tokens' characters and the quantities. The stemmed tokens
        come from the same pass as the exact ones when the stemmed analyzer is the exact one
        with stemming (as :meth:`build` makes it); a text without a digit has no quantity."""
        if self._stems_in_one_pass:
            tokens, stems = self.analyzer.with_stems(text)
        else:
            tokens, stems = self.analyzer(text), self.stem_analyzer(text)
        if _HAS_DIGIT.search(text):
            values, units = query_arrays(text)
        else:
            values, units = np.zeros(0), np.zeros(0, dtype=np.int64)
        return AnalyzedQuery(text, tuple(tokens), self.index.vocab.lookup(tokens),
                             self.stem_index.vocab.lookup(stems), query_chars(tokens), values,
                             units)

    @cached_property
    def _stems_in_one_pass(self) -> bool:
        return self.stem_analyzer == dataclasses.replace(self.analyzer, stem=True)

    def extract(self, query: AnalyzedQuery | str, docs: np.ndarray,
                priors: np.ndarray) -> np.ndarray:
        """Feature matrix (len(docs), len(FEATURES)) as float32 for ``query`` (analyzed by
        :meth:`analyze`; a text is analyzed here first).

        ``priors`` is (n_products, len(PRIORS)), NaN where unknown (XGBoost treats NaN as
        missing and learns a default branch for it).

        One kernel call fills the whole matrix (:func:`ranking._extract_kernels.extract_rows`):
        a field no product has is all missing without a kernel, and a field indexed exactly
        as an earlier one reads its columns (``all`` is ``title`` when the catalog has no
        other text, as Home Depot).
        """
        if isinstance(query, str):
            query = self.analyze(query)
        docs = self._checked_docs(docs)
        priors = np.asarray(priors)
        if priors.ndim != 2 or priors.shape[1] != len(PRIORS):
            raise ValueError(f"priors must be (n_products, {len(PRIORS)}); got {priors.shape}")
        out = np.empty((docs.shape[0], len(FEATURE_NAMES)), dtype=np.float32)
        plan = self._extract_plan
        status = extract_kernels.extract_rows(
            out, (query.exact, query.stemmed, *query.chars, query.quantity_values,
                  query.quantity_units), plan.fields, plan.field_map, self._title_arrays,
            self.term_chars, self._title_text_arrays, plan.quantities, plan.all_idf, _PLACES,
            priors, docs)
        if status == extract_kernels.BAD_DOC:
            n = self.index.fields["all"].n_docs
            raise BM25IndexError(f"doc ids must be in [0, {n}); got {docs.min()}..{docs.max()}")
        if status == extract_kernels.NO_PRIOR:
            raise ValueError(f"priors has {priors.shape[0]:,} rows; candidate row "
                             f"{docs.max():,} has none")
        return out

    @cached_property
    def _extract_plan(self) -> _ExtractPlan:
        """What :meth:`extract` hands its kernel besides the query: the field kernels'
        arrays of each field computed (non-empty, not indexed as an earlier field) and where
        their columns go."""
        computed = [name for name in INDEXED_FIELDS if self._same_field[name] is None
                    and self.index.fields[name].doc_terms.shape[0] > 0]
        source = {name: computed.index(self._same_field[name] or name)
                  for name in INDEXED_FIELDS if (self._same_field[name] or name) in computed}
        rows = []
        for name, f in source.items():
            rows += [(COLUMN[f"bm25_{name}"], f, _FIELD["bm25"]),
                     (COLUMN[f"bm25_stem_{name}"], f, _FIELD["bm25_stem"]),
                     (COLUMN[f"cover_{name}"], f, _FIELD["cover"])]
        if "title" in source:
            rows += [(COLUMN[name], source["title"], _FIELD[match])
                     for name, match in _TITLE_MATCH.items()]
        if "brand" in source:
            rows.append((COLUMN["brand_in_query"], source["brand"], _FIELD["field_in_query"]))
        # the kernel indexes the fields by a run-time number: one tuple type for all of them
        names = computed or ["all"]
        terms = np.result_type(*(side[1] for name in names for side in self._field_arrays[name]))
        fields = tuple(_uniform(self._field_arrays[name], terms) for name in names)
        q = self.quantities
        return _ExtractPlan(fields, np.array(rows, dtype=np.int64).reshape(-1, 3),
                            (q.indptr, q.values, q.units),
                            self.stem_index.fields["all"].idf)

    @cached_property
    def _field_arrays(self) -> dict[str, tuple[tuple, tuple]]:
        """Per indexed field, what :func:`ranking._feature_kernels.field_columns` reads of its
        plain and its stemmed index (:func:`_bm25_arrays`). Stemming keeps every token, so
        the two usually have equal doc offsets and length norms: the stemmed side then reads
        the plain side's arrays, and a search brings one copy of them into the cache, not
        two."""
        out = {}
        for name in INDEXED_FIELDS:
            plain = _bm25_arrays(self.index.fields[name])
            stem = list(_bm25_arrays(self.stem_index.fields[name]))
            for i in (0, 3):  # doc_indptr, norm
                if np.array_equal(stem[i], plain[i]):
                    stem[i] = plain[i]
            out[name] = (plain, tuple(stem))
        return out

    @cached_property
    def _same_field(self) -> dict[str, str | None]:
        """Each indexed field's first earlier field with the same plain and stemmed indexes
        (same token ids, IDF and length normalization, so the same columns), else None."""
        same: dict[str, str | None] = {}
        for i, name in enumerate(INDEXED_FIELDS):
            same[name] = next((earlier for earlier in INDEXED_FIELDS[:i]
                               if same[earlier] is None
                               and _same_index(self.index.fields[earlier], self.index.fields[name])
                               and _same_index(self.stem_index.fields[earlier],
                                               self.stem_index.fields[name])), None)
        return same

    def _checked_docs(self, docs: np.ndarray) -> np.ndarray:
        """``docs`` as int64 product rows; the kernel refuses a row that is not one (it
        reports it, and :meth:`extract` raises a clear error), as the other kernels do not
        bounds-check."""
        docs = np.asarray(docs)
        if docs.ndim != 1 or not (docs.size == 0 or docs.dtype.kind in "iu"):
            raise BM25IndexError(f"doc ids must be a 1-d array of integers; got dtype "
                                 f"{docs.dtype}, shape {docs.shape}")
        return docs.astype(np.int64, copy=False)

    @cached_property
    def _title_text_arrays(self) -> tuple:
        return self.title_text.kernel_arrays()

    @cached_property
    def _title_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(doc_indptr, plain doc_terms, stemmed doc_terms) of the title, as
        :func:`ranking._title_kernels.title_columns` reads them: those of the earlier field
        the title is indexed exactly as (:attr:`_same_field`; ``all`` on Home Depot), so
        that a search reads the candidates' tokens from the memory the field kernel has
        just brought into the cache, not from a second copy."""
        name = self._same_field["title"] or "title"
        plain, stem = self.index.fields[name], self.stem_index.fields[name]
        return plain.doc_indptr, plain.doc_terms, stem.doc_terms

    # -- bundle ----------------------------------------------------------------------------
    def save(self, directory: Path) -> list[Path]:
        """Write what the ranker's own files (``analyzer.json``, ``bm25.*``) do not hold:
        ``features.json`` (feature names, the stemmed analyzer's settings), the stemmed
        index, ``quantities.npz``, ``title_text.npz`` and ``term_chars.npz``."""
        meta, quantities = directory / "features.json", directory / QUANTITIES
        title_text, term_chars = directory / TITLE_TEXT, directory / TERM_CHARS
        meta.write_text(json.dumps({"feature_names": list(FEATURE_NAMES),
                                    "stem_analyzer": self.stem_analyzer.to_dict()}, indent=2))
        np.savez(quantities, **self.quantities.arrays())
        np.savez(title_text, **self.title_text.arrays())
        np.savez(term_chars, trigram_keys=self.term_chars[2])
        return [meta, *self.stem_index.save(directory, STEM_INDEX), quantities, title_text,
                term_chars]

    @classmethod
    def load(cls, directory: Path, analyzer: Analyzer, index: MultiFieldIndex,
             listed: Collection[str] | None = None) -> FeatureSpace:
        """Reopen what :meth:`save` wrote; a bundle made for other features is refused.
        ``listed``: the files the bundle's manifest lists (checked), of which
        :data:`OPTIONAL_FILES` are read when present; None: those present in ``directory``."""
        from ranking import bundle_checks

        path = directory / "features.json"
        meta = bundle_checks.read_json(path)
        names = meta.get("feature_names") if isinstance(meta, dict) else None
        if not isinstance(names, list) or tuple(names) != FEATURE_NAMES:
            raise bundle.BundleError(f"{path}: feature_names is {names!r}, this version "
                                     f"computes {list(FEATURE_NAMES)}; rebuild the bundle")
        if not isinstance(meta.get("stem_analyzer"), dict):
            raise bundle.BundleError(f"{path}: stem_analyzer is missing or not an object; "
                                     "rebuild the bundle")
        n_products = index.fields["title"].n_docs
        quantities = QuantityTable.from_arrays(bundle_checks.load_npz(directory / QUANTITIES),
                                               n_products, str(directory / QUANTITIES))
        title_text = TitleText.from_arrays(bundle_checks.load_npz(directory / TITLE_TEXT),
                                           np.diff(index.fields["title"].doc_indptr),
                                           str(directory / TITLE_TEXT))
        return cls(analyzer, index, Analyzer.from_dict(meta["stem_analyzer"]),
                   MultiFieldIndex.load(directory, STEM_INDEX), quantities, title_text,
                   _vocab_chars(index, _optional(directory, TERM_CHARS, listed)))


#: File stem of the stemmed index in a bundle (``bm25_stemmed.npz``, ``bm25_stemmed_vocab.json``).
STEM_INDEX = "bm25_stemmed"
#: File of the products' quantities (:class:`ranking.units.QuantityTable`).
QUANTITIES = "quantities.npz"
#: File of the titles' head lengths and trigram statistics (:class:`TitleText`).
TITLE_TEXT = "title_text.npz"
#: File of the trigram keys of every exact token (:func:`_vocab_chars`), so that a load does
#: not compute them again; bundles written before it have none, and compute them.
TERM_CHARS = "term_chars.npz"
#: Files :meth:`FeatureSpace.save` writes, for the bundle's list of files.
BUNDLE_FILES = ("features.json", f"{STEM_INDEX}.npz", f"{STEM_INDEX}_vocab.json",
                QUANTITIES, TITLE_TEXT, TERM_CHARS)
#: Of :data:`BUNDLE_FILES`, those a bundle may lack (written by later versions).
OPTIONAL_FILES = (TERM_CHARS,)


@dataclass(frozen=True)
class _ExtractPlan:
    """What :meth:`FeatureSpace.extract` gives its kernel for every query (see
    :func:`ranking._extract_kernels.extract_rows`)."""

    fields: tuple  # (plain, stem) field-kernel arrays of each field computed, one type
    field_map: np.ndarray  # int64 (out column, index into fields, field-kernel column) rows
    quantities: tuple[np.ndarray, np.ndarray, np.ndarray]  # the products' indptr, values, units
    all_idf: np.ndarray  # IDF of the stemmed ``all`` field, for the query columns


def _uniform(arrays: tuple[tuple, tuple], terms: np.dtype) -> tuple[tuple, tuple]:
    """A field's (plain, stem) :func:`_bm25_arrays` as one Numba type for every field:
    contiguous arrays, the doc terms of dtype ``terms`` (common to the fields), and k1 a
    float (the kernel picks a field by a run-time number, which a tuple of one element type
    allows)."""
    return tuple((np.ascontiguousarray(side[0], np.int64), np.ascontiguousarray(side[1], terms),
                  np.ascontiguousarray(side[2], np.float64),
                  np.ascontiguousarray(side[3], np.float64), float(side[4]))
                 for side in arrays)


def _same_index(a: FieldIndex, b: FieldIndex) -> bool:
    """Whether two fields' indexes give every candidate the same BM25 and match columns."""
    arrays = zip(_bm25_arrays(a)[:4], _bm25_arrays(b)[:4], strict=True)
    return a.params == b.params and all(np.array_equal(x, y) for x, y in arrays)


def _bm25_arrays(field: FieldIndex) -> tuple:
    """What :func:`ranking._feature_kernels.field_columns` reads of one index's field."""
    return field.doc_indptr, field.doc_terms, field.idf, field.norm, field.params.k1_value


def _vocab_chars(index: MultiFieldIndex, stored: Path | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_chars` of every exact token of ``index``'s vocabulary, in term-id order. The
    trigram keys (the costly part) are read from ``stored`` (:data:`TERM_CHARS`) when given,
    after checking them against the vocabulary's characters."""
    tokens = [index.vocab.token(i) for i in range(len(index.vocab))]
    if stored is None:
        return _chars(tokens)
    from ranking import bundle_checks

    indptr, chars = _token_chars(tokens)
    keys = bundle_checks.check_trigram_keys(stored, bundle_checks.load_npz(stored), indptr,
                                            chars)
    return indptr, chars, keys


def _optional(directory: Path, name: str, listed: Collection[str] | None) -> Path | None:
    """The optional bundle file ``name`` if the manifest lists it (``listed``; or, without a
    manifest, if it exists), else None."""
    path = directory / name
    return path if (name in listed if listed is not None else path.is_file()) else None


def _chars(tokens: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokens as (indptr, int32 code points, int64 sorted trigram keys), one CSR row per
    token."""
    indptr, chars = _token_chars(tokens)
    return indptr, chars, kernels.trigram_keys(indptr, chars)


def _token_chars(tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ranking.query.query_chars` of ``tokens``, with the code points copied into a
    writable array (the vocabulary's arrays keep the Numba type the kernels were compiled
    for; a query's are read-only views)."""
    indptr, chars = query_chars(tokens)
    return indptr, chars.copy()
