"""Numba kernels for the title features that compare characters: each query token's best typo
match among the title's tokens, character trigrams of the whole title (words joined by spaces,
so they also span word boundaries) and the last token of the title's head. They share one
pass over the candidates' distinct title tokens (:func:`title_columns`).

Pure functions over arrays, each looping over all candidates of one query; :mod:`ranking.features`
names the features and :mod:`ranking.title_text` holds the catalog statistics they read. A
candidate whose title is empty gets NaN (missing), as in :mod:`ranking._feature_kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ranking._feature_kernels import (
    distinct_terms,
    edit_similarities,
    exact_tokens,
    typo_similarity,
)

_SPACE = 32
#: Smallest size of the hash table of the query's trigrams (a power of two; kept at most a
#: quarter full, so a title trigram that is not the query's mostly meets an empty slot).
_TABLE_SIZE = 1024


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
def title_columns(query, title, vocab, text, docs):  # noqa: ANN001, ANN201
    """Per candidate, in one call (a search pays Python's dispatch per kernel call): the
    :func:`ranking._feature_kernels.typo_similarity` columns [edit, trigram], the
    :func:`gram_match` columns [cover, cosine], the :func:`head_match` columns [head's last
    token in the query, it is the query's last token, its Dice], then the share of the
    query's exact tokens in the title (:func:`ranking._feature_kernels.exact_tokens`).

    ``query`` = (stemmed ids, exact ids, token indptr, characters, trigram keys); ``title`` =
    the title indexes' (doc_indptr, plain doc_terms, stemmed doc_terms); ``vocab`` = every
    exact token's (indptr, characters, trigram keys); ``text`` = (head lengths, title norms,
    catalog trigram keys, their IDF, IDF of an unseen trigram), as
    :class:`ranking.title_text.TitleText` holds them.

    The work is per distinct title token of the candidates, not per candidate: each token's
    trigrams are looked up once in a hash table of the query's (:func:`_term_hits`), which
    gives both the whole-title trigram matches and every (token, query token) Dice
    (:func:`_token_dice`), and each (token, query token) edit distance that can matter is
    computed once.
    """
    stemmed, exact, q_indptr, q_chars, q_grams = query
    doc_indptr, plain_terms, stem_terms = title
    term_indptr, term_chars, term_grams = vocab
    head_len, title_norm, keys, idf, unseen_idf = text
    terms, slots = distinct_terms(doc_indptr, plain_terms, docs)
    present, needed, cover = exact_tokens(exact, terms, slots, doc_indptr, docs)
    words = _gather_terms(terms, term_indptr, term_chars, term_grams)
    q_keys, q_counts, q_idf = query_grams(q_indptr, q_chars, keys, idf, unseen_idf)
    table = _query_table(q_keys)
    hits = _term_hits(words, table)
    dice = _token_dice(q_indptr, q_grams, table, q_keys.shape[0], hits[0], hits[1], words[0])
    edit = edit_similarities(q_indptr, q_chars, words[0], words[1], needed)
    out = np.empty((docs.shape[0], 8))
    out[:, :2] = typo_similarity(edit, dice, present, doc_indptr, slots, docs)
    out[:, 2:4] = gram_match(q_keys, q_counts, q_idf, table, hits, doc_indptr, slots,
                             title_norm, docs)
    out[:, 4:7] = head_match(stemmed, dice, stem_terms, doc_indptr, head_len, slots, docs)
    out[:, 7] = cover
    return out


@njit(cache=True)
def gram_match(q_keys, q_counts, q_idf, table, hits, doc_indptr, slots, title_norm,
               docs):  # noqa: ANN001, ANN201
    """Per candidate: [cover, cosine] of the query's character trigrams against the title.

    ``q_keys`` are the query's distinct trigram keys (sorted), ``q_counts`` how often each
    occurs and ``q_idf`` its IDF over the catalog's titles; ``title_norm`` is each product's
    TF-IDF norm. Cover is the share of the query's distinct trigrams the title contains;
    cosine weighs a trigram occurring k times by (1 + log k) * IDF on both sides, so a shared
    rare trigram ("toil", "dewalt") counts more than " th". NaN for an empty title or a query
    without trigrams. The title's trigrams are looked up in a hash table of the query's
    (``table``, :func:`_query_table`), not counted against each other.

    A title's trigrams are those of each token padded with spaces, plus one across each
    inner space: so which of the query's trigrams a token has is found once per distinct
    token of the candidates (``hits``, :func:`_term_hits`, with ``slots`` the index into the
    distinct tokens of each candidate token,
    :func:`ranking._feature_kernels.distinct_terms`), not once per candidate.
    """
    nq = q_keys.shape[0]
    out = np.full((docs.shape[0], 2), np.nan)
    if nq == 0 or slots.shape[0] == 0:
        return out
    q_weight = (1.0 + np.log(q_counts)) * q_idf
    q_norm = np.sqrt(np.sum(q_weight * q_weight))
    hit_ptr, hit_at, first, last = hits
    ends, starts = _space_neighbours(q_keys, first, last)
    tally = np.zeros(nq, dtype=np.int64)  # occurrences of each query trigram in the title
    at = 0
    for j in range(docs.shape[0]):
        n = doc_indptr[docs[j] + 1] - doc_indptr[docs[j]]
        if n == 0:
            continue
        tally[:] = 0
        for k in range(at, at + n):
            u = slots[k]
            for h in range(hit_ptr[u], hit_ptr[u + 1]):
                tally[hit_at[h]] += 1
            # the trigram across the space before this token, looked up only if it can match
            if k > at and ends[slots[k - 1]] and starts[u]:
                i = _find(table, (last[slots[k - 1]] << 42) | (np.int64(_SPACE) << 21) | first[u])
                if i >= 0:
                    tally[i] += 1
        at += n
        found, dot = 0, 0.0
        for i in range(nq):
            if tally[i] > 0:
                found += 1
                tf = 1.0 if tally[i] == 1 else 1.0 + np.log(tally[i])  # most counts are 1
                dot += q_weight[i] * tf * q_idf[i]
        out[j, 0] = found / nq
        out[j, 1] = dot / (q_norm * title_norm[docs[j]]) if title_norm[docs[j]] > 0 else 0.0
    return out


@njit(cache=True)
def query_grams(q_indptr, q_chars, keys, idf, unseen_idf):  # noqa: ANN001, ANN201
    """(distinct sorted keys, counts, IDF) of the trigrams of the query's tokens (CSR
    characters) joined by spaces as :func:`gram_keys` joins a title's; the IDF is looked up
    in the catalog's sorted ``keys``, ``unseen_idf`` for a trigram no title has."""
    n = q_indptr.shape[0] - 1
    _, grams = gram_keys(np.array([0, n]), np.arange(n), q_indptr, q_chars, np.zeros(1, np.int64))
    distinct = np.empty(grams.shape[0], dtype=np.int64)
    counts = np.zeros(grams.shape[0])
    m = 0
    for g in grams:  # sorted: equal keys are adjacent
        if m == 0 or distinct[m - 1] != g:
            distinct[m] = g
            m += 1
        counts[m - 1] += 1.0
    q_idf = np.full(m, unseen_idf)
    for i in range(m):
        at = np.searchsorted(keys, distinct[i])
        if at < keys.shape[0] and keys[at] == distinct[i]:
            q_idf[i] = idf[at]
    return distinct[:m], counts[:m], q_idf


