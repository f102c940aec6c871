"""The blend core: turns relevance scores and business terms into the final top-k.

``score = z(relevance) + sum_k w_k * term_k[product]``, with the weights resolved for the
customer's segment, each product's category and the customer's experiment arm (precedence in
:meth:`objectives.config.WeightsConfig.resolved`), then the guardrails (out-of-stock policy,
buries, relevance tiers, business slots, pins). The numeric work is one Numba kernel
(:func:`ranking._blend_kernels.blend_topk`); this module prepares its inputs from a validated
weights config and applies pins, which may bring in products retrieval did not find.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from objectives.config import TERM_NAMES, ConfigError, ConfigIssue, WeightsConfig
from ranking import _blend_kernels as kernels

_OOS_CODES = {"demote": kernels.OOS_DEMOTE, "hide": kernels.OOS_HIDE, "ignore": kernels.OOS_IGNORE}
#: Width of a relevance tier in z units when ``relevance_tiers`` is on: business terms may
#: reorder items whose relevance is within about one standard deviation band.
TIER_WIDTH = 1.0


@dataclass(frozen=True)
class ServingConfig:
    """An immutable, ready-to-serve snapshot of a weights config.

    Built once per config load and swapped in whole, so a search always sees one consistent
    config even while another thread reloads.
    """

    config: WeightsConfig
    segment_names: tuple[str | None, ...]  # index 0 is the default (no segment)
    arm_names: tuple[str | None, ...]  # index 0: no arm (anonymous, outside every arm)
    weight_table: np.ndarray  # (n_arms + 1, n_segments + 1, n_category_rules + 1, n_terms)
    product_group: np.ndarray  # int64 per product: index of its category rule (0 = none)
    buried: np.ndarray  # bool per product
    pins: dict[str, np.ndarray]  # normalized query -> product rows, in pinned order
    oos_policy: int
    tier_width: float
    slots: int  # guardrails.business_slots (0: off)
    text: str  # the YAML as loaded, written back verbatim when the bundle is saved
    version: str  # sha256 prefix of the config text

    @classmethod
    def build(
        cls, config: WeightsConfig, product_index: dict[str, int], categories: list[str],
        normalize: Callable[[str], str], text: str, source: str = "<weights>",
    ) -> ServingConfig:
        """Resolve every (arm, segment, category rule) weight vector and per-product lookups.

        ``normalize`` maps a query to its canonical form (the analyzer's tokens joined), so
        pins match however the query is typed.
        """
        segments: tuple[str | None, ...] = (None, *sorted(config.segments))
        rules: tuple[str | None, ...] = (None, *config.categories)
        arms: tuple[str | None, ...] = (None, *config.arms())
        table = np.array([[[config.resolved(s, r, a) for r in rules] for s in segments]
                          for a in arms], np.float64)
        rule_index = {r: i for i, r in enumerate(rules)}
        groups = np.array([rule_index[config.category_rule_for(c)] for c in categories], np.int64)
        buried = np.zeros(len(categories), dtype=np.bool_)
        buried[[product_index[p] for p in config.buries]] = True
        pins = _pins_by_tokens(config, product_index, normalize, source)
        return cls(
            config=config, segment_names=segments, arm_names=arms, weight_table=table,
            product_group=groups,
            buried=buried, pins=pins, oos_policy=_OOS_CODES[config.guardrails.out_of_stock],
            tier_width=TIER_WIDTH if config.guardrails.relevance_tiers else 0.0,
            slots=config.guardrails.business_slots,
            text=text, version=hashlib.sha256(text.encode()).hexdigest()[:12],
        )

    def segment_index(self, clv_quantile: float | None) -> int:
        """Row of the weight table for a customer at ``clv_quantile`` (None: default)."""
        if clv_quantile is None:
            return 0
        return self.segment_names.index(self.config.segment_for_quantile(clv_quantile))

    def arm_index(self, customer_id: str | None) -> int:
        """Row of the weight table for the customer's experiment arm (0: none)."""
        return self.arm_names.index(self.config.arm_for(customer_id))


def _pins_by_tokens(config: WeightsConfig, product_index: dict[str, int],
                    normalize: Callable[[str], str], source: str) -> dict[str, np.ndarray]:
    """Pinned product rows by the analyzer's form of each pinned query. Two pins the analyzer
    reads as one query (e.g. full-width and plain letters) are refused, not silently merged."""
    pins: dict[str, np.ndarray] = {}
    owner: dict[str, str] = {}
    for query, ids in config.pins.items():
        key = normalize(query)
        if not key or key in owner:
            what = "has no words" if not key else f"is the same query as {owner[key]!r}"
            raise ConfigError([ConfigIssue(source, None, f"pins.{query!r}",
                                           f"pinned query {query!r} {what} for the analyzer")])
        owner[key] = query
        pins[key] = np.array([product_index[p] for p in ids], np.int64)
    return pins


@dataclass(frozen=True)
class Blended:
    """Top-k rows of the catalog with scores and per-term contributions."""

    rows: np.ndarray  # product rows, best first
    scores: np.ndarray
    contributions: np.ndarray  # (k, 1 + n_terms): relevance, then TERM_NAMES
    pinned: np.ndarray  # bool: placed by a pin


def blend(
    relevance: np.ndarray, candidates: np.ndarray, terms: np.ndarray, in_stock: np.ndarray,
    serving: ServingConfig, segment: int, k: int, pins: np.ndarray | None = None, arm: int = 0,
) -> Blended:
    """Rank ``candidates`` (product rows) and return the top ``k``: ``pins[i]`` at position
    ``i``, then the blended candidates (a pinned product is not repeated among them).

    Business slots count after the pins: the blend picks ``slots`` products that are not
    pinned. A pinned product the kernel picked for a slot would otherwise take one of them,
    so the pick is widened by the pinned products it caught until none is lost (at most one
    extra kernel call per pin, and only on pinned queries).
    """
    weights = serving.weight_table[arm, segment][serving.product_group[candidates]]
    n_pins = 0 if pins is None else len(pins)
    slots, caught = serving.slots, 0
    while True:
        pos, scores, contrib = kernels.blend_topk(
            np.asarray(relevance, np.float64), candidates, terms, weights, in_stock,
            serving.buried, serving.oos_policy, serving.tier_width, slots + caught, k + n_pins,
        )
        rows = candidates[pos]
        if not (n_pins and slots):
            break
        in_slots = int(np.isin(rows[: slots + caught], pins).sum())
        if in_slots == caught:
            break
        caught = in_slots
    if n_pins == 0:
        return Blended(rows, scores, contrib, np.zeros(rows.shape[0], dtype=np.bool_))
    rest = ~np.isin(rows, pins)
    no_parts = np.full((n_pins, 1 + len(TERM_NAMES)), np.nan)
    return Blended(
        rows=np.concatenate([pins, rows[rest]])[:k],
        scores=np.concatenate([np.full(n_pins, np.nan), scores[rest]])[:k],
        contributions=np.concatenate([no_parts, contrib[rest]])[:k],
        pinned=np.concatenate([np.ones(n_pins, bool), np.zeros(int(rest.sum()), bool)])[:k],
    )
