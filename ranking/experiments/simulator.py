"""A seeded traffic simulator: searches by real customers of a bundle's CLV world, ranked by the
real :class:`~ranking.ranker.Ranker` with each arm's weights, answered by a known click and
purchase model. It writes the event contract, so a readout or a bandit runs on it exactly as on
live logs, and it knows the truth, so tests can check them.

The world (everything drawn from ``numpy.random.default_rng(seed)``; the figures are
**simulated**):

- **Customers** are the bundle's (``customers.npz``: id, CLV, CLV quantile). A search comes from
  customer ``c`` with probability proportional to ``0.5 + quantile_c``: high-CLV customers search
  up to three times as often as the lowest. Each customer has a click propensity
  ``v_c ~ Gamma(click_shape, 1/click_shape)`` and a purchase propensity
  ``u_c ~ Gamma(buy_shape, 1/buy_shape)`` (both mean 1), fixed for the world, so one customer's
  searches are correlated, as real ones are, and the readout's clustering by customer matters.
- **Queries** come from the judgments, each with probability proportional to its number of
  judged rows (the only frequency a judgments file carries).
- **Arms**: the customer's segment and arm are the ranker's own (``Plan.segment_index`` and
  ``Plan.arm_index``: the BLAKE2b traffic position of (experiment, customer) against the arm
  shares of the customer's segment). ``assignment_key`` replaces the experiment name in that
  hash, so replays can draw fresh splits with the same machinery.
- **Ranking**: the real ranker's path (BM25 candidates, features, LambdaMART, the Numba blend
  with the plan's weight table for (arm, segment)); each distinct (config, query, segment, arm)
  is ranked once and cached, so replays cost draws, not searches.
- **Clicks**: a position-based model. Position ``p`` is examined with probability
  ``p ** -position_decay``; a product of grade ``g`` (unjudged products: grade 0) attracts with
  ``attract_floor + (attract_top - attract_floor) * (2**g - 1) / (2**g_max - 1)``;
  ``P(click) = min(1, exam * attract * v_c)``, independently per shown product.
- **Add to cart** after a click with ``cart_given_click * (0.1 + 0.9 * g / g_max)``;
  **purchase** after the cart with ``min(1, buy_given_cart * (price / median price) **
  -price_elasticity * u_c)``; quantity ``1 + Poisson(extra_units)``; the line is **returned**
  with the product's return rate (the bundle's; unknown: the catalog median).
- **Money**: unit price from the catalog file (``price``); unit margin from the bundle.

:meth:`TrafficSimulator.expected` computes every metric's expectation in closed form from the
same probabilities (per customer, then weighted by search frequency), which is the truth an
experiment's lift is checked against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from clv.errors import ArgumentError, DataError
from objectives.config import traffic_position
from ranking import core
from ranking.experiments.events import (
    IMPRESSION_SCHEMA,
    OUTCOME_SCHEMA,
    query_hash,
    validate_impressions,
    validate_outcome_records,
)
from ranking.exploration import shuffle
from ranking.ranker import Ranker

#: Day 0 of a simulation, UTC midnight (a Monday).
START = datetime(2026, 1, 5, tzinfo=UTC)
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class ClickModel:
    """The simulator's truth: how customers examine, click, buy and return (module docs)."""

    position_decay: float = 0.8
    attract_floor: float = 0.02
    attract_top: float = 0.6
    cart_given_click: float = 0.35
    buy_given_cart: float = 0.55
    price_elasticity: float = 0.3
    extra_units: float = 0.3
    click_shape: float = 4.0
    buy_shape: float = 2.0

    def examination(self, positions: np.ndarray) -> np.ndarray:
        return np.asarray(positions, np.float64) ** -self.position_decay

    def attractiveness(self, grade: np.ndarray, g_max: float) -> np.ndarray:
        g = np.asarray(grade, np.float64)
        return self.attract_floor + (self.attract_top - self.attract_floor) * (
            (2.0**g - 1.0) / (2.0**g_max - 1.0))

    def cart_rate(self, grade: np.ndarray, g_max: float) -> np.ndarray:
        return self.cart_given_click * (0.1 + 0.9 * np.asarray(grade, np.float64) / g_max)


