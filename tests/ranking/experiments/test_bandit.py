"""Bandit allocation: per-segment shares in the weights file, Thompson sampling with a minimum
control share and frozen arms, the comment-keeping writeback and ``experiment allocate``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from objectives.config import TERM_NAMES, ConfigError, dump_config, load_config, parse_config
from objectives.plan import Plan
from ranking.app.cli import main
from ranking.experiments.bandit import (
    REWARDS,
    AllocationError,
    CustomerRewards,
    allocate,
    arm_posteriors,
    constrained_shares,
    customer_rewards,
)
from ranking.experiments.events import load_events, write_events
from ranking.experiments.shares_yaml import allocated_yaml_text, write_allocated_yaml

CONFIG = """\
# the merchandiser's weights
version: 1
weights: {margin: 0.3}   # base weights
segments:
  gold: {min_clv_quantile: 0.8}   # the top fifth by CLV
experiments:
  # margin test, started Monday
  margin_push:
    arms:
      control: {share: 0.4}   # the base weights
      push: {share: 0.3, weights: {margin: 0.9}}
      wild: {share: 0.3, weights: {margin: 3.0}}  # very strong
"""

WITH_SEGMENTS = CONFIG + """\
    shares_by_segment:
      default: {control: 0.5, push: 0.5, wild: 0.0}
      gold: {control: 0.2, push: 0.0, wild: 0.8}
