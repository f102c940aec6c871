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
def blend_topk(relevance, cand, terms, weights, in_stock, buried, oos_policy, tier_width, slots, k):  # noqa: ANN001, ANN201, E501
    """Rank candidates ``cand`` (product rows) by z(relevance) + sum_k weights[row, k] * terms.

    ``weights`` is (n_candidates, n_terms): the weights already resolved for each candidate's
    segment, category and arm. Out-of-stock items are demoted below all others, hidden, or
    left alone by ``oos_policy``; buried items always sink to the end, below demoted ones.
    With ``tier_width > 0`` business terms only reorder within relevance tiers
    ``floor(z / tier_width)``. With ``slots > 0`` the blended score only chooses which items
    take the first ``slots`` places; those places, and all after them, are in relevance order
    (:func:`business_slots`). Returns the chosen candidate positions (best first), their
    scores, and contributions (k, 1 + n_terms): column 0 is the relevance part, the rest each
    term's part; each row sums to the score.
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
    if slots > 0:
        best = business_slots(positions, primary, score, contrib[:, 0], slots, k)
    else:
        best = positions[topk_select(primary[positions], score[positions], positions, k)]
    return best, score[best], contrib[best]


@njit(cache=True)
def business_slots(positions, primary, score, z, slots, k):  # noqa: ANN001, ANN201
    """The best ``k`` of ``positions`` when the blend only picks the first ``slots`` places.

    The ``slots`` items the blended ``score`` ranks highest take the first places, in
    (primary key, relevance ``z``) order; every other item follows in the same order. So the
    business terms decide which products appear at the top, never the order among products
    shown, and below the slots the list is the relevance order: a cut-off metric at ``slots``
    (margin@3 for 3 slots) gets the business value, NDCG at and beyond it pays only for the
    products swapped in. Demoted and buried items keep sinking within both parts.
    """
    top = positions[topk_select(primary[positions], score[positions], positions, slots)]
    chosen = np.zeros(z.shape[0], dtype=np.bool_)
    chosen[top] = True
    rest = positions[~chosen[positions]]
    head = top[topk_select(primary[top], z[top], top, top.shape[0])]
    tail = rest[topk_select(primary[rest], z[rest], rest, max(k - head.shape[0], 0))]
    return np.concatenate((head, tail))[:k]
