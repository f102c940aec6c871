"""The experiment readout: metric definitions, customer-clustered intervals, the sample-ratio
test, non-inferiority verdicts, and the ``marginrank experiment report`` command."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from clv.errors import ArgumentError
from objectives.metrics import NonInferiority
from ranking.app.cli import main
from ranking.experiments import Events, validate_impressions, validate_outcome_records, write_events
from ranking.experiments.readout import NO_ARM, parse_shares, readout
from ranking.experiments.stats import lift, online_verdict, ratio, sample_ratio

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _events(spec: list[tuple[str, str | None, int, list[tuple]]]) -> Events:
    """``spec``: (customer, arm, day, outcomes of one search as (type, qty, price, margin))."""
    imps, outs = [], []
    for i, (customer, arm, day, acts) in enumerate(spec):
        ts = T0 + timedelta(days=day)
        for pos in (1, 2):
            imps.append({"request_id": f"r{i}", "timestamp": ts, "customer_id": customer,
                         "query": "q", "config_version": "v", "experiment": "e", "arm": arm,
                         "product_id": f"P{pos}", "position": pos, "score": 1.0})
        for j, (kind, qty, price, margin) in enumerate(acts):
            outs.append({"event_id": f"r{i}-{j}", "request_id": f"r{i}", "product_id": "P1",
                         "type": kind, "timestamp": ts, "quantity": qty, "unit_price": price,
                         "unit_margin": margin})
    return Events(validate_impressions(imps), validate_outcome_records(outs))


def test_metrics_follow_their_definitions() -> None:
    click, cart = ("click", None, None, None), ("add_to_cart", None, None, None)
    buy = ("purchase", 2, 10.0, 4.0)
    ret = ("return", 1, 10.0, 4.0)
    ev = _events([
        ("a", "control", 0, [click, click]),  # two clicks, one search with a click
        ("a", "control", 1, []),
        ("b", "control", 0, [click, cart, buy, ret]),
        ("c", "push", 0, [click, cart, buy]),
        ("d", "push", 2, []),
        (None, "push", 0, [click]),  # anonymous: in no arm
    ])
    r = readout(ev, over_time=True)
    control, push = r.arm("control"), r.arm("push")
    assert (control.customers, control.searches, control.clicks) == (2, 3, 3)
    m = {k: v.value for k, v in control.metrics.items()}
    assert m["ctr"] == pytest.approx(2 / 3)
    assert m["add_to_cart_rate"] == pytest.approx(1 / 3)
    assert m["conversion"] == pytest.approx(1 / 3)
    assert m["revenue_per_search"] == pytest.approx((2 * 10.0 - 10.0) / 3)  # net of returns
    assert m["margin_per_search"] == pytest.approx((2 * 4.0 - 4.0) / 3)
    assert m["return_rate"] == pytest.approx(1 / 2)
    assert push.metrics["margin_per_search"].value == pytest.approx(8.0 / 2)
    assert "clv_reached" not in m and any("clv_reached omitted" in n for n in r.notes)
    assert any("1 anonymous searches" in n for n in r.notes)
    assert r.control == "control" and [c.arm for c in r.comparisons] == ["push"]
    lf = r.comparison("push").lifts["margin_per_search"]
    assert lf.lift == pytest.approx(4.0 / (4.0 / 3) - 1)
    # the cumulative lift on the last day is the whole readout's
    last = [p for p in r.over_time if p.day == r.last_day and p.metric == "margin_per_search"]
    assert last[0].lift == pytest.approx(lf.lift)
    assert (r.first_day, r.last_day) == ("2026-03-02", "2026-03-04")
    with_clv = readout(ev, clv={"a": 100.0, "b": 300.0, "c": 50.0}, over_time=False)
    assert with_clv.arm("control").metrics["clv_reached"].value == pytest.approx(200.0)
    assert with_clv.arm("push").metrics["clv_reached"].value == pytest.approx(50.0)  # d unknown


def test_delta_method_matches_a_customer_bootstrap() -> None:
    rng = np.random.default_rng(3)
    n = 800
    searches = rng.poisson(4, n) + 1
    rate = rng.beta(2, 5, n)  # customers differ: searches of one customer are correlated
    clicks = rng.binomial(searches, rate)
    est = ratio(clicks, searches)
    boot = []
    for _ in range(2000):
        i = rng.integers(0, n, n)
        boot.append(clicks[i].sum() / searches[i].sum())
    assert est.value == pytest.approx(clicks.sum() / searches.sum())
    assert est.se == pytest.approx(np.std(boot, ddof=1), rel=0.08)
    # naive independent-search binomial se is smaller: clustering matters here
    p = est.value
    assert np.sqrt(p * (1 - p) / searches.sum()) < 0.8 * est.se


def test_lift_interval_and_p_value_agree() -> None:
    rng = np.random.default_rng(5)
    x = rng.poisson(3, 500) + 1.0
    t = ratio(rng.binomial(x.astype(int), 0.33), x)
    c = ratio(rng.binomial(x.astype(int), 0.30), x)
    lf = lift(t, c)
    assert lf.lift == pytest.approx(t.value / c.value - 1)
    assert (lf.lift_low > 0 or lf.lift_high < 0) == lf.significant
    assert lf.mde_relative > 0 and 0 < lf.power < 1
    bigger = lift(t, c, power_at=0.5)
    assert bigger.power > lf.power


def test_sample_ratio_flags_a_broken_split() -> None:
    fine = sample_ratio({"control": 1012, "push": 988}, {"control": 0.5, "push": 0.5}, "cfg")
    assert not fine.mismatch and fine.dof == 1
    broken = sample_ratio({"control": 1100, "push": 900}, {"control": 0.5, "push": 0.5}, "cfg")
    assert broken.mismatch and broken.p_value < 1e-5
    # expected shares of a config with 20% of customers outside every arm
    three = sample_ratio({"control": 400, "push": 400, NO_ARM: 200},
                         {"control": 0.4, "push": 0.4, NO_ARM: 0.2}, "cfg")
    assert three.chi2 == pytest.approx(0.0) and three.dof == 2
    unexpected = sample_ratio({"control": 500, "push": 500, "stray": 3},
                              {"control": 0.5, "push": 0.5}, "cfg")
    assert unexpected.mismatch


def test_verdict_has_the_ndcg_guardrail_semantics() -> None:
    rng = np.random.default_rng(9)
    n = 20000
    x = np.ones(n)
    c = ratio(rng.binomial(1, 0.30, n).astype(float), x)
    same = ratio(rng.binomial(1, 0.30, n).astype(float), x)
    worse = ratio(rng.binomial(1, 0.24, n).astype(float), x)
    v_same = online_verdict("ctr", same, c, delta=0.05)
    v_worse = online_verdict("ctr", worse, c, delta=0.05)
    assert v_same.certified and v_same.held and v_same.status == "certified"
    assert not v_worse.held and v_worse.status == "missed"
    assert "missed: relative ctr drop" in v_worse.text()
    tight = online_verdict("ctr", same, c, delta=0.0)
    assert tight.held and not tight.certified or tight.drop < 0
    # the same one-sided bound as objectives.metrics.NonInferiority with a normal bound
    diff = same.value - c.value
    lower = diff - 1.6448536 * np.sqrt(same.var + c.var)
    ni = NonInferiority(diff, lower, c.value, n, 0.05)
    assert v_same.drop_bound == pytest.approx(ni.drop_bound, rel=1e-6)
    assert v_same.certified == ni.certified


def test_aa_readout_on_identical_arms_finds_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    spec = []
    for c in range(600):
        arm = "control" if c % 2 else "b"
        for _ in range(rng.integers(1, 5)):
            acts = [("click", None, None, None)] if rng.random() < 0.4 else []
            if acts and rng.random() < 0.2:
                acts.append(("purchase", 1, 20.0, 5.0))
            spec.append((f"c{c}", arm, int(rng.integers(0, 3)), acts))
    ev = _events(spec)
    r = readout(ev, expected_shares={"control": 0.5, "b": 0.5}, shares_source="test")
    assert not r.srm.mismatch
    lf = r.comparison("b").lifts["ctr"]
    assert lf.lift_low < 0 < lf.lift_high
    assert r.comparison("b").verdicts["ctr"].held


def test_report_command_writes_markdown_json_and_plot(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(2)
    imps, outs = [], []
    for i in range(300):
        customer = f"c{i % 120}"
        arm = "control" if (i % 120) % 2 else "push"
        ts = T0 + timedelta(days=i % 4, minutes=i)
        imps.append({"request_id": f"r{i}", "timestamp": ts, "customer_id": customer,
                     "query": "q", "config_version": "v", "arm": arm, "product_id": "P1",
                     "position": 1, "score": 1.0})
        if rng.random() < 0.5:
            outs.append({"event_id": f"e{i}", "request_id": f"r{i}", "product_id": "P1",
                         "type": "purchase", "timestamp": ts, "quantity": 1,
                         "unit_price": 10.0, "unit_margin": 3.0 if arm == "push" else 2.0})
    write_events(tmp_path / "ev", imps, outs, fmt="jsonl")
    config = tmp_path / "w.yaml"
    config.write_text("version: 1\nguardrails: {max_ndcg_drop: 0.01}\nexperiments:\n  e:\n"
                      "    arms:\n      control: {share: 0.5}\n"
                      "      push: {share: 0.5, weights: {margin: 0.5}}\n")
    out = tmp_path / "report"
    assert main(["experiment", "report", "--events", str(tmp_path / "ev"), "--out", str(out),
                 "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "push: ctr" in printed and "margin_per_search" in printed
    data = json.loads((out / "report.json").read_text())
    assert data["delta"] == 0.01  # the config's max_ndcg_drop
    assert data["srm"]["source"].startswith("arm shares of")
    push = next(c for c in data["comparisons"] if c["arm"] == "push")
    margin = push["lifts"]["margin_per_search"]
    md = (out / "report.md").read_text()
    assert f"{100 * margin['lift']:+.2f}%" in md
    assert (out / "lift_over_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["experiment", "report", "--events", str(tmp_path / "ev"), "--out", str(out),
                 "--expected-shares", "control=0.9,push=0.1"]) == 0
    data = json.loads((out / "report.json").read_text())
    assert data["srm"]["mismatch"] is True
    assert main(["experiment", "report", "--events", str(tmp_path / "ev"), "--out", str(out),
                 "--control", "nope"]) == 2
    assert "control arm 'nope' has no searches" in capsys.readouterr().err


def test_shares_are_parsed_strictly() -> None:
    assert parse_shares("control=0.5, push=0.5") == {"control": 0.5, "push": 0.5}
    for bad in ("control", "control=x", "=0.5", "control=-1"):
        with pytest.raises(ArgumentError):
            parse_shares(bad)
