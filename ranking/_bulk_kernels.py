"""Numba kernels of the bulk text analysis of an index build (:mod:`ranking.bulk_text`).

Texts are code points (uint32) joined by NUL. :func:`split_segments` cuts them into
*segments* at characters that no match of the analyzer's regex (or of the quantity regex of
:mod:`ranking.units`) can cross, and numbers each distinct segment once, in first-seen order;
Python then analyzes only the distinct segments (far fewer than the tokens) and
:func:`gather_ids` spreads their term ids back over the texts. Pure functions over arrays.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: ASCII characters that no path of the analyzer's quantity regex can consume: not a word
#: character and not one of `` \t-./"'`` (the number, unit and separator characters). A run
#: of them (or NUL) always ends a segment.
NEVER_CONSUMED = np.zeros(128, dtype=np.bool_)
for _c in range(128):
    _ch = chr(_c)
    NEVER_CONSUMED[_c] = not (_ch.isalnum() or _ch == "_" or _ch in " \t-./\"'")
del _c, _ch

#: The joining words of :data:`ranking.title_text.HEAD_CUT`, as code points.
_WITH, _FOR, _BY, _AND, _OR, _IN = (tuple(ord(c) for c in w)
                                    for w in ("with", "for", "by", "and", "or", "in"))
#: ``lookback`` of :func:`split_segments` for the analyzer's regex (see there).
ANALYZER_RULE = -1


@njit(cache=True, nogil=True)
def split_segments(cps, never, lookback, unit_codes, unit_lengths, unit_first):  # noqa: ANN001, ANN201
    """Segments of NUL-separated texts ``cps`` (uint32 code points): (starts, ends, text of
    each, distinct id of each (int32, first-seen order), first occurrence of each distinct
    segment, whether each distinct segment holds a digit-like character). The segments are
    :func:`cut_segments`'."""
    starts, ends, texts, digit = cut_segments(cps, never, lookback, unit_codes, unit_lengths,
                                              unit_first)
    ids, first = _distinct(cps, starts, ends)
    return starts, ends, texts, ids, first, digit[first]


