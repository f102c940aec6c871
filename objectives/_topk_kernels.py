"""Numba kernels: partial top-k selection with a deterministic order.

Pure functions over arrays, shared by BM25 retrieval (:mod:`ranking._bm25_kernels`) and the
blend and order kernels (:mod:`objectives._blend_kernels`); they live in ``objectives`` because
``ranking`` may import ``objectives`` and not the other way round. ``topk_select`` orders
by ``primary`` descending, then ``secondary`` descending, then ``tiebreak`` ascending (a document
or candidate index), so ties always break by index and results are reproducible;
``heap_offer`` keeps the best (score, doc) pairs of a stream in the same order.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _better(primary, secondary, tiebreak, i, j):  # noqa: ANN001, ANN202 - numba kernel
    if primary[i] != primary[j]:
        return primary[i] > primary[j]
    if secondary[i] != secondary[j]:
        return secondary[i] > secondary[j]
    return tiebreak[i] < tiebreak[j]


@njit(cache=True)
def _sift_down(heap, size, pos, primary, secondary, tiebreak):  # noqa: ANN001, ANN202
    # Min-heap on "better": the root is the worst of the kept items.
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        worst = left
        right = left + 1
        if right < size and _better(primary, secondary, tiebreak, heap[worst], heap[right]):
            worst = right
        if _better(primary, secondary, tiebreak, heap[pos], heap[worst]):
            heap[pos], heap[worst] = heap[worst], heap[pos]
            pos = worst
        else:
            return


@njit(cache=True)
def topk_select(primary, secondary, tiebreak, k):  # noqa: ANN001, ANN201
    """Positions of the best ``k`` items, best first (all three arrays have one row per item).

    O(n log k): a bounded min-heap, then a heapsort of the k survivors (the worst is moved
    behind the others k times), so a large k costs k log k, not the k^2 of an insertion sort.
    """
    n = primary.shape[0]
    size = min(k, n)
    heap = np.empty(size, dtype=np.int64)
    if size == 0:
        return heap
    for t in range(size):
        heap[t] = t
    for start in range(size // 2 - 1, -1, -1):
        _sift_down(heap, size, start, primary, secondary, tiebreak)
    for t in range(size, n):
        if _better(primary, secondary, tiebreak, t, heap[0]):
            heap[0] = t
            _sift_down(heap, size, 0, primary, secondary, tiebreak)
    for end in range(size - 1, 0, -1):  # heapsort: the worst left goes last, best first
        heap[0], heap[end] = heap[end], heap[0]
        _sift_down(heap, end, 0, primary, secondary, tiebreak)
    return heap


@njit(cache=True, inline="always")
def _worse(scores, docs, i, j):  # noqa: ANN001, ANN202
    """Is held item i ranked below held item j (lower score, or equal score and later doc)?"""
    if scores[i] != scores[j]:
        return scores[i] < scores[j]
    return docs[i] > docs[j]


@njit(cache=True)
def heap_offer(docs, scores, size, doc, score):  # noqa: ANN001, ANN201
    """Offer ``(doc, score)`` to a bounded min-heap of the best items seen (root = the worst
    held, at position 0; capacity ``docs.shape[0]``). Returns the new size.

    Used online, where candidates arrive one at a time and a dense score array is not wanted.
    """
    if size < docs.shape[0]:  # not full: sift the new item up
        pos = size
        docs[pos], scores[pos] = doc, score
        while pos > 0:
            parent = (pos - 1) // 2
            if not _worse(scores, docs, pos, parent):
                break
            docs[pos], docs[parent] = docs[parent], docs[pos]
            scores[pos], scores[parent] = scores[parent], scores[pos]
            pos = parent
        return size + 1
    if score < scores[0] or (score == scores[0] and doc > docs[0]):
        return size  # no better than the worst held
    docs[0], scores[0] = doc, score
    pos = 0
    while True:  # sift the new root down
        worst = pos
        for child in (2 * pos + 1, 2 * pos + 2):
            if child < size and _worse(scores, docs, child, worst):
                worst = child
        if worst == pos:
            return size
        docs[pos], docs[worst] = docs[worst], docs[pos]
        scores[pos], scores[worst] = scores[worst], scores[pos]
        pos = worst


@njit(cache=True)
def heap_sorted(docs, scores, size):  # noqa: ANN001, ANN201
    """The items of a :func:`heap_offer` heap, best first (copies of the first ``size`` slots),
    by heapsort: k log k, where selecting them again would cost a k^2 insertion sort."""
    docs, scores = docs[:size].copy(), scores[:size].copy()
    for end in range(size - 1, 0, -1):
        docs[0], docs[end] = docs[end], docs[0]
        scores[0], scores[end] = scores[end], scores[0]
        pos = 0
        while True:  # sift the new root down within [0, end)
            worst = pos
            for child in (2 * pos + 1, 2 * pos + 2):
                if child < end and _worse(scores, docs, child, worst):
                    worst = child
            if worst == pos:
                break
            docs[pos], docs[worst] = docs[worst], docs[pos]
            scores[pos], scores[worst] = scores[worst], scores[pos]
            pos = worst
    return docs, scores
