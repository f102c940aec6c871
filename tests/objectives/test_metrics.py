import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from objectives.metrics import (
    lift,
    mean_at_k,
    ndcg_at_k,
    non_inferiority,
    paired_bootstrap,
    verdict,
)


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


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.0, 1.33, 1.67, 2.0, 2.33, 2.67, 3.0]), min_size=2,
                max_size=30), st.integers(1, 40), st.integers(0, 2**32 - 1),
       st.sampled_from(["exp", "linear"]))
def test_ndcg_never_exceeds_one_on_near_ideal_orders(levels: list[float], k: int, seed: int,
                                                     gain: str) -> None:
    """Home Depot-like averaged grades, half of them an ulp higher, in the ideal order up to
    those ulps: DCG and ideal DCG are then summed over vectors that differ by rounding only,
    and the raw ratio exceeds 1 for about one list in ten (checked without the clip). It must
    stay <= 1, on any CPU."""
    rng = np.random.default_rng(seed)
    values = np.array(levels)
    grades = np.where((rng.random(values.size) < 0.5) | (values == 0), values,
                      np.nextafter(values, 10.0))
    order = np.lexsort((rng.random(values.size), -np.round(grades, 6)))
    value = ndcg_at_k(grades[order], k, gain)
    assert math.isnan(value) or 0.0 <= value <= 1.0
    assert math.isnan(value) or value > 1.0 - 1e-9  # near-ideal: 1 up to rounding


def test_non_inferiority_bound_widens_with_fewer_queries() -> None:
    """The certificate is an upper bound on the drop: the same per-query differences on half
    as many queries give a larger bound, so less data certifies less."""
    rng = np.random.default_rng(3)
    base = rng.uniform(0.3, 1.0, 400)
    new = base - np.abs(rng.normal(0.0, 0.01, 400))
    full = non_inferiority(new, base, 0.01)
    half = non_inferiority(new[::2], base[::2], 0.01)
    assert full.drop_bound >= full.drop > 0
    assert full.lower <= full.diff
    zeros = non_inferiority(base, base, 0.0)
    assert zeros.certified and zeros.drop_bound == 0.0  # "no drop at all" passes no change
    assert non_inferiority(base - 0.001, base, 0.0).certified is False
    assert math.isfinite(half.drop_bound) and not non_inferiority([], [], 0.01).certified


def test_verdict_holds_unless_the_interval_is_entirely_beyond_delta() -> None:
    rng = np.random.default_rng(4)
    base = rng.uniform(0.5, 1.0, 300)
    noisy = base + rng.normal(0.0, 0.01, 300)
    assert verdict(noisy, base, 0.005).held
    clear_drop = base * (1 - 0.05)  # 5% below, far beyond 0.5%
    missed = verdict(clear_drop, base, 0.005)
    assert not missed.held and missed.drop > 0.04 and "missed" in missed.text()
    assert verdict(clear_drop, base, 0.1).held  # within a 10% allowance
    assert verdict(clear_drop, base, 0.1).certified and "certified" in verdict(
        clear_drop, base, 0.1).text()
    small = verdict(noisy[:20], base[:20], 0.001)  # 20 queries: not refuted, not certified
    assert small.held and not small.certified and "cannot certify" in small.text()
    empty = verdict([np.nan], [0.5], 0.002)
    assert empty.ci.n == 0 and not empty.certified and empty.text().startswith("n/a")
