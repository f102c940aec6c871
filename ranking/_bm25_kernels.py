"""Numba kernels for BM25: building postings, retrieval over them, and scoring given candidates.

Pure functions over CSR arrays; :mod:`ranking.bm25` is the documented wrapper in front (it also
allocates every array these kernels fill, so that a build's memory shows up in tracemalloc).
Scoring computes, for every query term occurrence t (repeats count each time, as rank_bm25 does),
``idf[t] * frac`` with ``frac = tf * (k1 + 1) / (tf + norm[d])`` and
``norm[d] = k1 * (1 - b + b * doc_len / avgdl)``: the same operations in the same order as
rank_bm25, so the float64 results are bit-equal. Retrieval reads each posting's ``frac`` from an
array computed once (:func:`posting_fractions`); candidate scoring computes it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from objectives._topk_kernels import heap_offer, heap_sorted

# Pruning compares bounds summed in another order than the exact score; this relative slack
# keeps rounding from ever pruning a document that belongs in the top k.
_SLACK = 1.0 + 1e-9

#: :func:`search_exhaustive` lists the documents it touches when the postings are fewer than
#: the documents divided by this, and otherwise passes over every slot.
_SPARSE = 16
#: Postings per block of :func:`block_max_fractions`.
BLOCK = 64
#: Up to this k, the touched documents of a sparse query are offered to a heap; above it
#: (the serving path asks for 200 candidates) :func:`_take_top` partitions them instead.
_HEAP_K = 32


@njit(cache=True, inline="always")
def _frac(tf, norm, k1):  # noqa: ANN001, ANN202
    return tf * (k1 + 1.0) / (tf + norm)


@njit(cache=True, nogil=True)
def count_postings(doc_indptr, doc_terms, df, last_doc, first_seen):  # noqa: ANN001, ANN201
    """Fill ``df`` (documents per term) and ``first_seen`` (the field's terms in the order they
    first occur); return the largest term frequency and the number of distinct terms.

    ``last_doc`` (one int per term, filled with -1) is scratch: the last document that counted
    each term, so a document counts a term once however often it repeats it."""
    run = np.zeros(df.shape[0], dtype=np.int64)  # tf of each term in the current document
    max_tf = 0
    n_seen = 0
    for d in range(doc_indptr.shape[0] - 1):
        for p in range(doc_indptr[d], doc_indptr[d + 1]):
            t = doc_terms[p]
            if last_doc[t] != d:
                if last_doc[t] < 0:
                    first_seen[n_seen] = t
                    n_seen += 1
                last_doc[t] = d
                df[t] += 1
                run[t] = 0
            run[t] += 1
            if run[t] > max_tf:
                max_tf = run[t]
    return max_tf, n_seen


@njit(cache=True, nogil=True)
def fill_postings(doc_indptr, doc_terms, next_slot, last_doc, post_docs, post_tf):  # noqa: ANN001, ANN201, E501
    """Counting sort of (term, doc) into CSR postings, doc ids ascending within each term.

    ``next_slot`` starts as each term's first posting position; ``last_doc`` as -1."""
    for d in range(doc_indptr.shape[0] - 1):
        for p in range(doc_indptr[d], doc_indptr[d + 1]):
            t = doc_terms[p]
            if last_doc[t] != d:
                last_doc[t] = d
                post_docs[next_slot[t]] = d
                post_tf[next_slot[t]] = 1
                next_slot[t] += 1
            else:
                post_tf[next_slot[t] - 1] += 1


@njit(cache=True)
def posting_fractions(post_docs, post_tf, norm, k1, out):  # noqa: ANN001, ANN201
    """``out[p]``: the length-normalized tf part ``tf (k1 + 1) / (tf + norm)`` of posting p, the
    same float64 a query would compute, computed once so that queries only multiply and add
    (the division is most of a posting's cost)."""
    for p in range(post_docs.shape[0]):
        out[p] = _frac(post_tf[p], norm[post_docs[p]], k1)


@njit(cache=True)
def block_max_fractions(post_indptr, frac, block_indptr, block_max):  # noqa: ANN001, ANN201
    """``block_max[block_indptr[t] + j]``: the largest ``frac`` among postings
    ``j * BLOCK .. (j + 1) * BLOCK - 1`` of term t. Times the term's IDF, it bounds what the
    term adds to any document of that block, so a search can skip whole blocks."""
    for t in range(post_indptr.shape[0] - 1):
        start = post_indptr[t]
        for p in range(start, post_indptr[t + 1]):
            j = block_indptr[t] + (p - start) // BLOCK
            if frac[p] > block_max[j]:
                block_max[j] = frac[p]


