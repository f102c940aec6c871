"""Examination estimators: hand-computed examples, recovery on simulated PBM logs, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from clv.errors import DataError
from ranking.experiments.position_bias import em_pbm, from_randomized


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
