"""Examination estimators: hand-computed examples, recovery on simulated PBM logs, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from clv.errors import DataError
from ranking.experiments.position_bias import em_pbm, from_randomized, harvest


def test_randomized_ratio_by_hand() -> None:
    exam = from_randomized([1, 1, 2, 2, 2, 2], [1, 0, 1, 0, 0, 0])
    assert exam.positions.tolist() == [1, 2]
    assert exam.value.tolist() == pytest.approx([1.0, 0.25 / 0.5])
    assert exam.low[1] < 0.5 < exam.high[1]
    assert exam.impressions.tolist() == [2, 4] and exam.clicks.tolist() == [1, 1]


def test_em_with_one_item_is_the_ctr_ratio() -> None:
    # one item: 5 clicks in 10 at place 1, 2 in 10 at place 2 -> theta_2/theta_1 = 0.2/0.5
    pos = [1] * 10 + [2] * 10
    clk = [1] * 5 + [0] * 5 + [1] * 2 + [0] * 8
    exam = em_pbm(pos, clk, ["a"] * 20, bootstrap=0, iterations=5000, tol=1e-12)
    assert exam.value[1] == pytest.approx(0.4, abs=1e-3)


def _pbm_log(seed: int, randomized: bool, n: int = 60_000):
    rng = np.random.default_rng(seed)
    theta = np.array([1.0, 0.6, 0.4, 0.3, 0.2])
    n_items = 40
    gamma = rng.uniform(0.05, 0.6, n_items)
    if randomized:
        pos = rng.integers(1, 6, n)
        item = rng.integers(0, n_items, n)
    else:
        # a ranker that mostly puts good items high, with noise so that items move
        item = rng.integers(0, n_items, n)
        noisy = gamma[item] + rng.normal(0, 0.15, n)
        pos = np.clip(5 - np.floor(noisy / 0.13).astype(int), 1, 5)
    click = (rng.random(n) < theta[pos - 1] * gamma[item]).astype(int)
    return pos, click, item, theta


def test_randomized_recovers_theta_within_ten_percent() -> None:
    pos, click, _, theta = _pbm_log(1, randomized=True)
    exam = from_randomized(pos, click)
    assert np.allclose(exam.value, theta, rtol=0.10)
    assert np.all(exam.low <= theta) and np.all(theta <= exam.high)


def test_em_recovers_theta_on_biased_logs() -> None:
    pos, click, item, theta = _pbm_log(2, randomized=False)
    naive = np.array([click[pos == k].mean() for k in range(1, 6)])
    naive = naive / naive[0]
    exam = em_pbm(pos, click, item, bootstrap=20, seed=0)
    assert np.allclose(exam.value, theta, rtol=0.10), exam.value
    # the naive CTR ratio confounds position with relevance and is far off
    assert np.max(np.abs(naive / theta - 1)) > 0.2
    assert np.all(exam.low <= exam.value) and np.all(exam.value <= exam.high)


def test_refusals() -> None:
    with pytest.raises(DataError, match="row 2: click must be 0 or 1"):
        from_randomized([1, 2], [0, 2])
    with pytest.raises(DataError, match="no click at the reference position 1"):
        from_randomized([1, 2], [0, 1])
    with pytest.raises(DataError, match="positions must be integers >= 1"):
        from_randomized([0, 1], [0, 1])
    with pytest.raises(DataError, match="no examination estimate for position 7"):
        from_randomized([1, 2], [1, 1]).at([7])


def _searches(arm: str, context: str, n: int, shown: list[tuple[str, int]],
              clicks: dict[str, int]) -> list[tuple[int, int, str, str, str]]:
    """``n`` searches of one arm showing ``shown`` (product, position); ``clicks[product]`` of
    them clicked that product. Rows: (position, click, product, context, arm)."""
    rows = []
    for s in range(n):
        rows += [(p, int(s < clicks.get(d, 0)), d, context, arm) for d, p in shown]
    return rows


def _harvest(rows, **kw):  # noqa: ANN001, ANN202
    pos, clk, item, ctx, arm = (list(c) for c in zip(*rows, strict=True))
    return harvest(pos, clk, item, ctx, arm, **kw)


def test_harvest_by_hand_with_the_arms_shares() -> None:
    # Arm A (6 searches) shows d1 at 1, d2 at 2; arm B (2 searches) swaps them. Shares from
    # the logs: 0.75, 0.25, so pi(1|d1) = pi(2|d2) = 0.75 and pi(1|d2) = pi(2|d1) = 0.25.
    # Weighted clicks at 1: 3/0.75 + 1/0.25 = 8; at 2: 1/0.75 + 0/0.25 = 4/3; ratio 1/6.
    # (The unweighted CTRs, 4/8 and 1/8, would say 1/4.)
    rows = (_searches("A", "q", 6, [("d1", 1), ("d2", 2)], {"d1": 3, "d2": 1})
            + _searches("B", "q", 2, [("d2", 1), ("d1", 2)], {"d2": 1}))
    exam = _harvest(rows, bootstrap=0)
    assert exam.method == "harvest" and exam.positions.tolist() == [1, 2]
    assert exam.value.tolist() == pytest.approx([1.0, 1 / 6])
    given = _harvest(rows, bootstrap=0, shares={"A": 0.5, "B": 0.5})
    assert given.value[1] == pytest.approx((1 / 0.5) / ((3 + 1) / 0.5))  # 1/4


def test_harvest_chains_pairs_to_reach_deeper_positions() -> None:
    # q1 swaps places 1 and 2 between the arms (ratio 2/8 = 1/4); q2 keeps f at 1 and swaps
    # places 2 and 3 (ratio 2/8 = 1/4): theta_3/theta_1 = 1/4 x 1/4 with no (1, 3) pair.
    rows = (_searches("A", "q1", 6, [("d1", 1), ("d2", 2)], {"d1": 3, "d2": 1})
            + _searches("B", "q1", 6, [("d2", 1), ("d1", 2)], {"d2": 1})
            + _searches("A", "q2", 4, [("f", 1), ("e1", 2), ("e2", 3)], {"e1": 2, "e2": 1, "f": 4})
            + _searches("B", "q2", 4, [("f", 1), ("e2", 2), ("e1", 3)], {"e2": 2, "f": 4}))
    exam = _harvest(rows, bootstrap=20, shares={"A": 0.5, "B": 0.5})
    assert exam.value.tolist() == pytest.approx([1.0, 0.25, 0.0625])
    assert exam.impressions.tolist() == [20, 20, 8]


def test_harvest_refuses_one_arm_and_logs_without_moves() -> None:
    one = _searches("A", "q", 5, [("d1", 1), ("d2", 2)], {"d1": 2, "d2": 1})
    with pytest.raises(DataError, match="at least two arms"):
        _harvest(one, bootstrap=0)
    same = one + _searches("B", "q", 5, [("d1", 1), ("d2", 2)], {"d1": 2})
    with pytest.raises(DataError, match="nothing to harvest"):
        _harvest(same, bootstrap=0)


def test_harvest_recovers_pbm_examination_across_two_arms() -> None:
    # Two arms rank 40 queries' 5 products in different orders; PBM clicks.
    rng = np.random.default_rng(3)
    theta = np.array([1.0, 0.6, 0.4, 0.3, 0.2])
    rows: list = []
    for q in range(40):
        gamma = rng.uniform(0.1, 0.9, 5)
        orders = {"A": rng.permutation(5), "B": rng.permutation(5)}
        for arm, n in (("A", 700), ("B", 300)):
            order = orders[arm]
            clicks = rng.random((n, 5)) < theta[None, :] * gamma[order][None, :]
            for s in range(n):
                rows += [(k + 1, int(clicks[s, k]), f"d{order[k]}", f"q{q}", arm)
                         for k in range(5)]
    exam = _harvest(rows, bootstrap=30)
    assert exam.value == pytest.approx(theta, rel=0.08)
    assert np.all(exam.low[1:] <= theta[1:] * 1.02) and np.all(theta[1:] <= exam.high[1:] * 1.02)
