"""BM25 over one text field: CSR postings for retrieval, a forward index for candidate scoring.

The default ``okapi`` variant reproduces ``rank_bm25.BM25Okapi`` exactly: k1=1.5, b=0.75,
IDF ``log(N - n + 0.5) - log(n + 0.5)`` with negative IDFs replaced by ``epsilon`` times the mean
IDF of the field's terms, and each repeated query term counted each time. ``lucene`` uses the
non-negative IDF ``log(1 + (N - n + 0.5) / (n + 0.5))`` with k1=1.2. The heavy loops are Numba
kernels in :mod:`ranking._bm25_kernels`; this module builds, saves and fronts them.

Retrieval (:meth:`FieldIndex.search`) reads each posting's precomputed tf part, so a query only
multiplies and adds; on long posting lists where one term dominates it finds the top k by
MaxScore, skipping documents whose score bounds cannot reach the k-th best, and otherwise
scores every matching document term at a time in a per-thread accumulator that it leaves
clean (all zeros, so the postings loop has no test when every query IDF is positive), so that
a query costs what its postings cost, not one slot per product. All are exact, with ties
broken by doc id. The precomputed arrays are derived from the saved ones on first use, so the
``.npz`` holds only postings, the forward index and IDF.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from numbers import Integral
from pathlib import Path
from typing import Literal

import numpy as np

from clv.errors import BM25IndexError
from ranking import _bm25_kernels as kernels
from ranking.vocab import Vocabulary

Variant = Literal["okapi", "lucene"]
_INT64 = np.dtype(np.int64)

#: Top-k by MaxScore (document at a time, skipping what cannot make the top k) only pays on
#: long posting lists: below this many postings, scoring them all term at a time is faster.
_MAXSCORE_POSTINGS = 200_000
#: Queries with more distinct terms than this (or any negative IDF, which breaks MaxScore's
#: bounds) are scored exhaustively too.
_MAXSCORE_TERMS = 64
#: MaxScore may visit one document per this many postings of the query terms before it yields
#: to exhaustive scoring: where its bounds prune little (several common terms), a visit costs
#: as much as hundreds of postings scored in bulk.
_MAXSCORE_BUDGET = 256
#: ... and only single-term queries, or those where one term dominates: the other terms'
#: bounds together below this fraction of its own. Then the k-th score soon exceeds what
#: the others can add, and only the dominant term's list is walked (with block skips).
#: Where two long terms weigh alike, the bounds cannot prune and MaxScore would visit most
#: documents of both, one by one: many times slower than accumulating them (measured on the
#: synthetic 1M catalog of benchmarks/bm25_speed.py).
_MAXSCORE_DOMINANT = 0.1
#: Queries whose known terms all weigh more than this are scored on a zeroed accumulator
#: (:func:`kernels.search_accumulate`, where 0 means "no query term"); products of such
#: weights with a posting's tf part cannot round to 0. Others (a zero or negative IDF, as
#: BM25Okapi's floor gives in tiny catalogs) use the NaN-marked one.
_POSITIVE = 1e-200


@dataclass(frozen=True)
class BM25Params:
    """Scoring parameters; ``None`` k1 means the variant's default (okapi 1.5, lucene 1.2)."""

    variant: Variant = "okapi"
    k1: float | None = None
    b: float = 0.75
    epsilon: float = 0.25

    @property
    def k1_value(self) -> float:
        if self.k1 is not None:
            return self.k1
        return 1.5 if self.variant == "okapi" else 1.2


