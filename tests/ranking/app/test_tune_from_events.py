"""``marginrank tune --events``: the relevance guardrail without judgments. The tuner's NDCG is
computed on the bundle's logged interactions, debiased for position; the report says so, and
the result equals tuning on the same labels written out by ``experiment learn`` (labels.csv)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ranking.app.cli import main
from ranking.experiments.simulator import TrafficSimulator, write_simulation
from tests.events_support import shared_bundle


@pytest.fixture(scope="module")
def logs(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    bundle = shared_bundle(small_world, tmp_path_factory)
    tmp = tmp_path_factory.mktemp("tune-events")
    explore = tmp / "explore.yaml"
    explore.write_text((bundle / "weights.yaml").read_text()
                       + "\nexploration: {share: 0.5, top_k: 3, seed: 4}\n")
    sim = TrafficSimulator(bundle, small_world / "judgments.csv", seed=6)
    write_simulation(tmp / "events", [sim.run_day(d, explore, searches=2000) for d in range(2)])
    return {"bundle": bundle, "events": tmp / "events", "tmp": tmp}


def test_tune_on_debiased_interaction_labels(logs: dict[str, Path]) -> None:
    out = logs["tmp"] / "tuned.yaml"
    assert main(["tune", "--bundle", str(logs["bundle"]), "--events", str(logs["events"]),
                 "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["labels_used"].startswith("debiased interactions from ")
    assert "- labels: debiased interactions" in out.with_suffix(".md").read_text()
    assert "labels: debiased interactions" in out.read_text()  # the YAML's note says it too
    # The same labels written by `experiment learn` and given as judgments tune identically.
    learned = logs["tmp"] / "learned"
    assert main(["experiment", "learn", "--events", str(logs["events"]), "--bundle",
                 str(logs["bundle"]), "--out", str(learned), "--trees", "5"]) == 0
    via_csv = logs["tmp"] / "via_csv.yaml"
    assert main(["tune", "--bundle", str(logs["bundle"]), "--judgments",
                 str(learned / "labels.csv"), "--out", str(via_csv)]) == 0
    other = json.loads(via_csv.with_suffix(".json").read_text())
    assert other["labels_used"] == "judgments"
    assert report["n_queries"] == other["n_queries"] > 10
    check, check_csv = report["relevance_check"], other["relevance_check"]
    assert check["model_ndcg"] == pytest.approx(check_csv["model_ndcg"], abs=1e-12)
    assert check["bm25_ndcg"] == pytest.approx(check_csv["bm25_ndcg"], abs=1e-12)
    assert report["tuned_weights"] == pytest.approx(other["tuned_weights"], abs=1e-9)


def test_tune_refuses_logs_of_another_bundle_and_two_label_sources(
        logs: dict[str, Path], small_world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    learned = logs["tmp"] / "learned2"
    assert main(["experiment", "learn", "--events", str(logs["events"]), "--bundle",
                 str(logs["bundle"]), "--out", str(learned), "--trees", "5"]) == 0
    capsys.readouterr()
    assert main(["tune", "--bundle", str(learned / "bundle"), "--events", str(logs["events"]),
                 "--out", str(logs["tmp"] / "refused.yaml")]) == 2
    assert "served by bundle version" in capsys.readouterr().err
    with pytest.raises(SystemExit) as both:
        main(["tune", "--bundle", str(logs["bundle"]), "--events", str(logs["events"]),
              "--judgments", str(small_world / "judgments.csv")])
    assert both.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
