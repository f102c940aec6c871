"""The Open Bandit Dataset converts into the event contract and reads out without a manual
step, with honest intervals for its few clicks (46 and 69)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clv.errors import DataError
from ranking.app.cli import main
from ranking.experiments import load_events
from ranking.experiments.open_bandit import convert_open_bandit, open_bandit_readout
from tests.conftest import SHARED_DATA, require_file

OBD = SHARED_DATA / "open-bandit-dataset"


@pytest.mark.realdata
def test_open_bandit_converts_and_reads_out(tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    require_file(OBD / "random" / "men" / "men.csv")
    require_file(OBD / "bts" / "men" / "men.csv")
    written = convert_open_bandit(OBD, tmp_path / "events")
    assert written.clicks_by_policy == {"random": 46, "bts": 69}
    assert written.impressions_by_policy == {"random": 10_000, "bts": 10_000}
    ev = load_events(tmp_path / "events")  # validated like any event log
    assert ev.searches == 20_000 and ev.outcomes.num_rows == 115
    rows = ev.impressions.to_pylist()
    random_rows = [r for r in rows if r["arm"] == "random"]
    assert all(r["propensity"] == pytest.approx(1 / 34) for r in random_rows)
    assert {r["position"] for r in rows} == {1, 2, 3}
    bts = [r["propensity"] for r in rows if r["arm"] == "bts"]
    assert min(bts) == pytest.approx(0.000165, abs=1e-6) and max(bts) == pytest.approx(
        0.72529, abs=1e-5)

    r = open_bandit_readout(tmp_path / "events")
    assert r.control == "random"
    ctr = r.comparison("bts").lifts["ctr"]
    assert ctr.control == pytest.approx(0.0046) and ctr.treatment == pytest.approx(0.0069)
    assert ctr.lift == pytest.approx(0.5)
    # honest: 46 vs 69 clicks cannot pin the lift down; the interval is about +-56 points
    assert ctr.lift_high - ctr.lift_low > 1.0
    assert ctr.lift_low < 0 < ctr.lift_high
    assert ctr.mde_relative > 0.4
    assert any("not a randomized split" in n for n in r.notes)
    check = next(n for n in r.notes if n.startswith("Small-count check"))
    assert "46 and 69 clicks" in check and "Katz" in check
    assert r.comparison("bts").verdicts["conversion"].status == "n/a"

    report = tmp_path / "report"
    assert main(["experiment", "import-open-bandit", str(OBD), "--out",
                 str(tmp_path / "cli_events"), "--report", str(report)]) == 0
    assert "random: 46, bts: 69" in capsys.readouterr().out
    data = json.loads((report / "report.json").read_text())
    lifts = data["comparisons"][0]["lifts"]
    assert lifts["ctr"]["lift"] == pytest.approx(0.5)
    assert lifts["conversion"]["lift"] is None  # no purchases in the dataset: n/a, not 0
    assert (report / "lift_over_time.png").is_file()


def test_a_missing_or_broken_log_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Open Bandit log not found"):
        convert_open_bandit(tmp_path, tmp_path / "out")
    for policy in ("random", "bts"):
        folder = tmp_path / policy / "men"
        folder.mkdir(parents=True)
        (folder / "men.csv").write_text(
            ",timestamp,item_id,position,click,propensity_score\n"
            "0,2019-11-24 00:03:13+00:00,14,3,0,0.03\n"
            "1,2019-11-24 00:04:13+00:00,15,4,1,0.03\n")
    with pytest.raises(DataError, match="slots are 1, 2 or 3") as err:
        convert_open_bandit(tmp_path, tmp_path / "out")
    assert err.value.line == 3 and err.value.column == "position"
