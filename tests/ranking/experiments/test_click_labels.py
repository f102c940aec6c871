"""Debiased interaction labels against a hand-computed example."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from clv.errors import DataError
from ranking.experiments.click_labels import interaction_labels
from ranking.experiments.events import validate_impressions, validate_outcome_records
from ranking.experiments.position_bias import Examination

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _impressions(rows):
    return validate_impressions([
        {"request_id": r, "timestamp": T0, "customer_id": "c", "query": q, "config_version": "v",
         "product_id": p, "position": k, "score": 1.0}
        for r, q, p, k in rows])


def _outcomes(rows):
    return validate_outcome_records([
        {"event_id": f"e{i}", "request_id": r, "product_id": p, "type": t, "timestamp": T0,
         **({"quantity": 1, "unit_price": 10.0} if t in ("purchase", "return") else {})}
        for i, (r, p, t) in enumerate(rows)])


EXAM = Examination("randomized", np.array([1, 2]), np.array([1.0, 0.5]), np.array([1.0, 0.4]),
                   np.array([1.0, 0.6]), np.array([10, 10]), np.array([5, 2]), 1)


def test_labels_by_hand() -> None:
    imps = _impressions([("r1", "drill", "A", 1), ("r1", "drill", "B", 2),
                         ("r2", "drill", "A", 2), ("r2", "drill", "B", 1)])
    outs = _outcomes([("r1", "A", "click"), ("r2", "A", "click"), ("r2", "A", "purchase"),
                      ("r2", "B", "click"), ("r2", "B", "purchase"), ("r2", "B", "return")])
    labels = interaction_labels(imps, outs, EXAM)
    got = dict(zip(labels.product_id.tolist(), labels.label.tolist(), strict=True))
    # A: gain 1 at place 1 (weight 1), gain 3 at place 2 (weight 2) -> (1 + 6) / 2
    # B: nothing at place 2, a returned purchase (gain of a click) at place 1 -> (0 + 1) / 2
    assert got == pytest.approx({"A": 3.5, "B": 0.5})
    raw = dict(zip(labels.product_id.tolist(), labels.raw.tolist(), strict=True))
    assert raw == pytest.approx({"A": 2.0, "B": 0.5})
    assert labels.shown.tolist() == [2, 2] and labels.clipped_rows == 0


def test_clipping_is_counted_and_bad_gains_refused() -> None:
    imps = _impressions([("r1", "drill", "A", 2)])
    outs = _outcomes([("r1", "A", "click")])
    labels = interaction_labels(imps, outs, EXAM, max_weight=1.5)
    assert labels.label.tolist() == [1.5] and labels.clipped_rows == 1
    with pytest.raises(DataError, match="unknown outcome type"):
        interaction_labels(imps, outs, EXAM, gains={"view": 1.0})
