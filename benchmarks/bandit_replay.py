"""Bandit replay: 30 simulated days of Thompson-sampling allocation against a uniform split.

Everything here is **simulated**: the demo world's bundle (built from ``data/demo`` unless
``--bundle`` is given), searches drawn by :class:`ranking.experiments.simulator.TrafficSimulator`
and ranked by the real ranker with each arm's weights, clicks and purchases from its known model.

The experiment, on top of the bundle's own (tuned) weights:

- ``control``: the bundle's weights;
- ``push``: margin weight 1.0 (more margin, clicks unchanged in truth);
- ``wild``: margin weight 2.0, a "huge" margin weight that costs clicks in truth (the report
  says how many):
  the readout's non-inferiority verdict on clicks must catch it and the bandit freeze it.

Each day of a replicate: the day's searches are drawn under the current shares, then
``allocate_events`` (what ``marginrank experiment allocate`` runs) reads all events so far and
writes the next day's shares (per CLV segment, control at least ``--min-control``). The same
day's searches (same customers and queries: the simulator draws them first from the day's
seed) are also served under a uniform split and under the best fixed arm, so the three
policies are compared on identical traffic.

Regret is pseudo-regret on the simulator's closed-form truth: for every search, the expected
margin of the best fixed arm minus the expected margin of the arm the policy served (the
simulator's per-search expectation given the customer, the query and the ranked list). The best
fixed arm is the one with the highest true margin per search among the arms that pass the
guardrail in truth (``wild`` has less margin than ``push`` anyway). Intervals: 95% percentile
bootstrap over replicates (each replicate: fresh traffic, hash split and Monte Carlo seed).

    python benchmarks/bandit_replay.py [--days 30] [--searches 3000] [--replicates 5]
        [--min-control 0.2] [--bundle DIR] [--out docs/bandit_replay]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from report_env import command as rerun_command  # noqa: E402
from report_env import environment, finish, header  # noqa: E402

from ranking.app.progress import Progress  # noqa: E402

DEMO = ROOT / "data" / "demo"
#: Margin weight of the guardrail-failing arm (``--wild-margin``); the arms' extra YAML.
WILD_MARGIN = 2.0


def arms_yaml(wild_margin: float) -> dict[str, str]:
    return {"control": "", "push": ", weights: {margin: 1.0}",
            "wild": f", weights: {{margin: {wild_margin}}}"}
EXPERIMENT = "margin_test"
#: Relative drop in clicks and conversion the guardrail allows in this replay.
DELTA = 0.02


def experiment_yaml(base: str, shares: dict[str, float],
                    wild_margin: float = WILD_MARGIN) -> str:
    """The bundle's weights file with the experiment appended (comments of the base kept)."""
    body = base.replace("experiments: {}\n", "")
    arms = "".join(f"      {arm}: {{share: {shares[arm]}{extra}}}\n"
                   for arm, extra in arms_yaml(wild_margin).items())
    return (body + "# The replay's experiment (benchmarks/bandit_replay.py).\n"
            f"experiments:\n  {EXPERIMENT}:\n    arms:\n{arms}")


def build_demo_bundle(out: Path) -> Path:
    from ranking.app.build import BuildInputs, BuildSettings, build

    build(BuildInputs(DEMO / "catalog.csv", DEMO / "judgments.csv",
                      DEMO / "transactions.csv.gz", DEMO / "weights.yaml"),
          out, BuildSettings(), Progress(False))
    return out


def concat(days: list) -> object:
    import pyarrow as pa

    from ranking.experiments.events import Events

    return Events(pa.concat_tables([d.impressions for d in days]),
                  pa.concat_tables([d.outcomes for d in days]))


