"""The unsupported-share rule of an off-policy estimate (:func:`claimability`), by hand."""

from __future__ import annotations

import pytest

from clv.errors import DataError
from ranking.experiments.estimate import MAX_UNSUPPORTED, PolicyEstimate, claimability


def _estimate(unsupported: float) -> PolicyEstimate:
    def e(value: float) -> dict:
        return {"value": value, "low": value - 0.1, "high": value + 0.1}

    return PolicyEstimate({"clicks": {"ips": e(0.4), "snips": e(0.5), "dr": e(0.6)},
                           "margin": {"ips": e(2.0), "snips": e(2.1), "dr": e(2.2)}},
                          {"clicks": 0.45, "margin": 2.05}, unsupported, 100, 30)


def test_claimable_up_to_the_threshold_and_not_above() -> None:
    assert MAX_UNSUPPORTED == 0.05
    assert claimability(_estimate(0.05))["claimable"] is True
    assert claimability(_estimate(0.0))["claimable"] is True
    out = claimability(_estimate(0.0501))
    assert out["claimable"] is False
    assert out["unsupported_share"] == pytest.approx(0.0501)
    # the supported part is IPS, the whole policy DR, for each reward
    assert out["supported_part"]["clicks"]["value"] == 0.4
    assert out["supported_part"]["margin"]["value"] == 2.0
    assert out["whole_policy"]["clicks"]["value"] == 0.6
    assert out["whole_policy"]["margin"]["value"] == 2.2
    assert claimability(_estimate(0.3), max_unsupported=0.5)["claimable"] is True


def test_a_threshold_outside_zero_one_is_refused() -> None:
    with pytest.raises(DataError, match="threshold must lie in"):
        claimability(_estimate(0.1), max_unsupported=1.5)
