"""Numba kernel: partial top-k selection with a deterministic order.

Pure function over arrays, shared by BM25 retrieval and the blend core. The order is
``primary`` descending, then ``secondary`` descending, then ``tiebreak`` ascending (a document
or candidate index), so ties always break by index and results are reproducible.
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

    O(n log k): a bounded min-heap, then an insertion sort of the k survivors.
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
    for t in range(1, size):  # insertion sort, best first
        item = heap[t]
        u = t - 1
        while u >= 0 and _better(primary, secondary, tiebreak, item, heap[u]):
            heap[u + 1] = heap[u]
            u -= 1
        heap[u + 1] = item
    return heap
