"""BM25 over one text field: CSR postings for retrieval, a forward index for candidate scoring.

The default ``okapi`` variant reproduces ``rank_bm25.BM25Okapi`` exactly: k1=1.5, b=0.75,
IDF ``log(N - n + 0.5) - log(n + 0.5)`` with negative IDFs replaced by ``epsilon`` times the mean
IDF of the field's terms, and each repeated query term counted each time. ``lucene`` uses the
non-negative IDF ``log(1 + (N - n + 0.5) / (n + 0.5))`` with k1=1.2. The heavy loops are Numba
kernels in :mod:`ranking._bm25_kernels`; this module builds, saves and fronts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from clv.errors import MarginRankError
from ranking import _bm25_kernels as kernels
from ranking.vocab import Vocabulary

Variant = Literal["okapi", "lucene"]


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


class IndexError_(MarginRankError):
    """An index cannot be built, loaded or queried as asked."""


@dataclass(frozen=True)
class FieldIndex:
    """One field of a catalog: forward and inverted CSR arrays plus per-term IDF."""

    doc_indptr: np.ndarray  # int64[n_docs + 1]: doc -> slice of doc_terms
    doc_terms: np.ndarray  # int32: term ids of each doc, in text order
    post_indptr: np.ndarray  # int64[n_terms + 1]: term -> slice of post_docs / post_tf
    post_docs: np.ndarray  # int32: doc ids, ascending within a term
    post_tf: np.ndarray  # float64: term frequency of the term in that doc
    idf: np.ndarray  # float64[n_terms]
    avgdl: float
    params: BM25Params

    @property
    def n_docs(self) -> int:
        return int(self.doc_indptr.shape[0] - 1)

    @cached_property
    def doc_len(self) -> np.ndarray:
        """Document lengths, computed once (every search reads them)."""
        return np.diff(self.doc_indptr).astype(np.float64)

    @classmethod
    def build(
        cls, term_ids: Sequence[np.ndarray], n_terms: int, params: BM25Params = BM25Params()
    ) -> FieldIndex:
        """Index documents given as arrays of term ids (vectorized: no loop per posting)."""
        n_docs = len(term_ids)
        lengths = np.fromiter((len(t) for t in term_ids), dtype=np.int64, count=n_docs)
        doc_indptr = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(lengths, out=doc_indptr[1:])
        doc_terms = (np.concatenate(term_ids) if n_docs else np.zeros(0)).astype(np.int32)
        doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        pair = doc_terms.astype(np.int64) * max(n_docs, 1) + doc_of
        uniq, tf = np.unique(pair, return_counts=True)  # sorted by term, then doc
        post_terms = uniq // max(n_docs, 1)
        df = np.bincount(post_terms, minlength=n_terms)
        post_indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(df, out=post_indptr[1:])
        total_len = int(lengths.sum())
        return cls(
            doc_indptr=doc_indptr,
            doc_terms=doc_terms,
            post_indptr=post_indptr,
            post_docs=(uniq % max(n_docs, 1)).astype(np.int32),
            post_tf=tf.astype(np.float64),
            idf=_idf(df, n_docs, params),
            avgdl=total_len / n_docs if n_docs else 0.0,
            params=params,
        )

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` documents containing a query term: (doc ids, scores), best first.

        Ties break by doc id. A query with no known term returns empty arrays.
        """
        if k < 1:
            raise IndexError_(f"k must be >= 1, got {k}")
        if self.n_docs == 0 or not (query >= 0).any():
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        return kernels.search_postings(
            query, self.post_indptr, self.post_docs, self.post_tf, self.idf, self.doc_len,
            self.avgdl, self.params.k1_value, self.params.b, k,
        )

    def score_all(self, query: np.ndarray) -> np.ndarray:
        """BM25 of every document (rank_bm25's ``get_scores``), from the postings."""
        if self.n_docs == 0:
            return np.zeros(0, dtype=np.float64)
        return kernels.accumulate_postings(
            query, self.post_indptr, self.post_docs, self.post_tf, self.idf, self.doc_len,
            self.avgdl, self.params.k1_value, self.params.b,
        )[0]

    def score(self, query: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """BM25 score of each doc in ``docs`` (any order; zeros where nothing matches), from the
        forward index: cost grows with the candidates' lengths, not the catalog's size."""
        docs = np.asarray(docs, dtype=np.int64)
        if docs.size and (docs.min() < 0 or docs.max() >= self.n_docs):
            raise IndexError_(
                f"doc ids must be in [0, {self.n_docs}); got {docs.min()}..{docs.max()}")
        if self.n_docs == 0:
            return np.zeros(docs.shape[0], dtype=np.float64)
        return kernels.score_candidates(
            query, self.doc_indptr, self.doc_terms, self.idf, self.avgdl,
            self.params.k1_value, self.params.b, docs,
        )

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
            raise IndexError_(f"index arrays for field '{prefix}' are incomplete: {exc}") from exc


def _idf(df: np.ndarray, n_docs: int, params: BM25Params) -> np.ndarray:
    """Per-term IDF; terms absent from this field (df == 0) get 0 and never score."""
    present = df > 0
    idf = np.zeros(df.shape[0], dtype=np.float64)
    n = df[present].astype(np.float64)
    if params.variant == "lucene":
        idf[present] = np.log(1.0 + (n_docs - n + 0.5) / (n + 0.5))
        return idf
    raw = np.log(n_docs - n + 0.5) - np.log(n + 0.5)
    if raw.size:
        floor = params.epsilon * (raw.sum() / raw.size)
        raw = np.where(raw < 0, floor, raw)
    idf[present] = raw
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
        for docs in field_tokens.values():
            vocab.add_all(docs)
        fields = {
            name: FieldIndex.build([vocab.lookup(d) for d in docs], len(vocab), params)
            for name, docs in field_tokens.items()
        }
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
        with np.load(directory / f"{stem}.npz", allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
        variant, k1, b, eps = (str(v) for v in data["__params__"])
        params = BM25Params(variant=variant, k1=None if k1 == "None" else float(k1),  # type: ignore[arg-type]
                            b=float(b), epsilon=float(eps))
        fields = {str(f): FieldIndex.from_arrays(data, str(f), params) for f in data["__fields__"]}
        return cls(vocab=Vocabulary.load(directory / f"{stem}_vocab.json"), fields=fields,
                   params=params)
