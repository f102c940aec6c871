"""Numba kernels of the near-duplicate title check: character shingles, MinHash, LSH pairs
and exact Jaccard. Pure functions over arrays; :mod:`objectives.audit_duplicates` is the typed
front.

Titles arrive as one UTF-8 byte buffer with offsets (``buf[start[i]:start[i + 1]]`` is title
i, already normalized). A shingle is ``width`` consecutive bytes, hashed with FNV-1a (64 bit).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)


@njit(cache=True)
def shingle_counts(start, width):  # noqa: ANN001, ANN201 - numba kernel
    """Shingles per title: ``len - width + 1``, or 1 for a title shorter than ``width``."""
    n = start.size - 1
    counts = np.empty(n, np.int64)
    for i in range(n):
        length = start[i + 1] - start[i]
        counts[i] = max(length - width + 1, 1) if length > 0 else 0
    return counts


@njit(cache=True)
def shingle_hashes(buf, start, ptr, width):  # noqa: ANN001, ANN201 - numba kernel
    """FNV-1a hash of every shingle of every title, each title's run sorted ascending."""
    out = np.empty(ptr[-1], np.uint64)
    for i in range(start.size - 1):
        lo, hi = start[i], start[i + 1]
        at = ptr[i]
        stop = max(hi - width + 1, lo + 1) if hi > lo else lo
        for s in range(lo, stop):
            h = _FNV_OFFSET
            for j in range(s, min(s + width, hi)):
                h = (h ^ np.uint64(buf[j])) * _FNV_PRIME
            out[at] = h
            at += 1
        out[ptr[i]:ptr[i + 1]].sort()
    return out


@njit(cache=True, inline="always")
def _mix(x):  # noqa: ANN001, ANN202 - splitmix64 finalizer
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def minhash(ptr, hashes, seeds):  # noqa: ANN001, ANN201 - numba kernel
    """(n, len(seeds)) MinHash signature: per seed, the minimum of mix(shingle ^ seed)."""
    n, m = ptr.size - 1, seeds.size
    sig = np.full((n, m), np.uint64(0xFFFFFFFFFFFFFFFF))
    for i in range(n):
        for s in range(ptr[i], ptr[i + 1]):
            x = hashes[s]
            for k in range(m):
                v = _mix(x ^ seeds[k])
                if v < sig[i, k]:
                    sig[i, k] = v
    return sig


@njit(cache=True)
def band_keys(sig, group, bands, rows):  # noqa: ANN001, ANN201 - numba kernel
    """(bands, n) bucket key of each title in each band: its band of the signature and its
    group (category code) hashed together, so only titles of one category share a bucket."""
    n = sig.shape[0]
    keys = np.empty((bands, n), np.uint64)
    for b in range(bands):
        for i in range(n):
            h = _mix(np.uint64(group[i]) + np.uint64(b) * np.uint64(0x9E3779B97F4A7C15))
            for r in range(b * rows, (b + 1) * rows):
                h = _mix(h ^ sig[i, r])
            keys[b, i] = h
    return keys


@njit(cache=True)
def bucket_pairs(order, bounds, max_bucket):  # noqa: ANN001, ANN201 - numba kernel
    """Candidate pairs (left < right) from buckets ``order[bounds[i]:bounds[i + 1]]``. A bucket
    larger than ``max_bucket`` gives only pairs of neighbours in it (a chain), not all pairs."""
    total = 0
    for g in range(bounds.size - 1):
        size = bounds[g + 1] - bounds[g]
        total += size * (size - 1) // 2 if size <= max_bucket else size - 1
    left = np.empty(total, np.int64)
    right = np.empty(total, np.int64)
    at = 0
    for g in range(bounds.size - 1):
        i, j = bounds[g], bounds[g + 1]
        for a in range(i, j):
            last = j if j - i <= max_bucket else min(a + 2, j)
            for b in range(a + 1, last):
                x, y = order[a], order[b]
                left[at] = min(x, y)
                right[at] = max(x, y)
                at += 1
    return left, right


@njit(cache=True)
def jaccard(ptr, hashes, left, right):  # noqa: ANN001, ANN201 - numba kernel
    """Exact Jaccard similarity of the shingle sets of each (left, right) pair (sorted runs;
    repeated shingles count once)."""
    out = np.empty(left.size, np.float64)
    for p in range(left.size):
        a, a_end = ptr[left[p]], ptr[left[p] + 1]
        b, b_end = ptr[right[p]], ptr[right[p] + 1]
        inter = 0
        union = 0
        while a < a_end or b < b_end:
            if b >= b_end or (a < a_end and hashes[a] < hashes[b]):
                v = hashes[a]
            elif a >= a_end or hashes[b] < hashes[a]:
                v = hashes[b]
            else:
                v = hashes[a]
                inter += 1
            union += 1
            while a < a_end and hashes[a] == v:
                a += 1
            while b < b_end and hashes[b] == v:
                b += 1
        out[p] = inter / union if union > 0 else 1.0
    return out