"""


def issues(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="w.yaml")
    return [str(issue) for issue in caught.value.issues]


# --- the schema ------------------------------------------------------------------------------


def test_shares_by_segment_parse_round_trip_and_survive_tuning() -> None:
    cfg = parse_config(WITH_SEGMENTS)
    assert cfg.arm_shares() == {"control": 0.5, "push": 0.5, "wild": 0.0}
    assert cfg.arm_shares("gold") == {"control": 0.2, "push": 0.0, "wild": 0.8}
    assert parse_config(dump_config(cfg)) == cfg
    tuned = cfg.tuned(np.array([0.6, 0.0, 0.0, 0.0] + [0.0] * (len(TERM_NAMES) - 4)))
    assert tuned.experiments["margin_push"].shares_by_segment == \
        cfg.experiments["margin_push"].shares_by_segment
    # Without shares_by_segment every segment uses the arms' share, as before.
    plain = parse_config(CONFIG)
    assert plain.arm_shares("gold") == plain.arm_shares() == {"control": 0.4, "push": 0.3,
                                                              "wild": 0.3}


@pytest.mark.parametrize(("entry", "line", "words"), [
    ("      silver: {control: 1.0}", 14, "unknown segment 'silver'; defined: default, gold"),
    ("      gold: {control: 0.5, pusj: 0.5}", 14, "unknown arm 'pusj'"),
    ("      gold: {control: 0.5, push: 0.4}", 14, "add up to 0.9; they must add up to 1"),
    ("      gold: {control: 0.5, push: 0.6}", 14, "add up to 1.1; they must add up to 1"),
    ("      gold: {control: 0.5, push: -0.5, wild: 1.0}", 14, "must be >= 0"),
])
def test_bad_segment_shares_are_refused_with_file_and_line(entry: str, line: int,
                                                           words: str) -> None:
    found = issues(CONFIG + "    shares_by_segment:\n" + entry + "\n")
    assert len(found) == 1, found
    assert found[0].startswith(f"w.yaml:{line}: experiments.margin_push.shares_by_segment.")
    assert words in found[0]


def test_frozen_arm_must_have_share_zero_and_default_name_is_reserved() -> None:
    frozen = CONFIG.replace("{share: 0.3, weights: {margin: 3.0}}",
                            "{share: 0.3, weights: {margin: 3.0}, frozen: true}")
    (found,) = issues(frozen)
    assert found.startswith("w.yaml:12: experiments.margin_push.arms.wild.share")
    assert "frozen" in found and "delete 'frozen: true'" in found
    reserved = WITH_SEGMENTS.replace("  gold: {min_clv_quantile: 0.8}",
                                     "  gold: {min_clv_quantile: 0.8}\n"
                                     "  default: {min_clv_quantile: 0.1}")
    assert any("reserved" in issue for issue in issues(reserved))


def test_the_ranker_assigns_arms_by_the_segments_shares() -> None:
    cfg = parse_config(WITH_SEGMENTS)
    plan = Plan.compile(cfg, ["P1"], ["Tools"], None)
    gold = plan.segment_names.index("gold")
    customers = [f"C{i}" for i in range(4000)]
    in_gold = [plan.arm_names[plan.arm_index(c, gold)] for c in customers]
    in_default = [plan.arm_names[plan.arm_index(c)] for c in customers]
    assert in_gold == [cfg.arm_for(c, "gold") for c in customers]
    assert in_default == [cfg.arm_for(c) for c in customers]
    assert set(in_gold) == {"control", "wild"} and set(in_default) == {"control", "push"}
    assert in_gold.count("wild") / len(customers) == pytest.approx(0.8, abs=0.03)
    assert in_default.count("push") / len(customers) == pytest.approx(0.5, abs=0.03)
    # A customer's hash position is the same in every segment: one in control under both
    # splits' first 0.2 stays in control when moving between them.
    assert all(b == "control" for a, b in zip(in_gold, in_default, strict=True)
               if a == "control")


# --- posterior and shares ---------------------------------------------------------------------


def rewards_table(means: dict[tuple[str, str], float], n: int = 400,
                  seed: int = 0) -> CustomerRewards:
    """Customers in (segment, arm) cells with gamma rewards of the given mean per search."""
    rng = np.random.default_rng(seed)
    rows = [(seg, arm) for (seg, arm) in means for _ in range(n)]
    searches = rng.integers(1, 6, len(rows))
    reward = np.array([rng.gamma(2.0, means[cell] / 2.0, s).sum()
                       for cell, s in zip(rows, searches, strict=True)])
    return CustomerRewards(np.array([f"C{i}" for i in range(len(rows))], object),
                           np.array([s for s, _ in rows], object),
                           np.array([a for _, a in rows], object), searches,
                           {r: reward for r in REWARDS})


def test_a_clearly_better_arm_gains_share_and_control_keeps_its_minimum() -> None:
    cfg = parse_config(CONFIG)
    data = rewards_table({("default", "control"): 1.0, ("default", "push"): 1.3,
                          ("default", "wild"): 1.1, ("gold", "control"): 1.0,
                          ("gold", "push"): 1.0, ("gold", "wild"): 1.0})
    result = allocate(cfg, data, min_control=0.25, seed=3)
    default = result.segments[0]
    assert default.segment == "default"
    assert default.new["push"] > default.old["push"]
    assert default.new == {"control": 0.25, "push": 0.75, "wild": 0.0}
    assert default.prob_best["push"] > 0.99
    assert any("raised to the minimum control share 0.25" in r for r in default.reasons)
    # Gold's arms are equal: no arm is near-certain and every segment keeps control >= 0.25.
    gold = result.segments[1]
    assert max(gold.prob_best.values()) < 0.9
    assert all(s.new["control"] >= 0.25 for s in result.segments)
    assert all(sum(s.new.values()) == pytest.approx(1.0, abs=1e-9) for s in result.segments)


def test_segments_are_allocated_independently() -> None:
    cfg = parse_config(CONFIG)
    data = rewards_table({("default", "control"): 1.0, ("default", "push"): 1.4,
                          ("default", "wild"): 1.0, ("gold", "control"): 1.0,
                          ("gold", "push"): 1.0, ("gold", "wild"): 1.4})
    by = {s.segment: s for s in allocate(cfg, data, seed=1).segments}
    assert max(by["default"].new, key=by["default"].new.get) == "push"
    assert max(by["gold"].new, key=by["gold"].new.get) == "wild"
    # No events in a segment: its shares stay as they were.
    only_default = rewards_table({("default", "control"): 1.0, ("default", "push"): 1.4})
    gold = allocate(cfg, only_default, seed=1).segments[1]
    assert gold.new == gold.old == {"control": 0.4, "push": 0.3, "wild": 0.3}
    assert "no events in this segment: shares kept" in gold.reasons


def test_frozen_arms_get_zero_and_stay_frozen_across_rounds() -> None:
    cfg = parse_config(CONFIG)
    data = rewards_table({("default", "control"): 1.0, ("default", "push"): 1.1,
                          ("default", "wild"): 2.0})
    first = allocate(cfg, data, guardrail_failures={"wild": "ctr missed"}, seed=0)
    assert first.frozen == {"wild": "ctr missed"}
    assert all(s.new["wild"] == 0.0 for s in first.segments)
    assert first.config.experiments["margin_push"].arms["wild"].frozen
    # Next round, no guardrail failure passed: the flag in the file keeps it at 0 although
    # its reward is the best.
    second = allocate(first.config, data, seed=0)
    assert second.frozen == {"wild": "marked frozen in the weights file"}
    assert all(s.new["wild"] == 0.0 and s.prob_best["wild"] == 0.0 for s in second.segments)


def test_allocation_is_deterministic_for_a_seed() -> None:
    cfg = parse_config(CONFIG)
    data = rewards_table({("default", "control"): 1.0, ("default", "push"): 1.03,
                          ("default", "wild"): 1.02}, n=60)
    runs = [allocate(cfg, data, seed=s, draws=2000) for s in (5, 5, 6)]
    assert runs[0].to_dict() == runs[1].to_dict()
    assert runs[0].config == runs[1].config
    assert runs[0].segments[0].prob_best != runs[2].segments[0].prob_best


def test_posterior_of_an_unseen_arm_is_the_prior_and_identical_customers_stay_uncertain() -> None:
    posts = arm_posteriors(["a", "b", "c"], np.array(["a"] * 3 + ["b"] * 50, object),
                           np.ones(53, np.int64), np.r_[np.zeros(3), np.linspace(0, 2, 50)])
    a, b, c = posts
    assert c.customers == 0 and c.mean == pytest.approx(b.observed * 50 / 53) and c.sd > b.sd
    assert a.observed == 0.0 and a.sd > 0.1  # three zeros do not make a certain zero
    assert b.se == pytest.approx(np.std(np.linspace(0, 2, 50), ddof=1) / np.sqrt(50), rel=1e-9)


def test_constrained_shares_round_to_the_total_and_respect_the_floor() -> None:
    shares = constrained_shares(np.array([0.0, 0.333333, 0.666667]), 0, 0.2, 1.0,
                                np.array([True, True, True]))
    assert shares.sum() == pytest.approx(1.0, abs=1e-12) and shares[0] == 0.2
    assert np.all(np.round(shares * 10_000) == shares * 10_000)
    # Every other arm frozen: control takes everything.
    only = constrained_shares(np.array([0.1, 0.9]), 0, 0.2, 0.8, np.array([True, False]))
    assert only.tolist() == [0.8, 0.0]


def test_bad_allocation_inputs_are_clear_errors() -> None:
    cfg = parse_config(CONFIG)
    data = rewards_table({("default", "control"): 1.0, ("default", "push"): 1.1})
    with pytest.raises(AllocationError, match="unknown arm 'nope'"):
        allocate(cfg, data, guardrail_failures={"nope": "x"})
    with pytest.raises(AllocationError, match="control arm 'control' cannot be frozen"):
        allocate(cfg, data, guardrail_failures={"control": "x"})
    with pytest.raises(AllocationError, match="control arm 'ctrl' is not an arm"):
        allocate(cfg, data, control="ctrl")
    with pytest.raises(AllocationError, match="--min-control must be between 0 and 1"):
        allocate(cfg, data, min_control=1.5)
    with pytest.raises(AllocationError, match="unknown reward"):
        allocate(cfg, data, reward="ndcg")
    stray = rewards_table({("default", "other"): 1.0})
    with pytest.raises(AllocationError, match="does not have: other"):
        allocate(cfg, stray)
    platinum = rewards_table({("platinum", "control"): 1.0})
    with pytest.raises(AllocationError, match="does not define: platinum"):
        allocate(cfg, platinum)
    with pytest.raises(AllocationError, match="runs no experiment"):
        allocate(parse_config("version: 1\n"), data)


# --- the YAML writeback --------------------------------------------------------------------


def test_writeback_keeps_comments_and_round_trips_through_load_config(tmp_path: Path) -> None:
    cfg = parse_config(CONFIG)
    data = rewards_table({("default", "control"): 1.0, ("default", "push"): 1.3,
                          ("default", "wild"): 1.0, ("gold", "control"): 1.0,
                          ("gold", "push"): 1.0, ("gold", "wild"): 1.3})
    result = allocate(cfg, data, guardrail_failures={"wild": "ctr missed"}, seed=2)
    text = allocated_yaml_text(CONFIG, result.config)
    for comment in ("# the merchandiser's weights", "# base weights", "# the top fifth by CLV",
                    "# margin test, started Monday", "# the base weights", "# very strong"):
        assert comment in text
    assert "frozen: true" in text and "shares_by_segment:" in text
    source = tmp_path / "weights.yaml"
    source.write_text(CONFIG, encoding="utf-8")
    write_allocated_yaml(source, result.config, source)
    assert load_config(source) == result.config
    assert [p.name for p in tmp_path.iterdir()] == ["weights.yaml"]  # no temp file left
    # A second round edits the per-segment shares in place, comments still there.
    again = allocate(load_config(source), data, seed=4)
    text2 = allocated_yaml_text(source.read_text(), again.config)
    assert text2.count("shares_by_segment:") == 1 and "# very strong" in text2
    assert parse_config(text2) == again.config


# --- from events, through the command line ------------------------------------------------


def synthetic_events(directory: Path, config_text: str, truth: dict[str, tuple[float, float]],
                     n_customers: int = 600, seed: int = 0) -> None:
    """Searches of customers in their arm (by the file's shares): click probability and
    margin per purchase per arm from ``truth``; every fifth customer is gold."""
    cfg = parse_config(config_text)
    rng = np.random.default_rng(seed)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    impressions, outcomes = [], []
    for i in range(n_customers):
        customer = f"C{i:04d}"
        segment = "gold" if i % 5 == 0 else None
        arm = cfg.arm_for(customer, segment)
        ctr, margin = truth[arm]
        for s in range(int(rng.integers(1, 4))):
            request = f"R{i}-{s}"
            stamp = start + timedelta(minutes=i + s)
            impressions.append({"request_id": request, "timestamp": stamp,
                                "customer_id": customer, "query": "drill",
                                "config_version": "v1", "experiment": "margin_push",
                                "arm": arm, "segment": segment, "product_id": "P1",
                                "position": 1, "score": 1.0})
            if rng.random() < ctr:
                outcomes.append({"event_id": f"E{request}c", "request_id": request,
                                 "product_id": "P1", "type": "click", "timestamp": stamp})
                if rng.random() < 0.5:
                    outcomes.append({"event_id": f"E{request}p", "request_id": request,
                                     "product_id": "P1", "type": "purchase",
                                     "timestamp": stamp, "quantity": 1, "unit_price": 10.0,
                                     "unit_margin": margin})
    write_events(directory, impressions, outcomes)


def test_allocate_command_freezes_a_guardrail_failing_arm_and_writes_the_yaml(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "weights.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    events = tmp_path / "events"
    # wild earns the most per purchase but loses half the clicks: the readout's click and
    # conversion verdicts miss, so it is frozen, and push (more margin, same clicks) leads.
    synthetic_events(events, CONFIG, {"control": (0.6, 2.0), "push": (0.6, 3.0),
                                      "wild": (0.3, 8.0)})
    rewards = customer_rewards(load_events(events), "margin_push")
    assert set(rewards.segment.tolist()) == {"default", "gold"}
    out = tmp_path / "new.yaml"
    code = main(["experiment", "allocate", "--events", str(events), "--config", str(config),
                 "--out", str(out), "--min-control", "0.2", "--seed", "1",
                 "--json", str(tmp_path / "allocation.json")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "frozen: wild:" in printed and "missed" in printed
    assert "segment default" in printed and "segment gold" in printed
    assert config.read_text(encoding="utf-8") == CONFIG  # --out: the source is untouched
    new = load_config(out)
    assert new.experiments["margin_push"].arms["wild"].frozen
    for segment in (None, "gold"):
        shares = new.arm_shares(segment)
        assert shares["wild"] == 0.0 and shares["control"] >= 0.2
    assert new.arm_shares()["push"] > 0.4  # push leads where most customers are
    assert "# very strong" in out.read_text(encoding="utf-8")


def test_allocate_command_errors_are_one_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "weights.yaml"
    config.write_text("version: 1\n", encoding="utf-8")
    events = tmp_path / "events"
    synthetic_events(events, CONFIG, {"control": (0.5, 1.0), "push": (0.5, 1.0),
                                      "wild": (0.5, 1.0)}, n_customers=20)
    assert main(["experiment", "allocate", "--events", str(events), "--config",
                 str(config)]) == 2
    assert "runs no experiment" in capsys.readouterr().err
    config.write_text(CONFIG, encoding="utf-8")
    assert main(["experiment", "allocate", "--events", str(events), "--config", str(config),
                 "--freeze", "control"]) == 2
    assert "cannot be frozen" in capsys.readouterr().err
    assert config.read_text(encoding="utf-8") == CONFIG


# --- a short replay on the traffic simulator ------------------------------------------------


def test_simulated_days_freeze_the_click_losing_arm_and_keep_control(
        small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """SIMULATED: the reduced demo world, 10 days of 300 searches (30 days take over a minute
    here; benchmarks/bandit_replay.py runs 30). ``wild`` (margin weight 20) loses most clicks
    in truth and is frozen; ``push`` (margin weight 0.1) loses less than the allowed 5% and is
    not; control never goes below 0.2; the bandit serves more margin than a uniform split on
    the same searches (same customers and queries each day)."""
    import pyarrow as pa

    from ranking.experiments.bandit import allocate_events
    from ranking.experiments.events import Events
    from ranking.experiments.simulator import TrafficSimulator
    from tests.events_support import shared_bundle

    bundle = shared_bundle(small_world, tmp_path_factory)
    base = (bundle / "weights.yaml").read_text(encoding="utf-8").replace("experiments: {}\n", "")
    work = tmp_path_factory.mktemp("replay")

    def config(name: str) -> Path:
        path = work / f"{name}.yaml"
        path.write_text(base + "experiments:\n  t:\n    arms:\n"
                        "      control: {share: 0.3334}\n"
                        "      push: {share: 0.3333, weights: {margin: 0.1}}\n"
                        "      wild: {share: 0.3333, weights: {margin: 20.0}}\n",
                        encoding="utf-8")
        return path

    sim = TrafficSimulator(bundle, small_world / "judgments.csv", seed=1)
    policy, uniform = config("policy"), sim.arms(config("uniform"))
    truth = sim.expected(uniform)
    ctr_drop = {a: 1 - truth[a]["ctr"] / truth["control"]["ctr"] for a in ("push", "wild")}
    assert ctr_drop["wild"] > 0.2 and ctr_drop["push"] < 0.05  # the world is as described
    days, served_margin, uniform_margin = [], 0.0, 0.0
    for day in range(10):
        current = load_config(policy)
        assert all(current.arm_shares(s)["control"] >= 0.2 for s in (None, *current.segments))
        drawn = sim.run_day(day, policy, searches=300, validate=False,
                            rng=np.random.default_rng([5, day]))
        same = sim.run_day(day, uniform, searches=300, validate=False,
                           rng=np.random.default_rng([5, day]))
        assert np.array_equal(drawn.customers, same.customers)
        served_margin += float(drawn.truth["margin"].sum())
        uniform_margin += float(same.truth["margin"].sum())
        days.append(drawn)
        events = Events(pa.concat_tables([d.impressions for d in days]),
                        pa.concat_tables([d.outcomes for d in days]))
        allocation = allocate_events(current, events, delta=0.05, seed=day, draws=2000)
        write_allocated_yaml(policy, allocation.config, policy)
    final = load_config(policy)
    arms = final.experiments["t"].arms
    assert arms["wild"].frozen and not arms["push"].frozen
    for segment in (None, *final.segments):
        assert final.arm_shares(segment)["wild"] == 0.0
        assert final.arm_shares(segment)["control"] >= 0.2
    assert served_margin > uniform_margin


def test_guardrail_freezes_a_clear_drop_and_asks_more_of_later_looks() -> None:
    """The freeze is the readout's "missed" (the whole interval of the drop beyond delta), at
    the level look_alpha allows the day's look: 30 daily looks risk no more than one."""
    from ranking.experiments.bandit import guardrail_failures, look_alpha

    assert look_alpha(1) == pytest.approx(0.0125)
    assert sum(look_alpha(n) for n in range(1, 10_000)) < 0.025
    rng = np.random.default_rng(0)
    n = 2000
    arm = np.array(["control", "push", "wild"] * n, object)
    searches = np.full(arm.size, 4)
    click_rate = {"control": 0.50, "push": 0.47, "wild": 0.30}
    clicks = np.array([rng.binomial(4, click_rate[a]) for a in arm], np.float64)
    sums = {"searches": searches.astype(np.float64), "click_searches": clicks,
            "purchase_searches": clicks / 4}
    rewards = CustomerRewards(np.array([f"C{i}" for i in range(arm.size)], object),
                              np.full(arm.size, "default", object), arm, searches,
                              {r: clicks for r in REWARDS}, sums=sums, days=1)
    first = guardrail_failures(rewards, "control", 0.02)
    assert set(first) == {"push", "wild"}  # a 6% drop is beyond 2% on one look
    assert "ctr drop" in first["wild"] and "allowed 2.00%" in first["wild"]
    # The same evidence on the 30th daily look freezes only the arm far beyond delta.
    assert set(guardrail_failures(rewards, "control", 0.02, looks=30)) == {"wild"}
    assert guardrail_failures(rewards, "control", 0.5) == {}
