"""Numba kernels for query-candidate features: token matches over a field's forward index,
typo-tolerant similarity on characters, and quantity matches.

Pure functions over arrays, each looping over all candidates of one query; :mod:`ranking.features`
names and documents the features. A candidate whose field is empty gets NaN (missing, which
XGBoost routes down a learned default branch) rather than a made-up 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ranking._bm25_kernels import score_candidates

#: Columns of :func:`match_features`, in order (each documented there).
MATCH_COLUMNS = ("cover", "idf_cover", "phrase", "bigram", "bigram_unordered", "first_pos",
                 "last_token", "field_in_query", "idf_missing", "field_last_in_query")
N_MATCH = len(MATCH_COLUMNS)
#: Columns of :func:`field_columns`: the field's two BM25 scores, then :data:`MATCH_COLUMNS`.
FIELD_COLUMNS = ("bm25", "bm25_stem", *MATCH_COLUMNS)
#: Column of :func:`field_columns` by name.
FIELD = {name: i for i, name in enumerate(FIELD_COLUMNS)}
# The kernels write by these names (module constants, which Numba compiles in).
_BM25, _BM25_STEM, _MATCHES = FIELD["bm25"], FIELD["bm25_stem"], FIELD[MATCH_COLUMNS[0]]
_COVER, _IDF_COVER = MATCH_COLUMNS.index("cover"), MATCH_COLUMNS.index("idf_cover")
_PHRASE, _BIGRAM = MATCH_COLUMNS.index("phrase"), MATCH_COLUMNS.index("bigram")
_BIGRAM_UNORDERED = MATCH_COLUMNS.index("bigram_unordered")
_FIRST_POS, _LAST_TOKEN = MATCH_COLUMNS.index("first_pos"), MATCH_COLUMNS.index("last_token")
_FIELD_IN_QUERY = MATCH_COLUMNS.index("field_in_query")
_IDF_MISSING = MATCH_COLUMNS.index("idf_missing")
_FIELD_LAST_IN_QUERY = MATCH_COLUMNS.index("field_last_in_query")
#: Two query tokens count as an unordered bigram when both occur within this many positions.
BIGRAM_WINDOW = 3


@njit(cache=True)
def field_columns(exact, stemmed, plain, stem, docs):  # noqa: ANN001, ANN201
    """Per candidate, one field's :data:`FIELD_COLUMNS`: BM25 of ``exact`` on the plain index,
    BM25 of ``stemmed`` on the stemmed index, then the :func:`match_features` of ``stemmed``;
    the BM25 NaN for an empty field. ``plain`` and ``stem`` are (doc_indptr, doc_terms, idf,
    norm, k1) of the field's two indexes. One call per field instead of one per column: a
    search pays Python's dispatch for every kernel call."""
    out = np.empty((docs.shape[0], len(FIELD_COLUMNS)))
    out[:, _BM25] = score_candidates(exact, plain[0], plain[1], plain[2], plain[3], plain[4],
                                     docs)
    out[:, _BM25_STEM] = score_candidates(stemmed, stem[0], stem[1], stem[2], stem[3], stem[4],
                                          docs)
    out[:, _MATCHES:] = match_features(stemmed, stem[2], stem[0], stem[1], docs)
    for j in range(docs.shape[0]):
        if plain[0][docs[j] + 1] == plain[0][docs[j]]:
            out[j, _BM25], out[j, _BM25_STEM] = np.nan, np.nan
    return out


