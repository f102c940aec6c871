"""Numba kernels for the title features that read more than single tokens: character trigrams
of the whole title (words joined by spaces, so they also span word boundaries) and the last
token of the title's head.

Pure functions over arrays, each looping over all candidates of one query; :mod:`ranking.features`
names the features and :mod:`ranking.title_text` holds the catalog statistics they read. A
candidate whose title is empty gets NaN (missing), as in :mod:`ranking._feature_kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ranking._feature_kernels import _common_sorted, _distinct, candidate_tokens

_SPACE = 32
#: Bits of the query's trigram filter: a title trigram whose bit is clear is not the query's,
#: without a search; with ~20 query trigrams, few of a title's ~60 find their bit set.
_FILTER_BITS = 12


@njit(cache=True)
def gram_keys(doc_indptr, doc_terms, term_indptr, term_chars, docs):  # noqa: ANN001, ANN201
    """Per doc of ``docs``, the character trigrams of " t1 t2 ... tn " (its tokens joined by
    single spaces, padded) as int64 keys sorted within the doc: (indptr, keys), CSR. An empty
    doc has none. The query's keys come from the same kernel (its tokens as one doc), so
    query and title trigrams are spelled alike."""
    indptr = np.zeros(docs.shape[0] + 1, dtype=np.int64)
    for j in range(docs.shape[0]):
        indptr[j + 1] = indptr[j] + _bound(doc_indptr, doc_terms, term_indptr, docs[j])
    keys = np.empty(indptr[-1], dtype=np.int64)
    for j in range(docs.shape[0]):
        out = keys[indptr[j]:indptr[j + 1]]
        _stream(doc_terms, doc_indptr[docs[j]], doc_indptr[docs[j] + 1], term_indptr,
                term_chars, out)
        out[:] = np.sort(out)
    return indptr, keys


@njit(cache=True)
def _bound(doc_indptr, doc_terms, term_indptr, doc):  # noqa: ANN001, ANN202
    """Trigram count of a doc: its padded string has sum(len + 1) + 1 characters, less 2."""
    start, end = doc_indptr[doc], doc_indptr[doc + 1]
    if end == start:
        return 0
    chars = 0
    for p in range(start, end):
        chars += term_indptr[doc_terms[p] + 1] - term_indptr[doc_terms[p]] + 1
    return chars - 1


@njit(cache=True)
def _stream(doc_terms, start, end, term_indptr, term_chars, out):  # noqa: ANN001, ANN202
    """Write the trigram keys of " t1 ... tn " for tokens ``doc_terms[start:end]`` into
    ``out`` (sized by :func:`_bound`), sliding a three-character window along: each token is
    a space, then its characters; a final space closes the string."""
    n, seen, a, b = 0, 0, np.int64(0), np.int64(0)
    for p in range(start, end + 1):
        first = term_indptr[doc_terms[p]] - 1 if p < end else 0
        last = term_indptr[doc_terms[p] + 1] if p < end else 1
        for k in range(first, last):
            c = np.int64(_SPACE) if (p == end or k == first) else np.int64(term_chars[k])
            if seen >= 2:
                out[n] = (a << 42) | (b << 21) | c
                n += 1
            a, b = b, c
            seen += 1
    return n


@njit(cache=True)
def gram_match(q_keys, q_counts, q_idf, doc_indptr, doc_terms, term_indptr, term_chars,
               term_grams, title_norm, docs):  # noqa: ANN001, ANN201
    """Per candidate: [cover, cosine] of the query's character trigrams against the title.

    ``q_keys`` are the query's distinct trigram keys (sorted), ``q_counts`` how often each
    occurs and ``q_idf`` its IDF over the catalog's titles; ``title_norm`` is each product's
    TF-IDF norm. Cover is the share of the query's distinct trigrams the title contains;
    cosine weighs a trigram occurring k times by (1 + log k) * IDF on both sides, so a shared
    rare trigram ("toil", "dewalt") counts more than " th". NaN for an empty title or a query
    without trigrams.

    Only the query's trigrams can add to the dot product, so the title's are counted against
    the query's keys, never sorted. A title's trigrams are those of each token padded with
    spaces (``term_grams``, as :func:`ranking._feature_kernels.trigram_keys` made them), plus
    one across each inner space: so which of the query's trigrams a token has is found once
    per distinct token of the candidates (:func:`_term_hits`), not once per candidate.
    """
    nq = q_keys.shape[0]
    out = np.full((docs.shape[0], 2), np.nan)
    total = candidate_tokens(doc_indptr, docs)
    if nq == 0 or total == 0:
        return out
    q_weight = (1.0 + np.log(q_counts)) * q_idf
    q_norm = np.sqrt(np.sum(q_weight * q_weight))
    query_bits = np.zeros(1 << _FILTER_BITS, dtype=np.bool_)
    for key in q_keys:
        query_bits[_filter_bit(key)] = True
    terms, slots = _distinct(doc_indptr, doc_terms, docs, total)
    hit_ptr, hit_at, first, last = _term_hits(terms, term_indptr, term_chars, term_grams, q_keys,
                                              query_bits)
    hits = np.zeros(nq, dtype=np.int64)
    at = 0
    for j in range(docs.shape[0]):
        start, end = doc_indptr[docs[j]], doc_indptr[docs[j] + 1]
        if end == start:
            continue
        hits[:] = 0
        for p in range(start, end):
            u = slots[at + p - start]
            for k in range(hit_ptr[u], hit_ptr[u + 1]):
                hits[hit_at[k]] += 1
            if p > start:  # the trigram across the space before this token
                key = (last[slots[at + p - start - 1]] << 42) | (np.int64(_SPACE) << 21) | first[u]
                i = _find(q_keys, query_bits, key)
                if i >= 0:
                    hits[i] += 1
        at += end - start
        found, dot = 0, 0.0
        for i in range(nq):
            if hits[i] > 0:
                found += 1
                dot += q_weight[i] * (1.0 + np.log(hits[i])) * q_idf[i]
        out[j, 0] = found / nq
        out[j, 1] = dot / (q_norm * title_norm[docs[j]]) if title_norm[docs[j]] > 0 else 0.0
    return out


@njit(cache=True)
def _term_hits(terms, term_indptr, term_chars, term_grams, q_keys, query_bits):  # noqa: ANN001, ANN202
    """For each of ``terms``: the indexes into ``q_keys`` of its padded trigrams that the
    query has, with repeats, as (indptr, indexes), CSR over ``terms``; then its first and its
    last character (for the trigrams across spaces, read here once per term rather than from
    the whole vocabulary's characters once per token)."""
    size = 0
    for t in terms:
        size += term_indptr[t + 1] - term_indptr[t]
    indptr = np.zeros(terms.shape[0] + 1, dtype=np.int64)
    at = np.empty(size, dtype=np.int64)
    first = np.empty(terms.shape[0], dtype=np.int64)
    last = np.empty(terms.shape[0], dtype=np.int64)
    n = 0
    for u in range(terms.shape[0]):
        first[u] = term_chars[term_indptr[terms[u]]]
        last[u] = term_chars[term_indptr[terms[u] + 1] - 1]
        for g in term_grams[term_indptr[terms[u]]:term_indptr[terms[u] + 1]]:
            i = _find(q_keys, query_bits, g)
            if i >= 0:
                at[n] = i
                n += 1
        indptr[u + 1] = n
    return indptr, at, first, last


@njit(cache=True)
def _find(q_keys, query_bits, key):  # noqa: ANN001, ANN202
    """Index of ``key`` in the sorted ``q_keys``, or -1; a clear filter bit answers -1
    without the search."""
    if not query_bits[_filter_bit(key)]:
        return -1
    i = np.searchsorted(q_keys, key)
    return i if i < q_keys.shape[0] and q_keys[i] == key else -1


@njit(cache=True)
def _filter_bit(key):  # noqa: ANN001, ANN202
    """A trigram key's bit in the query filter: the top bits of a multiplicative hash
    (int64 multiplication wraps, which is what a hash wants)."""
    return (key * np.int64(-7046029254386353131)) >> np.int64(64 - _FILTER_BITS) & np.int64(
        (1 << _FILTER_BITS) - 1)


@njit(cache=True)
def head_match(stemmed, exact, q_indptr, q_grams, stem_terms, plain_terms, doc_indptr,
               head_len, term_indptr, term_grams, docs):  # noqa: ANN001, ANN201
    """Per candidate: [head's last token in the query, it is the query's last token, its
    best trigram Dice against a query token], NaN for an empty title or query.

    The head is the first ``head_len[doc]`` tokens of the title (:mod:`ranking.title_text`);
    its last token is usually the product type ("Cordless Drill" in "Cordless Drill with
    Battery"). ``stemmed`` and ``exact`` are the query's term ids on the stemmed and plain
    title indexes (-1 unknown), which share ``doc_indptr``; ``stem_terms`` and
    ``plain_terms`` are their ``doc_terms``. The Dice reads the plain token's trigram keys
    (``term_grams`` over ``term_indptr``) against the query tokens' (``q_grams`` over
    ``q_indptr``), 1 for an exact token, so "toliet" still names a toilet.
    """
    nq = stemmed.shape[0]
    out = np.full((docs.shape[0], 3), np.nan)
    heads = np.empty(docs.shape[0], dtype=np.int64)  # position of each head's last token
    m = 0
    for j in range(docs.shape[0]):
        start, end = doc_indptr[docs[j]], doc_indptr[docs[j] + 1]
        if end > start and nq > 0:
            heads[m] = start + head_len[docs[j]] - 1
            m += 1
    if m == 0:
        return out
    # the Dice depends only on the head token: computed once per distinct one
    terms, slots = _distinct(np.arange(m + 1), plain_terms[heads[:m]], np.arange(m), m)
    sims = np.full(terms.shape[0], -1.0)
    r = 0
    for j in range(docs.shape[0]):
        if doc_indptr[docs[j] + 1] == doc_indptr[docs[j]]:
            continue
        stem, u = stem_terms[heads[r]], slots[r]
        if sims[u] < 0:
            sims[u] = _best_dice(terms[u], exact, q_indptr, q_grams, term_indptr, term_grams)
        found = 0.0
        for qi in range(nq):
            if stemmed[qi] == stem:
                found = 1.0
        out[j, 0] = found
        out[j, 1] = 1.0 if stemmed[nq - 1] == stem else 0.0
        out[j, 2] = sims[u]
        r += 1
    return out


@njit(cache=True)
def _best_dice(term, exact, q_indptr, q_grams, term_indptr, term_grams):  # noqa: ANN001, ANN202
    """Best trigram Dice of vocabulary term ``term`` against the query's tokens; 1 when one
    of them is that very term."""
    best = 0.0
    b = term_grams[term_indptr[term]:term_indptr[term + 1]]
    for qi in range(exact.shape[0]):
        if exact[qi] == term:
            return 1.0
        a = q_grams[q_indptr[qi]:q_indptr[qi + 1]]
        best = max(best, 2.0 * _common_sorted(a, b) / (a.shape[0] + b.shape[0]))
    return best
