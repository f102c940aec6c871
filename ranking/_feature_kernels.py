"""Numba kernels for query-candidate features: token matches over a field's forward index,
typo-tolerant similarity on characters, and quantity matches.

Pure functions over arrays, each looping over all candidates of one query; :mod:`ranking.features`
names and documents the features. A candidate whose field is empty gets NaN (missing, which
XGBoost routes down a learned default branch) rather than a made-up 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Columns of :func:`match_features`.
N_MATCH = 10
#: Two query tokens count as an unordered bigram when both occur within this many positions.
BIGRAM_WINDOW = 3


@njit(cache=True)
def match_features(query, idf, doc_indptr, doc_terms, docs):  # noqa: ANN001, ANN201
    """Per candidate (NaN row for an empty field):

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
    for j in range(docs.shape[0]):
        start, end = doc_indptr[docs[j]], doc_indptr[docs[j] + 1]
        if end == start:
            continue
        found, idf_found = 0, 0.0
        for qi in range(nq):
            if query[qi] >= 0 and _position(query[qi], doc_terms, start, end) >= 0:
                found += 1
                idf_found += idf[query[qi]]
        out[j, 0] = found / nq if nq > 0 else 0.0
        if idf_total > 0:
            out[j, 1] = idf_found / idf_total
        ordered, unordered = _bigrams(query, doc_terms, start, end)
        out[j, 3] = ordered / (nq - 1) if nq > 1 else 0.0
        out[j, 4] = unordered / (nq - 1) if nq > 1 else 0.0
        phrase = nq > 1 and ordered == nq - 1 and _contiguous(query, doc_terms, start, end)
        out[j, 2] = 1.0 if phrase else 0.0
        out[j, 5] = _first_match(query, doc_terms, start, end)
        last = query[nq - 1] if nq > 0 else -1
        out[j, 6] = 1.0 if last >= 0 and _position(last, doc_terms, start, end) >= 0 else 0.0
        out[j, 7] = _share_in_query(query, doc_terms, start, end)
        out[j, 8] = idf_total - idf_found
        out[j, 9] = 0.0
        for qi in range(nq):
            if query[qi] == doc_terms[end - 1]:
                out[j, 9] = 1.0
    return out


@njit(cache=True)
def _position(term, doc_terms, start, end):  # noqa: ANN001, ANN202
    """Offset of the first occurrence of ``term`` in the field, -1 if absent."""
    for p in range(start, end):
        if doc_terms[p] == term:
            return p - start
    return -1


@njit(cache=True)
def _bigrams(query, doc_terms, start, end):  # noqa: ANN001, ANN202
    """(ordered adjacent, unordered within the window) counts of the query's adjacent pairs."""
    ordered, unordered = 0, 0
    for qi in range(query.shape[0] - 1):
        a, b = query[qi], query[qi + 1]
        if a < 0 or b < 0:
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
def _first_match(query, doc_terms, start, end):  # noqa: ANN001, ANN202
    for p in range(start, end):
        for qi in range(query.shape[0]):
            if doc_terms[p] == query[qi]:
                return (p - start) / (end - start)
    return 1.0


@njit(cache=True)
def _share_in_query(query, doc_terms, start, end):  # noqa: ANN001, ANN202
    hits = 0
    for p in range(start, end):
        for qi in range(query.shape[0]):
            if doc_terms[p] == query[qi]:
                hits += 1
                break
    return hits / (end - start)


