"""The traffic simulator: the real ranker's lists and arms, the event contract, its closed-form
truth, and a small version of benchmarks/experiment_replays.py (A/A, SRM, A/B coverage)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ranking.app.build import BuildInputs, BuildSettings, build
from ranking.app.cli import main
from ranking.experiments import Events, load_events, validate_impressions, validate_outcome_records
from ranking.experiments.readout import readout
from ranking.experiments.simulator import TrafficSimulator, with_experiment
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def world(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("sim_bundle") / "bundle"
    build(BuildInputs(small_world / "catalog.csv", small_world / "judgments.csv",
                      small_world / "transactions.csv.gz"), out, BuildSettings(seed=3))
    return out, small_world / "judgments.csv"


@pytest.fixture(scope="module")
def sim(world: tuple[Path, Path]) -> TrafficSimulator:
    return TrafficSimulator(world[0], world[1], seed=5)


@pytest.fixture(scope="module")
def ab_config(world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "ab.yaml"
    path.write_text(with_experiment(world[0] / "weights.yaml", "push_test",
                                    {"control": (0.4, {}), "push": (0.4, {"margin": 1.0})}))
    return path


def test_lists_and_arms_are_the_rankers(sim: TrafficSimulator, ab_config: Path) -> None:
    day = sim.run_day(0, ab_config, searches=300)
    served = sim.ranker.variant(ab_config)
    arms = {None: 0, "control": 0, "push": 0}
    for i in range(300):
        customer = sim.customer_ids[day.customers[i]]
        query = sim.queries[day.queries[i]]
        results = served.search(query, customer_id=customer, k=sim.k)
        rows = day.impressions.filter(pc.equal(day.impressions.column("request_id"),
                                               f"d0-{i}")).to_pylist()
        assert [r["product_id"] for r in rows] == [x.product_id for x in results] or (
            not results and rows[0]["position"] == -1)
        arm = results[0].arm if results else served.config.arm_for(customer, rows[0]["segment"])
        assert rows[0]["arm"] == arm
        arms[arm] += 1
        if results and results[0].score is not None:
            assert rows[0]["score"] == pytest.approx(results[0].score)
    assert min(arms.values()) > 30  # 40/40/20 split of customers: all three groups seen
    rows = day.impressions.to_pylist()
    push = next(r for r in rows if r["arm"] == "push")
    assert push["experiment"] == "push_test"
    # Propensity is item-position (exploration), not the arm share; no exploration here.
    assert all(r["propensity"] is None and r["randomized"] is None for r in rows)


def test_days_are_seeded_and_valid(sim: TrafficSimulator) -> None:
    a = sim.run_day(3, searches=400, validate=False)
    b = sim.run_day(3, searches=400, validate=False)
    assert a.impressions.equals(b.impressions) and a.outcomes.equals(b.outcomes)
    assert not a.impressions.equals(sim.run_day(4, searches=400).impressions)
    # the fast path builds exactly what validation accepts
    assert validate_impressions(a.impressions).equals(a.impressions)
    assert validate_outcome_records(a.outcomes).equals(a.outcomes)
    kinds = set(a.outcomes.column("type").to_pylist())
    assert kinds == {"click", "add_to_cart", "purchase", "return"}
    money = a.outcomes.filter(pc.is_in(a.outcomes.column("type"),
                                       value_set=pa.array(["purchase", "return"])))
    assert money.column("unit_price").null_count == 0


def test_closed_form_truth_matches_a_large_simulation(sim: TrafficSimulator) -> None:
    truth = sim.expected()[None]
    day = sim.run_day(0, searches=40000, validate=False)
    r = readout(Events(day.impressions, day.outcomes), over_time=False)
    measured = r.arms[0].metrics
    for metric in ("ctr", "add_to_cart_rate", "conversion", "margin_per_search"):
        est = measured[metric]
        assert abs(est.value - truth[metric]) < 4 * est.se, metric
    # and the per-search expectations the simulator drew with average to the same truth
    assert day.truth["click_searches"].mean() == pytest.approx(truth["ctr"], rel=0.03)


def test_simulate_traffic_command_writes_the_contract(world: tuple[Path, Path],
                                                      ab_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "events"
    assert main(["simulate", "traffic", "--bundle", str(world[0]), "--judgments",
                 str(world[1]), "--config", str(ab_config), "--out", str(out), "--days", "3",
                 "--searches-per-day", "300", "--seed", "2", "--format", "jsonl"]) == 0
    ev = load_events(out)
    assert ev.searches == 900
    assert len(list((out / "impressions").glob("*.jsonl"))) == 3
    truth = json.loads((out / "truth.json").read_text())
    assert truth["simulated"] and set(truth["expected"]) == {"(none)", "control", "push"}
    report = tmp_path / "report"
    assert main(["experiment", "report", "--events", str(out), "--config", str(ab_config),
                 "--bundle", str(world[0]), "--out", str(report)]) == 0
    data = json.loads((report / "report.json").read_text())
    assert data["srm"]["expected_shares"] == pytest.approx(
        {"control": 0.4, "push": 0.4, "(none)": 0.2})
    assert "clv_reached" in data["arms"][0]["metrics"]


def test_small_replays(world: tuple[Path, Path], tmp_path: Path) -> None:
    """The benchmark's protocol at a size a test can afford: loose checks only."""
    replays = load_benchmark("experiment_replays")
    w = replays.build_world(world[0], world[1], tmp_path, 1, 1.0, 3.0, wrong_share=0.7)
    aa = replays.aa_study(w, 40, 2, 400, 0.01, progress=False)
    assert aa["false_positive_rate"]["ctr"]["rate"] <= 0.2
    assert aa["false_positive_rate"]["margin_per_search"]["rate"] <= 0.2
    assert aa["srm_false_alarms"]["count"] <= 1
    srm = replays.srm_study(w, 3, 2, 400, 0.01, progress=False, lost_share=0.5)
    # keys name the benchmark's default break; here the split is 70/30 and half the
    # treatment's customers lose their logs, which a small world can detect
    assert srm["served_55_45_expected_50_50"]["count"] == 3
    assert srm["lost_20pct_of_treatment_customers"]["count"] == 3
    ab = replays.ab_study(w, w.ab, 4, 8, 2, 400, (0.01, 0.5), progress=False)
    assert ab["coverage"]["ctr"]["count"] >= 6
    assert ab["coverage"]["margin_per_search"]["count"] >= 6
    assert ab["true_lift"]["margin_per_search"] > 0
    assert all(np.isfinite(list(ab["true_lift"].values())))
