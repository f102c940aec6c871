"""The whole feature matrix of one (query, candidates) batch in one Numba call.

A search pays Python's dispatch for every kernel call, and numpy's for every column assigned
from Python: together they cost as much as the kernels themselves. :func:`extract_rows` runs
the field kernels (:func:`ranking._feature_kernels.field_columns`), the title kernel
(:func:`ranking._title_kernels.title_columns`) and the quantity kernel, and writes every
column straight into the caller's float32 matrix, where :mod:`ranking.features` says it goes.
The float64 values are the kernels' own, rounded to float32 on the store as numpy's
assignment rounds them, so the matrix is bit-identical to the column-by-column one.
Pure functions over arrays; :mod:`ranking.features` names and documents the columns.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ranking._feature_kernels import field_columns, quantity_match, trigram_keys
from ranking._title_kernels import title_columns

#: Offsets into :func:`extract_rows`' ``places``: the output column of each single feature,
#: then the runs of columns of the title kernel, the quantity kernel, the query and priors.
TITLE_LEN, QUERY = 0, 1  # title_len; query_len, unknown, idf sum, idf max, idf min (5)
TITLE_TEXT = QUERY + 5  # the 8 columns of title_columns, in its order
UNITS = TITLE_TEXT + 8  # unit_match, unit_conflict
PRIORS = UNITS + 2  # then one column per prior, in order
#: What :func:`extract_rows` returns.
OK, BAD_DOC, NO_PRIOR = 0, 1, 2
#: numpy's pairwise summation sums blocks of up to this many values with 8 accumulators.
_PAIRWISE_BLOCK = 128


@njit(cache=True)
def extract_rows(out, query, fields, field_map, title, vocab, text, quantities, all_idf,  # noqa: ANN001, ANN201
                 places, priors, docs):
    """Fill ``out`` (float32, len(docs) x features) for the candidate rows ``docs``.

    ``query`` = (exact ids, stemmed ids, token indptr, characters, quantity values, quantity
    units), as :class:`ranking.query.AnalyzedQuery` holds them; ``fields``
    the (plain, stem) :func:`field_columns` arrays of each field computed, and ``field_map``
    (out column, index into ``fields``, column of :func:`field_columns`) rows: a field
    indexed as an earlier one is read from its columns, a field no product has is not
    mapped and stays NaN. ``title``, ``vocab`` and ``text`` are what :func:`title_columns`
    reads; ``quantities`` the products' (indptr, values, units); ``all_idf`` the IDF of the
    stemmed ``all`` field (the query columns); ``places`` the output columns (offsets above).
    Returns :data:`OK`, or, writing nothing, :data:`BAD_DOC` when a row of ``docs`` is not
    a product, :data:`NO_PRIOR` when ``priors`` has no row for one (the kernels do not
    bounds-check)."""
    n_docs = title[0].shape[0] - 1
    for j in range(docs.shape[0]):
        if docs[j] < 0 or docs[j] >= n_docs:
            return BAD_DOC
    for j in range(docs.shape[0]):
        if docs[j] >= priors.shape[0]:
            return NO_PRIOR
    exact, stemmed, q_indptr, q_chars, q_values, q_units = query
    q_grams = trigram_keys(q_indptr, q_chars)
    out[:] = np.nan
    for f in range(len(fields)):
        columns = field_columns(exact, stemmed, fields[f][0], fields[f][1], docs)
        for m in range(field_map.shape[0]):
            if field_map[m, 1] == f:
                at, source = field_map[m, 0], field_map[m, 2]
                for j in range(docs.shape[0]):
                    out[j, at] = columns[j, source]
    texts = title_columns((stemmed, exact, q_indptr, q_chars, q_grams), title, vocab, text, docs)
    units = quantity_match(q_values, q_units, quantities[0], quantities[1], quantities[2], docs)
    query_row = query_columns(exact, stemmed, all_idf)
    doc_indptr = title[0]
    for j in range(docs.shape[0]):
        doc = docs[j]
        out[j, places[TITLE_LEN]] = doc_indptr[doc + 1] - doc_indptr[doc]
        for c in range(5):
            out[j, places[QUERY + c]] = query_row[c]
        for c in range(8):
            out[j, places[TITLE_TEXT + c]] = texts[j, c]
        for c in range(2):
            out[j, places[UNITS + c]] = units[j, c]
        for c in range(priors.shape[1]):
            out[j, places[PRIORS + c]] = priors[doc, c]
    return OK


@njit(cache=True)
def query_columns(exact, stemmed, idf):  # noqa: ANN001, ANN201
    """[query length, share of unknown tokens, sum, max and min of the IDF of the known
    stemmed tokens (NaN max and min when none is known)]: the columns that are the same for
    every candidate. The sum is numpy's (:func:`pairwise_sum`), so the value is the bits
    ``idf[known].sum()`` gives."""
    row = np.empty(5)
    nq = exact.shape[0]
    known = 0
    for qi in range(nq):
        known += exact[qi] >= 0
    row[0] = nq
    row[1] = 1.0 - known / nq if nq else 1.0
    values = np.empty(stemmed.shape[0])
    n = 0
    for qi in range(stemmed.shape[0]):
        if stemmed[qi] >= 0:
            values[n] = idf[stemmed[qi]]
            n += 1
    row[2] = pairwise_sum(values[:n])
    row[3], row[4] = np.nan, np.nan
    if n:
        row[3], row[4] = values[:n].max(), values[:n].min()
    return row


@njit(cache=True)
def pairwise_sum(values):  # noqa: ANN001, ANN201
    """The float64 sum of ``values`` in numpy's order, hence bit-equal to ``values.sum()``:
    ``np.add.reduce`` starts from its identity, +0.0 (so a sum of -0.0 is +0.0), and adds
    the pairwise sum (:func:`_pairwise`)."""
    return 0.0 + _pairwise(values)


@njit(cache=True)
def _pairwise(values):  # noqa: ANN001, ANN202
    """numpy's pairwise summation: blocks of up to 128 values with eight accumulators,
    larger arrays halved at a multiple of 8."""
    n = values.shape[0]
    if n < 8:
        total = -0.0
        for i in range(n):
            total += values[i]
        return total
    if n <= _PAIRWISE_BLOCK:
        r = values[:8].copy()
        i = 8
        while i < n - n % 8:
            for k in range(8):
                r[k] += values[i + k]
            i += 8
        total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            total += values[i]
            i += 1
        return total
    half = n // 2
    half -= half % 8
    return _pairwise(values[:half]) + _pairwise(values[half:])