@njit(cache=True)
def match_features(query, idf, doc_indptr, doc_terms, docs):  # noqa: ANN001, ANN201
    """Per candidate, the :data:`MATCH_COLUMNS` (NaN row for an empty field):

    0 coverage: share of the query's tokens (unknown ones included) found in the field;
    1 IDF coverage: IDF-weighted share of the query's known tokens found (NaN if none known);
    2 phrase: 1 when the whole query (two or more tokens) appears contiguously;
    3 ordered bigrams: share of the query's adjacent token pairs adjacent and in order;
    4 unordered bigrams: share of those pairs within BIGRAM_WINDOW positions, either order;
    5 first position: index of the first field token matching any query token over the field
      length (1.0 when nothing matches, so "earlier is better" holds for every value);
    6 last token: 1 when the query's last token (often the product type) is in the field;
    7 field in query: share of the field's tokens that occur in the query;
    8 missing IDF: summed IDF of the query's known tokens absent from the field (what a
      candidate fails to match, weighted by how telling each word is);
    9 field's last token in query: 1 when the field's last token (a title's product type,
      "... Angle") occurs in the query.
    """
    nq = query.shape[0]
    out = np.full((docs.shape[0], N_MATCH), np.nan)
    idf_total = 0.0
    for qi in range(nq):
        if query[qi] >= 0:
            idf_total += idf[query[qi]]
    present = np.empty(nq, dtype=np.bool_)
    for j in range(docs.shape[0]):
        start, end = doc_indptr[docs[j]], doc_indptr[docs[j] + 1]
        if end == start:
            continue
        first, share = _scan(query, doc_terms, start, end, present)
        found, idf_found = 0, 0.0
        for qi in range(nq):
            if present[qi]:
                found += 1
                idf_found += idf[query[qi]]
        out[j, _COVER] = found / nq if nq > 0 else 0.0
        if idf_total > 0:
            out[j, _IDF_COVER] = idf_found / idf_total
        ordered, unordered = _bigrams(query, present, doc_terms, start, end)
        out[j, _BIGRAM] = ordered / (nq - 1) if nq > 1 else 0.0
        out[j, _BIGRAM_UNORDERED] = unordered / (nq - 1) if nq > 1 else 0.0
        phrase = nq > 1 and ordered == nq - 1 and _contiguous(query, doc_terms, start, end)
        out[j, _PHRASE] = 1.0 if phrase else 0.0
        out[j, _FIRST_POS] = first
        out[j, _LAST_TOKEN] = 1.0 if nq > 0 and present[nq - 1] else 0.0
        out[j, _FIELD_IN_QUERY] = share
        out[j, _IDF_MISSING] = idf_total - idf_found
        out[j, _FIELD_LAST_IN_QUERY] = 0.0
        for qi in range(nq):
            if query[qi] == doc_terms[end - 1]:
                out[j, _FIELD_LAST_IN_QUERY] = 1.0
    return out


@njit(cache=True, inline="always")
def _scan(query, doc_terms, start, end, present):  # noqa: ANN001, ANN202
    """One pass over the field: sets ``present[qi]`` when query token ``qi`` occurs (never
    for an unknown, -1, token) and returns (first position of any query token over the
    field length, 1.0 when none; share of the field's tokens that occur in the query)."""
    present[:] = False
    first, hits = end, 0
    for p in range(start, end):
        hit = False
        for qi in range(query.shape[0]):
            if doc_terms[p] == query[qi]:
                present[qi] = True
                hit = True
        if hit:
            hits += 1
            first = min(first, p)
    return (first - start) / (end - start) if first < end else 1.0, hits / (end - start)


@njit(cache=True, inline="always")
def _bigrams(query, present, doc_terms, start, end):  # noqa: ANN001, ANN202
    """(ordered adjacent, unordered within the window) counts of the query's adjacent pairs;
    a pair with a token absent from the field (``present``) cannot count, so is not looked
    for."""
    ordered, unordered = 0, 0
    for qi in range(query.shape[0] - 1):
        a, b = query[qi], query[qi + 1]
        if not (present[qi] and present[qi + 1]):
            continue
        hit_ordered, hit_window = False, False
        for p in range(start, end):
            if doc_terms[p] != a:
                continue
            for r in range(max(start, p - BIGRAM_WINDOW), min(end, p + BIGRAM_WINDOW + 1)):
                if r != p and doc_terms[r] == b:
                    hit_window = True
                    if r == p + 1:
                        hit_ordered = True
        ordered += hit_ordered
        unordered += hit_window
    return ordered, unordered


@njit(cache=True, inline="always")
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
def exact_tokens(exact, terms, slots, doc_indptr, docs):  # noqa: ANN001, ANN201
    """(present, needed, cover) of the query's exact tokens ``exact`` (term ids, -1 unknown)
    in the candidates' field, given its distinct ``terms`` and the ``slots`` of each
    candidate token (:func:`distinct_terms`): ``present[j, qi]`` when candidate j has query
    token qi; ``needed[u, qi]`` when some candidate with term u lacks token qi, so that its
    best typo match for qi can be u (no other pair's similarity is ever read); ``cover[j]``
    the share of the query's tokens candidate j has (0 for a query without tokens, NaN for
    an empty field)."""
    nq = exact.shape[0]
    present = np.zeros((docs.shape[0], nq), dtype=np.bool_)
    needed = np.zeros((terms.shape[0], nq), dtype=np.bool_)
    cover = np.full(docs.shape[0], np.nan)
    at = 0
    for j in range(docs.shape[0]):
        n = doc_indptr[docs[j] + 1] - doc_indptr[docs[j]]
        if n == 0:
            continue
        for k in range(at, at + n):
            for qi in range(nq):
                present[j, qi] |= terms[slots[k]] == exact[qi]
        found = 0
        for qi in range(nq):
            found += present[j, qi]
            if not present[j, qi]:
                for k in range(at, at + n):
                    needed[slots[k], qi] = True
        cover[j] = found / nq if nq > 0 else 0.0
        at += n
    return present, needed, cover


