"""Numba kernels for query-candidate match features over a field's forward index.

Pure functions over arrays; :mod:`ranking.features` names and documents the features.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def match_features(query, doc_indptr, doc_terms, docs):  # noqa: ANN001, ANN201
    """Per candidate: [coverage, exact phrase, ordered bigram share, first match position].

    coverage: share of the query's tokens (unknown ones included) found in the field;
    phrase: 1 when the whole query (two or more tokens) appears contiguously;
    bigrams: share of the query's adjacent token pairs that appear adjacent, in order;
    first position: index of the first token that matches any query token, over field length
    (1.0 when nothing matches, so "earlier is better" holds for every value).
    """
    nq = query.shape[0]
    out = np.zeros((docs.shape[0], 4), dtype=np.float64)
    for j in range(docs.shape[0]):
        start, end = doc_indptr[docs[j]], doc_indptr[docs[j] + 1]
        found = 0
        for qi in range(nq):
            t = query[qi]
            if t < 0:
                continue
            for p in range(start, end):
                if doc_terms[p] == t:
                    found += 1
                    break
        out[j, 0] = found / nq if nq > 0 else 0.0
        bigrams = 0
        for qi in range(nq - 1):
            a, b = query[qi], query[qi + 1]
            if a < 0 or b < 0:
                continue
            for p in range(start, end - 1):
                if doc_terms[p] == a and doc_terms[p + 1] == b:
                    bigrams += 1
                    break
        out[j, 2] = bigrams / (nq - 1) if nq > 1 else 0.0
        phrase = nq > 1 and bigrams == nq - 1 and _contiguous(query, doc_terms, start, end)
        out[j, 1] = 1.0 if phrase else 0.0
        out[j, 3] = 1.0
        for p in range(start, end):
            hit = False
            for qi in range(nq):
                if doc_terms[p] == query[qi]:
                    hit = True
                    break
            if hit:
                out[j, 3] = (p - start) / max(end - start, 1)
                break
    return out


@njit(cache=True)
def _contiguous(query, doc_terms, start, end):  # noqa: ANN001, ANN202
    nq = query.shape[0]
    for p in range(start, end - nq + 1):
        ok = True
        for qi in range(nq):
            if doc_terms[p + qi] != query[qi]:
                ok = False
                break
        if ok:
            return True
    return False


@njit(cache=True)
def field_in_query(query, doc_indptr, doc_terms, docs):  # noqa: ANN001, ANN201
    """Share of each candidate field's tokens that occur in the query (0 for an empty field).

    For short fields such as brand: 1.0 means the query names the whole brand.
    """
    out = np.zeros(docs.shape[0], dtype=np.float64)
    for j in range(docs.shape[0]):
        start, end = doc_indptr[docs[j]], doc_indptr[docs[j] + 1]
        if end == start:
            continue
        hits = 0
        for p in range(start, end):
            for qi in range(query.shape[0]):
                if doc_terms[p] == query[qi]:
                    hits += 1
                    break
        out[j] = hits / (end - start)
    return out
