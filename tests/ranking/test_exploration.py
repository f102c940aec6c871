"""Randomized exploration (RandTop-k): the config section, the reproducible shuffle and its
item-position propensities, the ranker and the simulator applying the same function, and the
stated NDCG cost."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from objectives.config import ConfigError, parse_config
from ranking.experiments.simulator import TrafficSimulator
from ranking.exploration import Exploration, ndcg_cost, picked, shuffle
from ranking.ranker import Ranker
from tests.events_support import shared_bundle

BASE = "version: 1\nweights: {margin: 1.0}\n"


def test_section_is_validated_with_file_and_line() -> None:
    cfg = parse_config(BASE + "exploration: {share: 0.1, top_k: 4, seed: 7}\n")
    assert (cfg.exploration.share, cfg.exploration.top_k, cfg.exploration.seed) == (0.1, 4, 7)
    assert parse_config(BASE).exploration.share == 0.0  # off by default
    for bad, field in (("share: 0.6", "share"), ("top_k: 1", "top_k"), ("top_k: 11", "top_k"),
                       ("share: -0.1", "share"), ("sahre: 0.1", "sahre")):
        with pytest.raises(ConfigError) as err:
            parse_config(BASE + f"exploration:\n  {bad}\n", source="w.yaml")
        text = str(err.value)
        assert "w.yaml:4" in text and field in text


def test_propensities_by_hand() -> None:
    e = Exploration(share=0.3, top_k=3, seed=1)
    ids = [f"r{i}" for i in range(200)]
    stay = (1 - 0.3) + 0.3 / 3
    for rid in ids:
        s = shuffle(rid, [False] * 5, e)
        assert sorted(s.order[:3].tolist()) == [0, 1, 2] and s.order[3:].tolist() == [3, 4]
        assert np.isnan(s.propensity[3:]).all()  # below the top k: never randomized
        expect = np.where(s.order[:3] == np.arange(3), stay, 0.1)
        np.testing.assert_allclose(s.propensity[:3], expect, atol=1e-12)
        assert s.randomized == picked(rid, e)
        again = shuffle(rid, [False] * 5, e)  # reproducible from the request id
        assert again.order.tolist() == s.order.tolist()
    # A pinned place keeps its product (propensity 1); the other two shuffle among themselves.
    for rid in ids:
        s = shuffle(rid, [True, False, False, False], e)
        assert s.order[0] == 0 and s.propensity[0] == 1.0
        assert sorted(s.order[1:3].tolist()) == [1, 2] and s.order[3] == 3
        assert set(np.round(s.propensity[1:3], 12)) <= {round(0.7 + 0.15, 12), 0.15}
    off = shuffle("r1", [False] * 5, Exploration(share=0.0))
    assert not off.randomized and np.isnan(off.propensity).all()
    assert np.isnan(shuffle(None, [False] * 5, e).propensity).all()  # no request id


def test_drawn_frequencies_match_the_propensities() -> None:
    e = Exploration(share=0.4, top_k=3, seed=3)
    n = 30_000
    counts = np.zeros((3, 3))  # [deterministic place, shown place]
    hits = 0
    for i in range(n):
        s = shuffle(f"q-{i}", [False] * 4, e)
        hits += s.randomized
        counts[s.order[:3], np.arange(3)] += 1
    se = math.sqrt(0.4 * 0.6 / n)
    assert abs(hits / n - 0.4) < 4 * se  # the share picked
    expect = (1 - 0.4) * np.eye(3) + 0.4 / 3
    p = counts / n
    assert np.abs(p - expect).max() < 4 * math.sqrt(0.25 / n)  # the marginal per place


def test_ndcg_cost_by_hand() -> None:
    # grades [2, 1, 0], shuffle top 2: gains 3, 1; discounts 1, 1/log2(3).
    d2 = 1 / math.log2(3)
    dcg = 3 + d2
    shuffled = 2 * (1 + d2)
    mean, per = ndcg_cost([[2, 1, 0], [0, 0, 0]], top_k=2)
    assert per[0] == pytest.approx((dcg - shuffled) / dcg, abs=1e-12)
    assert per[1] == 0.0 and mean == pytest.approx(per[0] / 2, abs=1e-12)
    # Exact against enumerating both orders.
    assert per[0] == pytest.approx((dcg - (dcg + (1 + 3 * d2)) / 2) / dcg, abs=1e-12)


@pytest.fixture(scope="module")
def bundle(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_bundle(small_world, tmp_path_factory)


def exploring(bundle: Path, tmp: Path, share: float) -> Path:
    path = tmp / f"explore-{share}.yaml"
    text = (bundle / "weights.yaml").read_text()
    path.write_text(text + f"\nexploration: {{share: {share}, top_k: 3, seed: 11}}\n")
    return path


def test_ranker_explores_reproducibly(bundle: Path, tmp_path: Path) -> None:
    ranker = Ranker.load(bundle)
    served = ranker.variant(exploring(bundle, tmp_path, 0.5))
    plain = [r.product_id for r in served.search("drill", k=6)]
    assert all(r.propensity is None for r in served.search("drill", k=6))  # no request id
    assert len(plain) == 6
    shuffled = 0
    for i in range(60):
        res = served.search("drill", k=6, request_id=f"req-{i}")
        ids = [r.product_id for r in res]
        assert [r.rank for r in res] == list(range(1, 7))
        assert sorted(ids[:3]) == sorted(plain[:3]) and ids[3:] == plain[3:]
        assert all(r.propensity is None for r in res[3:])
        for r in res[:3]:
            stays = plain.index(r.product_id) == r.rank - 1
            assert r.propensity == pytest.approx(0.5 * stays + 0.5 / 3, abs=1e-12)
        assert res[0].randomized == picked(f"req-{i}", served.serving.exploration)
        shuffled += ids[:3] != plain[:3]
        again = [r.product_id for r in served.search("drill", k=6, request_id=f"req-{i}")]
        assert again == ids
    assert 5 < shuffled < 50  # about half picked, 5/6 of those change the order


def test_simulator_applies_the_same_exploration(bundle: Path, small_world: Path,
                                                tmp_path: Path) -> None:
    config = exploring(bundle, tmp_path, 0.3)
    sim = TrafficSimulator(bundle, small_world / "judgments.csv", seed=2)
    day = sim.run_day(0, config, searches=400)
    served = sim.ranker.variant(config)
    rows = day.impressions.to_pylist()
    by_request: dict[str, list[dict]] = {}
    for r in rows:
        by_request.setdefault(r["request_id"], []).append(r)
    checked = 0
    for i, rid in enumerate(list(by_request)[:40]):
        mine = sorted(by_request[rid], key=lambda r: r["position"])
        if mine[0]["position"] < 0:
            continue
        query, customer = mine[0]["query"], mine[0]["customer_id"]
        res = served.search(query, customer_id=customer, k=sim.k, request_id=rid)
        assert [r["product_id"] for r in mine] == [x.product_id for x in res], i
        for row, hit in zip(mine, res, strict=True):
            assert (row["propensity"] is None) == (hit.propensity is None)
            if hit.propensity is not None:
                assert row["propensity"] == pytest.approx(hit.propensity, abs=1e-12)
            assert row["randomized"] == hit.randomized
        checked += 1
    assert checked > 20
    flags = {rid: rs[0]["randomized"] for rid, rs in by_request.items()
             if rs[0]["position"] > 0}
    share = sum(flags.values()) / len(flags)
    assert abs(share - 0.3) < 4 * math.sqrt(0.3 * 0.7 / len(flags))
