"""Learning from logs end to end on the small world: the simulator logs with exploration, then
``marginrank experiment position-bias`` and ``marginrank experiment estimate`` read them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ranking.app.cli import main
from ranking.experiments.estimate import estimate_policy, logged
from ranking.experiments.events import load_events
from ranking.experiments.simulator import TrafficSimulator, write_simulation
from tests.events_support import shared_bundle


@pytest.fixture(scope="module")
def world(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    bundle = shared_bundle(small_world, tmp_path_factory)
    tmp = tmp_path_factory.mktemp("logs")
    explore = tmp / "explore.yaml"
    explore.write_text((bundle / "weights.yaml").read_text()
                       + "\nexploration: {share: 0.5, top_k: 3, seed: 4}\n")
    sim = TrafficSimulator(bundle, small_world / "judgments.csv", seed=9)
    days = [sim.run_day(d, explore, searches=1500) for d in range(2)]
    write_simulation(tmp / "explored", days)
    write_simulation(tmp / "plain", [sim.run_day(5, searches=300)])
    return {"bundle": bundle, "explore": explore, "explored": tmp / "explored",
            "plain": tmp / "plain", "judgments": small_world / "judgments.csv", "tmp": tmp}


def test_position_bias_from_randomized_searches(world: dict[str, Path]) -> None:
    out = world["tmp"] / "bias"
    assert main(["experiment", "position-bias", "--events", str(world["explored"]),
                 "--out", str(out), "--bootstrap", "5"]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["randomized_searches"] > 1000
    rand = {p["position"]: p for p in report["randomized"]["positions"]}
    assert sorted(rand) == [1, 2, 3]  # exploration reaches the top 3 only
    for k in (2, 3):  # the simulator's truth: k ** -0.8
        assert rand[k]["low"] <= k ** -0.8 <= rand[k]["high"], rand[k]
    assert "randomized" in out.with_suffix(".md").read_text()


def test_estimate_refuses_logs_without_randomization(world: dict[str, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["experiment", "estimate", str(world["bundle"] / "weights.yaml"),
                 "--events", str(world["plain"]), "--bundle", str(world["bundle"]),
                 "--out", str(world["tmp"] / "refused")])
    assert code == 2
    assert "no item-position propensities" in capsys.readouterr().err


def test_estimate_of_the_deterministic_policy_covers_its_truth(world: dict[str, Path]) -> None:
    out = world["tmp"] / "estimate"
    target = world["bundle"] / "weights.yaml"
    assert main(["experiment", "estimate", str(target), "--events", str(world["explored"]),
                 "--bundle", str(world["bundle"]), "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    sim = TrafficSimulator(world["bundle"], world["judgments"], seed=9)
    truth = sim.run_day(50, target, searches=20_000, validate=False)
    clicks = truth.outcomes.column("type").to_pylist().count("click") / 20_000
    assert report["unsupported_share"] == 0.0  # the target is the logging policy's ranking
    for name in ("ips", "snips", "dr"):
        e = report["estimates"]["clicks"][name]
        # the truth is itself simulated: widen by its own standard error (clicks <= 20/search)
        assert e["low"] - 0.05 <= clicks <= e["high"] + 0.05, (name, e, clicks)
        assert e["effective_n"] > 0
    assert "without logging support" in out.with_suffix(".md").read_text()


def test_hand_example_weights_and_support(world: dict[str, Path]) -> None:
    events = load_events(world["explored"])
    rows = logged(events.impressions, events.outcomes)
    shown = ~np.isnan(rows.propensity)
    assert set(np.round(rows.propensity[shown], 9)) <= {round(0.5 + 0.5 / 3, 9),
                                                       round(0.5 / 3, 9), 1.0}
    from ranking.ranker import Ranker

    result = estimate_policy(rows, Ranker.load(world["bundle"]))
    # Logging rows that stayed in place weigh 1 / (2/3); moved rows weigh 0 for this target.
    assert result.unsupported_share == 0.0
    assert result.searches == rows.searches  # every search, those that showed nothing too


def test_learn_trains_from_logs_and_refuses_another_bundle(world: dict[str, Path],
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    out = world["tmp"] / "learned"
    assert main(["experiment", "learn", "--events", str(world["explored"]),
                 "--bundle", str(world["bundle"]), "--out", str(out), "--trees", "20"]) == 0
    from ranking.ranker import Ranker

    learned = Ranker.load(out / "bundle")
    assert learned.search("drill", k=5)  # a working bundle with the new model
    assert "debiased interactions" in (out / "report.md").read_text()
    labels = (out / "labels.csv").read_text().splitlines()
    assert labels[0] == "query,product_id,grade,shown" and len(labels) > 20
    # The learned bundle is another bundle: the logs' features cannot be recomputed from it.
    code = main(["experiment", "learn", "--events", str(world["explored"]),
                 "--bundle", str(out / "bundle"), "--out", str(world["tmp"] / "again")])
    assert code == 2 and "served by bundle version" in capsys.readouterr().err


def test_position_bias_by_harvesting_two_arms(world: dict[str, Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    two_arms = world["tmp"] / "two_arms.yaml"
    two_arms.write_text((world["bundle"] / "weights.yaml").read_text().replace(
        "experiments: {}\n", "") + "\nexperiments:\n  margin_push:\n    arms:\n"
        "      control: {share: 0.5}\n      margin_push: {share: 0.5, weights: {margin: 0.8}}\n")
    sim = TrafficSimulator(world["bundle"], world["judgments"], seed=9)
    write_simulation(world["tmp"] / "arms", [sim.run_day(d, two_arms, searches=8000)
                                             for d in range(2)])
    out = world["tmp"] / "harvest"
    assert main(["experiment", "position-bias", "--events", str(world["tmp"] / "arms"),
                 "--method", "harvest", "--bootstrap", "10", "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["used"] == "harvest" and report["arms"] == ["control", "margin_push"]
    got = {p["position"]: p for p in report["harvest"]["positions"]}
    for k in (2, 3):  # the simulator's truth: k ** -0.8 (deeper places move less often)
        assert got[k]["examination"] == pytest.approx(k ** -0.8, rel=0.10), got[k]
        assert got[k]["low"] < got[k]["examination"] < got[k]["high"]
    assert "intervention harvesting" in out.with_suffix(".md").read_text()
    # One arm (the exploration log's) has nothing to harvest across.
    capsys.readouterr()
    assert main(["experiment", "position-bias", "--events", str(world["explored"]),
                 "--method", "harvest", "--out", str(world["tmp"] / "no-harvest")]) == 2
    assert "at least two arms" in capsys.readouterr().err


def test_benchmark_split_keeps_the_logging_rankers_queries_out_of_the_test() -> None:
    """The benchmark's three-way split: a query's part depends on its text and the seed alone,
    so the logging ranker's queries and the test queries are disjoint sets."""
    from tests.conftest import load_benchmark

    split = load_benchmark("learning_from_logs").three_way_split
    queries = [f"query {i}" for i in range(3000)]
    part = split(queries, 0)
    assert set(part.tolist()) == {0, 1, 2}
    counts = np.bincount(part, minlength=3)
    assert counts.min() > 900, counts  # about a third each
    # the same query lands in the same part whatever else is in the list
    assert np.array_equal(split(queries[::-1], 0), part[::-1])
    assert np.array_equal(split(queries[:10], 0), part[:10])
    assert not np.array_equal(split(queries, 1), part)  # the seed matters
