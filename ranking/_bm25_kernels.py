"""Numba kernels for BM25: retrieval over postings, and scoring of given candidates.

Pure functions over CSR arrays; :mod:`ranking.bm25` is the documented wrapper in front.
Both compute, for every query term occurrence t (repeats count each time, as rank_bm25 does),
``idf[t] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len / avgdl))``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ranking._topk_kernels import topk_select


@njit(cache=True, inline="always")
def _term_score(tf, idf, dl, avgdl, k1, b):  # noqa: ANN001, ANN202
    return idf * (tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * dl / avgdl)))


@njit(cache=True)
def accumulate_postings(query, post_indptr, post_docs, post_tf, idf, doc_len, avgdl, k1, b):  # noqa: ANN001, ANN201, E501
    """Dense scores of every document, and the documents any query term touched (in the order
    first touched). Walks only the postings of the query terms; unknown terms (id < 0) are
    skipped."""
    n_docs = doc_len.shape[0]
    scores = np.zeros(n_docs, dtype=np.float64)
    seen = np.zeros(n_docs, dtype=np.bool_)
    total = 0
    for qi in range(query.shape[0]):
        t = query[qi]
        if t >= 0:
            total += post_indptr[t + 1] - post_indptr[t]
    touched = np.empty(total, dtype=np.int64)
    n_touched = 0
    for qi in range(query.shape[0]):
        t = query[qi]
        if t < 0:
            continue
        w = idf[t]
        for p in range(post_indptr[t], post_indptr[t + 1]):
            d = post_docs[p]
            scores[d] += _term_score(post_tf[p], w, doc_len[d], avgdl, k1, b)
            if not seen[d]:
                seen[d] = True
                touched[n_touched] = d
                n_touched += 1
    return scores, touched[:n_touched]


@njit(cache=True)
def search_postings(query, post_indptr, post_docs, post_tf, idf, doc_len, avgdl, k1, b, k):  # noqa: ANN001, ANN201, E501
    """Top-``k`` (doc ids, scores) among documents that contain at least one query term."""
    scores, docs = accumulate_postings(query, post_indptr, post_docs, post_tf, idf, doc_len,
                                       avgdl, k1, b)
    n_touched = docs.shape[0]
    cand_scores = np.empty(n_touched, dtype=np.float64)
    for i in range(n_touched):
        cand_scores[i] = scores[docs[i]]
    best = topk_select(np.zeros(n_touched, dtype=np.int64), cand_scores, docs, k)
    return docs[best], cand_scores[best]


@njit(cache=True)
def score_candidates(query, doc_indptr, doc_terms, idf, avgdl, k1, b, docs):  # noqa: ANN001, ANN201
    """BM25 of each doc in ``docs`` from the forward index (doc -> its term ids in order)."""
    out = np.zeros(docs.shape[0], dtype=np.float64)
    for j in range(docs.shape[0]):
        d = docs[j]
        start, end = doc_indptr[d], doc_indptr[d + 1]
        dl = end - start
        acc = 0.0
        for qi in range(query.shape[0]):
            t = query[qi]
            if t < 0:
                continue
            tf = 0
            for p in range(start, end):
                if doc_terms[p] == t:
                    tf += 1
            if tf > 0:
                acc += _term_score(tf, idf[t], dl, avgdl, k1, b)
        out[j] = acc
    return out
