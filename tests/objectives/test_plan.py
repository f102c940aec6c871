"""The compiled plan (objectives.plan): what it compiles, and that the served ranker, the tuner
and the quality benchmark rank the same pool under the same config identically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from objectives.config import TERM_NAMES, ConfigError, parse_config
from objectives.groups import QueryGroups
from objectives.plan import BURIED, OUT_OF_STOCK, RANKED, TIER_WIDTH, Plan
from objectives.quality import BUSINESS_FIGURES, per_query_figures
from ranking import core
from ranking.app.build import Served, query_groups

N_PRODUCTS = 80
IDS = [f"P{i}" for i in range(N_PRODUCTS)]
WEIGHTS = ("version: 1\nweights: {margin: 0.4, clv: 0.1, returns: 0.2, inventory: 0.3}\n"
           "categories: {'A/1': {weights: {margin: 0.9}}, 'A/2': {weights: {returns: 0.0}}}\n"
           "buries: [P3, P11, P40]\n")


def recovered_orders(figure_at: dict[int, np.ndarray], sizes: np.ndarray) -> list[list[int]]:
    """Each query's order from the means at k = 1, 2, ... of a per-row code (the product
    row): the k-th item's code is k * mean@k - (k - 1) * mean@(k-1)."""
    out = []
    for q, size in enumerate(sizes.tolist()):
        sums = [0.0] + [figure_at[k][q] * k for k in range(1, size + 1)]
        out.append([round(b - a) for a, b in zip(sums[:-1], sums[1:], strict=True)])
    return out


@pytest.mark.parametrize("guardrails", [
    "{out_of_stock: demote, relevance_tiers: true, business_slots: 3}",
    "{out_of_stock: demote, relevance_tiers: true}",
    "{out_of_stock: demote, business_slots: 2}",
    "{out_of_stock: hide, relevance_tiers: true, business_slots: 3}",
    "{out_of_stock: ignore}",
])
def test_served_ranker_tuner_and_benchmark_give_identical_orders(guardrails: str) -> None:
    """One pool set and one config (out-of-stock products, buried ones, category rules,
    relevance tiers, business slots; no segment, no arm) ranked three ways:

    - served: the config tuned to weights ``w``, compiled as the ranker compiles it
      (``ServingConfig.build``) and each query's pool ranked by ``ranking.core.blend``, the
      call ``Ranker.search`` makes;
    - tuned: the judged pools as ``build`` hands them to ``tune_weights`` (``Served`` +
      ``query_groups``), ranked by ``QueryGroups.orders(QueryGroups.blend(w))``, and read
      back through ``value_at_k`` as the evaluation reads margin;
    - benchmarked: the same groups through ``objectives.quality.per_query_figures``.

    Scores are rounded so that ties and relevance tier boundaries occur. A pool cannot hide:
    under ``out_of_stock: hide`` the served list is the pool order without the hidden ones.
    """
    rng = np.random.default_rng(11)
    terms = np.round(rng.normal(size=(N_PRODUCTS, 4)) * 2) / 2
    terms = np.pad(terms, ((0, 0), (0, len(TERM_NAMES) - 4)))  # terms declared later: 0
    terms = terms.astype(np.float32)
    in_stock = rng.random(N_PRODUCTS) > 0.2
    categories = [f"A/{i % 4}" for i in range(N_PRODUCTS)]
    text = WEIGHTS + f"guardrails: {guardrails}\n"
    config = parse_config(text, product_ids=set(IDS))
    sizes = rng.integers(4, 13, size=150)
    rows = np.concatenate([rng.choice(N_PRODUCTS, s, replace=False) for s in sizes])
    judgments = pd.DataFrame({"query_id": np.repeat(np.arange(sizes.size), sizes)[::-1].copy(),
                              "product_id": [IDS[r] for r in rows],
                              "grade": rng.integers(0, 4, rows.size).astype(float)})
    relevance = rng.integers(0, 5, rows.size) / 2.0
    w = np.array([1.0, 0.1, 0.6, 0.2])  # tuned: category rules scale with the defaults
    w = np.pad(w, (0, len(TERM_NAMES) - 4))

    served = Served.build(config, terms, np.zeros(N_PRODUCTS), in_stock, IDS, categories)
    groups = query_groups(judgments, np.ones(rows.size, bool), relevance, rows, served)
    scores = groups.blend(w)
    tuned = [groups.products[o].tolist() for o in groups.orders(scores)]

    codes = groups.products.astype(np.float64)
    longest = int(sizes.max())
    evaluated = recovered_orders({k: groups.value_at_k(scores, codes, k)
                                  for k in range(1, longest + 1)}, np.diff(groups.qptr))
    values = {key: codes if key == "margin" else np.zeros(rows.size)
              for key, _, _ in BUSINESS_FIGURES}
    benchmarked = recovered_orders(
        {k: per_query_figures(groups, scores, values, k)["margin"]
         for k in range(1, longest + 1)}, np.diff(groups.qptr))

    serving = core.ServingConfig.build(config.tuned(w), {p: i for i, p in enumerate(IDS)},
                                       categories, str.lower, text)
    segment, arm = serving.segment_index(None), serving.arm_index(None)
    hidden = config.guardrails.out_of_stock == "hide"
    for q, s in enumerate(groups.slices()):
        out = core.blend(groups.relevance[s], groups.products[s], terms, in_stock, serving,
                         segment, s.stop - s.start, None, arm)
        pool = [p for p in tuned[q] if in_stock[p] or not hidden]
        assert out.rows.tolist() == pool, f"query {q}: served and tuned orders differ"
    assert evaluated == tuned
    assert benchmarked == tuned