@njit(cache=True)
def typo_similarity(query, q_indptr, q_chars, doc_indptr, doc_terms, term_indptr, term_chars,
                    docs):  # noqa: ANN001, ANN201
    """Per candidate: [edit similarity, trigram similarity], NaN for an empty field.

    For each query token, the best-matching field token by 1 - Levenshtein / longer length,
    and by the Dice coefficient of their character trigrams (boundaries padded); each column
    is the mean of those bests over the query's tokens, so "toliet" still finds "toilet".
    Each (query token, distinct field token) pair is compared once for all candidates, and a
    token found exactly (same term id in ``query``) scores 1 without comparing characters.
    """
    nq = q_indptr.shape[0] - 1
    out = np.full((docs.shape[0], 2), np.nan)
    total = 0
    for j in range(docs.shape[0]):
        total += doc_indptr[docs[j] + 1] - doc_indptr[docs[j]]
    if nq == 0 or total == 0:
        return out
    seen = np.empty(total, dtype=doc_terms.dtype)
    at = 0
    for j in range(docs.shape[0]):
        start, end = doc_indptr[docs[j]], doc_indptr[docs[j] + 1]
        seen[at:at + end - start] = doc_terms[start:end]
        at += end - start
    terms = np.unique(seen)
    edit, gram = _pair_similarities(query, q_indptr, q_chars, terms, term_indptr, term_chars)
    for j in range(docs.shape[0]):
        start, end = doc_indptr[docs[j]], doc_indptr[docs[j] + 1]
        if end == start:
            continue
        edit_sum, gram_sum = 0.0, 0.0
        for qi in range(nq):
            best_edit, best_gram = 0.0, 0.0
            for p in range(start, end):
                u = np.searchsorted(terms, doc_terms[p])
                best_edit = max(best_edit, edit[qi, u])
                best_gram = max(best_gram, gram[qi, u])
            edit_sum += best_edit
            gram_sum += best_gram
        out[j, 0] = edit_sum / nq
        out[j, 1] = gram_sum / nq
    return out


@njit(cache=True)
def _pair_similarities(query, q_indptr, q_chars, terms, term_indptr, term_chars):  # noqa: ANN001, ANN202
    """(edit, trigram) similarity of every query token to every term of ``terms``."""
    nq = q_indptr.shape[0] - 1
    longest = 1
    for t in terms:
        longest = max(longest, term_indptr[t + 1] - term_indptr[t])
    for qi in range(nq):
        longest = max(longest, q_indptr[qi + 1] - q_indptr[qi])
    row = np.empty(longest + 1, dtype=np.int64)  # scratch for the edit distance
    used = np.empty(longest, dtype=np.bool_)  # scratch for the trigram counts
    edit = np.zeros((nq, terms.shape[0]))
    gram = np.zeros((nq, terms.shape[0]))
    for qi in range(nq):
        a = q_chars[q_indptr[qi]:q_indptr[qi + 1]]
        for u in range(terms.shape[0]):
            t = terms[u]
            if t == query[qi]:
                edit[qi, u], gram[qi, u] = 1.0, 1.0
                continue
            b = term_chars[term_indptr[t]:term_indptr[t + 1]]
            if a.shape[0] > 0 and b.shape[0] > 0:
                edit[qi, u] = 1.0 - _levenshtein(a, b, row) / max(a.shape[0], b.shape[0])
                gram[qi, u] = _trigram_dice(a, b, used)
    return edit, gram


@njit(cache=True)
def _levenshtein(a, b, row):  # noqa: ANN001, ANN202
    """Edit distance (insertions, deletions, substitutions) in one row of scratch memory."""
    for k in range(b.shape[0] + 1):
        row[k] = k
    for i in range(1, a.shape[0] + 1):
        diagonal, row[0] = row[0], i
        for k in range(1, b.shape[0] + 1):
            above = row[k]
            row[k] = min(row[k] + 1, row[k - 1] + 1, diagonal + (a[i - 1] != b[k - 1]))
            diagonal = above
    return row[b.shape[0]]


@njit(cache=True)
def _trigram_dice(a, b, used):  # noqa: ANN001, ANN202
    """Dice coefficient of the character trigrams of " a " and " b " (multiset counts): a
    word of n characters has n such trigrams."""
    na, nb = a.shape[0], b.shape[0]
    used[:nb] = False
    common = 0
    for i in range(na):
        for k in range(nb):
            if not used[k] and _padded_at(a, i - 1) == _padded_at(b, k - 1) and \
                    a[i] == b[k] and _padded_at(a, i + 1) == _padded_at(b, k + 1):
                used[k] = True
                common += 1
                break
    return 2.0 * common / (na + nb)


@njit(cache=True)
def _padded_at(chars, i):  # noqa: ANN001, ANN202
    """Character ``i`` of ``chars`` with a space (32) before the start and after the end."""
    return chars[i] if 0 <= i < chars.shape[0] else 32


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