def replicate(sim, base: str, work: Path, rep: int, args: argparse.Namespace,  # noqa: ANN001
              progress: Progress) -> dict[str, object]:
    """One 30-day run: the bandit's shares and regret, the uniform split's, per day."""
    from objectives.config import load_config
    from ranking.experiments.bandit import allocate_events
    from ranking.experiments.shares_yaml import write_allocated_yaml

    key = f"{EXPERIMENT}-replicate-{rep}"
    start = {"control": 0.3334, "push": 0.3333, "wild": 0.3333}
    policy = work / f"policy-{rep}.yaml"
    wild = args.wild_margin
    policy.write_text(experiment_yaml(base, start, wild), encoding="utf-8")
    uniform_path = work / "uniform.yaml"
    uniform_path.write_text(experiment_yaml(base, start, wild), encoding="utf-8")
    best_path = work / "best.yaml"
    best_path.write_text(experiment_yaml(base, {"control": 0.0, "push": 1.0, "wild": 0.0}, wild),
                         encoding="utf-8")
    uniform = sim.arms(uniform_path, assignment_key=key)
    best = sim.arms(best_path, assignment_key=key)
    days, rows = [], []
    for day in progress.bar(range(args.days), desc=f"replicate {rep}", total=args.days):
        config = load_config(policy)
        shares = {seg: config.arm_shares(None if seg == "default" else seg)
                  for seg in ("default", *config.segments)}

        def draw(arms, day=day):  # noqa: ANN001, ANN202 - same traffic for every policy
            return sim.run_day(day, arms, searches=args.searches, assignment_key=key,
                               rng=np.random.default_rng([args.seed, rep, day]),
                               request_prefix=f"r{rep}", validate=False)

        today = sim.arms(policy, assignment_key=key)
        served = draw(today)
        same_uniform, same_best = draw(uniform), draw(best)
        if not np.array_equal(served.customers, same_best.customers):
            raise RuntimeError("the policies did not get the same searches")
        counts = {str(a): int((served.arms == i).sum()) for i, a in enumerate(today.names)}
        days.append(served)
        allocation = allocate_events(config, concat(days), reward="margin_per_search",
                                     min_control=args.min_control, delta=DELTA,
                                     seed=int(args.seed * 1000 + rep * 100 + day))
        write_allocated_yaml(policy, allocation.config, policy)
        rows.append({
            "day": day, "shares": shares, "searches_by_arm": counts,
            "frozen": sorted(allocation.frozen),
            "margin_bandit": float(served.truth["margin"].sum()),
            "margin_uniform": float(same_uniform.truth["margin"].sum()),
            "margin_best": float(same_best.truth["margin"].sum()),
            "clicks_bandit": float(served.truth["click_searches"].sum()),
            "clicks_best": float(same_best.truth["click_searches"].sum())})
    return {"replicate": rep, "days": rows,
            "final_shares": {s.segment: s.new for s in allocation.segments}}


def interval(values: np.ndarray, seed: int = 0) -> list[float]:
    """95% percentile bootstrap interval of the mean over replicates."""
    rng = np.random.default_rng(seed)
    values = np.asarray(values, np.float64)
    if values.size < 2:
        return [float("nan"), float("nan")]
    means = values[rng.integers(0, values.size, (5000, values.size))].mean(axis=1)
    return [float(x) for x in np.quantile(means, [0.025, 0.975])]