def test_plan_compiles_sink_levels_hidden_mask_and_rule_rows() -> None:
    """Buried products sink below demoted out-of-stock ones; ``hide`` hides them (and gives
    them the demoted level a judged pool ranks them by); ``ignore`` leaves them ranked."""
    ids = ["P0", "P1", "P2", "P3"]
    stock = np.array([True, False, True, False])
    text = ("version: 1\nburies: [P0]\ncategories: {'A/1': {weights: {margin: 0.9}}}\n"
            "guardrails: {out_of_stock: OOS, relevance_tiers: true, business_slots: 2}\n")
    levels = {}
    for policy in ("demote", "hide", "ignore"):
        plan = Plan.compile(parse_config(text.replace("OOS", policy)), ids,
                            ["A/1/x", "A/10", "", "A/1"], stock)
        levels[policy] = (plan.sink.tolist(), plan.hidden.tolist())
        assert plan.product_rule.tolist() == [1, 0, 0, 1]
        assert plan.tier_width == TIER_WIDTH and plan.slots == 2
    assert levels["demote"] == ([BURIED, OUT_OF_STOCK, RANKED, OUT_OF_STOCK], [False] * 4)
    assert levels["hide"] == ([BURIED, OUT_OF_STOCK, RANKED, OUT_OF_STOCK],
                              [False, True, False, True])
    assert levels["ignore"] == ([BURIED, RANKED, RANKED, RANKED], [False] * 4)
    restocked = plan.restocked(np.ones(4, bool))
    assert restocked.sink.tolist() == [BURIED, RANKED, RANKED, RANKED]
    # what a judged pool ranks by: buried last, after the demoted out-of-stock product
    demote = Plan.compile(parse_config(text.replace("OOS", "demote")), ids, [""] * 4, stock)
    groups = QueryGroups.of_products(demote, np.array([0, 4], np.int64),
                                     np.array([3.0, 2.0, 1.0, 0.0]), np.arange(4),
                                     np.zeros((4, 4), np.float32), np.zeros(4), np.zeros(4))
    assert groups.orders(groups.relevance)[0].tolist() == [2, 1, 3, 0]
    with pytest.raises(ConfigError, match="P9"):
        Plan.compile(parse_config("version: 1\nburies: [P9]\n"), ids, [""] * 4, stock)


def test_segment_and_arm_rows_follow_the_config() -> None:
    text = """\
version: 1
weights: {margin: 1.0}
segments:
  gold: {min_clv_quantile: 0.5, weights: {margin: 2.0}}
  amber: {min_clv_quantile: 0.3, weights: {margin: 3.0}}
  top: {min_clv_quantile: 0.9}
experiments: {e: {arms: {a: {share: 0.3}, b: {share: 0.25, weights: {margin: 5.0}}}}}
"""
    config = parse_config(text)
    plan = Plan.compile(config, ["P0"], [""], None)
    for q in (None, np.nan, 0.0, 0.29, 0.3, 0.49, 0.5, 0.7, 0.9, 1.0):
        expected = None if q is None else config.segment_for_quantile(q)
        assert plan.segment_names[plan.segment_index(q)] == expected
    for customer in [None, *(f"C{i}" for i in range(300))]:
        assert plan.arm_names[plan.arm_index(customer)] == config.arm_for(customer)
    arm_b, gold = plan.arm_names.index("b"), plan.segment_names.index("gold")
    assert plan.weight_table[arm_b, gold, 0].tolist() == config.resolved("gold", None, "b").tolist()
