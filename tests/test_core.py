"""The Numba blend kernel against a plain numpy reference, on random inputs (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ranking._blend_kernels import DEMOTED, OOS_DEMOTE, OOS_HIDE, OOS_IGNORE, blend_topk


def reference(relevance, cand, terms, weights, in_stock, buried, policy, tier_width, k):  # noqa: ANN001, ANN201
    """The same ranking in plain numpy: full sort by (primary desc, score desc, position)."""
    n = cand.size
    # Accumulate in the kernel's order, so exact ties stay exact ties in both.
    mean = 0.0
    for r in relevance:
        mean += r
    mean = mean / n if n else 0.0
    var = 0.0
    for r in relevance:
        var += (r - mean) ** 2
    sd = np.sqrt(var / n) if n else 0.0
    z = (relevance - mean) / sd if sd > 1e-12 else np.zeros(n)
    parts = weights * terms[cand].astype(np.float64)
    score = z.copy()
    for t in range(parts.shape[1]):
        score = score + parts[:, t]
    primary = np.floor(z / tier_width).astype(np.int64) if tier_width > 0 else np.zeros(n, np.int64)
    sunk = buried[cand] | ((policy == OOS_DEMOTE) & ~in_stock[cand])
    primary = primary - sunk * DEMOTED
    keep = ~((policy == OOS_HIDE) & ~in_stock[cand])
    pos = np.flatnonzero(keep)
    order = pos[np.lexsort((pos, -score[pos], -primary[pos]))][:k]
    return order, score[order], np.column_stack([z, parts])[order]


@st.composite
def problems(draw):  # noqa: ANN001, ANN201
    n_products = draw(st.integers(1, 40))
    n = draw(st.integers(0, n_products))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    cand = rng.permutation(n_products)[:n].astype(np.int64)
    relevance = np.round(rng.normal(size=n), draw(st.sampled_from([1, 3, 8])))
    terms = np.round(rng.normal(size=(n_products, 4)), 2).astype(np.float32)
    weights = np.abs(np.round(rng.normal(size=(n, 4)), 2)) * draw(st.sampled_from([0.0, 1.0]))
    in_stock = rng.random(n_products) > draw(st.sampled_from([0.0, 0.3]))
    buried = rng.random(n_products) < draw(st.sampled_from([0.0, 0.2]))
    policy = draw(st.sampled_from([OOS_DEMOTE, OOS_HIDE, OOS_IGNORE]))
    tier = draw(st.sampled_from([0.0, 1.0]))
    k = draw(st.integers(1, 50))
    return relevance, cand, terms, weights, in_stock, buried, policy, tier, k


@settings(max_examples=300, deadline=None)
@given(problems())
def test_kernel_matches_numpy_reference(problem) -> None:  # noqa: ANN001
    pos, score, contrib = blend_topk(*problem)
    ref_pos, ref_score, ref_contrib = reference(*problem)
    assert pos.tolist() == ref_pos.tolist()
    np.testing.assert_allclose(score, ref_score, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(contrib, ref_contrib, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(contrib.sum(axis=1), score, rtol=1e-9, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(problems())
def test_zero_weights_give_relevance_order_and_hidden_never_appear(problem) -> None:  # noqa: ANN001
    relevance, cand, terms, weights, in_stock, buried, policy, tier, k = problem
    no_guard = np.zeros_like(buried)
    pos, _, _ = blend_topk(relevance, cand, terms, weights * 0, in_stock, no_guard, OOS_IGNORE,
                           0.0, k)
    expected = np.lexsort((np.arange(cand.size), -relevance))[:k]
    assert pos.tolist() == expected.tolist()
    pos, _, _ = blend_topk(relevance, cand, terms, weights, in_stock, buried, OOS_HIDE, tier, k)
    assert in_stock[cand[pos]].all()


def test_raising_margin_never_lowers_position() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = 12
        cand = np.arange(n, dtype=np.int64)
        relevance = rng.normal(size=n)
        terms = rng.normal(size=(n, 4)).astype(np.float32)
        weights = np.tile([0.5, 0.1, 0.2, 0.1], (n, 1))
        args = (np.ones(n, bool), np.zeros(n, bool), OOS_DEMOTE, 0.0, n)
        target = int(rng.integers(n))
        before = blend_topk(relevance, cand, terms, weights, *args)[0].tolist().index(target)
        terms[target, 0] += abs(rng.normal()) + 0.01
        after = blend_topk(relevance, cand, terms, weights, *args)[0].tolist().index(target)
        assert after <= before


def test_demoted_out_of_stock_sinks_below_in_stock() -> None:
    cand = np.arange(4, dtype=np.int64)
    relevance = np.array([4.0, 3.0, 2.0, 1.0])
    terms = np.zeros((4, 4), np.float32)
    in_stock = np.array([False, True, True, True])
    pos, _, _ = blend_topk(relevance, cand, terms, np.zeros((4, 4)), in_stock, np.zeros(4, bool),
                           OOS_DEMOTE, 0.0, 4)
    assert pos.tolist() == [1, 2, 3, 0]
