"""The Numba blend kernel against a plain numpy reference, on random inputs (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from objectives._blend_kernels import DEMOTED
from objectives._blend_kernels import blend_topk as kernel_blend_topk
from objectives.config import parse_config
from objectives.plan import sink_levels
from ranking.core import ServingConfig, blend

OOS_POLICIES = ("demote", "hide", "ignore")


def blend_topk(relevance, cand, terms, weights, in_stock, buried, policy, tier_width, slots, k):  # noqa: ANN001, ANN201, E501
    """The kernel called with per-candidate weights (each candidate its own rule row) and the
    sink levels and hidden mask :func:`objectives.plan.sink_levels` compiles for ``policy``."""
    product_rule = np.zeros(terms.shape[0], np.int64)
    product_rule[cand] = np.arange(cand.size)
    sink, hidden = sink_levels(policy, buried, in_stock)
    return kernel_blend_topk(relevance, cand, terms, product_rule,
                             np.ascontiguousarray(weights, np.float64), sink, hidden, tier_width,
                             slots, k)


def reference(relevance, cand, terms, weights, in_stock, buried, policy, tier_width, slots, k):  # noqa: ANN001, ANN201, E501
    """The same ranking in plain numpy: full sort by (primary desc, score desc, position); with
    slots, the first ``slots`` of that, then the rest, each by (primary desc, z desc, position)."""
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
    demoted = (policy == "demote") & ~in_stock[cand]
    primary = primary - np.where(buried[cand], 2 * DEMOTED, demoted * DEMOTED)
    keep = ~((policy == "hide") & ~in_stock[cand])
    pos = np.flatnonzero(keep)
    order = pos[np.lexsort((pos, -score[pos], -primary[pos]))]
    if slots > 0:
        order = np.concatenate([c[np.lexsort((c, -z[c], -primary[c]))]
                                for c in (order[:slots], order[slots:])])
    order = order[:k]
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
    policy = draw(st.sampled_from(OOS_POLICIES))
    tier = draw(st.sampled_from([0.0, 1.0]))
    slots = draw(st.sampled_from([0, 0, 1, 2, 3, 5]))
    k = draw(st.integers(1, 50))
    return relevance, cand, terms, weights, in_stock, buried, policy, tier, slots, k


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
    relevance, cand, terms, weights, in_stock, buried, policy, tier, slots, k = problem
    no_guard = np.zeros_like(buried)
    pos, _, _ = blend_topk(relevance, cand, terms, weights * 0, in_stock, no_guard, "ignore",
                           0.0, slots, k)
    expected = np.lexsort((np.arange(cand.size), -relevance))[:k]
    assert pos.tolist() == expected.tolist()
    pos, _, _ = blend_topk(relevance, cand, terms, weights, in_stock, buried, "hide", tier,
                           slots, k)
    assert in_stock[cand[pos]].all()


@settings(max_examples=200, deadline=None)
@given(problems(), st.integers(0, 10**6), st.floats(0.01, 5.0))
def test_raising_margin_never_lowers_position(problem, pick: int, raise_by: float) -> None:  # noqa: ANN001
    relevance, cand, terms, weights, in_stock, buried, policy, tier, slots, _ = problem
    if cand.size == 0:
        return
    k = cand.size  # the whole ranking, so the product's position is always known
    target = int(cand[pick % cand.size])
    before = cand[blend_topk(relevance, cand, terms, weights, in_stock, buried, policy, tier,
                             slots, k)[0]].tolist()
    raised = terms.copy()
    raised[target, 0] += np.float32(raise_by)
    after = cand[blend_topk(relevance, cand, raised, weights, in_stock, buried, policy, tier,
                            slots, k)[0]].tolist()
    if target in before:  # not hidden
        assert after.index(target) <= before.index(target)


@settings(max_examples=200, deadline=None)
@given(problems())
def test_buried_come_last_and_demoted_out_of_stock_after_the_rest(problem) -> None:  # noqa: ANN001
    relevance, cand, terms, weights, in_stock, buried, _, tier, slots, _ = problem
    pos, _, _ = blend_topk(relevance, cand, terms, weights, in_stock, buried, "demote", tier,
                           slots, cand.size)
    rows = cand[pos]
    kind = np.where(buried[rows], 2, np.where(in_stock[rows], 0, 1))
    assert np.all(np.diff(kind) >= 0)  # normal, then out of stock, then buried


def test_demoted_out_of_stock_sinks_below_in_stock() -> None:
    cand = np.arange(4, dtype=np.int64)
    relevance = np.array([4.0, 3.0, 2.0, 1.0])
    terms = np.zeros((4, 4), np.float32)
    in_stock = np.array([False, True, True, True])
    pos, _, _ = blend_topk(relevance, cand, terms, np.zeros((4, 4)), in_stock, np.zeros(4, bool),
                           "demote", 0.0, 0, 4)
    assert pos.tolist() == [1, 2, 3, 0]


def test_business_slots_let_the_blend_pick_the_top_and_relevance_order_the_list() -> None:
    """Two slots: margin brings the low-relevance, high-margin product 3 into the first two
    places, where it is shown after the more relevant product 0; every other product follows
    in relevance order, so product 4 (blended 4th) stays below products 1 and 2."""
    cand = np.arange(5, dtype=np.int64)
    relevance = np.array([5.0, 4.0, 3.0, 1.0, 0.0])
    terms = np.zeros((5, 4), np.float32)
    terms[3, 0] = 10.0
    terms[4, 0] = 2.0
    weights = np.tile([1.0, 0.0, 0.0, 0.0], (5, 1))
    args = (relevance, cand, terms, weights, np.ones(5, bool), np.zeros(5, bool), "ignore", 0.0)
    assert blend_topk(*args, 0, 5)[0].tolist() == [3, 0, 1, 4, 2]
    assert blend_topk(*args, 2, 5)[0].tolist() == [0, 3, 1, 2, 4]
    assert blend_topk(*args, 2, 1)[0].tolist() == [0]  # k below the slots: still the pick
    assert blend_topk(*args, 1, 5)[0].tolist() == [3, 0, 1, 2, 4]


# --- the wrapper: weights tables, arms and pins ------------------------------------------------


def serving_for(text: str, n: int, categories: list[str] | None = None) -> ServingConfig:
    ids = {f"P{i}": i for i in range(n)}
    return ServingConfig.build(parse_config(text, product_ids=ids), ids,
                               categories or [""] * n, lambda q: " ".join(q.lower().split()),
                               text)


@settings(max_examples=150, deadline=None)
@given(problems(), st.data())
def test_pins_sit_where_pinned_and_the_rest_keep_the_blend_order(problem, data) -> None:  # noqa: ANN001
    relevance, cand, terms, _, in_stock, _, _, _, _, k = problem
    n = terms.shape[0]
    pinned = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=min(n, 5)))
    pins = ", ".join(f"P{p}" for p in pinned)
    serving = serving_for(f"version: 1\nweights: {{margin: 0.4, returns: 0.2}}\n"
                          f"pins: {{q: [{pins}]}}\n", n)
    pin_rows = serving.pins.get("q") if pinned else None
    out = blend(relevance, cand, terms, in_stock, serving, 0, k, pin_rows)
    assert out.rows[:len(pinned)].tolist() == pinned[:k]
    assert out.pinned.tolist() == [True] * min(len(pinned), k) + [False] * (
        out.rows.size - min(len(pinned), k))
    assert len(set(out.rows.tolist())) == out.rows.size  # a pinned product is not repeated
    plain = blend(relevance, cand, terms, in_stock, serving, 0, cand.size)
    rest = [r for r in plain.rows.tolist() if r not in pinned]
    assert out.rows[len(pinned):].tolist() == rest[:max(k - len(pinned), 0)]


@settings(max_examples=150, deadline=None)
@given(problems(), st.data(), st.integers(1, 4))
def test_business_slots_count_after_the_pins(problem, data, slots: int) -> None:  # noqa: ANN001
    """With pins, the blend still picks ``slots`` unpinned products: the places after the pins
    hold the ``slots`` best unpinned products by blended score (as served without slots)."""
    relevance, cand, terms, _, in_stock, _, _, _, _, _ = problem
    n = terms.shape[0]
    pinned = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=min(n, 3)))
    text = ("version: 1\nweights: {margin: 0.4, returns: 0.2}\n"
            + (f"pins: {{q: [{', '.join(f'P{p}' for p in pinned)}]}}\n" if pinned else ""))
    with_slots = serving_for(text + f"guardrails: {{business_slots: {slots}}}\n", n)
    out = blend(relevance, cand, terms, in_stock, with_slots, 0, cand.size + len(pinned),
                with_slots.pins.get("q"))
    plain = blend(relevance, cand, terms, in_stock, serving_for(text, n), 0, cand.size)
    picks = [r for r in plain.rows.tolist() if r not in pinned][:slots]
    assert sorted(out.rows[len(pinned):len(pinned) + slots].tolist()) == sorted(picks)


def test_weights_follow_segment_category_and_arm() -> None:
    text = """\
