"""The compiled plan of a weights config: everything the ranking kernel needs, as arrays.

A :class:`~objectives.config.WeightsConfig` is compiled once, for one catalog, into a
:class:`Plan`: the (arm, segment, category rule) weight table and each product's rule row, each
product's sink level (ranked, demoted out of stock, buried) and whether it is hidden, the
segment thresholds and arm shares that pick a customer's table row, the business slots and the
relevance tier width. Every ranking then runs one kernel (:mod:`objectives._blend_kernels`)
with that plan:

- the served ranker (:class:`ranking.core.ServingConfig` is a plan plus pins, and
  :func:`ranking.core.blend` ranks a query's candidates with it);
- the tuner, the evaluation and the quality benchmark (:class:`objectives.groups.QueryGroups`
  built from a plan ranks judged pools with it);

so what is tuned and reported is what is served. Judged pools differ from served candidates in
two documented ways only: a pool cannot drop products, so ``out_of_stock: hide`` counts as
demote there (the sink level, not the hidden mask), and pins, which belong to a query's text,
do not apply to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from clv.errors import ConfigError, ConfigIssue
from objectives.config import WeightsConfig, traffic_position

#: Width of a relevance tier in z units when ``relevance_tiers`` is on: business terms may
#: reorder items whose relevance is within about one standard deviation band.
TIER_WIDTH = 1.0
#: Sink levels: a product with a higher level comes after every product with a lower one.
RANKED, OUT_OF_STOCK, BURIED = 0, 1, 2


@dataclass(frozen=True)
class Plan:
    """A weights config compiled for one catalog (rows ``0..n_products-1``).

    Immutable: a config change compiles a new plan, swapped in whole. A search reads only the
    arrays and plain values compiled here, never ``config`` (the pydantic model it came from,
    kept for the tuner and for reports).
    """

    config: WeightsConfig
    segment_names: tuple[str | None, ...]  # row 0: no segment (the defaults); then sorted
    segment_thresholds: np.ndarray  # float64 min_clv_quantile per segment row (row 0: NaN)
    experiment: str | None  # the running experiment (the first in the file), if any
    arm_names: tuple[str | None, ...]  # row 0: no arm (anonymous, outside every arm)
    arm_shares: np.ndarray  # float64 traffic share of each arm row after 0, in file order
    #: float64 (n_segments, n_arms - 1): the arms' shares among each segment row's customers
    #: (:meth:`WeightsConfig.arm_shares`; every row equals ``arm_shares`` without
    #: ``shares_by_segment``)
    segment_arm_shares: np.ndarray
    rule_names: tuple[str | None, ...]  # row 0: no category rule; then the file's order
    weight_table: np.ndarray  # float64 (n_arms, n_segments, n_rules, n_terms)
    product_rule: np.ndarray  # int64 per product: its category rule row
    sink: np.ndarray  # int8 per product: RANKED, OUT_OF_STOCK (demoted or hidden), BURIED
    hidden: np.ndarray  # bool per product: out of stock under ``out_of_stock: hide``
    in_stock: np.ndarray  # bool per product: the stock ``sink`` and ``hidden`` come from
    out_of_stock: str  # guardrails.out_of_stock, for :meth:`restocked`
    tier_width: float  # relevance tiers in z units (0: off)
    slots: int  # guardrails.business_slots (0: off)
    exploration: Exploration  # the compiled ``exploration`` section

    @classmethod
    def compile(cls, config: WeightsConfig, product_ids: Mapping[str, int] | Sequence[str],
                categories: Sequence[str], in_stock: np.ndarray | None) -> Plan:
        """Compile ``config`` for a catalog: ``product_ids`` (id -> row, or the ids in row
        order), each product's category path and stock (None: everything in stock)."""
        segments: tuple[str | None, ...] = (None, *sorted(config.segments))
        rules: tuple[str | None, ...] = (None, *config.categories)
        arms = config.arms()
        arm_names: tuple[str | None, ...] = (None, *arms)
        stock = (np.ones(len(categories), np.bool_) if in_stock is None
                 else np.asarray(in_stock, np.bool_))
        buried = np.zeros(len(categories), np.bool_)
        buried[_rows_of(config.buries, product_ids)] = True
        sink, hidden = sink_levels(config.guardrails.out_of_stock, buried, stock)
        return cls(
            config=config, segment_names=segments,
            segment_thresholds=np.array(
                [np.nan, *(config.segments[s].min_clv_quantile for s in segments[1:])]),
            experiment=next(iter(config.experiments), None), arm_names=arm_names,
            arm_shares=np.array([arm.share for arm in arms.values()], np.float64),
            segment_arm_shares=np.array(
                [list(config.arm_shares(s).values()) for s in segments],
                np.float64).reshape(len(segments), len(arms)),
            rule_names=rules, weight_table=weight_table(config, segments, rules, arm_names),
            product_rule=_product_rules(config, rules, categories), sink=sink, hidden=hidden,
            in_stock=stock, out_of_stock=config.guardrails.out_of_stock,
            tier_width=TIER_WIDTH if config.guardrails.relevance_tiers else 0.0,
            slots=config.guardrails.business_slots,
            exploration=_exploration(config),
        )

    def restocked(self, in_stock: np.ndarray) -> Plan:
        """The same plan with sink levels and hidden mask compiled for another stock."""
        stock = np.asarray(in_stock, np.bool_)
        sink, hidden = sink_levels(self.out_of_stock, self.sink == BURIED, stock)
        return replace(self, sink=sink, hidden=hidden, in_stock=in_stock)

    def segment_index(self, clv_quantile: float | None) -> int:
        """Row of the weight table for a customer at ``clv_quantile`` (None or NaN: row 0):
        the segment with the highest threshold at or below it (thresholds are distinct;
        :meth:`WeightsConfig.segment_for_quantile`)."""
        if clv_quantile is None:
            return 0
        eligible = np.flatnonzero(self.segment_thresholds <= clv_quantile)
        if eligible.size == 0:
            return 0
        return int(eligible[np.argmax(self.segment_thresholds[eligible])])

    def arm_index(self, customer_id: str | None, segment: int = 0) -> int:
        """Row of the weight table for the customer's experiment arm (0: none): the first arm
        whose cumulative share among the customers of ``segment`` (a row of
        :meth:`segment_index`) exceeds the customer's traffic position
        (:meth:`WeightsConfig.arm_for`)."""
        if customer_id is None or self.experiment is None:
            return 0
        position = traffic_position(self.experiment, customer_id)
        cumulative = 0.0
        for row, share in enumerate(self.segment_arm_shares[segment].tolist(), start=1):
            cumulative += share
            if position < cumulative:
                return row
        return 0

    def tuned_rule_weights(self, weights: np.ndarray) -> np.ndarray:
        """(n_rules, n_terms): the weights each category rule row serves a customer without a
        segment or arm once the default weights are tuned to ``weights``
        (:meth:`WeightsConfig.tuned`: rules scaled with the defaults). What the tuner ranks
        its pools with, row 0 of the table a plan of the tuned config would serve."""
        tuned = self.config.tuned(np.asarray(weights, np.float64))
        return weight_table(tuned, (None,), self.rule_names, (None,))[0, 0]