@njit(cache=True)
def _gather_terms(terms, term_indptr, term_chars, term_grams):  # noqa: ANN001, ANN202
    """The characters and trigram keys of each of ``terms`` copied into one compact CSR,
    (indptr, characters, keys) over ``terms``. A search's distinct title tokens lie scattered
    over the vocabulary's arrays: a tight copy loop fetches them from memory once, many at a
    time, and every pass after it reads them close together."""
    indptr = np.zeros(terms.shape[0] + 1, dtype=np.int64)
    for u in range(terms.shape[0]):
        indptr[u + 1] = indptr[u] + term_indptr[terms[u] + 1] - term_indptr[terms[u]]
    chars = np.empty(indptr[-1], dtype=term_chars.dtype)
    grams = np.empty(indptr[-1], dtype=term_grams.dtype)
    for u in range(terms.shape[0]):
        start = term_indptr[terms[u]] - indptr[u]
        for k in range(indptr[u], indptr[u + 1]):
            chars[k] = term_chars[start + k]
            grams[k] = term_grams[start + k]
    return indptr, chars, grams


@njit(cache=True)
def _term_hits(words, table):  # noqa: ANN001, ANN202
    """For each of the words (:func:`_gather_terms`): the indexes into the query's keys of
    its padded trigrams that the query has (``table``, :func:`_query_table`), with repeats,
    as (indptr, indexes), CSR over the words; then its first and its last character (for
    the trigrams across spaces)."""
    indptr, chars, grams = words
    n_words = indptr.shape[0] - 1
    hit_ptr = np.zeros(n_words + 1, dtype=np.int64)
    at = np.empty(grams.shape[0], dtype=np.int64)
    first = np.empty(n_words, dtype=np.int64)
    last = np.empty(n_words, dtype=np.int64)
    n = 0
    for u in range(n_words):
        first[u], last[u] = chars[indptr[u]], chars[indptr[u + 1] - 1]
        for k in range(indptr[u], indptr[u + 1]):
            i = _find(table, grams[k])
            if i >= 0:
                at[n] = i
                n += 1
        hit_ptr[u + 1] = n
    return hit_ptr, at, first, last