@dataclass(frozen=True)
class FieldIndex:
    """One field of a catalog: forward and inverted CSR arrays plus per-term IDF."""

    doc_indptr: np.ndarray  # int64[n_docs + 1]: doc -> slice of doc_terms
    doc_terms: np.ndarray  # int32: term ids of each doc, in text order
    post_indptr: np.ndarray  # int64[n_terms + 1]: term -> slice of post_docs / post_tf
    post_docs: np.ndarray  # int32: doc ids, ascending within a term
    post_tf: np.ndarray  # uint16 (int32 if a doc repeats a term 65,536+ times): term frequency
    idf: np.ndarray  # float64[n_terms]
    avgdl: float
    params: BM25Params

    @cached_property
    def n_docs(self) -> int:
        return int(self.doc_indptr.shape[0] - 1)

    @property
    def doc_len(self) -> np.ndarray:
        """Document lengths in tokens."""
        return np.diff(self.doc_indptr).astype(np.float64)

    @cached_property
    def norm(self) -> np.ndarray:
        """``k1 * (1 - b + b * doc_len / avgdl)`` per document, computed once: the length part of
        every term score, in rank_bm25's order of operations (so scores stay bit-equal)."""
        p = self.params
        if self.avgdl == 0:  # no tokens at all: nothing will ever be scored
            return np.full(self.n_docs, p.k1_value * (1 - p.b))
        return p.k1_value * (1 - p.b + p.b * self.doc_len / self.avgdl)

    @cached_property
    def frac(self) -> np.ndarray:
        """Per posting, the length-normalized tf part of its score (float64, the very value a
        query would compute), so that retrieval only multiplies by the IDF and adds. Computed
        on first use (a loaded index gets it too): 8 bytes a posting."""
        out = np.empty(self.post_docs.shape[0], dtype=np.float64)
        kernels.posting_fractions(self.post_docs, self.post_tf, self.norm, self.params.k1_value,
                                  out)
        return out

    @cached_property
    def blocks(self) -> tuple[np.ndarray, np.ndarray]:
        """(block_indptr, block_max): per block of ``kernels.BLOCK`` postings of each term, the
        largest :attr:`frac`. With the IDF, the most the term adds to any document of the
        block, which lets :meth:`search` skip documents and whole blocks."""
        n_blocks = -(-np.diff(self.post_indptr) // kernels.BLOCK)
        block_indptr = np.zeros(n_blocks.shape[0] + 1, dtype=np.int64)
        np.cumsum(n_blocks, out=block_indptr[1:])
        block_max = np.zeros(int(block_indptr[-1]), dtype=np.float64)
        kernels.block_max_fractions(self.post_indptr, self.frac, block_indptr, block_max)
        return block_indptr, block_max

    @cached_property
    def _term_max(self) -> np.ndarray:
        """Per term, its largest :attr:`frac` (0 for a term the field lacks): times the
        term's weight in a query, the most it can add to any document."""
        block_indptr, block_max = self.blocks
        out = np.zeros(self.post_indptr.shape[0] - 1)
        present = np.flatnonzero(np.diff(block_indptr))
        if present.size:
            out[present] = np.maximum.reduceat(block_max, block_indptr[present])
        return out

    @classmethod
    def build(
        cls, term_ids: Sequence[np.ndarray], n_terms: int, params: BM25Params = BM25Params()
    ) -> FieldIndex:
        """Index documents given as one array of term ids each."""
        lengths = np.fromiter((len(t) for t in term_ids), dtype=np.int64, count=len(term_ids))
        doc_indptr = np.zeros(len(term_ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=doc_indptr[1:])
        doc_terms = np.concatenate([np.zeros(0, np.int32), *term_ids]).astype(np.int32)
        return cls.from_doc_terms(doc_terms, doc_indptr, n_terms, params)

    @classmethod
    def from_doc_terms(
        cls, doc_terms: np.ndarray, doc_indptr: np.ndarray, n_terms: int,
        params: BM25Params = BM25Params(),
    ) -> FieldIndex:
        """Index documents given as a forward CSR index (every doc's term ids concatenated, and
        the offsets of each doc), by a counting sort in two Numba passes: no sort, and no
        temporary larger than one int per term."""
        doc_terms = np.ascontiguousarray(doc_terms, dtype=np.int32)
        doc_indptr = np.ascontiguousarray(doc_indptr, dtype=np.int64)
        if doc_terms.size and (doc_terms.min() < 0 or doc_terms.max() >= n_terms):
            raise BM25IndexError(f"term ids must be in [0, {n_terms}); got "
                                 f"{doc_terms.min()}..{doc_terms.max()}")
        df = np.zeros(n_terms, dtype=np.int64)
        first_seen = np.empty(n_terms, dtype=np.int64)
        max_tf, n_seen = kernels.count_postings(doc_indptr, doc_terms, df,
                                                np.full(n_terms, -1, np.int64), first_seen)
        post_indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(df, out=post_indptr[1:])
        post_docs = np.empty(int(post_indptr[-1]), dtype=np.int32)
        post_tf = np.empty(post_docs.shape[0], dtype=np.uint16 if max_tf < 2**16 else np.int32)
        kernels.fill_postings(doc_indptr, doc_terms, post_indptr[:-1].copy(),
                              np.full(n_terms, -1, np.int64), post_docs, post_tf)
        n_docs = doc_indptr.shape[0] - 1
        return cls(
            doc_indptr=doc_indptr, doc_terms=doc_terms, post_indptr=post_indptr,
            post_docs=post_docs, post_tf=post_tf,
            idf=_idf(df, first_seen[:n_seen], n_docs, params),
            avgdl=doc_terms.shape[0] / n_docs if n_docs else 0.0, params=params,
        )

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` documents containing a query term: (doc ids, scores), best first.

        Ties break by doc id. A query with no known term, or an empty catalog, gives empty
        arrays; a ``k`` above the number of matching documents gives them all.
        """
        query = self._checked_query(query, bounded=False)
        if type(k) is not int and (isinstance(k, bool) or not isinstance(k, Integral)) or k < 1:
            raise BM25IndexError(f"k must be a whole number >= 1, got {k!r}")
        n_known, postings, least_idf, top = kernels.query_postings(query, self.post_indptr,
                                                                   self.idf)
        if top >= self.idf.shape[0]:
            self._unknown_term(top)
        if n_known == 0 or self.n_docs == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        k = min(int(k), self.n_docs)
        if postings >= _MAXSCORE_POSTINGS:
            found = self._search_maxscore(query[query >= 0], int(postings), k)
            if found is not None:
                return found
        if least_idf > _POSITIVE:
            return kernels.search_accumulate(query, self.post_indptr, self.post_docs, self.frac,
                                             self.idf, self._zeros(), k)
        return kernels.search_exhaustive(query, self.post_indptr, self.post_docs, self.frac,
                                         self.idf, self._scratch(), k)

    def _zeros(self) -> np.ndarray:
        """The accumulator of :func:`kernels.search_accumulate`: 0 means "no query term"."""
        return self._accumulator("zeros", 0.0)

    def _scratch(self) -> np.ndarray:
        """The accumulator of :func:`kernels.search_exhaustive`: NaN means "no query term"."""
        return self._accumulator("scratch", np.nan)

    def _accumulator(self, name: str, fill: float) -> np.ndarray:
        """This thread's score accumulator ``name``: one float64 per document, ``fill``
        between queries (the kernel resets what it touched). Allocated once per thread, so a
        query never fills one slot per product; threads never share one."""
        local = self._threads
        slots = getattr(local, name, None)
        if slots is None:
            slots = np.full(self.n_docs, fill)
            setattr(local, name, slots)
        return slots

    @cached_property
    def _threads(self) -> threading.local:
        return threading.local()

    def _search_maxscore(self, known: np.ndarray, postings: int,
                         k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """MaxScore's top k, or None where it does not apply or gives up (see the limits)."""
        terms, slots = np.unique(known, return_inverse=True)
        if terms.size > _MAXSCORE_TERMS or (self.idf[terms] < 0).any():
            return None
        if terms.size > 1:
            upper = (np.bincount(slots, minlength=terms.size) * self.idf[terms]
                     * self._term_max[terms])
            if upper.sum() - upper.max() >= _MAXSCORE_DOMINANT * upper.max():
                return None
        ids, scores, done = kernels.search_maxscore(
            terms, slots.astype(np.int64), self.post_indptr, self.post_docs, self.frac, self.idf,
            self.n_docs, *self.blocks, k, k + postings // _MAXSCORE_BUDGET)
        return (ids, scores) if done else None

    def warm(self) -> None:
        """Load (or compile) every search kernel for this index's array types now, so that no
        query pays for it; the block bounds are computed too."""
        if self.n_docs == 0 or self.post_docs.size == 0:
            return
        term = np.array([int(np.argmax(np.diff(self.post_indptr)))])
        kernels.search_accumulate(term, self.post_indptr, self.post_docs, self.frac, self.idf,
                                  self._zeros(), 1)
        # compiled on a query of nothing: its NaN accumulator is only made if a query needs it
        kernels.search_exhaustive(term[:0], self.post_indptr, self.post_docs, self.frac,
                                  self.idf, np.full(1, np.nan), 1)
        self._search_maxscore(term, 0, 1)
        self._term_max  # noqa: B018 - computed now, not by the first query that needs it
        self.search(term, 1)  # and what search calls before its kernels
        self.score_all(term)
        self.score(term, np.zeros(1, dtype=np.int64))

    def score_all(self, query: np.ndarray) -> np.ndarray:
        """BM25 of every document (rank_bm25's ``get_scores``), from the postings."""
        query = self._checked_query(query)
        if self.n_docs == 0:
            return np.zeros(0, dtype=np.float64)
        return kernels.score_all(query, self.post_indptr, self.post_docs, self.frac, self.idf,
                                 self.n_docs)

    def score(self, query: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """BM25 score of each doc in ``docs`` (any order; zeros where nothing matches), from the
        forward index: cost grows with the candidates' lengths, not the catalog's size."""
        query = self._checked_query(query)
        docs = np.asarray(docs)
        if docs.ndim != 1 or not (docs.size == 0 or np.issubdtype(docs.dtype, np.integer)):
            raise BM25IndexError(f"doc ids must be a 1-d array of integers; got dtype "
                                 f"{docs.dtype}, shape {docs.shape}")
        docs = docs.astype(np.int64, copy=False)
        if docs.size and (docs.min() < 0 or docs.max() >= self.n_docs):
            raise BM25IndexError(
                f"doc ids must be in [0, {self.n_docs}); got {docs.min()}..{docs.max()}")
        if docs.size == 0:
            return np.zeros(0, dtype=np.float64)
        return kernels.score_candidates(query, self.doc_indptr, self.doc_terms, self.idf,
                                        self.norm, self.params.k1_value, docs)

    def _checked_query(self, query: np.ndarray, bounded: bool = True) -> np.ndarray:
        """``query`` as int64 term ids, refused with a clear error if it could not index this
        field's arrays (the kernels do not bounds-check). ``bounded=False`` leaves the
        vocabulary bound to the caller (:meth:`search` gets it from
        :func:`kernels.query_postings`): on a small query these checks cost more than the
        search."""
        if not (type(query) is np.ndarray and query.dtype == _INT64 and query.ndim == 1):
            query = np.asarray(query)
            if query.ndim != 1 or not (query.size == 0
                                       or np.issubdtype(query.dtype, np.integer)):
                raise BM25IndexError(f"a query must be a 1-d array of term ids; got dtype "
                                     f"{query.dtype}, shape {query.shape}")
            query = query.astype(np.int64, copy=False)
        if bounded and query.size and query.max() >= self.idf.shape[0]:
            self._unknown_term(int(query.max()))
        return query

    def _unknown_term(self, term: int) -> None:
        raise BM25IndexError(f"term id {term} is not in this index's vocabulary of "
                             f"{self.idf.shape[0]} terms")

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays to store in an ``.npz``, keys prefixed by the field name."""
        return {
            f"{prefix}.doc_indptr": self.doc_indptr, f"{prefix}.doc_terms": self.doc_terms,
            f"{prefix}.post_indptr": self.post_indptr, f"{prefix}.post_docs": self.post_docs,
            f"{prefix}.post_tf": self.post_tf, f"{prefix}.idf": self.idf,
            f"{prefix}.avgdl": np.array(self.avgdl),
        }

    @classmethod
    def from_arrays(
        cls, data: dict[str, np.ndarray], prefix: str, params: BM25Params
    ) -> FieldIndex:
        try:
            return cls(
                doc_indptr=data[f"{prefix}.doc_indptr"], doc_terms=data[f"{prefix}.doc_terms"],
                post_indptr=data[f"{prefix}.post_indptr"], post_docs=data[f"{prefix}.post_docs"],
                post_tf=data[f"{prefix}.post_tf"], idf=data[f"{prefix}.idf"],
                avgdl=float(data[f"{prefix}.avgdl"]), params=params,
            )
        except KeyError as exc:
            raise BM25IndexError(
                f"index arrays for field '{prefix}' are incomplete: {exc}") from exc


def _idf(df: np.ndarray, terms: np.ndarray, n_docs: int, params: BM25Params) -> np.ndarray:
    """Per-term IDF of the field's ``terms`` (in the order they first occur in the field);
    terms absent from the field get 0 and never score.

    ``okapi`` follows rank_bm25 to the bit: ``math.log`` (numpy's vectorized log may differ
    in the last place), and the mean IDF summed one term at a time in first-seen order, which
    is the order rank_bm25's dict sums them in. A last-bit difference would be harmless to the
    scores but could reorder exact ties.
    """
    idf = np.zeros(df.shape[0], dtype=np.float64)
    n = df[terms]
    if params.variant == "lucene":
        idf[terms] = np.log(1.0 + (n_docs - n + 0.5) / (n + 0.5))
        return idf
    if terms.size == 0:
        return idf
    values, inverse = np.unique(n, return_inverse=True)
    logs = np.array([math.log(n_docs - v + 0.5) - math.log(v + 0.5) for v in values.tolist()])
    raw = logs[inverse]
    floor = params.epsilon * (np.cumsum(raw)[-1] / raw.size)
    idf[terms] = np.where(raw < 0, floor, raw)
    return idf


@dataclass(frozen=True)
class MultiFieldIndex:
    """Per-field indexes over one catalog with one shared vocabulary.

    ``all`` (every field concatenated) drives retrieval; the single fields feed the features.
    """

    vocab: Vocabulary
    fields: dict[str, FieldIndex]
    params: BM25Params

    @classmethod
    def build(
        cls, field_tokens: dict[str, list[list[str]]], params: BM25Params = BM25Params()
    ) -> MultiFieldIndex:
        vocab = Vocabulary()
        forward = {name: vocab.add_docs(docs) for name, docs in field_tokens.items()}
        return cls.from_forward(vocab, forward, params)

    @classmethod
    def from_forward(cls, vocab: Vocabulary, forward: dict[str, tuple[np.ndarray, np.ndarray]],
                     params: BM25Params = BM25Params()) -> MultiFieldIndex:
        """Index fields given as forward indexes ((term ids, doc offsets) each) over
        ``vocab``, e.g. by :func:`ranking.bulk_text.forward_ids`."""
        fields: dict[str, FieldIndex] = {}
        built: dict[tuple[int, int], FieldIndex] = {}  # a field given as the very arrays of
        for name, (terms, indptr) in forward.items():  # an earlier one is that index again
            key = (id(terms), id(indptr))
            if key not in built:
                built[key] = FieldIndex.from_doc_terms(terms, indptr, len(vocab), params)
            fields[name] = built[key]
        return cls(vocab=vocab, fields=fields, params=params)

    def save(self, directory: Path, stem: str = "bm25") -> list[Path]:
        """Write ``{stem}.npz`` (no pickle) and ``{stem}_vocab.json``; return the paths."""
        arrays: dict[str, np.ndarray] = {}
        for name, index in self.fields.items():
            arrays.update(index.arrays(name))
        arrays["__fields__"] = np.array(list(self.fields))
        arrays["__params__"] = np.array(
            [self.params.variant, repr(self.params.k1), repr(self.params.b),
             repr(self.params.epsilon)]
        )
        npz, vocab = directory / f"{stem}.npz", directory / f"{stem}_vocab.json"
        np.savez(npz, **arrays)
        self.vocab.save(vocab)
        return [npz, vocab]

    @classmethod
    def load(cls, directory: Path, stem: str = "bm25") -> MultiFieldIndex:
        """Reopen :meth:`save`'s files, every array checked against the others and the
        vocabulary first (:mod:`ranking.bundle_checks`): the kernels index them unchecked."""
        from ranking import bundle_checks

        path, vocab_path = directory / f"{stem}.npz", directory / f"{stem}_vocab.json"
        vocab = Vocabulary(bundle_checks.check_vocabulary(
            vocab_path, bundle_checks.read_json(vocab_path)))
        data = bundle_checks.load_npz(path)
        names, (variant, k1, b, eps) = bundle_checks.check_index_arrays(path, data, len(vocab))
        params = BM25Params(variant=variant, k1=k1, b=b, epsilon=eps)  # type: ignore[arg-type]
        fields = {f: FieldIndex.from_arrays(data, f, params) for f in names}
        return cls(vocab=vocab, fields=fields, params=params)