@dataclass(frozen=True)
class Exploration:
    """A compiled ``exploration`` section: ``share`` of searches shuffle their ``top_k``
    (:mod:`ranking.exploration` draws the shuffle)."""

    share: float = 0.0
    top_k: int = 3
    seed: int = 0

    @property
    def active(self) -> bool:
        return self.share > 0.0 and self.top_k >= 2


def _exploration(config: WeightsConfig) -> Exploration:
    """The config's exploration section as a plain frozen dataclass (no pydantic per search)."""
    e = config.exploration
    return Exploration(share=float(e.share), top_k=int(e.top_k), seed=int(e.seed))


def weight_table(config: WeightsConfig, segments: Sequence[str | None],
                 rules: Sequence[str | None], arms: Sequence[str | None]) -> np.ndarray:
    """(n_arms, n_segments, n_rules, n_terms) float64: :meth:`WeightsConfig.resolved` of every
    (segment, category rule, arm)."""
    return np.array([[[config.resolved(s, r, a) for r in rules] for s in segments]
                     for a in arms], np.float64)


def sink_levels(out_of_stock: str, buried: np.ndarray,
                in_stock: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sink level int8, hidden bool) per product for an ``out_of_stock`` policy: buried
    products sink below everything; out-of-stock ones are demoted (``demote``), hidden
    (``hide``: their sink level is the demoted one, which is what a judged pool, which cannot
    drop products, ranks them by) or left alone (``ignore``)."""
    missing = ~np.asarray(in_stock, np.bool_)
    sink = np.full(missing.shape[0], RANKED, np.int8)
    if out_of_stock != "ignore":
        sink[missing] = OUT_OF_STOCK
    sink[np.asarray(buried, np.bool_)] = BURIED
    hidden = missing if out_of_stock == "hide" else np.zeros(missing.shape[0], np.bool_)
    return sink, hidden


def _product_rules(config: WeightsConfig, rules: tuple[str | None, ...],
                   categories: Sequence[str]) -> np.ndarray:
    """Each product's category rule row (the rule is found once per distinct category)."""
    row = {rule: i for i, rule in enumerate(rules)}
    of_category = {c: row[config.category_rule_for(c)] for c in set(categories)}
    return np.array([of_category[c] for c in categories], np.int64)


def _rows_of(ids: Sequence[str], product_ids: Mapping[str, int] | Sequence[str]) -> np.ndarray:
    """Catalog rows of ``ids``; an id the catalog lacks is a config error, never a wrong row."""
    wanted = set(ids)
    index = (product_ids if isinstance(product_ids, Mapping)
             else {p: i for i, p in enumerate(product_ids) if p in wanted})
    unknown = [p for p in ids if p not in index]
    if unknown:
        raise ConfigError([ConfigIssue("<weights>", None, "buries",
                                       f"unknown products {unknown[:5]} in buries")])
    return np.array([index[p] for p in ids], np.int64)