@njit(cache=True, nogil=True)
def cut_segments(cps, never, lookback, unit_codes, unit_lengths, unit_first):  # noqa: ANN001, ANN201
    """Segments of NUL-separated texts ``cps`` (uint32 code points): (starts, ends, text of
    each, whether each holds a digit-like character).

    ``lookback`` < 0 is the rule of :class:`ranking.text.Analyzer`'s regexes: a segment ends
    at NUL, at a character of ``never`` (ASCII, never consumed by a match), and at a space or
    tab whose previous character is such a separator or an ASCII character that no match
    continues with a space after (anything but a digit, ``x``, ``X`` or ``-``; any non-ASCII
    character counts as one that may). A space inside a match always follows a digit, a
    space, an x or a hyphen, so no match crosses a segment end, and a segment's ends look
    like the text's ends to every lookaround (no separator is a word character or a dot).
    A run of spaces and tabs after a digit, an x or a hyphen ends a segment too unless what
    follows it can continue a match (:func:`_crossable`: a digit, an x, a hyphen, or a unit
    spelling of ``unit_codes`` that a word character does not continue).

    ``lookback`` >= 0 is the rule of :mod:`ranking.units`' quantity regex, whose matches cross
    spaces only within ``lookback`` characters after a digit (the number's own spaces, then
    at most ``\\s?-?\\s?`` and a unit such as "square feet"): a segment ends at NUL, and at a
    space, tab, newline or carriage return with no digit-like character (an ASCII digit or
    any non-ASCII character) among the ``lookback`` before it, or that :func:`_apart` shows
    no match can be crossing (``unit_codes`` and ``unit_lengths`` are then the beginnings of
    the unit spellings with a space, before that space, and ``unit_first`` flags the ASCII
    characters that begin a unit spelling).
    """
    n = cps.shape[0]
    starts = np.empty(n // 2 + 1, dtype=np.int64)
    ends = np.empty(n // 2 + 1, dtype=np.int64)
    texts = np.empty(n // 2 + 1, dtype=np.int64)
    digit = np.empty(n // 2 + 1, dtype=np.bool_)
    m, text, start, blocks, last_digit, has_digit = 0, 0, -1, True, -(1 << 40), False
    run_split = False
    for i in range(n):
        c = cps[i]
        if c == 0:
            split = True
            blocks = True
        elif lookback < 0:
            if c < 128 and never[c]:
                split = True
                blocks = True
            elif c == 32 or c == 9:
                if blocks:
                    split = True
                elif cps[i - 1] == 32 or cps[i - 1] == 9:
                    split = run_split
                else:
                    run_split = not _crossable(cps, i, unit_codes, unit_lengths, unit_first)
                    split = run_split
            else:
                split = False
                blocks = c < 128 and not (48 <= c <= 57 or c == 120 or c == 88 or c == 45)
        elif c == 32 or c == 9 or c == 10 or c == 13:
            split = i - last_digit > lookback or _apart(cps, i, unit_codes, unit_lengths,
                                                        unit_first)
        else:
            split = False
        if not split and (c >= 128 or 48 <= c <= 57):
            last_digit = i
            has_digit = True
        if split:
            if start >= 0:
                starts[m], ends[m], texts[m], digit[m] = start, i, text, has_digit
                m += 1
                start = -1
            if c == 0:
                text += 1
        elif start < 0:
            start = i
            has_digit = 48 <= c <= 57 or c >= 128
    if start >= 0:
        starts[m], ends[m], texts[m], digit[m] = start, n, text, has_digit
        m += 1
    return starts[:m], ends[:m], texts[:m], digit[:m]


@njit(cache=True, nogil=True)
def _apart(cps, i, prefixes, prefix_lengths, starts_unit):  # noqa: ANN001, ANN202
    """For the quantity regex, whether the whitespace at ``i`` (a digit shortly before)
    still cannot be inside a match: a match crosses whitespace only right after a digit
    (:func:`_apart_after_digit`), a hyphen or other whitespace (the number's own space,
    ``\\s?-?\\s?``), or as the space inside a unit spelled with one, after its beginning
    (``prefixes``: "sq", "square"...). Anything outside ASCII, and any ASCII control
    character, counts as able to."""
    p = cps[i - 1]
    if 48 <= p <= 57:
        return _apart_after_digit(cps, i, starts_unit)
    if p >= 128 or p < 33 or p == 127 or p == 45:
        return False
    if cps[i] != 32:
        return True
    for k in range(prefix_lengths.shape[0]):
        length = prefix_lengths[k]
        if i - length < 0:
            continue
        same = True
        for m in range(length):
            if cps[i - length + m] != prefixes[k, m]:
                same = False
                break
        if same:
            return False
    return True


@njit(cache=True, nogil=True)
def _apart_after_digit(cps, i, starts_unit):  # noqa: ANN001, ANN202
    """Whether no quantity match crosses the whitespace at ``i`` right after a digit: one
    could only as the space of a fraction's ``\\d+[- ]\\d+/\\d+`` (a space, digits, then
    ``/``), or inside ``\\s?-?\\s?`` before a unit (then, after this whitespace, maybe a
    hyphen, maybe one more whitespace, and a character that begins a unit spelling:
    ``starts_unit``, ASCII). Anything outside ASCII counts as able to."""
    n = cps.shape[0]
    if cps[i] == 32:
        j = i + 1
        while j < n and 48 <= cps[j] <= 57:
            j += 1
        if j < n and (cps[j] >= 128 or (j > i + 1 and cps[j] == 47)):
            return False
    j = i + 1
    if j < n and cps[j] == 45:
        j += 1
    if j < n and (9 <= cps[j] <= 13 or 28 <= cps[j] <= 32):
        j += 1
    if j < n and (cps[j] >= 128 or starts_unit[cps[j]]):
        return False
    return True


@njit(cache=True, nogil=True)
def _crossable(cps, i, unit_codes, unit_lengths, unit_first):  # noqa: ANN001, ANN202
    """Whether a match of the analyzer's quantity regex could cross the run of spaces and
    tabs starting at ``i`` (after a character ``p`` that is not a separator): only by
    ``[ -]\\d+/\\d+`` (``p`` a digit, then digits and a slash) or ``[ \\t]*[x×][ \\t]*\\d+``
    (``p`` a digit or an x, a digit or an x next), or ``[ \\t]*-?[ \\t]*unit(?!\\w)`` (``p``
    a digit or a hyphen, then a hyphen or a unit). Anything outside ASCII counts as able
    to."""
    n = cps.shape[0]
    p = cps[i - 1]
    j = i
    while j < n and (cps[j] == 32 or cps[j] == 9):
        j += 1
    q = cps[j] if j < n else 0
    if p >= 128 or q >= 128:
        return True
    q_digit = 48 <= q <= 57
    if 48 <= p <= 57:
        if q_digit:  # only a fraction's "[ -]\d+/": digits, then a slash (or non-ASCII)
            while j < n and 48 <= cps[j] <= 57:
                j += 1
            return j < n and (cps[j] == 47 or cps[j] >= 128)
        return q == 120 or q == 88 or q == 45 or _unit_at(cps, j, unit_codes, unit_lengths,
                                                          unit_first)
    if p == 120 or p == 88:
        return q_digit
    if p == 45:
        return q_digit or q == 45 or _unit_at(cps, j, unit_codes, unit_lengths, unit_first)
    return True


@njit(cache=True, nogil=True)
def _unit_at(cps, j, unit_codes, unit_lengths, unit_first):  # noqa: ANN001, ANN202
    """Whether a unit spelling (lowercase ASCII code points, any case in the text, sorted, so
    ``unit_first[c]:unit_first[c + 1]`` are those starting with c) starts at ``j`` and no
    ASCII word character follows it."""
    n = cps.shape[0]
    c = cps[j] if j < n else 0
    if 65 <= c <= 90:
        c += 32
    if c >= 128:
        return False
    for k in range(unit_first[c], unit_first[c + 1]):  # the spellings starting with c
        length = unit_lengths[k]
        if j + length > n:
            continue
        same = True
        for m in range(length):
            c = cps[j + m]
            if 65 <= c <= 90:
                c += 32
            if c != unit_codes[k, m]:
                same = False
                break
        if not same:
            continue
        if j + length == n:
            return True
        after = cps[j + length]
        if after >= 128 or not (48 <= after <= 57 or 65 <= after <= 90 or 97 <= after <= 122
                                or after == 95):
            return True
    return False


@njit(cache=True, nogil=True)
def _distinct(cps, starts, ends):  # noqa: ANN001, ANN202
    """Distinct ids (first-seen order) of the segments ``cps[starts[i]:ends[i]]``
    (:func:`distinct_into` with a table of their own), and the first occurrence of each
    distinct segment."""
    ids, n, _, _, _, _ = distinct_into(cps, starts, ends, np.full(4096, -1, dtype=np.int64),
                                       np.empty(1024, dtype=np.uint64),
                                       np.empty(4096, dtype=np.uint32),
                                       np.zeros(1025, dtype=np.int64), 0)
    first = np.empty(n, dtype=np.int64)
    seen = 0
    for s in range(ids.shape[0]):
        if ids[s] == seen:  # ids are numbered in first-seen order
            first[seen] = s
            seen += 1
    return ids, first


@njit(cache=True, nogil=True)
def distinct_into(cps, starts, ends, table, hashes, chars, at, n_known):  # noqa: ANN001, ANN201
    """The id of each segment ``cps[starts[i]:ends[i]]`` among all segments seen so far (new
    ones numbered from ``n_known`` in first-seen order), by an open-addressing hash table
    kept from call to call (one per index build and analyzer): FNV-1a over the code points,
    then a full comparison with a compact copy of the distinct segments. The table's arrays
    are returned, grown as needed: ``table`` (slots hold ids, -1 empty, at most half full),
    ``hashes`` (FNV-1a of each id), ``chars``/``at`` (id d's code points are
    ``chars[at[d]:at[d + 1]]``). Returns (ids, n_known after, table, hashes, chars, at)."""
    m = starts.shape[0]
    ids = np.empty(m, dtype=np.int32)
    size = table.shape[0]
    n = n_known
    for s in range(m):
        h = np.uint64(14695981039346656037)
        for p in range(starts[s], ends[s]):
            h = (h ^ np.uint64(cps[p])) * np.uint64(1099511628211)
        slot = np.int64(h & np.uint64(size - 1))
        length = ends[s] - starts[s]
        while True:
            d = table[slot]
            if d < 0:
                break
            if hashes[d] == h and at[d + 1] - at[d] == length:
                same = True
                base = at[d]
                for k in range(length):
                    if chars[base + k] != cps[starts[s] + k]:
                        same = False
                        break
                if same:
                    break
            slot = (slot + 1) & (size - 1)
        if d >= 0:
            ids[s] = d
            continue
        # a new segment: kept, the arrays grown first if full
        if n + 1 > hashes.shape[0] or n + 2 > at.shape[0]:
            capacity = 2 * hashes.shape[0] + 2
            grown_h = np.empty(capacity, dtype=np.uint64)
            grown_h[:n] = hashes[:n]
            hashes = grown_h
            grown_at = np.zeros(capacity + 1, dtype=np.int64)
            grown_at[:n + 1] = at[:n + 1]
            at = grown_at
        if at[n] + length > chars.shape[0]:
            grown_c = np.empty(2 * (chars.shape[0] + length), dtype=np.uint32)
            grown_c[:at[n]] = chars[:at[n]]
            chars = grown_c
        hashes[n] = h
        for k in range(length):
            chars[at[n] + k] = cps[starts[s] + k]
        at[n + 1] = at[n] + length
        table[slot] = n
        ids[s] = n
        n += 1
        if 2 * n > size:
            size *= 2
            table = np.full(size, -1, dtype=np.int64)
            for e in range(n):
                slot = np.int64(hashes[e] & np.uint64(size - 1))
                while table[slot] >= 0:
                    slot = (slot + 1) & (size - 1)
                table[slot] = e
    return ids, n, table, hashes, chars, at


@njit(cache=True, nogil=True)
def lower_code_points(cps, lower_from, lower_to):  # noqa: ANN001, ANN201
    """Lowercase ``cps`` in place: ASCII A-Z, and each code point of ``lower_from`` (sorted,
    outside ASCII) to the one of ``lower_to`` at the same place (the caller gives only
    characters whose lowercase is one character and does not depend on the context)."""
    k = lower_from.shape[0]
    for i in range(cps.shape[0]):
        c = cps[i]
        if 65 <= c <= 90:
            cps[i] = c + 32
        elif c >= 128 and k:
            j = np.searchsorted(lower_from, c)
            if j < k and lower_from[j] == c:
                cps[i] = lower_to[j]


@njit(cache=True, nogil=True)
def head_token_counts(seg_starts, seg_ends, owner, ids, indptr, text_starts, cuts):  # noqa: ANN001, ANN201
    """Per text, the token count of its head: of the segments (``owner``: text of each; their
    token counts ``indptr[id + 1] - indptr[id]``) that end at or before its cut, at
    ``text_starts[t] + cuts[t]`` (:func:`head_cuts`); all its tokens when ``cuts[t]`` is -1.
    -1 when the text must be read by the regex: ``cuts[t]`` < -1, or a segment runs across the
    cut (so its characters before the cut may make other tokens alone)."""
    n_texts = text_starts.shape[0]
    out = np.zeros(n_texts, dtype=np.int64)
    for s in range(ids.shape[0]):
        t = owner[s]
        cut = cuts[t]
        if cut < -1 or out[t] < 0:
            out[t] = -1
            continue
        d = ids[s]
        if cut == -1 or seg_ends[s] <= text_starts[t] + cut:
            out[t] += indptr[d + 1] - indptr[d]
        elif seg_starts[s] <= text_starts[t] + cut:
            out[t] = -1
    for t in range(n_texts):
        if cuts[t] < -1:
            out[t] = -1
    return out


@njit(cache=True, nogil=True)
def gather_ids(ids, texts, n_texts, indptr, exact, stem):  # noqa: ANN001, ANN201
    """Every segment's term ids (``exact`` and ``stem``, CSR ``indptr`` over the distinct
    segments) in segment order, and each text's token count: the texts' forward indexes."""
    total = 0
    for s in range(ids.shape[0]):
        total += indptr[ids[s] + 1] - indptr[ids[s]]
    out = np.empty(total, dtype=np.int32)
    out_stem = np.empty(total, dtype=np.int32)
    counts = np.zeros(n_texts, dtype=np.int64)
    k = 0
    for s in range(ids.shape[0]):
        d = ids[s]
        for p in range(indptr[d], indptr[d + 1]):
            out[k] = exact[p]
            out_stem[k] = stem[p]
            k += 1
        counts[texts[s]] += indptr[d + 1] - indptr[d]
    return out, out_stem, counts


@njit(cache=True, nogil=True)
def head_cuts(cps, n_texts):  # noqa: ANN001, ANN201
    """Per NUL-separated text of ``cps``: its start, and where
    :data:`ranking.title_text.HEAD_CUT` first matches in it (relative to the start), -1 if
    nowhere, -2 if the text has a non-ASCII character (the caller reads those with the regex:
    its case-insensitive and digit classes are Unicode's). The alternatives, at each position
    from the left: ``,``, ``(``, `` - ``, a space then with/for/by/and/or (any case) then a
    space, and `` in `` (any case) unless the space follows a digit."""
    starts = np.empty(n_texts, dtype=np.int64)
    cuts = np.full(n_texts, -1, dtype=np.int64)
    t, start = 0, 0
    ascii_only = True
    for i in range(cps.shape[0]):
        if cps[i] == 0:
            starts[t] = start
            if not ascii_only:
                cuts[t] = -2
            t += 1
            start, ascii_only = i + 1, True
        elif cps[i] >= 128:
            ascii_only = False
    for t in range(n_texts):
        start = starts[t]
        end = start
        while cps[end] != 0:
            end += 1
        if cuts[t] == -2:
            continue
        for p in range(start, end):
            c = cps[p]
            if c == 44 or c == 40:
                cuts[t] = p - start
                break
            if c != 32:
                continue
            if p + 2 < end and cps[p + 1] == 45 and cps[p + 2] == 32:
                cuts[t] = p - start
                break
            if (_word_at(cps, p + 1, end, _WITH) or _word_at(cps, p + 1, end, _FOR)
                    or _word_at(cps, p + 1, end, _BY) or _word_at(cps, p + 1, end, _AND)
                    or _word_at(cps, p + 1, end, _OR)):
                cuts[t] = p - start
                break
            if _word_at(cps, p + 1, end, _IN) and not (p > start and 48 <= cps[p - 1] <= 57):
                cuts[t] = p - start
                break
    return starts, cuts


@njit(cache=True, nogil=True)
def _word_at(cps, p, end, word):  # noqa: ANN001, ANN202
    """Whether ``word`` (code points of lowercase ASCII letters), in any case, then a space
    start at ``p``."""
    n = len(word)
    if p + n >= end:
        return False
    for k in range(n):
        c = cps[p + k]
        if 65 <= c <= 90:
            c += 32
        if c != word[k]:
            return False
    return cps[p + n] == 32


@njit(cache=True, nogil=True)
def place_field(out, before, ids, indptr):  # noqa: ANN001, ANN201
    """Copy each document's ids (``ids[indptr[d]:indptr[d + 1]]``) to ``out`` at
    ``before[d]``, and move ``before[d]`` past them: one field of a concatenation of fields,
    document by document."""
    for d in range(indptr.shape[0] - 1):
        at = before[d]
        for p in range(indptr[d], indptr[d + 1]):
            out[at] = ids[p]
            at += 1
        before[d] = at