@njit(cache=True)
def _token_dice(q_indptr, q_grams, table, n_keys, hit_ptr, hit_at,
                w_indptr):  # noqa: ANN001, ANN202
    """Trigram Dice of every (word, query token) pair, as a (words, query tokens) array, the
    words' lengths given by their CSR ``w_indptr`` (:func:`_gather_terms`): 2 * shared
    padded trigrams (a multiset intersection) / (sum of the lengths; a word of n characters
    has n trigrams).

    Each word's trigrams that the query has at all are its hits (``hit_ptr``, ``hit_at``:
    indexes into the query's ``n_keys`` distinct keys, :func:`_term_hits`); a query token's
    padded trigrams are among the whole query's (" tok " is a substring of " ... tok ... "),
    so counting each token's own keys once (``q_grams``, ``table``) gives every pair's shared
    count from the hits alone, without merging the two words' trigrams."""
    nq = q_indptr.shape[0] - 1
    per_token = np.zeros((n_keys, nq), dtype=np.int64)  # each key's count in each token
    for qi in range(nq):
        for g in q_grams[q_indptr[qi]:q_indptr[qi + 1]]:
            per_token[_find(table, g), qi] += 1
    out = np.zeros((w_indptr.shape[0] - 1, nq))
    shared = np.empty(nq, dtype=np.int64)
    for u in range(w_indptr.shape[0] - 1):
        start, end = hit_ptr[u], hit_ptr[u + 1]
        if start == end:
            continue  # no shared trigram: Dice 0
        shared[:] = 0
        for p in range(start, end):
            # the k-th occurrence of a key in the term is shared with a token that has it
            # more than k times: summed, min(occurrences in the term, in the token)
            i, earlier = hit_at[p], 0
            for r in range(start, p):
                earlier += hit_at[r] == i
            for qi in range(nq):
                if earlier < per_token[i, qi]:
                    shared[qi] += 1
        length = w_indptr[u + 1] - w_indptr[u]
        for qi in range(nq):
            out[u, qi] = 2.0 * shared[qi] / (q_indptr[qi + 1] - q_indptr[qi] + length)
    return out


