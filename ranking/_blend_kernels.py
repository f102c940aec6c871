"""Numba kernel of the blend core: z-scored relevance + weighted business terms, guardrails,
partial top-k and per-term contributions. Pure function over arrays; :mod:`ranking.core` is
the documented wrapper in front.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ranking._topk_kernels import topk_select

OOS_DEMOTE, OOS_HIDE, OOS_IGNORE = 0, 1, 2
#: Primary-key penalty that sinks demoted items below every tier of normal items; buried items
#: get twice as much, so they come after the demoted ones: last.
DEMOTED = np.int64(1) << np.int64(40)


@njit(cache=True)
def blend_topk(relevance, cand, terms, weights, in_stock, buried, oos_policy, tier_width, block, k):  # noqa: ANN001, ANN201, E501
    """Rank candidates ``cand`` (product rows) by z(relevance) + sum_k weights[row, k] * terms.

    ``weights`` is (n_candidates, n_terms): the weights already resolved for each candidate's
    segment, category and arm. Out-of-stock items are demoted below all others, hidden, or
    left alone by ``oos_policy``; buried items always sink to the end, below demoted ones.
    With ``tier_width > 0`` business terms only reorder within relevance tiers
    ``floor(z / tier_width)``. With ``block > 0`` the blended order is cut into blocks of
    ``block`` places and each block is shown in relevance order (:func:`order_blocks`). Returns
    the
    chosen candidate positions (best first), their scores, and contributions (k, 1 + n_terms):
    column 0 is the relevance part, the rest each term's part; each row sums to the score.
    """
    n = cand.shape[0]
    n_terms = terms.shape[1]
    mean = 0.0
    for i in range(n):
        mean += relevance[i]
    mean = mean / n if n > 0 else 0.0
    var = 0.0
    for i in range(n):
        var += (relevance[i] - mean) ** 2
    sd = np.sqrt(var / n) if n > 0 else 0.0
    contrib = np.zeros((n, 1 + n_terms), dtype=np.float64)
    score = np.zeros(n, dtype=np.float64)
    primary = np.zeros(n, dtype=np.int64)
    keep = np.ones(n, dtype=np.bool_)
    for i in range(n):
        p = cand[i]
        z = (relevance[i] - mean) / sd if sd > 1e-12 else 0.0
        contrib[i, 0] = z
        total = z
        for t in range(n_terms):
            part = weights[i, t] * terms[p, t]
            contrib[i, 1 + t] = part
            total += part
        score[i] = total
        if tier_width > 0:
            primary[i] = np.int64(np.floor(z / tier_width))
        if buried[p]:
            primary[i] -= 2 * DEMOTED
        elif oos_policy == OOS_DEMOTE and not in_stock[p]:
            primary[i] -= DEMOTED
        if oos_policy == OOS_HIDE and not in_stock[p]:
            keep[i] = False
    positions = np.flatnonzero(keep)
    order = np.arange(n)
    # A partly shown last block still needs all its members to pick the most relevant ones.
    depth = -(-k // block) * block if block > 0 else k
    best_local = topk_select(primary[positions], score[positions], order[positions], depth)
    best = positions[best_local]
    if block > 0:
        best = order_blocks(best, primary, contrib[:, 0], block)[:k]
    return best, score[best], contrib[best]


@njit(cache=True)
def order_blocks(ranked, primary, z, block):  # noqa: ANN001, ANN201
    """``ranked`` (positions, best first) with each run of ``block`` places re-sorted by
    (primary key, relevance z) descending, ties by position: the blend picks a block's members,
    relevance orders them. Demoted and buried items keep sinking within their block."""
    out = ranked.copy()
    for start in range(0, out.shape[0], block):
        stop = min(start + block, out.shape[0])
        for i in range(start + 1, stop):  # insertion sort: blocks are a handful of places
            item = out[i]
            j = i - 1
            while j >= start and _before(item, out[j], primary, z):
                out[j + 1] = out[j]
                j -= 1
            out[j + 1] = item
    return out


@njit(cache=True)
def _before(a, b, primary, z):  # noqa: ANN001, ANN202
    """Whether position ``a`` comes before ``b`` inside a block."""
    if primary[a] != primary[b]:
        return primary[a] > primary[b]
    if z[a] != z[b]:
        return z[a] > z[b]
    return a < b