version: 1
weights: {margin: 1.0}
segments: {gold: {min_clv_quantile: 0.5, weights: {margin: 2.0}}}
categories: {Tools: {weights: {margin: 3.0}}}
experiments: {e: {arms: {push: {share: 0.5, weights: {margin: 5.0}}}}}
"""
    serving = serving_for(text, 3, ["Tools/Saws", "Garden", ""])
    terms = np.zeros((3, 4), np.float32)
    terms[:, 0] = 1.0
    cand = np.arange(3, dtype=np.int64)
    in_stock = np.ones(3, bool)

    def margin_parts(segment: int, arm: int) -> list[float]:
        out = blend(np.zeros(3), cand, terms, in_stock, serving, segment, 3, None, arm)
        return out.contributions[np.argsort(out.rows), 1].tolist()

    gold = serving.segment_index(0.7)
    push = serving.arm_names.index("push")
    assert margin_parts(0, 0) == [3.0, 1.0, 1.0]
    assert margin_parts(gold, 0) == [3.0, 2.0, 2.0]
    assert margin_parts(gold, push) == [5.0, 5.0, 5.0]
    in_push = next(f"C{i}" for i in range(100) if serving.config.arm_for(f"C{i}") == "push")
    assert serving.arm_index(in_push) == push and serving.arm_index(None) == 0