@njit(cache=True)
def _space_neighbours(q_keys, first, last):  # noqa: ANN001, ANN202
    """Per distinct term (``first`` and ``last`` characters): whether the query has a trigram
    "<its last character> <any>" across a space, and whether it has one "<any> <its first
    character>"; a title's trigram across a space can only be the query's if both hold."""
    ends = np.zeros(first.shape[0], dtype=np.bool_)
    starts = np.zeros(first.shape[0], dtype=np.bool_)
    mask = np.int64((1 << 21) - 1)
    for key in q_keys:
        if (key >> 21) & mask == _SPACE:
            for u in range(first.shape[0]):
                ends[u] |= last[u] == key >> 42
                starts[u] |= first[u] == key & mask
    return ends, starts


@njit(cache=True)
def _query_table(q_keys):  # noqa: ANN001, ANN202
    """Open-addressing hash table of the query's trigram keys: (keys, index into ``q_keys``,
    -1 for an empty slot), by linear probing."""
    size = _TABLE_SIZE
    while size < 4 * q_keys.shape[0]:
        size *= 2
    keys = np.zeros(size, dtype=np.int64)
    where = np.full(size, -1, dtype=np.int64)
    for i in range(q_keys.shape[0]):
        h = _slot(q_keys[i], size)
        while where[h] >= 0:
            h = (h + 1) & (size - 1)
        keys[h], where[h] = q_keys[i], i
    return keys, where


@njit(cache=True, inline="always")
def _find(table, key):  # noqa: ANN001, ANN202
    """Index of ``key`` among the query's keys (:func:`_query_table`), or -1."""
    keys, where = table
    h = _slot(key, keys.shape[0])
    while where[h] >= 0:
        if keys[h] == key:
            return where[h]
        h = (h + 1) & (keys.shape[0] - 1)
    return -1


@njit(cache=True, inline="always")
def _slot(key, size):  # noqa: ANN001, ANN202
    """A trigram key's home slot in a table of ``size`` (a power of two): the middle bits of
    a multiplicative hash (int64 multiplication wraps, which is what a hash wants)."""
    return ((key * np.int64(-7046029254386353131)) >> np.int64(29)) & np.int64(size - 1)


@njit(cache=True)
def head_match(stemmed, dice, stem_terms, doc_indptr, head_len, slots,
               docs):  # noqa: ANN001, ANN201
    """Per candidate: [head's last token in the query, it is the query's last token, its
    best trigram Dice against a query token], NaN for an empty title or query.

    The head is the first ``head_len[doc]`` tokens of the title (:mod:`ranking.title_text`);
    its last token is usually the product type ("Cordless Drill" in "Cordless Drill with
    Battery"). ``stemmed`` are the query's term ids on the stemmed title index (-1 unknown),
    ``stem_terms`` its ``doc_terms`` (sharing ``doc_indptr`` with the plain index). The Dice
    is read from ``dice``, the (distinct candidate token, query token) Dice of the plain
    tokens (:func:`_token_dice`, through ``slots``), 1 for an exact token, so "toliet"
    still names a toilet.
    """
    nq = stemmed.shape[0]
    out = np.full((docs.shape[0], 3), np.nan)
    if nq == 0:
        return out
    at = 0
    for j in range(docs.shape[0]):
        start, end = doc_indptr[docs[j]], doc_indptr[docs[j] + 1]
        if end == start:
            continue
        head = head_len[docs[j]] - 1  # the head's last token, from the title's start
        stem = stem_terms[start + head]
        found = 0.0
        for qi in range(nq):
            if stemmed[qi] == stem:
                found = 1.0
        out[j, 0] = found
        out[j, 1] = 1.0 if stemmed[nq - 1] == stem else 0.0
        best = 0.0
        for qi in range(dice.shape[1]):
            best = max(best, dice[slots[at + head], qi])
        out[j, 2] = best
        at += end - start
    return out


