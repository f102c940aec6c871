"""``marginrank experiment estimate`` on the small world: a proposed weights file the logging
policy could not fully show is reported as not claimable for the whole policy, first line
first, with the supported part's IPS beside the whole-policy DR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ranking.app.cli import main
from ranking.experiments.simulator import TrafficSimulator, write_simulation
from tests.events_support import shared_bundle


@pytest.fixture(scope="module")
def logs(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from objectives.config import dump_config, load_config

    bundle = shared_bundle(small_world, tmp_path_factory)
    tmp = tmp_path_factory.mktemp("estimate-command")
    explore = tmp / "explore.yaml"
    explore.write_text((bundle / "weights.yaml").read_text()
                       + "\nexploration: {share: 0.5, top_k: 3, seed: 4}\n")
    sim = TrafficSimulator(bundle, small_world / "judgments.csv", seed=9)
    write_simulation(tmp / "explored", [sim.run_day(0, explore, searches=1500)])
    cfg = load_config(bundle / "weights.yaml")  # the margin push of the benchmark's proposal
    w = cfg.weights.model_dump()
    w["margin"] = float(w.get("margin", 0.0)) + 0.5
    proposed = tmp / "proposed.yaml"
    proposed.write_text(dump_config(cfg.with_weights(w)))
    return {"bundle": bundle, "explored": tmp / "explored", "proposed": proposed, "tmp": tmp}


def _run(logs: dict[str, Path], config: Path, name: str, *extra: str) -> tuple[dict, str]:
    out = logs["tmp"] / name
    assert main(["experiment", "estimate", str(config), "--events", str(logs["explored"]),
                 "--bundle", str(logs["bundle"]), "--out", str(out), *extra]) == 0
    return json.loads(out.with_suffix(".json").read_text()), out.with_suffix(".md").read_text()


def test_unsupported_share_above_the_threshold_is_not_claimable(
        logs: dict[str, Path]) -> None:
    report, text = _run(logs, logs["proposed"], "proposed")
    share = report["unsupported_share"]
    assert share > 0.05, share  # the margin push moves products the logs never showed there
    claim = report["claimability"]
    assert claim["claimable"] is False and claim["max_unsupported"] == 0.05
    first = text.splitlines()[0]
    assert first.startswith("**Not claimable for the whole policy:**"), first
    assert f"{share:.1%} of the target's placements" in first
    for reward in ("clicks", "margin"):
        ips, dr = report["estimates"][reward]["ips"], report["estimates"][reward]["dr"]
        assert claim["supported_part"][reward] == ips
        assert claim["whole_policy"][reward] == dr
        assert f"{reward} {ips['value']:.4f} [{ips['low']:.4f}, {ips['high']:.4f}]" in first
        assert f"{reward} {dr['value']:.4f} [{dr['low']:.4f}, {dr['high']:.4f}]" in first
    assert first.index("Supported part") < first.index("whole policy (DR")
    # a threshold above the share makes the same estimate claimable: the title comes first
    report, text = _run(logs, logs["proposed"], "lenient", "--max-unsupported",
                        f"{min(1.0, share + 0.01)}")
    assert report["claimability"]["claimable"] is True
    assert text.splitlines()[0].startswith("# Off-policy estimate of")
    assert "Not claimable" not in text


def test_the_logging_policy_itself_is_claimable(logs: dict[str, Path]) -> None:
    report, text = _run(logs, logs["bundle"] / "weights.yaml", "itself")
    assert report["unsupported_share"] == 0.0
    assert report["claimability"]["claimable"] is True
    assert text.startswith("# Off-policy estimate of")


def test_a_threshold_outside_zero_one_is_refused(logs: dict[str, Path],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["experiment", "estimate", str(logs["proposed"]), "--events",
                 str(logs["explored"]), "--bundle", str(logs["bundle"]), "--out",
                 str(logs["tmp"] / "bad"), "--max-unsupported", "5"])
    assert code == 2
    assert "--max-unsupported must lie in [0, 1], got 5.0" in capsys.readouterr().err
