"""Randomized exploration (RandTop-k): a small share of searches shows its top k shuffled.

Clicks on a fixed ranking confound relevance with position. To measure how much a position
is examined, and to evaluate another ranking off-policy, the logging policy must sometimes
put a product somewhere else, with a known probability. A search is picked for exploration
by a hash of its request id and a seed (so a logged search can be replayed exactly), and a
picked search shows its top ``top_k`` unpinned results in a uniformly random order (drawn
from the same hash). Pinned products keep their place.

``propensity`` (written to the impression log, one per shown product) is the logging
policy's marginal probability of *that product at that position* given the deterministic
ranking, over the exploration draw:

    (1 - share) * [deterministic place == shown place] + share / m

for the ``m`` shuffled places (the unpinned places among the first ``top_k``); 1 for a
pinned place within the top ``top_k``; null below it (never randomized, so no estimator may
use it). This is an item-position propensity within the list. The experiment arms are a
separate, customer-level randomization that the readout reads from the config's shares.

The cost is bounded and stated: a shuffle changes DCG linearly (each shuffled product is in
each shuffled place with probability 1/m), so the expected NDCG loss of exploration is
``share`` times the mean loss of a top-k shuffle, which :func:`ndcg_cost` computes exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from objectives.plan import Exploration  # the compiled section this module draws from

#: The largest top_k: the permutation is drawn from one 64-byte hash of the request id.
MAX_TOP_K = 10
#: The largest share of searches that may be shuffled.
MAX_SHARE = 0.5


@dataclass(frozen=True)
class Shuffle:
    """What exploration did to one result list of ``n`` products."""

    order: np.ndarray  # int64 (n,): shown place i holds the deterministic place order[i]
    propensity: np.ndarray  # float64 (n,): item-position propensity; NaN below top_k
    randomized: bool  # the search was picked and had at least two places to shuffle


def _digest(request_id: str, seed: int) -> bytes:
    return hashlib.blake2b(f"{seed}\x1f{request_id}".encode(), digest_size=64).digest()


def picked(request_id: str, exploration: Exploration) -> bool:
    """Whether ``request_id`` is one of the ``share`` of searches that are shuffled."""
    if not exploration.active:
        return False
    u = int.from_bytes(_digest(request_id, exploration.seed)[:8], "big") / 2.0**64
    return u < exploration.share


def _permutation(m: int, digest: bytes) -> list[int]:
    """A uniform permutation of ``range(m)`` (Fisher-Yates, 4 hash bytes per draw)."""
    perm = list(range(m))
    for j in range(m - 1, 0, -1):
        start = 8 + 4 * (m - 1 - j)
        r = int.from_bytes(digest[start:start + 4], "big") % (j + 1)
        perm[j], perm[r] = perm[r], perm[j]
    return perm


def shuffle(request_id: str | None, pinned: Sequence[bool] | np.ndarray,
            exploration: Exploration) -> Shuffle:
    """Apply exploration to a list whose places are ``pinned`` (one bool per shown product).

    Without a request id or an active exploration the list is left as it is and every
    propensity is NaN (no randomization to claim)."""
    pinned = np.asarray(pinned, np.bool_)
    n = pinned.size
    order = np.arange(n, dtype=np.int64)
    prop = np.full(n, np.nan)
    if request_id is None or not exploration.active or n == 0:
        return Shuffle(order, prop, False)
    top = min(exploration.top_k, n)
    slots = np.flatnonzero(~pinned[:top])
    m = slots.size
    digest = _digest(request_id, exploration.seed)
    hit = int.from_bytes(digest[:8], "big") / 2.0**64 < exploration.share
    randomized = hit and m >= 2
    if randomized:
        order[slots] = slots[_permutation(m, digest)]
    prop[:top] = 1.0
    if m:
        stay = (order[slots] == slots).astype(np.float64)
        prop[slots] = (1.0 - exploration.share) * stay + exploration.share / m
    return Shuffle(order, prop, randomized)


def ndcg_cost(grades: Sequence[Sequence[float]], top_k: int, at: int = 10,
              ideal: Sequence[Sequence[float]] | None = None) -> tuple[float, np.ndarray]:
    """Mean NDCG@``at`` lost by shuffling the top ``top_k`` of each list uniformly.

    ``grades[q]``: the true grades of query q's list in served order; ``ideal[q]``: all of
    its judged grades (default: the list's own). Exact, not sampled: a uniform shuffle
    puts each of the m products in each of the m places with probability 1/m, so expected
    DCG over those places is their mean gain times the sum of their discounts. Returns
    (mean loss, per-query loss); the loss of exploration at ``share`` is ``share`` times it.
    """
    losses = []
    for q, g in enumerate(grades):
        g = np.asarray(g, np.float64)[:at]
        gain = 2.0**g - 1.0
        disc = 1.0 / np.log2(np.arange(2, g.size + 2))
        pool = np.sort(np.asarray(g if ideal is None else ideal[q], np.float64))[::-1][:at]
        idcg = float(((2.0**pool - 1.0) / np.log2(np.arange(2, pool.size + 2))).sum())
        if idcg <= 0:
            losses.append(0.0)
            continue
        m = min(top_k, g.size)
        dcg = float((gain * disc).sum())
        shuffled = dcg - float((gain[:m] * disc[:m]).sum()) + float(gain[:m].mean()
                                                                    * disc[:m].sum()) \
            if m else dcg
        losses.append((dcg - shuffled) / idcg)
    per = np.asarray(losses, np.float64)
    return (float(per.mean()) if per.size else 0.0), per