@njit(cache=True)
def gram_document_frequencies(doc_indptr, doc_terms, term_indptr, term_chars):  # noqa: ANN001, ANN201
    """Every distinct title trigram key (sorted) and the number of titles that have it, the
    trigrams being :func:`gram_keys`'s, without sorting any title: one pass over the titles'
    trigrams with a hash table of the catalog's (each slot remembers the last title that
    counted it). Also the largest trigram count of a title, and the hash table (keys, and
    each slot's rank among the sorted keys, -1 if empty) for :func:`gram_norms`."""
    n_docs = doc_indptr.shape[0] - 1
    size = np.int64(1 << 16)
    keys = np.zeros(size, dtype=np.int64)
    used = np.zeros(size, dtype=np.bool_)
    df = np.zeros(size, dtype=np.int64)
    last = np.full(size, -1, dtype=np.int64)
    n_keys, longest = 0, 0
    buf = np.empty(16, dtype=np.int64)
    for doc in range(n_docs):
        m = _bound(doc_indptr, doc_terms, term_indptr, doc)
        longest = max(longest, m)
        if m > buf.shape[0]:
            buf = np.empty(2 * m, dtype=np.int64)
        _stream(doc_terms, doc_indptr[doc], doc_indptr[doc + 1], term_indptr, term_chars, buf)
        for i in range(m):
            if 2 * (n_keys + 1) > size:
                keys, used, df, last = _grow(keys, used, df, last)
                size = keys.shape[0]
            h = _slot(buf[i], size)
            while used[h] and keys[h] != buf[i]:
                h = (h + 1) & (size - 1)
            if not used[h]:
                used[h], keys[h] = True, buf[i]
                n_keys += 1
            if last[h] != doc:
                last[h] = doc
                df[h] += 1
    slots = np.flatnonzero(used)
    order = np.argsort(keys[slots])
    rank = np.full(size, -1, dtype=np.int64)
    rank[slots[order]] = np.arange(slots.shape[0])
    return keys[slots][order], df[slots][order], longest, keys, rank


@njit(cache=True)
def _grow(keys, used, df, last):  # noqa: ANN001, ANN202
    """The hash table of :func:`gram_document_frequencies` at twice the size."""
    size = keys.shape[0] * 2
    new_keys = np.zeros(size, dtype=np.int64)
    new_used = np.zeros(size, dtype=np.bool_)
    new_df = np.zeros(size, dtype=np.int64)
    new_last = np.full(size, -1, dtype=np.int64)
    for s in range(keys.shape[0]):
        if used[s]:
            h = _slot(keys[s], size)
            while new_used[h]:
                h = (h + 1) & (size - 1)
            new_used[h], new_keys[h], new_df[h], new_last[h] = True, keys[s], df[s], last[s]
    return new_keys, new_used, new_df, new_last


@njit(cache=True)
def gram_norms(doc_indptr, doc_terms, term_indptr, term_chars, table_keys, table_rank, idf,
               log_counts):  # noqa: ANN001, ANN201
    """Each title's TF-IDF norm over its trigrams: sqrt of the sum, over its distinct trigram
    keys in ascending order, of ((1 + log count) * IDF)^2, ``log_counts[c - 1]`` being
    ``log(c)`` as numpy computes it and ``idf`` that of the sorted distinct keys, found
    through :func:`gram_document_frequencies`' hash table (``table_keys``, ``table_rank``). The
    same float64 operations in the same order as a ``bincount`` over the sorted keys, so the
    norms are bit-equal to it. One title's trigrams are sorted at a time."""
    n_docs = doc_indptr.shape[0] - 1
    norm = np.zeros(n_docs)
    size = table_keys.shape[0]
    buf = np.empty(16, dtype=np.int64)
    for doc in range(n_docs):
        m = _bound(doc_indptr, doc_terms, term_indptr, doc)
        if m == 0:
            continue
        if m > buf.shape[0]:
            buf = np.empty(2 * m, dtype=np.int64)
        _stream(doc_terms, doc_indptr[doc], doc_indptr[doc + 1], term_indptr, term_chars, buf)
        grams = buf[:m]
        grams.sort()
        total = 0.0
        start = 0
        for i in range(1, m + 1):
            if i == m or grams[i] != grams[start]:
                key = grams[start]
                h = _slot(key, size)
                while table_rank[h] < 0 or table_keys[h] != key:
                    h = (h + 1) & (size - 1)
                w = (1.0 + log_counts[i - start - 1]) * idf[table_rank[h]]
                sq = w * w
                total += sq
                start = i
        norm[doc] = np.sqrt(total)
    return norm