@njit(cache=True)
def score_all(query, post_indptr, post_docs, frac, idf, n_docs):  # noqa: ANN001, ANN201
    """Dense scores of every document, walking only the postings of the query terms in query
    order; unknown terms (id < 0) are skipped."""
    scores = np.zeros(n_docs, dtype=np.float64)
    for qi in range(query.shape[0]):
        t = query[qi]
        if t < 0:
            continue
        w = idf[t]
        for p in range(post_indptr[t], post_indptr[t + 1]):
            d = post_docs[p]
            scores[d] += w * frac[p]
    return scores


@njit(cache=True)
def query_postings(query, post_indptr, idf):  # noqa: ANN001, ANN201
    """(known query terms, their postings, the least IDF among them, the largest term id):
    what :meth:`ranking.bm25.FieldIndex.search` checks and chooses its kernel by, in one call
    rather than several numpy ones (which cost more than a small query's search). A term id
    beyond the vocabulary stops it before any array is read with it (all zeros but that id).
    """
    n_known, postings, least, top = 0, 0, np.inf, -1
    for qi in range(query.shape[0]):
        top = max(top, query[qi])
    if top >= idf.shape[0]:
        return 0, 0, 0.0, top
    for qi in range(query.shape[0]):
        t = query[qi]
        if t >= 0:
            n_known += 1
            postings += post_indptr[t + 1] - post_indptr[t]
            least = min(least, idf[t])
    return n_known, postings, least, top


@njit(cache=True)
def search_exhaustive(query, post_indptr, post_docs, frac, idf, scratch, k):  # noqa: ANN001, ANN201
    """Top-``k`` (doc ids, scores) among documents containing a query term, by scoring them all
    term at a time (as :func:`score_all`) and keeping the best k in a bounded heap.

    ``scratch`` is one float64 per document, all NaN ("no query term") on entry and again on
    return: a document's first term sets its slot (0 + x is x, so the sums are rank_bm25's:
    the same additions in the same order). When the postings are few against the catalog, the
    touched documents are listed as they come, and only they are offered to the heap and
    reset: a query costs what its postings cost, whatever the catalog's size. Otherwise one
    sequential pass over the slots offers and resets them (cheaper than random access to a
    list as long as most documents are touched). Nothing is allocated or filled per
    document."""
    n_docs = scratch.shape[0]
    n_postings = 0
    for qi in range(query.shape[0]):
        if query[qi] >= 0:
            n_postings += post_indptr[query[qi] + 1] - post_indptr[query[qi]]
    # A listed document costs a random access or two, a slot of the pass a sequential one:
    # measured at 1M documents, the list wins well below a quarter of the catalog.
    sparse = _SPARSE * n_postings < n_docs
    touched = np.empty(n_postings if sparse else 0, dtype=np.int32)
    n_touched = 0
    for qi in range(query.shape[0]):
        t = query[qi]
        if t < 0:
            continue
        w = idf[t]
        for p in range(post_indptr[t], post_indptr[t + 1]):
            d = post_docs[p]
            x = w * frac[p]
            if not np.isnan(scratch[d]):
                scratch[d] += x
            else:
                scratch[d] = x
                if sparse:
                    touched[n_touched] = d
                    n_touched += 1
    heap_docs = np.empty(k, dtype=np.int64)
    heap_scores = np.empty(k, dtype=np.float64)
    size = 0
    for i in range(n_touched if sparse else n_docs):
        d = touched[i] if sparse else i
        x = scratch[d]
        if np.isnan(x):
            continue
        scratch[d] = np.nan
        if size < k or x >= heap_scores[0]:
            size = heap_offer(heap_docs, heap_scores, size, d, x)  # the test: its fast path
    return _best_first(heap_docs, heap_scores, size)


@njit(cache=True)
def _runs(query):  # noqa: ANN001, ANN202
    """The known terms of ``query`` as runs: (term ids, times repeated in a row). Unknown
    terms (id < 0) add nothing, so they do not break a run."""
    terms = np.empty(query.shape[0], dtype=np.int64)
    reps = np.zeros(query.shape[0], dtype=np.int64)
    m = 0
    for qi in range(query.shape[0]):
        t = query[qi]
        if t < 0:
            continue
        if m == 0 or terms[m - 1] != t:
            terms[m] = t
            m += 1
        reps[m - 1] += 1
    return terms[:m], reps[:m]