@dataclass(frozen=True)
class Ranked:
    """One cached result list: catalog rows and scores (NaN: pinned), top-k order."""

    rows: np.ndarray
    scores: np.ndarray


@dataclass
class Arms:
    """A served config with its arms: what :meth:`TrafficSimulator.run_day` ranks with."""

    serving: core.ServingConfig
    key: str | None  # the string hashed with the customer id (None: no experiment)

    @property
    def names(self) -> tuple[str | None, ...]:
        return self.serving.arm_names


@dataclass
class SimulatedDay:
    """One day of events (contract tables) and what the simulator knew while drawing them."""

    impressions: pa.Table
    outcomes: pa.Table
    customers: np.ndarray  # customer index per search
    arms: np.ndarray  # arm row per search
    segments: np.ndarray  # segment row per search
    queries: np.ndarray  # query index per search
    truth: dict[str, np.ndarray] = field(default_factory=dict)  # expected values per search


class TrafficSimulator:
    """Seeded traffic over one bundle and its judgments (module docs say what is drawn how).

    ``bundle``: a bundle directory or a loaded :class:`Ranker`. ``judgments``: a judgments file
    or DataFrame (``query``, ``product_id``, ``grade``). ``catalog``: a catalog file or
    DataFrame with ``price`` (default: ``catalog.csv`` beside the judgments file); without one,
    prices are the margin over the median margin rate 1/3 (said in :attr:`notes`).
    """

    def __init__(self, bundle: str | Path | Ranker, judgments: str | Path | pd.DataFrame, *,
                 seed: int = 0, k: int = 10, catalog: str | Path | pd.DataFrame | None = None,
                 model: ClickModel | None = None) -> None:
        from objectives.catalog import load_judgments

        self.ranker = bundle if isinstance(bundle, Ranker) else Ranker.load(bundle)
        self.bundle_version = (None if isinstance(bundle, Ranker) else hashlib.sha256(
            (Path(bundle) / "manifest.json").read_bytes()).hexdigest()[:12])
        if not 1 <= k <= 100:
            raise ArgumentError(f"k must be in 1..100, got {k}")
        self.k, self.seed = k, seed
        self.model = model or ClickModel()
        self.notes: list[str] = []
        frame = (judgments if isinstance(judgments, pd.DataFrame)
                 else load_judgments(judgments))
        cat = self.ranker.catalog
        known = frame["product_id"].isin(cat.row_of)
        if not known.any():
            raise DataError("no judged product is in the bundle's catalog",
                            file=None if isinstance(judgments, pd.DataFrame) else judgments)
        frame = frame[known]
        counts = frame.groupby("query", sort=True).size()
        self.queries: list[str] = counts.index.tolist()
        self.query_weights = counts.to_numpy(np.float64) / counts.sum()
        self.g_max = float(frame["grade"].max()) or 1.0
        self._grades: dict[str, dict[int, float]] = {}
        rows = cat.rows(frame["product_id"].tolist())
        for q, r, g in zip(frame["query"], rows, frame["grade"], strict=True):
            self._grades.setdefault(q, {})[int(r)] = float(g)
        n = len(cat.product_ids)
        margin = (np.zeros(n) if cat.unit_margin is None
                  else np.nan_to_num(np.asarray(cat.unit_margin, np.float64), nan=0.0))
        self.unit_margin = margin
        rr = (np.full(n, np.nan) if cat.return_rate is None
              else np.asarray(cat.return_rate, np.float64))
        fill = float(np.nanmedian(rr)) if np.isfinite(rr).any() else 0.05
        self.return_rate = np.clip(np.where(np.isfinite(rr), rr, fill), 0.0, 1.0)
        self.price = self._prices(catalog, judgments, margin)
        self.median_price = float(np.median(self.price[self.price > 0])) if (
            self.price > 0).any() else 1.0
        cust = self.ranker.customers
        if cust.ids.size == 0:
            raise DataError("the bundle has no customers to draw searches from")
        self.customer_ids = cust.ids.astype(str)
        self.customer_quantile = np.asarray(cust.quantile, np.float64)
        rng = np.random.default_rng(seed)
        self.search_weight = 0.5 + np.nan_to_num(self.customer_quantile, nan=0.5)
        self.search_weight = self.search_weight / self.search_weight.sum()
        m = self.model
        self.click_propensity = rng.gamma(m.click_shape, 1.0 / m.click_shape, cust.ids.size)
        self.buy_propensity = rng.gamma(m.buy_shape, 1.0 / m.buy_shape, cust.ids.size)
        self._relevance: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
        self._ranked: dict[tuple[str, str, int, int], Ranked] = {}
        self._probs: dict[tuple[str, str, int, int], dict[str, np.ndarray]] = {}
        self._segments: dict[str, np.ndarray] = {}
        self._product_dictionary = pa.array(self.ranker.catalog.product_ids, pa.string())
        self._customer_dictionary = pa.array(self.customer_ids.tolist(), pa.string())
        self._query_dictionary = (pa.array(self.queries, pa.string()),
                                  pa.array([query_hash(q) for q in self.queries], pa.string()))
        self._positions: dict[str, np.ndarray] = {}

    # -- inputs --------------------------------------------------------------------------------
    def _prices(self, catalog: Any, judgments: Any, margin: np.ndarray) -> np.ndarray:
        from clv.tables import read_table

        if catalog is None and not isinstance(judgments, pd.DataFrame):
            sibling = Path(judgments).with_name("catalog.csv")
            catalog = sibling if sibling.is_file() else None
        if catalog is not None:
            frame = (catalog if isinstance(catalog, pd.DataFrame)
                     else read_table(catalog, dtype={"product_id": str}))
            if "price" in frame.columns:
                by_id = pd.Series(pd.to_numeric(frame["price"], errors="coerce").to_numpy(),
                                  index=frame["product_id"].astype(str))
                by_id = by_id[~by_id.index.duplicated()]
                price = by_id.reindex(self.ranker.catalog.product_ids).to_numpy(np.float64)
                if np.isfinite(price).any():
                    fill = float(np.nanmedian(price))
                    missing = int((~np.isfinite(price)).sum())
                    if missing:
                        self.notes.append(f"{missing:,} products without a catalog price got "
                                          f"the median {fill:.2f}")
                    return np.maximum(np.where(np.isfinite(price), price, fill), 0.0)
        self.notes.append("no catalog prices: unit price imputed as 3 x max(unit margin, 0.01)")
        return 3.0 * np.maximum(margin, 0.01)

    # -- configs ---------------------------------------------------------------------------------
    def arms(self, config: str | Path | Ranker | None = None, *,
             assignment_key: str | None = None) -> Arms:
        """The served config to rank with: the bundle's (None), a weights YAML (validated as
        the service validates a reload), or another ranker over this bundle."""
        if config is None:
            serving = self.ranker.serving
        elif isinstance(config, Ranker):
            serving = config.serving
        else:
            serving = self.ranker.variant(config).serving
        return Arms(serving, assignment_key or serving.experiment)

    def segment_rows(self, arms: Arms) -> np.ndarray:
        """Segment row of every customer under ``arms``' config (``Plan.segment_index``)."""
        key = arms.serving.version
        hit = self._segments.get(key)
        if hit is None:
            hit = np.array([arms.serving.segment_index(None if not np.isfinite(q) else float(q))
                            for q in self.customer_quantile], np.int64)
            self._segments[key] = hit
        return hit

    def arm_rows(self, arms: Arms, segments: np.ndarray) -> np.ndarray:
        """Arm row of every customer: ``Plan.arm_index`` with ``arms.key`` as the experiment
        (the first arm whose cumulative share in the customer's segment exceeds the customer's
        traffic position; 0 past the last arm)."""
        serving = arms.serving
        if arms.key is None or serving.experiment is None:
            return np.zeros(self.customer_ids.size, np.int64)
        pos = self._positions.get(arms.key)
        if pos is None:
            pos = np.array([traffic_position(arms.key, c) for c in self.customer_ids])
            self._positions = {arms.key: pos}  # one key at a time: replays change it
        below = pos[:, None] < np.cumsum(serving.segment_arm_shares, axis=1)[segments]
        return np.where(below.any(axis=1), below.argmax(axis=1) + 1, 0).astype(np.int64)

    # -- ranking ---------------------------------------------------------------------------------
    def ranked(self, arms: Arms, query: str, segment: int, arm: int) -> Ranked:
        """The top-k the ranker serves for ``query`` to a customer of (segment, arm) rows:
        the path of ``Ranker.search`` with the arm given instead of hashed, cached."""
        key = (arms.serving.version, query, segment, arm)
        hit = self._ranked.get(key)
        if hit is not None:
            return hit
        r = self.ranker
        if query not in self._relevance:
            tokens = r.analyzer(query)
            if not tokens:
                self._relevance[query] = (np.zeros(0, np.int64), np.zeros(0), None)
            else:
                cand = r.index.fields["all"].search(r.index.vocab.lookup(tokens),
                                                    r.n_candidates)[0]
                X = r.feature_space.extract(query, cand, r.catalog.priors)
                rel = r.relevance_scores(X) if cand.size else np.zeros(0)
                self._relevance[query] = (cand, rel, tokens)
        cand, rel, tokens = self._relevance[query]
        pins = None if tokens is None else arms.serving.pins.get(" ".join(tokens))
        if cand.size == 0 and pins is None:
            out = Ranked(np.zeros(0, np.int64), np.zeros(0))
        else:
            blended = core.blend(rel, cand, r.catalog.terms, r.catalog.in_stock, arms.serving,
                                 segment, self.k, pins, arm)
            scores = np.where(blended.pinned, np.nan, blended.scores.astype(np.float64))
            out = Ranked(np.asarray(blended.rows, np.int64), scores)
        self._ranked[key] = out
        return out

    def _list_probs(self, arms: Arms, qi: int, segment: int, arm: int) -> dict[str, np.ndarray]:
        """Per shown position of one list: exam x attract, cart, buy (before u_c), money."""
        key = (arms.serving.version, self.queries[qi], segment, arm)
        hit = self._probs.get(key)
        if hit is not None:
            return hit
        ranked = self.ranked(arms, self.queries[qi], segment, arm)
        m, rows = self.model, ranked.rows
        grades = self._grades.get(self.queries[qi], {})
        g = np.array([grades.get(int(r), 0.0) for r in rows], np.float64)
        price = self.price[rows]
        out = {"rows": rows, "scores": ranked.scores,
               "click": m.examination(np.arange(1, rows.size + 1)) * m.attractiveness(
                   g, self.g_max),
               "cart": m.cart_rate(g, self.g_max),
               "buy": m.buy_given_cart * (np.maximum(price, 0.01) / self.median_price) ** (
                   -m.price_elasticity),
               "price": price, "margin": self.unit_margin[rows],
               "return": self.return_rate[rows]}
        self._probs[key] = out
        return out

    # -- traffic ---------------------------------------------------------------------------------
    def run_day(self, day: int, config: str | Path | Ranker | Arms | None = None, *,
                searches: int = 1000, rng: np.random.Generator | None = None,
                assignment_key: str | None = None, request_prefix: str = "",
                validate: bool = True) -> SimulatedDay:
        """Draw one day of ``searches`` searches under ``config`` and return its events.

        ``rng`` defaults to one seeded by (seed, day), so a day is reproducible on its own;
        a bandit calls this once per day with the config it just wrote. ``validate=False``
        skips the contract checks (the tables are built to the schema; the tests validate
        them), for replays that draw thousands of days.
        """
        arms = config if isinstance(config, Arms) else self.arms(
            config, assignment_key=assignment_key)
        rng = rng or np.random.default_rng([self.seed, day])
        seg_of = self.segment_rows(arms)
        arm_of = self.arm_rows(arms, seg_of)
        cust = rng.choice(self.customer_ids.size, size=searches, p=self.search_weight)
        qidx = rng.choice(len(self.queries), size=searches, p=self.query_weights)
        seg, arm = seg_of[cust], arm_of[cust]
        return self._draw(arms, day, cust, qidx, seg, arm, rng, request_prefix, validate)

    def _draw(self, arms: Arms, day: int, cust: np.ndarray, qidx: np.ndarray, seg: np.ndarray,
              arm: np.ndarray, rng: np.random.Generator, prefix: str,
              validate: bool) -> SimulatedDay:
        n, k, m = cust.size, self.k, self.model
        # One padded (n, k) matrix per quantity: column j is position j + 1.
        keys = np.stack([qidx, seg, arm], axis=1)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        lists = [self._list_probs(arms, int(q), int(s), int(a)) for q, s, a in uniq]
        shown = np.zeros((len(lists), k), bool)
        mats = {name: np.zeros((len(lists), k)) for name in
                ("click", "cart", "buy", "price", "margin", "return", "scores")}
        rowmat = np.zeros((len(lists), k), np.int64)
        for i, lp in enumerate(lists):
            size = lp["rows"].size
            shown[i, :size] = True
            rowmat[i, :size] = lp["rows"]
            for name in mats:
                mats[name][i, :size] = lp[name]
        S = shown[inverse]
        tag = f"{prefix}d{day}-"
        request = np.array([f"{tag}{i}" for i in range(n)], dtype=object)
        # Per search (n, k); exploration (the ranker's own function) permutes the shuffled
        # places of a picked search: its products move, examination stays with the place.
        per = {name: mats[name][inverse] for name in mats}
        rows_n = rowmat[inverse]
        prop, randomized = self._explore(arms.serving, request, per, rows_n, S)
        inverse = np.arange(n)
        mats = per
        v = self.click_propensity[cust][:, None]
        u = self.buy_propensity[cust][:, None]
        p_click = np.minimum(1.0, mats["click"] * v) * S
        p_cart = mats["cart"] * S
        p_buy = np.minimum(1.0, mats["buy"] * u) * S
        click = rng.random((n, k)) < p_click
        cart = click & (rng.random((n, k)) < p_cart)
        buy = cart & (rng.random((n, k)) < p_buy)
        qty = 1 + rng.poisson(m.extra_units, (n, k))
        ret = buy & (rng.random((n, k)) < mats["return"])
        t0 = (int((START - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000
              + day * _DAY_US)
        stamp = t0 + rng.integers(0, _DAY_US - 3_600_000_000, n)
        serving = arms.serving
        impressions = self._impressions(serving, request, stamp, cust, qidx, seg, arm, S,
                                        rows_n, mats["scores"], prop, randomized)
        outcomes = self._outcomes(request, stamp, rows_n, click, cart, buy, ret, qty,
                                  mats["price"], mats["margin"])
        if validate:
            impressions = validate_impressions(impressions, source="simulator")
            outcomes = validate_outcome_records(outcomes, source="simulator")
        truth = self._expected_per_search(mats, inverse, v, u, S)
        return SimulatedDay(impressions, outcomes, cust, arm, seg, qidx, truth)

    def _explore(self, serving: core.ServingConfig, request: np.ndarray,
                 per: dict[str, np.ndarray], rows: np.ndarray, shown: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        """Apply the config's exploration to every search in place (``per`` and ``rows``):
        :func:`ranking.exploration.shuffle`, as ``Ranker.search`` does. Returns the (n, k)
        item-position propensities (NaN: none) and the per-search ``randomized`` flags (None
        without exploration)."""
        n, k = shown.shape
        prop = np.full((n, k), np.nan)
        expl = serving.exploration
        if not expl.active:
            return prop, None
        exam = self.model.examination(np.arange(1, k + 1))
        attract = per["click"] / exam[None, :]
        pinned = np.isnan(per["scores"]) & shown
        sizes = shown.sum(axis=1)
        order = np.tile(np.arange(k), (n, 1))
        randomized = np.zeros(n, np.bool_)
        for i in range(n):
            size = int(sizes[i])
            drawn = shuffle(str(request[i]), pinned[i, :size], expl)
            prop[i, :size] = drawn.propensity
            if drawn.randomized:
                order[i, :size] = drawn.order
                randomized[i] = True
        moved = np.flatnonzero(randomized)
        if moved.size:
            o = order[moved]
            for name in per:
                src = attract if name == "click" else per[name]
                per[name][moved] = np.take_along_axis(src[moved], o, axis=1)
            per["click"][moved] *= exam[None, :]
            rows[moved] = np.take_along_axis(rows[moved], o, axis=1)
        return prop, randomized

    def _impressions(self, serving: core.ServingConfig, request: np.ndarray, stamp: np.ndarray,
                     cust: np.ndarray, qidx: np.ndarray, seg: np.ndarray, arm: np.ndarray,
                     shown: np.ndarray, rows: np.ndarray, scores: np.ndarray,
                     item_prop: np.ndarray | None = None,
                     randomized: np.ndarray | None = None) -> pa.Table:
        n, k = shown.shape
        count = shown.sum(axis=1)
        per = np.maximum(count, 1)  # a search that showed nothing writes one row
        idx = np.repeat(np.arange(n), per)
        first = np.cumsum(per) - per
        pos = np.arange(idx.size) - first[idx] + 1
        pos[count[idx] == 0] = -1
        flat_rows = rows[idx, np.maximum(pos - 1, 0)]
        flat_scores = scores[idx, np.maximum(pos - 1, 0)]
        has = pos > 0
        ids = self._product_dictionary
        queries, hashes = self._query_dictionary
        # Item-position propensity (ranking.exploration); arm shares live in the config.
        prop = np.full(idx.size, np.nan)
        if item_prop is not None:
            prop = np.where(has, item_prop[idx, np.maximum(pos - 1, 0)], np.nan)
        zeros = np.zeros(idx.size, np.int64)
        return pa.Table.from_arrays([
            pa.array(request, pa.string()).take(pa.array(idx)),
            pa.array(stamp[idx], pa.int64()).cast(IMPRESSION_SCHEMA.field("timestamp").type),
            _strings(cust[idx], self._customer_dictionary),
            _strings(qidx[idx], queries),
            _strings(qidx[idx], hashes),
            _strings(zeros, [serving.version]),
            _strings(zeros, [self.bundle_version]),
            _strings(zeros, [serving.experiment]),
            _strings(arm[idx], list(serving.arm_names)),
            _strings(seg[idx], list(serving.segment_names)),
            _strings(flat_rows, ids, mask=~has),
            pa.array(pos.astype(np.int32), pa.int32()),
            pa.array(np.where(has, flat_scores, np.nan), pa.float64(),
                      from_pandas=True),
            pa.array(prop, pa.float64(), from_pandas=True),
            pa.nulls(idx.size, pa.bool_()) if randomized is None
            else pa.array(randomized[idx], pa.bool_()),
        ], schema=IMPRESSION_SCHEMA)

    def _outcomes(self, request: np.ndarray, stamp: np.ndarray, rows: np.ndarray,
                  click: np.ndarray, cart: np.ndarray, buy: np.ndarray, ret: np.ndarray,
                  qty: np.ndarray, price: np.ndarray, margin: np.ndarray) -> pa.Table:
        ids = np.array(self.ranker.catalog.product_ids, dtype=object)
        parts = []
        # (type, mask, seconds after the search, money?)
        for kind, mask, delay, money in (("click", click, 20, False),
                                         ("add_to_cart", cart, 120, False),
                                         ("purchase", buy, 600, True),
                                         ("return", ret, 3 * 86_400, True)):
            si, pj = np.nonzero(mask)
            req = request[si]
            parts.append({
                "event_id": np.array([f"{r}-{j + 1}-{kind}" for r, j in zip(req, pj,
                                                                           strict=True)],
                                     dtype=object),
                "request_id": req, "product_id": ids[rows[si, pj]],
                "type": np.full(si.size, kind, dtype=object),
                "timestamp": stamp[si] + delay * 1_000_000,
                "quantity": qty[si, pj] if money else None,
                "unit_price": np.round(price[si, pj], 2) if money else None,
                "unit_margin": np.round(margin[si, pj], 2) if money else None,
                "n": si.size})
        n_all = sum(p["n"] for p in parts)

        def cat(name: str, dtype: Any) -> np.ndarray:
            return np.concatenate([p[name] if p[name] is not None else
                                   np.full(p["n"], np.nan) for p in parts]).astype(dtype) \
                if n_all else np.zeros(0, dtype)

        qty_all = cat("quantity", np.float64)
        return pa.Table.from_arrays([
            pa.array(cat("event_id", object), pa.string()),
            pa.array(cat("request_id", object), pa.string()),
            pa.array(cat("product_id", object), pa.string()),
            pa.array(cat("type", object), pa.string()),
            pa.array(cat("timestamp", np.int64), pa.int64()).cast(
                OUTCOME_SCHEMA.field("timestamp").type),
            pa.array(np.nan_to_num(qty_all).astype(np.int32), pa.int32(),
                     mask=np.isnan(qty_all)),
            pa.array(cat("unit_price", np.float64), pa.float64(), from_pandas=True),
            pa.array(cat("unit_margin", np.float64), pa.float64(), from_pandas=True),
        ], schema=OUTCOME_SCHEMA)

    # -- truth -----------------------------------------------------------------------------------
    def _expected_per_search(self, mats: dict[str, np.ndarray], inverse: np.ndarray,
                             v: np.ndarray, u: np.ndarray, shown: np.ndarray
                             ) -> dict[str, np.ndarray]:
        """Expected numerators of every metric for each drawn search (closed form)."""
        c = np.minimum(1.0, mats["click"][inverse] * v) * shown
        ca = c * mats["cart"][inverse]
        cab = ca * np.minimum(1.0, mats["buy"][inverse] * u)
        units = cab * (1.0 + self.model.extra_units)
        keep = 1.0 - mats["return"][inverse]
        return {"click_searches": 1.0 - np.prod(1.0 - c, axis=1),
                "cart_searches": 1.0 - np.prod(1.0 - ca, axis=1),
                "purchase_searches": 1.0 - np.prod(1.0 - cab, axis=1),
                "revenue": (units * mats["price"][inverse] * keep).sum(axis=1),
                "margin": (units * mats["margin"][inverse] * keep).sum(axis=1),
                "units": units.sum(axis=1),
                "returned_units": (units * mats["return"][inverse]).sum(axis=1)}

    def expected(self, config: str | Path | Ranker | Arms | None = None) -> dict[
            str | None, dict[str, float]]:
        """The true value of every readout metric for each arm of ``config`` (and None: the
        base weights), as if every customer were in that arm: expectations over customers
        (weighted by how often they search), queries (by frequency) and the click model,
        in closed form. A randomized experiment's lift estimates the ratio of two of these."""
        arms = config if isinstance(config, Arms) else self.arms(config)
        seg_of = self.segment_rows(arms)
        mask = np.zeros((1, self.k), bool)
        out: dict[str | None, dict[str, float]] = {}
        for a, name in enumerate(arms.names):
            totals: dict[str, float] = {}
            for s in np.unique(seg_of):
                members = np.flatnonzero(seg_of == s)  # this segment's customers
                v = self.click_propensity[members][:, None]
                u = self.buy_propensity[members][:, None]
                inverse = np.zeros(members.size, np.int64)  # every customer sees the one list
                for qi in range(len(self.queries)):
                    w = self.search_weight[members] * self.query_weights[qi]
                    mask[0] = np.arange(self.k) < self._list_probs(arms, qi, int(s), a)[
                        "rows"].size
                    ex = self._expected_per_search(self._padded(arms, qi, int(s), a), inverse,
                                                   v, u, mask[inverse])
                    for metric, values in ex.items():
                        totals[metric] = totals.get(metric, 0.0) + float(w @ values)
            out[name] = _metrics_from_totals(totals)
        return out

    def _padded(self, arms: Arms, qi: int, segment: int, arm: int) -> dict[str, np.ndarray]:
        lp = self._list_probs(arms, qi, segment, arm)
        size = lp["rows"].size
        out = {}
        for name in ("click", "cart", "buy", "price", "margin", "return"):
            row = np.zeros((1, self.k))
            row[0, :size] = lp[name]
            out[name] = row
        return out


def _strings(indices: np.ndarray, values: pa.Array | list[str | None],
             mask: np.ndarray | None = None) -> pa.Array:
    """``values[indices]`` as a plain string array, built in Arrow (no Python strings per row);
    ``mask`` marks rows that are null."""
    dictionary = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    taken = dictionary.take(pa.array(np.asarray(indices, np.int64)))
    if mask is not None and mask.any():
        taken = pa.compute.if_else(pa.array(mask), pa.scalar(None, pa.string()), taken)
    return taken


def _metrics_from_totals(t: Mapping[str, float]) -> dict[str, float]:
    """Per-search expectations -> the readout's metric names."""
    return {"ctr": t["click_searches"], "add_to_cart_rate": t["cart_searches"],
            "conversion": t["purchase_searches"], "revenue_per_search": t["revenue"],
            "margin_per_search": t["margin"],
            "return_rate": t["returned_units"] / t["units"] if t["units"] > 0 else float("nan")}


def with_experiment(config: str | Path, name: str,
                    arms: Mapping[str, tuple[float, Mapping[str, float]]]) -> str:
    """YAML text of the weights file ``config`` running experiment ``name`` with ``arms``
    ({arm: (share, term weight overrides)}) instead of any experiment it had; validated."""
    import io

    from ruamel.yaml import YAML

    from objectives.config import dump_config, load_config, parse_config

    loader = YAML(typ="safe", pure=True)
    data = loader.load(dump_config(load_config(config)))
    data["experiments"] = {name: {"arms": {arm: {"share": share, "weights": dict(weights)}
                                           for arm, (share, weights) in arms.items()}}}
    body = io.StringIO()
    loader.default_flow_style = False
    loader.dump(data, body)
    parse_config(body.getvalue(), source=f"{config} + experiment {name}")
    return body.getvalue()


def write_simulation(out: str | Path, days: list[SimulatedDay], *, fmt: str = "parquet"
                     ) -> list[Path]:
    """Write each simulated day as ``out/impressions/day-NNN.<fmt>`` and the outcomes beside."""
    from ranking.experiments.events import write_events

    paths = []
    for i, day in enumerate(days):
        paths.extend(write_events(out, day.impressions, day.outcomes, name=f"day-{i:03d}",
                                  fmt=fmt))
    return paths
