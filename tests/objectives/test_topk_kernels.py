"""Top-k kernels: selection and the streaming heap agree with a stable sort, ties included."""

from __future__ import annotations

import numpy as np

from objectives._topk_kernels import heap_offer, heap_sorted, topk_select


def test_topk_select_equals_a_lexicographic_sort_with_ties() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(0, 400))
        primary = rng.integers(0, 3, size=n).astype(np.float64)
        secondary = rng.integers(0, 5, size=n).astype(np.float64)  # many exact ties
        tiebreak = rng.permutation(n).astype(np.int64)
        k = int(rng.integers(0, n + 3))
        expected = np.lexsort((tiebreak, -secondary, -primary))[:k]
        assert topk_select(primary, secondary, tiebreak, k).tolist() == expected.tolist()


def test_heap_offer_then_heap_sorted_keeps_the_best_best_first() -> None:
    rng = np.random.default_rng(12)
    for _ in range(200):
        n = int(rng.integers(0, 600))
        scores = rng.integers(0, 20, size=n).astype(np.float64) / 4  # ties
        docs = rng.permutation(n).astype(np.int64)
        k = int(rng.integers(1, 250))
        heap_docs, heap_scores, size = np.empty(k, np.int64), np.empty(k), 0
        for d, s in zip(docs, scores, strict=True):
            size = heap_offer(heap_docs, heap_scores, size, d, s)
        got_docs, got_scores = heap_sorted(heap_docs, heap_scores, size)
        order = np.lexsort((docs, -scores))[:k]
        assert got_docs.tolist() == docs[order].tolist()
        assert got_scores.tolist() == scores[order].tolist()
