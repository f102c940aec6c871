import math

import numpy as np

from objectives.metrics import lift, mean_at_k, ndcg_at_k, paired_bootstrap


def test_ndcg_ideal_worst_and_hand_computed() -> None:
    assert ndcg_at_k(np.array([3, 2, 1, 0]), 10) == 1.0
    # gains 1, 7 at ranks 1, 2 vs ideal 7, 1
    expected = (1 + 7 / math.log2(3)) / (7 + 1 / math.log2(3))
    assert math.isclose(ndcg_at_k(np.array([1, 3]), 10), expected)
    assert math.isclose(ndcg_at_k(np.array([1, 3]), 10, gain="linear"),
                        (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)))


def test_ndcg_cutoff_and_no_relevant() -> None:
    # only the top 1 counts: grade 0 at rank 1 -> 0
    assert ndcg_at_k(np.array([0, 3]), 1) == 0.0
    assert math.isnan(ndcg_at_k(np.array([0, 0]), 5))


def test_mean_at_k_and_lift_both_averages() -> None:
    assert mean_at_k(np.array([1.0, 3.0, 100.0]), 2) == 2.0
    result = lift([2.0, 3.0], [1.0, 3.0])
    assert math.isclose(result.mean_of_ratios, 0.5)
    assert math.isclose(result.ratio_of_means, 5 / 4 - 1)


def test_paired_bootstrap_detects_shift_and_includes_zero_for_noise() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(300)
    assert not paired_bootstrap(base + 0.05, base).includes_zero
    noise = paired_bootstrap(base + rng.normal(0, 0.01, 300) - 0.0005, base)
    assert noise.includes_zero
    assert paired_bootstrap([np.nan], [1.0]).n == 0