@njit(cache=True, inline="always")
def _add_run(zeros, post_docs, frac, lo, hi, w, reps, first):  # noqa: ANN001, ANN202
    """Add a run of ``reps`` occurrences of one term (postings ``lo:hi``, weight ``w``) to the
    documents' sums: ``reps`` additions each, as rank_bm25 does them, in one pass over the
    postings. The query's first run writes (every sum is still 0, and 0 + x is x)."""
    if reps == 1:
        if first:
            for p in range(lo, hi):
                zeros[post_docs[p]] = w * frac[p]
        else:
            for p in range(lo, hi):
                zeros[post_docs[p]] += w * frac[p]
        return
    for p in range(lo, hi):
        d = post_docs[p]
        x = 0.0 if first else zeros[d]
        v = w * frac[p]
        for _ in range(reps):
            x += v
        zeros[d] = x


@njit(cache=True)
def search_accumulate(query, post_indptr, post_docs, frac, idf, zeros, k):  # noqa: ANN001, ANN201
    """:func:`search_exhaustive` for queries whose known terms all have an IDF > 0, on an
    accumulator ``zeros`` that is all 0.0 on entry and again on return.

    With every term weight and every ``frac`` positive, a document scores above 0 exactly when
    it contains a query term, so 0 marks "untouched" and the postings loop is a bare
    ``zeros[d] += w * frac[p]`` (0 + x is x: the sums are rank_bm25's, in query order), with
    no test per posting; a term repeated in a row is added as often in one pass over its
    postings (:func:`_add_run`). The sparse case lists documents as they first leave 0; the
    dense case reads and zeroes every slot in one pass, offering only those above the k-th
    score held (one compare per slot: no NaN test)."""
    n_docs = zeros.shape[0]
    terms, reps = _runs(query)
    n_postings = 0
    for i in range(terms.shape[0]):
        n_postings += post_indptr[terms[i] + 1] - post_indptr[terms[i]]
    if _SPARSE * n_postings < n_docs:
        touched = np.empty(n_postings, dtype=np.int32)
        n_touched = 0
        for i in range(terms.shape[0]):
            t, w, r = terms[i], idf[terms[i]], reps[i]
            for p in range(post_indptr[t], post_indptr[t + 1]):
                d = post_docs[p]
                x = zeros[d]
                if x == 0.0:
                    touched[n_touched] = d
                    n_touched += 1
                v = w * frac[p]
                for _ in range(r):
                    x += v
                zeros[d] = x
        if k > _HEAP_K:
            return _take_top(touched[:n_touched], zeros, k)
        heap_docs = np.empty(k, dtype=np.int64)
        heap_scores = np.empty(k, dtype=np.float64)
        size = 0
        for i in range(n_touched):
            d = touched[i]
            x = zeros[d]
            zeros[d] = 0.0
            if size < k or x >= heap_scores[0]:
                size = heap_offer(heap_docs, heap_scores, size, d, x)
        return _best_first(heap_docs, heap_scores, size)
    for i in range(terms.shape[0]):
        t = terms[i]
        _add_run(zeros, post_docs, frac, post_indptr[t], post_indptr[t + 1], idf[t], reps[i],
                 i == 0)
    heap_docs = np.empty(k, dtype=np.int64)
    heap_scores = np.empty(k, dtype=np.float64)
    size = 0
    floor = 0.0  # a slot must be above this to enter: 0 (untouched), then the k-th score
    for d in range(n_docs):
        x = zeros[d]
        zeros[d] = 0.0
        if x > floor:  # documents come in id order: a tie with the k-th loses
            size = heap_offer(heap_docs, heap_scores, size, d, x)
            if size == k:
                floor = heap_scores[0]
    return _best_first(heap_docs, heap_scores, size)


@njit(cache=True)
def _take_top(docs, zeros, k):  # noqa: ANN001, ANN202
    """The best ``k`` of ``docs`` (distinct) by their score in ``zeros``, best first, ties by
    doc id; their slots are zeroed. The k-th score is found by a partition (linear), and only
    the documents at or above it are sorted: where a heap would take a sift per entering
    document, which costs most of a small query when k is in the hundreds."""
    n = docs.shape[0]
    xs = np.empty(n)
    for i in range(n):
        xs[i] = zeros[docs[i]]
        zeros[docs[i]] = 0.0
    kth = np.partition(xs, n - k)[n - k] if n > k else -np.inf
    keep = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        if xs[i] >= kth:
            keep[m] = i
            m += 1
    keep = keep[:m]
    by_doc = keep[np.argsort(docs[keep])]  # ties in score then keep doc id order
    order = by_doc[np.argsort(-xs[by_doc], kind="mergesort")[:k]]
    return docs[order].astype(np.int64), xs[order]