@njit(cache=True, nogil=True)
def term_grams(term_indptr, term_chars, used):  # noqa: ANN001, ANN201
    """Per token of the vocabulary that ``used`` marks: the trigram keys of " t " (its
    characters padded by a space each side, :func:`_stream`'s spelling: len(t) of them), as
    CSR (indptr, keys), and its first and last character (-1 for a token not used). A
    title's trigrams are those of each of its tokens so padded, plus one (last character,
    space, first character) per pair of adjacent tokens: :func:`gram_frequencies_by_term`
    reads them so."""
    n_terms = term_indptr.shape[0] - 1
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    for t in range(n_terms):
        length = term_indptr[t + 1] - term_indptr[t] if used[t] else 0
        indptr[t + 1] = indptr[t] + length
    keys = np.empty(indptr[-1], dtype=np.int64)
    first = np.full(n_terms, -1, dtype=np.int64)
    last = np.full(n_terms, -1, dtype=np.int64)
    for t in range(n_terms):
        if not used[t]:
            continue
        start, end = term_indptr[t], term_indptr[t + 1]
        if end == start:
            continue
        first[t], last[t] = term_chars[start], term_chars[end - 1]
        a, b = np.int64(_SPACE), np.int64(term_chars[start])
        for k in range(end - start):
            c = np.int64(term_chars[start + k + 1]) if start + k + 1 < end else np.int64(_SPACE)
            keys[indptr[t] + k] = (a << 42) | (b << 21) | c
            a, b = b, c
    return indptr, keys, first, last


@njit(cache=True, nogil=True)
def gram_frequencies_by_term(doc_indptr, doc_terms, gram_indptr, gram_ids, last_id, first_id,
                             pair_ids, n_ids):  # noqa: ANN001, ANN201
    """:func:`gram_document_frequencies` from the tokens' own trigrams: every trigram of a
    title is a trigram of one of its padded tokens (``gram_ids``, dense ids, CSR by term) or
    the one between two adjacent tokens (``pair_ids[last_id[a], first_id[b]]``), so the
    titles are read without building or hashing a key. Per dense id, the number of titles
    with it (each id remembers the last title that counted it), and the largest trigram
    count of a title. Every token must be non-empty."""
    n_docs = doc_indptr.shape[0] - 1
    df = np.zeros(n_ids, dtype=np.int64)
    seen = np.full(n_ids, -1, dtype=np.int64)
    longest = 0
    for doc in range(n_docs):
        start, end = doc_indptr[doc], doc_indptr[doc + 1]
        m = 0
        for p in range(start, end):
            t = doc_terms[p]
            for k in range(gram_indptr[t], gram_indptr[t + 1]):
                g = gram_ids[k]
                if seen[g] != doc:
                    seen[g] = doc
                    df[g] += 1
            m += gram_indptr[t + 1] - gram_indptr[t]
            if p > start:
                g = pair_ids[last_id[doc_terms[p - 1]], first_id[t]]
                if seen[g] != doc:
                    seen[g] = doc
                    df[g] += 1
                m += 1
        longest = max(longest, m)
    return df, longest


