"""Graded relevance labels from interactions, debiased for position.

A product shown at place k is clicked less than the same product at place 1 only because it is
looked at less. Weighting each shown row by ``1 / theta_k`` (inverse examination propensity,
:mod:`ranking.experiments.position_bias`) makes the mean weighted gain of a (query, product) pair
an unbiased estimate of its gain when examined, wherever the ranker happened to place it
(Joachims, Swaminathan and Schnabel, "Unbiased Learning-to-Rank with Biased Feedback", 2017).

The gain of one shown row is the deepest outcome it earned: by default click 1, add to cart 2,
purchase 3 (a returned purchase counts as a click). Weights are clipped at ``max_weight``
(default 10, i.e. positions examined less than a tenth as often as the reference are not
trusted further); the result counts the clipped rows. Training groups are the products actually
shown for a query, never unseen candidates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from clv.errors import DataError
from ranking.experiments.position_bias import Examination

#: Gain of each outcome type; a shown row takes the largest gain among its outcomes.
DEFAULT_GAINS: Mapping[str, float] = {"click": 1.0, "add_to_cart": 2.0, "purchase": 3.0}
#: Cap on ``1 / theta_k``.
DEFAULT_MAX_WEIGHT = 10.0


@dataclass(frozen=True)
class InteractionLabels:
    """Per (query, product): the debiased mean gain and what it rests on."""

    query: np.ndarray  # object array of query strings
    product_id: np.ndarray
    label: np.ndarray  # debiased mean gain when examined
    shown: np.ndarray  # shown rows behind it
    raw: np.ndarray  # mean gain without debiasing (for comparison)
    clipped_rows: int
    max_weight: float
    gains: Mapping[str, float]


def row_gains(impressions: pa.Table, outcomes: pa.Table,
              gains: Mapping[str, float] = DEFAULT_GAINS) -> np.ndarray:
    """The gain of every impression row: the deepest outcome joined on (request, product)."""
    unknown = set(gains) - {"click", "add_to_cart", "purchase"}
    if unknown:
        raise DataError(f"gains: unknown outcome type(s) {sorted(unknown)}; "
                        "use click, add_to_cart, purchase")
    if any((not np.isfinite(v)) or v < 0 for v in gains.values()):
        raise DataError(f"gains must be finite and >= 0, got {dict(gains)}")
    key_i = [f"{r}\x1f{p}" for r, p in zip(impressions.column("request_id").to_pylist(),
                                             impressions.column("product_id").to_pylist(),
                                             strict=True)]
    best: dict[str, float] = {}
    returned: set[str] = set()
    for r, p, t in zip(outcomes.column("request_id").to_pylist(),
                       outcomes.column("product_id").to_pylist(),
                       outcomes.column("type").to_pylist(), strict=True):
        k = f"{r}\x1f{p}"
        if t == "return":
            returned.add(k)
            continue
        g = float(gains.get(t, 0.0))
        if g > best.get(k, 0.0):
            best[k] = g
    click = float(gains.get("click", 0.0))
    purchase = float(gains.get("purchase", 0.0))
    out = np.empty(len(key_i))
    for i, k in enumerate(key_i):
        g = best.get(k, 0.0)
        if k in returned and g == purchase:
            g = click
        out[i] = g
    return out


def interaction_labels(impressions: pa.Table, outcomes: pa.Table, examination: Examination, *,
                       gains: Mapping[str, float] = DEFAULT_GAINS,
                       max_weight: float = DEFAULT_MAX_WEIGHT) -> InteractionLabels:
    """Debiased mean gain per (query, product) over the rows where it was shown."""
    if not max_weight >= 1:
        raise DataError(f"max_weight must be >= 1, got {max_weight!r}")
    shown = np.asarray(impressions.column("position").to_numpy(zero_copy_only=False)) > 0
    imp = impressions.filter(pa.array(shown))
    g = row_gains(imp, outcomes, gains)
    pos = np.asarray(imp.column("position").to_numpy(zero_copy_only=False), dtype=np.int64)
    theta = examination.at(pos)
    if np.any(theta <= 0):
        bad = pos[theta <= 0][0]
        raise DataError(f"examination at position {bad} is estimated as 0: positions nobody "
                        "looks at carry no label information; shorten the lists or collect more")
    w = 1.0 / theta
    clipped = int((w > max_weight).sum())
    w = np.minimum(w, max_weight)
    queries = np.asarray(imp.column("query").to_pylist(), dtype=object)
    if any(q is None for q in queries):
        raise DataError("impressions without the query text (written with keep_query=False) "
                        "cannot give training labels: features need the query")
    products = np.asarray(imp.column("product_id").to_pylist(), dtype=object)
    keys = np.char.add(np.char.add(queries.astype(str), "\x1f"), products.astype(str))
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    n = np.bincount(inverse).astype(np.float64)
    label = np.bincount(inverse, weights=w * g) / n
    raw = np.bincount(inverse, weights=g) / n
    return InteractionLabels(queries[first], products[first], label, n.astype(np.int64), raw,
                             clipped, float(max_weight), dict(gains))