@njit(cache=True)
def _best_first(heap_docs, heap_scores, size):  # noqa: ANN001, ANN202
    """The held (doc ids, scores), best first, ties by doc id."""
    return heap_sorted(heap_docs, heap_scores, size)


@njit(cache=True, inline="always")
def _seek(post_docs, lo, hi, d):  # noqa: ANN001, ANN202
    """First position in ``post_docs[lo:hi]`` holding a doc id >= d (galloping search)."""
    if lo >= hi or post_docs[lo] >= d:
        return lo
    step = 1
    while lo + step < hi and post_docs[lo + step] < d:
        lo += step
        step *= 2
    hi = min(lo + step, hi)
    while lo + 1 < hi:  # post_docs[lo] < d; answer in (lo, hi]
        mid = (lo + hi) // 2
        if post_docs[mid] < d:
            lo = mid
        else:
            hi = mid
    return hi


@njit(cache=True, inline="always")
def _rest(prefix, i):  # noqa: ANN001, ANN202
    """The most terms ``order[0..i]`` can add together (0 when there are none)."""
    return prefix[i] if i >= 0 else 0.0


@njit(cache=True)
def _skip_to(d, first, order, terms, weight, prefix, cur, end, post_indptr, post_docs,  # noqa: ANN001, ANN202, E501
             block_indptr, block_max, n_docs, theta):
    """The first document that may still beat ``theta``, looking from ``d`` (``d`` itself if
    it may). Up to the nearest end of an essential term's current block or the next document
    of an essential term not at ``d``, each essential term adds at most its block's bound and
    the non-essential terms at most ``prefix[first - 1]``; if that sum cannot reach ``theta``,
    the whole window is skipped."""
    bound = _rest(prefix, first - 1)
    upto = n_docs
    for i in range(first, order.shape[0]):
        s = order[i]
        if cur[s] >= end[s]:
            continue
        if post_docs[cur[s]] > d:
            upto = min(upto, post_docs[cur[s]])
            continue
        start = post_indptr[terms[s]]
        j = (cur[s] - start) // BLOCK
        bound += weight[s] * block_max[block_indptr[terms[s]] + j]
        upto = min(upto, post_docs[min(start + (j + 1) * BLOCK, end[s]) - 1] + 1)
    return upto if bound * _SLACK < theta else d


@njit(cache=True)
def _pass_single(s, t, w, rest, theta, cur, end, post_indptr, frac, block_indptr, block_max):  # noqa: ANN001, ANN202, E501
    """Advance the only essential term's cursor ``cur[s]`` (term ``t``, weight ``w``) to its
    next document that may beat ``theta`` with ``rest`` from the other terms: whole blocks by
    their bound, then posting by posting, with no probing of the other terms on the way."""
    start, p, e = post_indptr[t], cur[s], end[s]
    while p < e:
        j = (p - start) // BLOCK
        block_end = min(start + (j + 1) * BLOCK, e)
        if (w * block_max[block_indptr[t] + j] + rest) * _SLACK < theta:
            p = block_end
            continue
        while p < block_end and (w * frac[p] + rest) * _SLACK < theta:
            p += 1
        if p < block_end:
            break
    cur[s] = p