@njit(cache=True, nogil=True)
def gram_norms_by_term(doc_indptr, doc_terms, gram_indptr, gram_ids, last_id, first_id,
                       pair_ids, idf, log_counts):  # noqa: ANN001, ANN201
    """:func:`gram_norms` from the tokens' own trigrams (dense ids in the order of the keys,
    as :func:`gram_frequencies_by_term` reads them; ``idf`` per dense id): each title's
    distinct ids are visited in ascending order, so the sum runs over its distinct keys in
    ascending order with the same float64 operations, and the norms are bit-equal. The ids
    are counted in a dense array and marked in a bitmap read word by word, or sorted when
    the span of the bitmap words is long next to the title (:func:`_sorted_run_sum`)."""
    n_docs = doc_indptr.shape[0] - 1
    n_ids = idf.shape[0]
    norm = np.zeros(n_docs)
    counts = np.zeros(n_ids, dtype=np.int64)
    words = np.zeros((n_ids >> 6) + 1, dtype=np.uint64)
    buf = np.empty(64, dtype=np.int64)
    for doc in range(n_docs):
        start, end = doc_indptr[doc], doc_indptr[doc + 1]
        if end == start:
            continue
        m = end - start - 1
        for p in range(start, end):
            m += gram_indptr[doc_terms[p] + 1] - gram_indptr[doc_terms[p]]
        if m > buf.shape[0]:
            buf = np.empty(2 * m, dtype=np.int64)
        n, low, high = 0, n_ids, 0
        for p in range(start, end):
            t = doc_terms[p]
            for k in range(gram_indptr[t] - (1 if p > start else 0), gram_indptr[t + 1]):
                g = gram_ids[k] if k >= gram_indptr[t] else pair_ids[
                    last_id[doc_terms[p - 1]], first_id[t]]
                buf[n] = g
                n += 1
                low, high = min(low, g), max(high, g)
        if (high >> 6) - (low >> 6) > 8 * m:
            grams = buf[:m]
            _insertion_sort(grams)
            norm[doc] = np.sqrt(_sorted_run_sum(grams, idf, log_counts))
            continue
        for i in range(m):
            g = buf[i]
            counts[g] += 1
            words[g >> 6] |= np.uint64(1) << np.uint64(g & 63)
        total = 0.0
        for w in range(low >> 6, (high >> 6) + 1):
            x = words[w]
            while x:
                bit = x & (~x + np.uint64(1))  # the lowest set bit
                g = (w << 6) + _DE_BRUIJN_INDEX[(bit * _DE_BRUIJN) >> np.uint64(58)]
                wt = (1.0 + log_counts[counts[g] - 1]) * idf[g]
                sq = wt * wt
                total += sq
                counts[g] = 0
                x ^= bit
            words[w] = 0
        norm[doc] = np.sqrt(total)
    return norm


@njit(cache=True)
def _sorted_run_sum(grams, idf, log_counts):  # noqa: ANN001, ANN202
    """Sum over the runs of equal ids of sorted ``grams`` of ((1 + log count) * IDF)^2."""
    m = grams.shape[0]
    total = 0.0
    first = 0
    for i in range(1, m + 1):
        if i == m or grams[i] != grams[first]:
            w = (1.0 + log_counts[i - first - 1]) * idf[grams[first]]
            sq = w * w
            total += sq
            first = i
    return total


#: The index of the set bit of a power of two ``b`` is ``_DE_BRUIJN_INDEX[(b * _DE_BRUIJN)
#: >> 58]`` (a De Bruijn sequence: every 6-bit window differs).
_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DE_BRUIJN_INDEX = np.zeros(64, dtype=np.int64)
for _bit in range(64):
    _DE_BRUIJN_INDEX[((1 << _bit) * 0x03F79D71B4CB0A89 % (1 << 64)) >> 58] = _bit
del _bit


@njit(cache=True)
def _insertion_sort(a):  # noqa: ANN001, ANN202
    """Sort ``a`` in place: a title's few dozen trigram ids, mostly in runs that are already
    ascending, where this beats a general sort."""
    if a.shape[0] > 256:
        a.sort()
        return
    for i in range(1, a.shape[0]):
        x = a[i]
        j = i - 1
        while j >= 0 and a[j] > x:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = x