@njit(cache=True)
def typo_similarity(edit, dice, present, doc_indptr, slots, docs):  # noqa: ANN001, ANN201
    """Per candidate: [edit similarity, trigram similarity], NaN for an empty field.

    For each query token, the best-matching field token by 1 - Levenshtein / longer length
    (``edit``, :func:`edit_similarities`) and by the Dice coefficient of their character
    trigrams (``dice``); each column is the mean of those bests over the query's tokens, so
    "toliet" still finds "toilet". A token the candidate has exactly (``present``,
    :func:`exact_tokens`) scores 1 for both, the most there is. ``edit`` and ``dice`` are
    (distinct field token, query token) arrays over the candidates' distinct tokens,
    ``slots`` the index into them of each candidate token (:func:`distinct_terms`): a pair is
    compared once per search, however many candidates share it, and here only read.
    """
    nq = edit.shape[1]
    out = np.full((docs.shape[0], 2), np.nan)
    if nq == 0:
        return out
    at = 0
    for j in range(docs.shape[0]):
        n = doc_indptr[docs[j] + 1] - doc_indptr[docs[j]]
        if n == 0:
            continue
        edit_sum, gram_sum = 0.0, 0.0
        for qi in range(nq):
            best_edit, best_gram = 1.0, 1.0
            if not present[j, qi]:
                best_edit, best_gram = 0.0, 0.0
                for k in range(at, at + n):
                    best_edit = max(best_edit, edit[slots[k], qi])
                    best_gram = max(best_gram, dice[slots[k], qi])
            edit_sum += best_edit
            gram_sum += best_gram
        out[j, 0] = edit_sum / nq
        out[j, 1] = gram_sum / nq
        at += n
    return out


@njit(cache=True)
def edit_similarities(q_indptr, q_chars, w_indptr, w_chars, needed):  # noqa: ANN001, ANN201
    """1 - Levenshtein / longer length of each ``needed`` (word, query token) pair
    (:func:`exact_tokens`), as a (words, query tokens) array, 0 where not needed;
    ``q_indptr``/``q_chars`` and ``w_indptr``/``w_chars`` are the CSR characters of the
    query's tokens and of the words (the candidates' distinct field tokens).

    The needed pairs are all compared, in one tight loop: skipping pairs whose lengths bound
    them below a candidate's best so far spares barely a tenth of them on real queries, and
    the tests cost more than they spare."""
    nq = q_indptr.shape[0] - 1
    masks = _char_masks(q_indptr, q_chars)
    out = np.zeros((w_indptr.shape[0] - 1, nq))
    for qi in range(nq):
        a, mask = q_chars[q_indptr[qi]:q_indptr[qi + 1]], masks[qi]
        for u in range(w_indptr.shape[0] - 1):
            start, end = w_indptr[u], w_indptr[u + 1]
            longer = max(a.shape[0], end - start)
            if needed[u, qi] and longer > 0:
                out[u, qi] = 1.0 - _levenshtein(a, mask, w_chars, start, end) / longer
    return out


@njit(cache=True)
def distinct_terms(doc_indptr, doc_terms, docs):  # noqa: ANN001, ANN201
    """(distinct term ids, index into them of each candidate token in order) of the
    candidates' field, by an open-addressing table (no sort, as this runs on every search):
    computed once per search for every kernel that works per distinct token."""
    total = 0
    for j in range(docs.shape[0]):
        total += doc_indptr[docs[j] + 1] - doc_indptr[docs[j]]
    size = 1
    while size < 2 * total:
        size *= 2
    table = np.full(size, -1, dtype=np.int64)  # term id -> its distinct index, by probing
    where = np.empty(size, dtype=np.int64)
    terms = np.empty(total, dtype=doc_terms.dtype)
    slots = np.empty(total, dtype=np.int64)
    n, at = 0, 0
    for j in range(docs.shape[0]):
        for p in range(doc_indptr[docs[j]], doc_indptr[docs[j] + 1]):
            t = doc_terms[p]
            h = (t * 40503) & (size - 1)
            while table[h] != -1 and table[h] != t:
                h = (h + 1) & (size - 1)
            if table[h] == -1:
                table[h], where[h], terms[n] = t, n, t
                n += 1
            slots[at] = where[h]
            at += 1
    return terms[:n], slots


#: Characters below this code point have a precomputed match mask in :func:`_char_masks`.
_MASKED_CHARS = 128


@njit(cache=True)
def _char_masks(q_indptr, q_chars):  # noqa: ANN001, ANN202
    """Per query token, per character below _MASKED_CHARS: the bits of the token's
    positions holding that character (the "match vector" of the bit-parallel edit
    distance), built once per search instead of once per compared pair. Rows of tokens
    longer than 64 characters stay 0: their distance takes the dynamic programme."""
    masks = np.zeros((q_indptr.shape[0] - 1, _MASKED_CHARS), dtype=np.uint64)
    for qi in range(q_indptr.shape[0] - 1):
        if q_indptr[qi + 1] - q_indptr[qi] > 64:
            continue
        for i in range(q_indptr[qi + 1] - q_indptr[qi]):
            c = q_chars[q_indptr[qi] + i]
            if c < _MASKED_CHARS:
                masks[qi, c] |= np.uint64(1) << np.uint64(i)
    return masks


