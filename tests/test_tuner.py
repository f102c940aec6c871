"""The cvxpy tuner: margin comes from equal-grade reordering at no NDCG cost; degenerate
problems fall back to relevance-only weights with a message."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from objectives.groups import QueryGroups
from objectives.tuner import (
    STRENGTH_PATH,
    choose_strength,
    frontier,
    has_judged_pairs,
    selectable,
    tune_weights,
)
from objectives.tuner_program import WeightProgram, judged_pairs, solve_weights


def groups_of(relevance: list[list[float]], grades: list[list[float]],
              margin: list[list[float]]) -> QueryGroups:
    sizes = [len(r) for r in relevance]
    qptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    m = np.concatenate(margin).astype(np.float64)
    terms = np.zeros((m.size, 4), np.float32)
    terms[:, 0] = m
    return QueryGroups(qptr, np.concatenate(relevance).astype(np.float64), terms,
                       np.concatenate(grades).astype(np.float64), m)


def tie_world(n_queries: int = 6) -> QueryGroups:
    """Two grade tiers per query; within each tier the less relevant item has more margin."""
    rel = [[3.0, 2.9, 1.0, 0.9]] * n_queries
    grades = [[2, 2, 1, 1]] * n_queries
    margin = [[-1.0, 1.0, -1.0, 1.0]] * n_queries
    return groups_of(rel, grades, margin)


def test_epsilon_zero_raises_margin_without_moving_ndcg() -> None:
    world = tie_world()
    importance = np.array([1.0, 0, 0, 0])
    w = solve_weights(world, judged_pairs(world, 2), importance, epsilon=0.0)
    assert w[0] > 0.05 and np.all(w[1:] == 0)
    base, tuned = world.z_relevance(), world.blend(w)
    np.testing.assert_allclose(world.ndcg(tuned, 2), world.ndcg(base, 2))
    top_margin = world.value_at_k(tuned, world.margin, 1).mean()
    assert top_margin > world.value_at_k(base, world.margin, 1).mean()


def test_tune_weights_cross_validates_and_reports() -> None:
    world = tie_world()
    result = tune_weights(world, np.array([1.0, 0, 0, 0]), k=2)
    assert result.weights[0] > 0
    assert result.cv_ndcg_tuned == result.cv_ndcg_base
    assert result.trace and "3-fold cross-validation on 6 queries" in result.message


def test_weights_that_lower_ndcg_are_refused() -> None:
    """Margin opposes relevance across grades: any real weight costs NDCG, so none passes."""
    rel = [[3.0, 2.0, 1.0, 0.0]] * 9
    world = groups_of(rel, [[3, 2, 1, 0]] * 9, [[-1.0, -0.5, 0.5, 1.0]] * 9)
    result = tune_weights(world, np.array([1.0, 0, 0, 0]), k=4)
    assert result.cv_ndcg_tuned >= result.cv_ndcg_base - 1e-12
    assert np.all(world.ndcg(world.blend(result.weights), 4)
                  >= world.ndcg(world.blend(np.zeros(4)), 4) - 1e-12)


def test_degenerate_problems_return_relevance_only() -> None:
    importance = np.array([1.0, 0, 0, 0])
    equal = groups_of([[1.0, 0.5, 0.2]], [[2, 2, 2]], [[1.0, 2.0, 3.0]])
    result = tune_weights(equal, importance)
    assert np.all(result.weights == 0) and "no judged pairs" in result.message
    single = groups_of([[1.0]], [[3]], [[1.0]])
    assert np.all(tune_weights(single, importance).weights == 0)
    result = tune_weights(tie_world(), np.zeros(4))
    assert np.all(result.weights == 0) and "relevance only" in result.message
    result = tune_weights(tie_world(n_queries=4), importance)
    assert np.all(result.weights == 0) and "too few" in result.message


def test_orders_follow_the_cores_guardrails() -> None:
    """Demoted rows sink; with tiers, a business push cannot cross a relevance tier."""
    world = groups_of([[3.0, 2.0, 1.0, 0.0]], [[3, 2, 1, 0]], [[0.0, 0.0, 0.0, 9.0]])
    sunk = QueryGroups(world.qptr, world.relevance, world.terms, world.grades, world.margin,
                       demoted=np.array([True, False, False, False]))
    assert sunk.orders(sunk.relevance)[0].tolist() == [1, 2, 3, 0]
    pushed = world.blend(np.array([1.0, 0, 0, 0]))
    assert world.orders(pushed)[0][0] == 3  # without tiers the margin push wins
    tiered = QueryGroups(world.qptr, world.relevance, world.terms, world.grades, world.margin,
                         tier_width=1.0)
    assert tiered.orders(pushed)[0][0] == 0  # with tiers it cannot leave its tier


def test_single_candidate_queries_are_degenerate_with_a_clear_message() -> None:
    single = groups_of([[1.0]] * 8, [[3]] * 8, [[1.0]] * 8)
    result = tune_weights(single, np.array([1.0, 0, 0, 0]))
    assert np.all(result.weights == 0)
    assert "no judged pairs" in result.message and "one candidate" in result.message
    assert frontier(single, np.array([1.0, 0, 0, 0])) == []


@pytest.mark.parametrize(("grades", "k", "expected"), [
    ([[3.0]], 10, False),  # one candidate
    ([[2.0, 2.0, 2.0], [1.0, 1.0]], 10, False),  # all grades equal in each query
    ([[2.0, 2.0], [2.0, 1.0, 1.0]], 1, True),  # one query with a pair (first place vs later)
    ([[2.0, 1.0]], 0, False),  # NDCG@0 has nothing to swap
    ([[np.nan, 1.0, 2.0]], 10, False),  # a NaN grade makes the ideal DCG NaN: no pair
    ([[-1.0, -2.0]], 10, False),  # different grades but an ideal DCG <= 0: skipped
    ([[np.nan, 1.0], [0.0, 1.0]], 10, True),  # the second query decides
])
def test_has_judged_pairs_is_judged_pairs_non_empty(grades: list[list[float]], k: int,
                                                    expected: bool) -> None:
    world = groups_of([[float(-i) for i in range(len(g))] for g in grades], grades,
                      [[0.0] * len(g) for g in grades])
    assert (len(judged_pairs(world, k)) > 0) is expected
    assert has_judged_pairs(world, k) is expected


def test_has_judged_pairs_agrees_on_random_worlds_with_guardrails() -> None:
    """Tiny queries, ties, NaN and negative grades, demotions, tiers and slots."""
    rng = np.random.default_rng(7)
    levels = np.array([np.nan, -1.0, 0.0, 0.0, 1.0, 1.0, 2.0])
    outcomes = set()
    for _ in range(300):
        sizes = rng.integers(1, 5, rng.integers(1, 4))
        n = int(sizes.sum())
        world = QueryGroups(np.r_[0, np.cumsum(sizes)].astype(np.int64),
                            rng.integers(0, 3, n).astype(np.float64), np.zeros((n, 4), np.float32),
                            rng.choice(levels, n), np.zeros(n), demoted=rng.integers(0, 3, n),
                            tier_width=float(rng.choice([0.0, 1.0])), slots=int(rng.integers(3)))
        k = int(rng.choice([0, 1, 2, 10]))
        expected = len(judged_pairs(world, k)) > 0
        assert has_judged_pairs(world, k) is expected
        outcomes.add(expected)
    assert outcomes == {True, False}


def test_program_resolves_like_a_fresh_solve_and_slack_only_adds_strength() -> None:
    """The compiled program re-solved at several epsilons gives what a fresh solve gives, and a
    larger slack never yields a weaker business objective."""
    rng = np.random.default_rng(1)
    rel = [list(rng.normal(size=5)) for _ in range(12)]
    grades = [list(rng.integers(0, 3, 5)) for _ in range(12)]
    world = groups_of(rel, grades, [list(rng.normal(size=5)) for _ in range(12)])
    importance = np.array([1.0, 0, 0, 0])
    pairs = judged_pairs(world, 5)
    program = WeightProgram(world, pairs, importance, np.array([3.0, 0, 0, 0]))
    margins = []
    for eps in (0.0, 0.1, 0.5):
        w = program.solve(eps)
        np.testing.assert_allclose(w, solve_weights(world, pairs, importance, eps), atol=1e-6)
        margins.append(w[0])
    assert margins == sorted(margins) and margins[-1] > 0
    points = frontier(world, importance, k=5)
    assert [p.epsilon for p in points] == [e for e, _ in STRENGTH_PATH]
    assert all(np.all(p.weights[1:] == 0) for p in points)


def test_pairs_are_subsampled_uniformly_and_reproducibly() -> None:
    world = tie_world(n_queries=30)
    pairs = judged_pairs(world, 4)
    sample = pairs.sample(10, seed=0)
    assert len(sample) == 10 and len(pairs.sample(10, seed=0)) == 10
    np.testing.assert_array_equal(sample.better, pairs.sample(10, seed=0).better)
    assert pairs.sample(len(pairs) + 5, seed=0) is pairs


def test_choice_is_made_on_a_fitted_curve_not_stopped_by_an_early_wobble() -> None:
    """A weak setting that fails alone (few queries changed, a narrow interval) does not stop
    the choice: every setting is judged on the curve fitted through all of them, which here is
    about -0.005 * strength**2; the setting far below 0 is refused."""
    strength = np.array([0.05, 0.1, 0.2, 0.4, 1.0])
    diffs = np.array([-0.0003, 0.0000, -0.0002, -0.0008, -0.0050])
    ses = np.array([0.0001, 0.0003, 0.0005, 0.0009, 0.0012])
    fitted, ok = choose_strength(strength, diffs, ses, base=0.85, max_ndcg_drop=0.0)
    assert np.all(np.diff(fitted) <= 0) and fitted[0] > -0.0001
    np.testing.assert_allclose(fitted[-1], -0.005, rtol=0.1)
    assert ok.tolist() == [True, True, True, True, False]
    assert not selectable(-0.0020, 0.0010, 0.85, 0.0)  # the 95% interval ends below 0
    assert selectable(-0.0040, 0.0010, 0.85, 0.005)  # a relative tolerance: 0.47% <= 0.5%


def test_tuning_with_business_slots_moves_margin_into_the_slots_for_free() -> None:
    """Grades 2, 1, 1, 0 with the high-margin grade-1 item ranked third: with two business
    slots, margin may lift it into them (it sits after the grade-2 item there) at no NDCG@2
    cost, because it is equal-graded with the item it replaces."""
    rel = [[3.0, 2.0, 1.9, 0.0]] * 9
    world = groups_of(rel, [[2, 1, 1, 0]] * 9, [[0.0, -1.0, 1.0, 0.0]] * 9)
    slotted = dataclasses.replace(world, slots=2)
    result = tune_weights(slotted, np.array([1.0, 0, 0, 0]), k=2)
    assert result.weights[0] > 0
    tuned = slotted.orders(slotted.blend(result.weights))
    starts = slotted.qptr[:-1]
    assert all((o[:2] - a).tolist() == [0, 2] for o, a in zip(tuned, starts, strict=True))
    np.testing.assert_allclose(slotted.ndcg(slotted.blend(result.weights), 2),
                               slotted.ndcg(slotted.z_relevance(), 2))


def test_choice_refuses_nan_lucky_flattening_and_gaps() -> None:
    """A NaN measurement is left out of the fit and refused; a setting whose own measurement is
    far below 0 is refused even when one precise positive point flattens the curve; and
    settings are accepted only up to the first refusal, never past it."""
    strength = np.array([0.05, 0.1, 0.2, 0.4])
    fitted, ok = choose_strength(strength, np.array([0.0, np.nan, -0.0002, -0.0004]),
                                 np.array([0.0001, 0.0002, 0.0004, 0.0006]), 0.85, 0.0)
    assert np.isnan(fitted[1]) and ok.tolist() == [True, False, False, False]
    fitted, lucky = choose_strength(strength, np.array([0.01, 0.01, -0.0002, -0.0200]),
                                    np.array([0.0001, 0.0001, 0.0005, 0.0030]), 0.85, 0.0)
    assert abs(fitted[-1]) < 0.02 - 2 * 1.96 * 0.003  # the positive points flatten the curve
    assert lucky.tolist() == [True, True, True, False]
