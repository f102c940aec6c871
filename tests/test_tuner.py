"""The cvxpy tuner: margin comes from equal-grade reordering at no NDCG cost; degenerate
problems fall back to relevance-only weights with a message."""

from __future__ import annotations

import numpy as np

from objectives.groups import QueryGroups
from objectives.tuner import judged_pairs, solve_weights, tune_weights


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