@njit(cache=True, inline="always")
def _levenshtein(a, mask, chars, start, end):  # noqa: ANN001, ANN202
    """Edit distance (insertions, deletions, substitutions) between ``a`` and
    ``chars[start:end]``: bit-parallel (Myers 1999, in Hyyrö's formulation) when ``a`` fits a
    64-bit word, one character of the other word per step; the dynamic programme otherwise.
    Both give the exact distance. ``mask`` is ``a``'s :func:`_char_masks` row: which
    positions of ``a`` hold each ASCII character (other characters are looked up in ``a``).
    Inlined and given offsets rather than a slice: it runs for every compared pair, and a
    call or a slice there costs as much as the distance."""
    m = a.shape[0]
    if m == 0 or m > 64:
        return _levenshtein_rows(a, chars[start:end])
    one = np.uint64(1)
    pv, mv = ~np.uint64(0), np.uint64(0)
    last = one << np.uint64(m - 1)
    score = m
    for k in range(start, end):
        c = chars[k]
        if c < _MASKED_CHARS:
            eq = mask[c]
        else:
            eq = np.uint64(0)
            for i in range(m):
                if a[i] == c:
                    eq |= one << np.uint64(i)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | ~(xh | pv)
        mh = pv & xh
        if ph & last:
            score += 1
        elif mh & last:
            score -= 1
        ph = (ph << one) | one
        mh = mh << one
        pv = mh | ~(xv | ph)
        mv = ph & xv
    return score


@njit(cache=True)
def _levenshtein_rows(a, b):  # noqa: ANN001, ANN202
    """Edit distance by the textbook dynamic programme, one row of memory."""
    row = np.arange(b.shape[0] + 1)
    for i in range(1, a.shape[0] + 1):
        diagonal, row[0] = row[0], i
        for k in range(1, b.shape[0] + 1):
            above = row[k]
            row[k] = min(row[k] + 1, row[k - 1] + 1, diagonal + (a[i - 1] != b[k - 1]))
            diagonal = above
    return row[b.shape[0]]


@njit(cache=True)
def trigram_keys(indptr, chars):  # noqa: ANN001, ANN201
    """Per token (CSR rows of code points), its character trigrams of " token " as int64 keys,
    sorted within the token: a word of n characters has n of them, so the keys share
    ``indptr``. Three 21-bit code points pack into one key exactly (no hash collisions)."""
    keys = np.empty(chars.shape[0], dtype=np.int64)
    for t in range(indptr.shape[0] - 1):
        start, end = indptr[t], indptr[t + 1]
        word = chars[start:end]
        for i in range(end - start):
            keys[start + i] = (_padded_at(word, i - 1) << 42) | (np.int64(word[i]) << 21) | \
                _padded_at(word, i + 1)
        keys[start:end] = np.sort(keys[start:end])
    return keys


@njit(cache=True)
def _padded_at(chars, i):  # noqa: ANN001, ANN202
    """Character ``i`` of ``chars`` with a space (32) before the start and after the end."""
    return np.int64(chars[i]) if 0 <= i < chars.shape[0] else np.int64(32)


@njit(cache=True)
def quantity_match(q_values, q_units, doc_indptr, d_values, d_units, docs):  # noqa: ANN001, ANN201
    """Per candidate: [matched share, conflicting share] of the query's quantities.

    A query quantity matches a product quantity of equal value whose unit is the same or
    where either is a bare number (unit 0); it conflicts when it has a unit that the product
    states only with other values ("3/4 in" against a product that is "1/2 in"). Both are NaN
    for a query without quantities: there is nothing to match.
    """
    nq = q_values.shape[0]
    out = np.full((docs.shape[0], 2), np.nan)
    if nq == 0:
        return out
    for j in range(docs.shape[0]):
        start, end = doc_indptr[docs[j]], doc_indptr[docs[j] + 1]
        matched, conflicts = 0, 0
        for qi in range(nq):
            hit, same_unit = False, False
            for p in range(start, end):
                compatible = q_units[qi] == d_units[p] or q_units[qi] == 0 or d_units[p] == 0
                if compatible and abs(q_values[qi] - d_values[p]) <= 1e-9 * max(
                        1.0, abs(q_values[qi])):
                    hit = True
                    break
                if q_units[qi] != 0 and q_units[qi] == d_units[p]:
                    same_unit = True
            matched += hit
            conflicts += same_unit and not hit
        out[j, 0] = matched / nq
        out[j, 1] = conflicts / nq
    return out
