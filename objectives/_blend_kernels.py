"""Numba kernels of the blend and its guardrails; the one place the blend rule is explained.

A candidate's score is ``z(relevance) + sum_t w_t * term_t[product]`` (:func:`blend_items`):
relevance z-scored over the query's items, so that a weight is measured against relevance in
standard deviations whatever the scale of the model's scores, plus each business term times its
weight. The weights are those resolved for the customer's segment, the product's category rule
and the customer's experiment arm (precedence: :meth:`objectives.config.WeightsConfig.resolved`),
compiled into a table by :class:`objectives.plan.Plan`. The guardrails then order the items
(:func:`rank_items`): ranked, then demoted (out of stock), then buried; with relevance tiers the
score only reorders within a tier; with business slots it only chooses which products take the
first places (:func:`business_slots`). Partial top-k, and per-term contributions that sum to
the score. Pins, which belong to a query's text, are placed by the serving wrapper. Pure
functions over arrays.

One per-query ordering, :func:`rank_items`, written once, serves both callers, both driven by
one compiled :class:`objectives.plan.Plan`:

- :func:`blend_topk` ranks one query's retrieved candidates as the ranker serves them (the
  documented wrapper in front: :func:`ranking.core.blend`);
- :func:`pool_scores` and :func:`pool_orders` rank many judged pools at once, each in full, as
  the tuner, the evaluation and the quality benchmark measure them (the wrapper:
  :class:`objectives.groups.QueryGroups`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from objectives._topk_kernels import topk_select

#: Primary-key penalty per sink level: it sinks demoted items below every relevance tier of
#: ranked items, and buried items (twice as much) below the demoted ones: last.
DEMOTED = np.int64(1) << np.int64(40)


@njit(cache=True)
def zscore(relevance):  # noqa: ANN001, ANN201 - numba kernel
    """Relevance z-scored over the items given (population sd); all 0 when the sd is below
    1e-12, e.g. a single item or equal scores."""
    n = relevance.shape[0]
    mean = 0.0
    for i in range(n):
        mean += relevance[i]
    mean = mean / n if n > 0 else 0.0
    var = 0.0
    for i in range(n):
        var += (relevance[i] - mean) ** 2
    sd = np.sqrt(var / n) if n > 0 else 0.0
    z = np.zeros(n, dtype=np.float64)
    if sd > 1e-12:
        for i in range(n):
            z[i] = (relevance[i] - mean) / sd
    return z


@njit(cache=True)
def blend_items(z, at, rule, terms, rule_weights, score, contrib):  # noqa: ANN001, ANN201
    """Write ``score[i] = z[i] + sum_t rule_weights[rule[i], t] * terms[at[i], t]``: item i has
    the terms of row ``at[i]`` and the weights of rule row ``rule[i]``. When ``contrib`` has
    rows, also write its (n, 1 + n_terms) parts: column 0 the relevance, then each term's."""
    parts = contrib.shape[0] > 0
    n_terms = terms.shape[1]
    for i in range(z.shape[0]):
        total = z[i]
        if parts:
            contrib[i, 0] = z[i]
        for t in range(n_terms):
            part = rule_weights[rule[i], t] * terms[at[i], t]
            if parts:
                contrib[i, 1 + t] = part
            total += part
        score[i] = total


@njit(cache=True)
def rank_items(score, z, sink, keep, tier_width, slots, k):  # noqa: ANN001, ANN201
    """Positions of the best ``k`` items with ``keep`` set, best first.

    The order: lower ``sink`` level first (0 ranked, 1 demoted out of stock, 2 buried), then,
    with ``tier_width > 0``, higher relevance tier ``floor(z / tier_width)``, then higher
    ``score``, ties by position. With ``slots > 0`` the score only chooses which items take
    the first ``slots`` places (:func:`business_slots`).
    """
    n = score.shape[0]
    primary = np.zeros(n, dtype=np.int64)
    for i in range(n):
        if tier_width > 0:
            primary[i] = np.int64(np.floor(z[i] / tier_width))
        primary[i] -= np.int64(sink[i]) * DEMOTED
    positions = np.flatnonzero(keep)
    if slots > 0:
        return business_slots(positions, primary, score, z, slots, k)
    return positions[topk_select(primary[positions], score[positions], positions, k)]


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


@njit(cache=True)
def blend_topk(relevance, cand, terms, product_rule, rule_weights, sink, hidden, tier_width,  # noqa: ANN001, ANN201, E501
               slots, k):
    """Rank one query's candidates ``cand`` (product rows) and keep the top ``k``.

    The blend of the module docstring, relevance z-scored over all candidates; ``sink`` and
    ``hidden`` are per product (a hidden product is dropped). Returns the chosen candidate
    positions (best first), their scores, and contributions (k, 1 + n_terms): column 0 is the
    relevance part, the rest each term's part; each row sums to the score.
    """
    n = cand.shape[0]
    z = zscore(relevance)
    rule = np.empty(n, dtype=np.int64)
    item_sink = np.empty(n, dtype=np.int64)
    keep = np.empty(n, dtype=np.bool_)
    for i in range(n):
        p = cand[i]
        rule[i] = product_rule[p]
        item_sink[i] = sink[p]
        keep[i] = not hidden[p]
    score = np.empty(n, dtype=np.float64)
    contrib = np.empty((n, 1 + terms.shape[1]), dtype=np.float64)
    blend_items(z, cand, rule, terms, rule_weights, score, contrib)
    best = rank_items(score, z, item_sink, keep, tier_width, slots, k)
    return best, score[best], contrib[best]


@njit(cache=True)
def pool_z(qptr, relevance):  # noqa: ANN001, ANN201
    """:func:`zscore` of every query's rows ``qptr[q]:qptr[q+1]``."""
    z = np.empty(relevance.shape[0], dtype=np.float64)
    for q in range(qptr.shape[0] - 1):
        a, b = qptr[q], qptr[q + 1]
        z[a:b] = zscore(relevance[a:b])
    return z


@njit(cache=True)
def pool_scores(qptr, relevance, terms, rule, rule_weights):  # noqa: ANN001, ANN201
    """The blended score of every row, each query's relevance z-scored over its own rows:
    :func:`blend_items` with row i's terms ``terms[i]`` and weights ``rule_weights[rule[i]]``."""
    n = relevance.shape[0]
    score = np.empty(n, dtype=np.float64)
    rows = np.arange(n)
    no_parts = np.empty((0, 1 + terms.shape[1]), dtype=np.float64)
    for q in range(qptr.shape[0] - 1):
        a, b = qptr[q], qptr[q + 1]
        blend_items(zscore(relevance[a:b]), rows[a:b], rule[a:b], terms, rule_weights,
                    score[a:b], no_parts)
    return score


@njit(cache=True)
def pool_orders(qptr, relevance, score, sink, tier_width, slots):  # noqa: ANN001, ANN201
    """Every query's rows in full, best first, by :func:`rank_items` (nothing hidden; ``sink``
    per row; tiers and slots from each query's own z-scored relevance). Returns the row
    numbers, query after query: ``out[qptr[q]:qptr[q+1]]`` is query q's order."""
    out = np.empty(relevance.shape[0], dtype=np.int64)
    for q in range(qptr.shape[0] - 1):
        a, b = qptr[q], qptr[q + 1]
        keep = np.ones(b - a, dtype=np.bool_)
        out[a:b] = a + rank_items(score[a:b], zscore(relevance[a:b]), sink[a:b], keep,
                                  tier_width, slots, b - a)
    return out
