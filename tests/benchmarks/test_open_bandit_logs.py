"""The real-log checks of benchmarks/open_bandit_logs.py on the Open Bandit Dataset."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SHARED_DATA, load_benchmark, require_file

OBD = SHARED_DATA / "open-bandit-dataset"


@pytest.mark.realdata
def test_examination_and_off_policy_estimates_on_real_logs(tmp_path) -> None:
    require_file(OBD / "random" / "men" / "men.csv")
    bench = load_benchmark("open_bandit_logs")
    r = bench.run(OBD, seed=0, bootstrap=20)
    assert r["clicks"] == {"random": 46, "bts": 69}
    for rows in (r["examination_random"], r["examination_em_bts"]):
        assert [row["position"] for row in rows] == [1, 2, 3]
        for row in rows:
            assert row["low"] <= row["examination"] <= row["high"]
    # the random log's slot ratios are the plain CTR ratios (SOURCE.md: 0.00305/0.00649/0.00421)
    ratios = [row["examination"] for row in r["examination_random"]]
    assert ratios == pytest.approx([1.0, 0.00649 / 0.00305, 0.00421 / 0.00305], rel=0.02)
    truth = r["bts_on_policy_ctr"]["value"]
    assert truth == pytest.approx(0.0069)
    for name in ("ips", "snips"):
        est = r[name]
        assert est["low"] < est["value"] < est["high"] and np.isfinite(est["se"])
        assert est["covers_on_policy"] == (est["low"] <= truth <= est["high"])
    assert r["ips"]["clipped"] == 0 and r["largest_weight"] <= 34 + 1e-9
    assert bench.main(["--bootstrap", "5", "--out", str(tmp_path / "obd")]) == 0
    assert "46** clicks" in (tmp_path / "obd.md").read_text()