@njit(cache=True)
def search_maxscore(terms, slots, post_indptr, post_docs, frac, idf, n_docs, block_indptr, block_max, k, budget):  # noqa: ANN001, ANN201, E501
    """Exact top-``k`` (doc ids, scores) by MaxScore (Turtle & Flood, 1995), document at a time.

    ``terms`` are the query's distinct known term ids (all with idf >= 0) and ``slots`` maps
    each known query position, in query order, to its index in ``terms``. Terms are ordered by
    the most they can add (``upper``); once k documents are held, the weakest terms whose
    bounds together cannot beat the k-th score become non-essential: a document is visited only
    if an essential term contains it, and non-essential lists are only probed (galloping) while
    the document can still make it. Every visited document's score is summed in query order,
    exactly as in :func:`score_all`, and documents arrive in id order, so a tie with the k-th
    score loses to the earlier document, as in a stable sort. Runs of documents are skipped
    whole when their block bounds say none can make it (:func:`_skip_to`).

    Returns (doc ids, scores, done). When the bounds are too weak to prune (several terms in
    most documents), visiting documents one by one costs more than scoring term at a time, so
    after ``budget`` visited documents it gives up (done False) and the caller goes exhaustive.
    """
    m = terms.shape[0]
    weight = np.zeros(m)  # idf times how often the query repeats the term
    upper = np.zeros(m)
    for j in range(slots.shape[0]):
        weight[slots[j]] += idf[terms[slots[j]]]
    for s in range(m):
        t = terms[s]
        for j in range(block_indptr[t], block_indptr[t + 1]):  # none if the field lacks t
            upper[s] = max(upper[s], weight[s] * block_max[j])
    order = np.argsort(upper)
    prefix = np.cumsum(upper[order])  # prefix[i]: the most terms order[0..i] can add together
    cur = np.empty(m, dtype=np.int64)
    end = np.empty(m, dtype=np.int64)
    for s in range(m):
        cur[s], end[s] = post_indptr[terms[s]], post_indptr[terms[s] + 1]
    fracs = np.zeros(m)  # each term's frac in the current document (0: absent)
    heap_docs = np.empty(k, dtype=np.int64)
    heap_scores = np.empty(k, dtype=np.float64)
    size = 0
    theta = -np.inf  # the k-th best score once k documents are held
    first = 0  # order[first:] are the essential terms
    while first < m:
        if first == m - 1:  # one essential term: walk its postings in a tight loop
            _pass_single(order[first], terms[order[first]], weight[order[first]],
                         _rest(prefix, first - 1), theta, cur, end, post_indptr, frac,
                         block_indptr, block_max)
        d = n_docs
        for i in range(first, m):
            s = order[i]
            if cur[s] < end[s] and post_docs[cur[s]] < d:
                d = post_docs[cur[s]]
        if d == n_docs:
            break
        upto = d if first == m - 1 else _skip_to(
            d, first, order, terms, weight, prefix, cur, end, post_indptr, post_docs, block_indptr,
            block_max, n_docs, theta)
        if upto > d:
            for i in range(first, m):
                s = order[i]
                cur[s] = _seek(post_docs, cur[s], end[s], upto)
            continue
        budget -= 1
        if budget < 0:
            return heap_docs[:0], heap_scores[:0], False
        partial = 0.0
        for i in range(first, m):
            s = order[i]
            fracs[s] = 0.0
            if cur[s] < end[s] and post_docs[cur[s]] == d:
                fracs[s] = frac[cur[s]]
                partial += weight[s] * fracs[s]
                cur[s] += 1
        i = first - 1  # probe the non-essential terms, strongest first, while d can make it
        pruned = (partial + _rest(prefix, i)) * _SLACK < theta
        while not pruned and i >= 0:
            s = order[i]
            cur[s] = _seek(post_docs, cur[s], end[s], d)
            fracs[s] = 0.0
            if cur[s] < end[s] and post_docs[cur[s]] == d:
                fracs[s] = frac[cur[s]]
                partial += weight[s] * fracs[s]
            i -= 1
            pruned = (partial + _rest(prefix, i)) * _SLACK < theta
        if pruned:
            continue
        score = 0.0
        for j in range(slots.shape[0]):
            s = slots[j]
            if fracs[s] > 0:
                score += idf[terms[s]] * fracs[s]
        if size == k and score < heap_scores[0]:
            continue  # cannot enter (the fast path of heap_offer's own test)
        size = heap_offer(heap_docs, heap_scores, size, d, score)
        if size == k:
            theta = heap_scores[0]
            while first < m and prefix[first] * _SLACK < theta:
                first += 1
    docs, scores = _best_first(heap_docs, heap_scores, size)
    return docs, scores, True


@njit(cache=True)
def score_candidates(query, doc_indptr, doc_terms, idf, norm, k1, docs):  # noqa: ANN001, ANN201
    """BM25 of each doc in ``docs`` from the forward index (doc -> its term ids in order)."""
    out = np.zeros(docs.shape[0], dtype=np.float64)
    for j in range(docs.shape[0]):
        d = docs[j]
        start, end = doc_indptr[d], doc_indptr[d + 1]
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
                acc += idf[t] * _frac(tf, norm[d], k1)
        out[j] = acc
    return out