def summarize(runs: list[dict], args: argparse.Namespace,  # noqa: C901
              truth: dict[str, dict[str, float]]) -> dict[str, object]:
    regret_b = np.array([sum(d["margin_best"] - d["margin_bandit"] for d in r["days"])
                         for r in runs])
    regret_u = np.array([sum(d["margin_best"] - d["margin_uniform"] for d in r["days"])
                         for r in runs])
    ratio = regret_b / regret_u
    min_control = min(d["shares"][seg]["control"] for r in runs for d in r["days"]
                      for seg in d["shares"])
    final_control = min(s["control"] for r in runs for s in r["final_shares"].values())
    wild_final = max(s["wild"] for r in runs for s in r["final_shares"].values())
    frozen_day = [next((d["day"] for d in r["days"] if "wild" in d["frozen"]), None)
                  for r in runs]
    searches = args.days * args.searches
    return {
        "simulated": True,
        "days": args.days, "searches_per_day": args.searches, "replicates": args.replicates,
        "min_control": args.min_control, "delta": DELTA, "seed": args.seed,
        "wild_margin": args.wild_margin,
        "truth": truth,
        "regret_bandit": regret_b.tolist(), "regret_uniform": regret_u.tolist(),
        "regret_ratio": ratio.tolist(),
        "regret_ratio_mean": float(ratio.mean()), "regret_ratio_ci": interval(ratio),
        "regret_bandit_per_search_mean": float(regret_b.mean() / searches),
        "regret_bandit_per_search_ci": [x / searches for x in interval(regret_b)],
        "regret_uniform_per_search_mean": float(regret_u.mean() / searches),
        "regret_uniform_per_search_ci": [x / searches for x in interval(regret_u)],
        "must_regret_below_half_uniform": bool(ratio.max() <= 0.5),
        "min_control_share_seen": min_control, "final_control_min": final_control,
        "must_control_never_below_min": bool(min_control >= args.min_control - 1e-12
                                             and final_control >= args.min_control - 1e-12),
        "wild_final_share_max": wild_final, "wild_frozen_on_day": frozen_day,
        "must_guardrail_arm_ends_at_zero": bool(wild_final == 0.0),
        "runs": runs,
    }


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = summary["runs"]
    segments = list(runs[0]["days"][0]["shares"])
    fig, axes = plt.subplots(1, len(segments), figsize=(5.5 * len(segments), 3.8),
                             sharey=True, squeeze=False)
    colors = {"control": "tab:blue", "push": "tab:green", "wild": "tab:red"}
    for ax, seg in zip(axes[0], segments, strict=True):
        for arm, color in colors.items():
            table = np.array([[d["shares"][seg][arm] for d in r["days"]] for r in runs])
            days = np.arange(1, table.shape[1] + 1)
            ax.plot(days, table.mean(axis=0), color=color, label=arm)
            ax.fill_between(days, table.min(axis=0), table.max(axis=0), color=color,
                            alpha=0.2, linewidth=0)
        ax.axhline(summary["min_control"], color="tab:blue", linestyle=":", linewidth=1)
        ax.set_title(f"segment {seg}")
        ax.set_xlabel("day (shares served that day)")
    axes[0][0].set_ylabel("share of the segment's customers")
    axes[0][0].legend(loc="upper right")
    fig.suptitle(f"SIMULATED: Thompson-sampling shares over {summary['days']} days "
                 f"(mean and range over {summary['replicates']} replicates)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(summary: dict, command: str, env: dict[str, object], png: str) -> str:
    def ci(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
        return f"[{values[0] * scale:.{digits}f}, {values[1] * scale:.{digits}f}]"

    truth = summary["truth"]
    met = {True: "MET", False: "MISSED"}
    lines = [
        *header("Bandit replay (simulated)", command, env, simulated=True),
        "The demo world, the traffic simulator's click and purchase model.",
        "",
        "## Setup",
        "",
        f"{summary['days']} days x {summary['searches_per_day']:,} searches per day, "
        f"{summary['replicates']} replicates (fresh traffic, hash split and Monte Carlo seed "
        "each). Each day: traffic under the current shares, then `allocate_events` (what "
        "`marginrank experiment allocate` runs) on all events so far writes the next day's "
        f"shares into the YAML. Reward: margin per search. Minimum control share "
        f"{summary['min_control']:g}; guardrail δ = {summary['delta']:g} (relative drop in "
        "clicks and conversion; the freeze asks for the whole interval beyond δ at the level "
        "`look_alpha` allows the day's look, see docs/bandit.md). Arms on top of the "
        "bundle's tuned weights: control (as is), push (margin weight 1.0), wild (margin "
        f"weight {summary['wild_margin']:g}).",
        "",
        "True per-search values of each arm (closed form, all customers in the arm):",
        "",
        "| arm | margin per search | CTR | conversion |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {arm} | {m['margin_per_search']:.4f} | {m['ctr']:.4f} | "
              f"{m['conversion']:.4f} |" for arm, m in truth.items() if arm != "None"]
    lines += [
        "",
        "## Must show",
        "",
        f"- Cumulative margin regret against the best fixed arm (push) is below half the "
        f"uniform split's: **{met[summary['must_regret_below_half_uniform']]}**. Regret ratio "
        f"bandit / uniform: mean {summary['regret_ratio_mean']:.3f}, 95% interval "
        f"{ci(summary['regret_ratio_ci'])} over replicates; per replicate "
        f"{', '.join(f'{x:.3f}' for x in summary['regret_ratio'])}. Per search: bandit "
        f"{summary['regret_bandit_per_search_mean']:.4f} "
        f"{ci(summary['regret_bandit_per_search_ci'], digits=4)}, uniform "
        f"{summary['regret_uniform_per_search_mean']:.4f} "
        f"{ci(summary['regret_uniform_per_search_ci'], digits=4)} (margin units).",
        f"- The guardrail-failing arm (wild) ends at share 0: "
        f"**{met[summary['must_guardrail_arm_ends_at_zero']]}** (largest final share over "
        f"segments and replicates {summary['wild_final_share_max']:g}; frozen after day "
        f"{', '.join(str(d) for d in summary['wild_frozen_on_day'])} (0-based) by the "
        "readout's non-inferiority verdicts).",
        f"- Control never below its minimum: **{met[summary['must_control_never_below_min']]}** "
        f"(smallest control share served {summary['min_control_share_seen']:g}, final "
        f"{summary['final_control_min']:g}, minimum {summary['min_control']:g}).",
        "",
        "Regret is pseudo-regret on the simulator's truth: per search, the expected margin of "
        "the best fixed arm minus that of the arm served, on the same searches (same customers "
        "and queries) for every policy. The floor on control costs regret by design: with "
        "control at 0.2 the bandit cannot go below 0.2 x (push - control) per search.",
        "",
        f"![shares over days]({png})",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--searches", type=int, default=3000, help="searches per day")
    parser.add_argument("--replicates", type=int, default=5)
    parser.add_argument("--min-control", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wild-margin", type=float, default=WILD_MARGIN,
                        help="margin weight of the guardrail-failing arm (default 2.0)")
    parser.add_argument("--bundle", type=Path, default=None,
                        help="bundle built from data/demo (default: build one)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bandit_replay",
                        help="report path without extension (.md, .json, .png)")
    args = parser.parse_args(argv)
    env = environment("numpy")
    progress = Progress()
    from ranking.experiments.simulator import TrafficSimulator

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = args.bundle
        if bundle is None:
            with progress.stage("building the demo bundle"):
                bundle = build_demo_bundle(work / "bundle")
        sim = TrafficSimulator(bundle, DEMO / "judgments.csv", seed=args.seed)
        base = (Path(bundle) / "weights.yaml").read_text(encoding="utf-8")
        (work / "truth.yaml").write_text(
            experiment_yaml(base, {"control": 0.3334, "push": 0.3333, "wild": 0.3333},
                            args.wild_margin),
            encoding="utf-8")
        with progress.stage("true values of the arms"):
            truth = {str(k): v for k, v in sim.expected(work / "truth.yaml").items()}
        runs = [replicate(sim, base, work, rep, args, progress)
                for rep in range(args.replicates)]
    summary = summarize(runs, args, truth)
    env = finish(env)
    summary["environment"] = env
    command = rerun_command(__file__, argv)
    summary["command"] = command
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n",
                                             encoding="utf-8")
    plot(summary, args.out.with_suffix(".png"))
    args.out.with_suffix(".md").write_text(
        markdown(summary, command, env, args.out.with_suffix(".png").name),
        encoding="utf-8")
    print(f"regret ratio bandit/uniform: {summary['regret_ratio_mean']:.3f} "
          f"{summary['regret_ratio_ci']} per replicate {summary['regret_ratio']}")
    print(f"wild final share max {summary['wild_final_share_max']}, frozen on day "
          f"{summary['wild_frozen_on_day']}; min control share "
          f"{summary['min_control_share_seen']}")
    print(f"wrote {args.out.with_suffix('.md')}, .json, .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
