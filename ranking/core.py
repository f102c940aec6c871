"""The blend core on the serving side: relevance scores and business terms into the final top-k.

The blend rule is explained once, in :mod:`objectives._blend_kernels`. A weights config is
compiled once into a :class:`~objectives.plan.Plan`, and the tuner and the benchmarks rank
their judged pools with the same kernel. This module adds what only serving has: pins, which
may bring in products retrieval did not find.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

import numpy as np

from clv.errors import ConfigError, ConfigIssue
from objectives import _blend_kernels as kernels
from objectives.config import WeightsConfig
from objectives.plan import Plan
from ranking.query import AnalyzedQuery


@dataclass(frozen=True)
class ServingConfig(Plan):
    """An immutable, ready-to-serve snapshot of a weights config: its compiled
    :class:`~objectives.plan.Plan` plus the pins, the YAML text and its version.

    Built once per config load and swapped in whole, so a search always sees one consistent
    config even while another thread reloads.
    """

    pins: dict[str, np.ndarray]  # normalized query -> product rows, in pinned order
    text: str  # the YAML as loaded, written back verbatim when the bundle is saved
    version: str  # sha256 prefix of the config text
    #: The plan recompiled for a stock array other than ``in_stock`` (at most one, reused).
    _restocked: list[tuple[np.ndarray, Plan]] = field(
        default_factory=list, init=False, repr=False, compare=False)

    @classmethod
    def build(
        cls, config: WeightsConfig, product_index: Mapping[str, int], categories: list[str],
        normalize: Callable[[str], str], text: str, source: str = "<weights>",
        in_stock: np.ndarray | None = None,
    ) -> ServingConfig:
        """Compile ``config`` for the catalog (every (arm, segment, category rule) weight
        vector, per-product lookups, sink levels for ``in_stock``) and index its pins.

        ``normalize`` maps a query to its canonical form (the analyzer's tokens joined), so
        pins match however the query is typed. Without ``in_stock`` the stock part is compiled
        at the first :func:`blend` from the stock it is given, once.
        """
        plan = Plan.compile(config, product_index, categories, in_stock)
        return cls(**{f.name: getattr(plan, f.name) for f in fields(Plan)},
                   pins=_pins_by_tokens(config, product_index, normalize, source),
                   text=text, version=hashlib.sha256(text.encode()).hexdigest()[:12])

    def pinned(self, query: AnalyzedQuery) -> np.ndarray | None:
        """The product rows pinned for ``query``, in order, or None."""
        return self.pins.get(query.key)

    def stocked(self, in_stock: np.ndarray) -> Plan:
        """This snapshot's plan for the stock array ``in_stock``: itself when compiled with
        that array, else the plan recompiled for it (once; kept for the next call)."""
        if in_stock is self.in_stock:
            return self
        kept = self._restocked[:1]
        if kept and kept[0][0] is in_stock:
            return kept[0][1]
        plan = self.restocked(in_stock)
        self._restocked[:] = [(in_stock, plan)]
        return plan


def _pins_by_tokens(config: WeightsConfig, product_index: Mapping[str, int],
                    normalize: Callable[[str], str], source: str) -> dict[str, np.ndarray]:
    """Pinned product rows by the analyzer's form of each pinned query (``normalize``, the
    :func:`ranking.query.query_key` of its tokens: the key a searched query is looked up by).
    Two pins the analyzer reads as one query (e.g. full-width and plain letters) are refused,
    not silently merged: a file the ranker read was refused at its line already
    (``parse_config(pin_rule=...)``, the same rule); a config built in code is refused here."""
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
    plan = serving.stocked(in_stock)
    rule_weights = plan.weight_table[arm, segment]
    n_pins = 0 if pins is None else len(pins)
    slots, caught = plan.slots, 0
    while True:
        pos, scores, contrib = kernels.blend_topk(
            np.asarray(relevance, np.float64), candidates, terms, plan.product_rule,
            rule_weights, plan.sink, plan.hidden, plan.tier_width, slots + caught, k + n_pins,
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
    no_parts = np.full((n_pins, contrib.shape[1]), np.nan)  # as wide as the terms given
    return Blended(
        rows=np.concatenate([pins, rows[rest]])[:k],
        scores=np.concatenate([np.full(n_pins, np.nan), scores[rest]])[:k],
        contributions=np.concatenate([no_parts, contrib[rest]])[:k],
        pinned=np.concatenate([np.ones(n_pins, bool), np.zeros(int(rest.sum()), bool)])[:k],
    )
