"""Experiment readouts against a known truth: A/A, a broken split and A/B replays on the traffic
simulator (issue 18, "Must show": A/A and A/B on the simulator). Every figure is **simulated**.

The world is a bundle and its judgments (default: the demo world, built once into ``--work``
if no ``--bundle`` is given) run through :class:`ranking.experiments.TrafficSimulator`: real
customers of the bundle's CLV world, real rankings by the bundle's ranker for each arm, and the
simulator's position-based click and purchase model. A replay is ``--days`` days of
``--searches`` searches; it draws a fresh split of customers (the ranker's own BLAKE2b
assignment keyed by ``<experiment>/<replay>``) and fresh searches and outcomes
(``default_rng([seed, study, replay, day])``), writes nothing to disk, and reads out with
:func:`ranking.experiments.readout.readout` exactly as ``marginrank experiment report`` does.
Rankings are cached per (config, query, segment, arm): replays cost draws, not searches.

- **A/A** (``--aa`` replays): two arms with the bundle's own weights, 50/50. The false-positive
  rate of the lift test is the share of replays whose 95% interval excludes 0, per metric, with
  its Clopper-Pearson 95% interval. Must be within 3-7%.
- **Broken split** (``--srm`` replays each): the readout expects the configured 50/50 while
  (a) the service served 55/45 (a wrong share deployed), or (b) every search of 20% of the
  treatment's customers was lost by logging (one client whose logger broke). The sample-ratio
  test (p < 0.001) must flag them; on the A/A replays it must stay quiet.
- **A/B** (``--ab`` replays each): the treatment arm adds ``--margin-push`` to the margin
  weight (default 0.6: margin and clicks both rise in the demo world), and, in a second study,
  ``--hard-push`` (default 2.0: margin rises, clicks fall; the report gives the true effects).
  The true effect of every metric is the ratio of the simulator's closed-form expectations
  (:meth:`TrafficSimulator.expected`: every customer, weighted by how often they search, every
  query by frequency, the click and purchase probabilities of the lists the ranker serves each
  arm). Coverage: the share of replays whose 95% interval contains the true lift (must be
  >= 90%). Margin per search must rise (true and estimated). The click verdict must match the
  truth: at a delta below the true CTR drop the readout must never certify non-inferiority, at a
  delta above it it must never call a miss.

    python benchmarks/experiment_replays.py [--aa 200] [--ab 200] [--srm 50]
    python benchmarks/experiment_replays.py --bundle B --judgments J --out docs/experiment_replays

Writes ``<out>.md``, ``<out>.json`` and ``<out>.png`` (A/B margin lift intervals against the
truth).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from report_env import command as rerun_command  # noqa: E402
from report_env import environment, finish, header  # noqa: E402

from ranking.experiments.events import Events  # noqa: E402
from ranking.experiments.readout import METRICS, Readout, readout  # noqa: E402
from ranking.experiments.simulator import Arms, TrafficSimulator, with_experiment  # noqa: E402
from ranking.experiments.stats import online_verdict  # noqa: E402

LIFT_METRICS = [name for name, *_ in METRICS if name != "clv_reached"]


class World(NamedTuple):
    """The simulator and the configs the studies serve (a NamedTuple: tests load this script
    without registering it as a module, which dataclasses need)."""

    sim: TrafficSimulator
    aa: Arms
    ab: Arms
    ab_hard: Arms
    wrong_share: Arms
    bundle: Path
    judgments: Path


def build_world(bundle: Path | None, judgments: Path | None, work: Path, seed: int,
                margin_push: float, hard_push: float, wrong_share: float = 0.55) -> World:
    """The simulator over ``bundle`` (built from the demo world into ``work`` when None) and
    the four configs the studies serve."""
    if bundle is None:
        bundle = work / "demo_bundle"
        judgments = ROOT / "data" / "demo" / "judgments.csv"
        if not (bundle / "manifest.json").is_file():
            from ranking.app.build import BuildInputs, BuildSettings, build

            demo = ROOT / "data" / "demo"
            build(BuildInputs(demo / "catalog.csv", demo / "judgments.csv",
                              demo / "transactions.csv.gz", demo / "weights.yaml"), bundle,
                  BuildSettings(seed=7))
    if judgments is None:
        raise SystemExit("--judgments is required with --bundle")
    sim = TrafficSimulator(bundle, judgments, seed=seed)
    base = bundle / "weights.yaml"
    margin = sim.ranker.config.weights.margin
    work.mkdir(parents=True, exist_ok=True)

    def arms(name: str, spec: dict) -> Arms:
        path = work / f"{name}.yaml"
        path.write_text(with_experiment(base, name, spec), encoding="utf-8")
        return sim.arms(path)

    return World(
        sim,
        aa=arms("aa", {"control": (0.5, {}), "b": (0.5, {})}),
        ab=arms("ab", {"control": (0.5, {}), "push": (0.5, {"margin": margin + margin_push})}),
        ab_hard=arms("abhard", {"control": (0.5, {}),
                                "push": (0.5, {"margin": margin + hard_push})}),
        wrong_share=arms("srm", {"control": (wrong_share, {}), "b": (1 - wrong_share, {})}),
        bundle=bundle, judgments=judgments)


def replay(world: World, arms: Arms, study: int, i: int, days: int, searches: int, *,
           expected: dict[str, float], delta: float, lose: tuple[str, float] | None = None
           ) -> Readout:
    """One replay: a fresh split keyed by (experiment, replay), ``days`` days of traffic, and
    its readout. ``lose`` = (arm, fraction): that share of the arm's searches is dropped, as a
    broken logger would."""
    key = f"{arms.serving.experiment}/{i}"
    imps, outs = [], []
    for day in range(days):
        rng = np.random.default_rng([world.sim.seed, study, i, day])
        d = world.sim.run_day(day, _keyed(arms, key), searches=searches, rng=rng,
                              request_prefix=f"{study}-{i}-", validate=False)
        imp, out = d.impressions, d.outcomes
        if lose is not None:
            import pyarrow.compute as pc

            arm, fraction = lose
            names = np.array(arms.serving.arm_names, dtype=object)
            # every search of a fixed ``fraction`` of the arm's customers (one client whose
            # logging broke), the same customers every day of the replay
            unlogged = np.random.default_rng([study, i]).random(world.sim.customer_ids.size)
            dropped = (names[d.arms] == arm) & (unlogged[d.customers] < fraction)
            gone = pa.array(np.array([f"{study}-{i}-d{day}-{j}"
                                      for j in np.flatnonzero(dropped)], dtype=object),
                            pa.string())
            imp = imp.filter(pc.invert(pc.is_in(imp.column("request_id"), value_set=gone)))
            out = out.filter(pc.invert(pc.is_in(out.column("request_id"), value_set=gone)))
        imps.append(imp)
        outs.append(out)
    ev = Events(pa.concat_tables(imps), pa.concat_tables(outs))
    return readout(ev, control="control", delta=delta, expected_shares=expected,
                   shares_source="configured", over_time=False)


def _keyed(arms: Arms, key: str) -> Arms:
    return Arms(arms.serving, key)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    a = (1 - level) / 2
    low = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return low, high


def aa_study(world: World, n: int, days: int, searches: int, delta: float,
             progress: bool = True) -> dict:
    """False-positive rate of the lift test per metric, and the SRM test's false alarms."""
    hits = {m: 0 for m in LIFT_METRICS}
    srm_flags, seen = 0, 0
    for i in range(n):
        r = replay(world, world.aa, 1, i, days, searches,
                   expected={"control": 0.5, "b": 0.5}, delta=delta)
        lifts = r.comparison("b").lifts
        for m in LIFT_METRICS:
            hits[m] += bool(lifts[m].significant)
        srm_flags += r.srm.mismatch
        seen += 1
        _tick(progress, "A/A", i, n)
    return {"replays": seen,
            "false_positive_rate": {m: _rate(hits[m], seen) for m in LIFT_METRICS},
            "srm_false_alarms": _rate(srm_flags, seen)}


def srm_study(world: World, n: int, days: int, searches: int, delta: float,
              progress: bool = True, lost_share: float = 0.20) -> dict:
    """Detection rate of the sample-ratio test on two broken splits."""
    wrong, lost = 0, 0
    p_wrong, p_lost = [], []
    for i in range(n):
        r = replay(world, world.wrong_share, 2, i, days, searches,
                   expected={"control": 0.5, "b": 0.5}, delta=delta)
        wrong += r.srm.mismatch
        p_wrong.append(r.srm.p_value)
        r = replay(world, world.aa, 3, i, days, searches,
                   expected={"control": 0.5, "b": 0.5}, delta=delta, lose=("b", lost_share))
        lost += r.srm.mismatch
        p_lost.append(r.srm.p_value)
        _tick(progress, "SRM", i, n)
    return {"replays": n,
            "served_55_45_expected_50_50": {**_rate(wrong, n),
                                            "median_p": float(np.median(p_wrong))},
            "lost_20pct_of_treatment_customers": {**_rate(lost, n),
                                                 "median_p": float(np.median(p_lost))}}


def ab_study(world: World, arms: Arms, study: int, n: int, days: int, searches: int,
             deltas: tuple[float, float], progress: bool = True) -> dict:
    """Coverage of the true lifts, margin per search, and the click verdict against truth."""
    truth_values = world.sim.expected(arms)
    truth = {m: truth_values["push"][m] / truth_values["control"][m] - 1
             for m in LIFT_METRICS}
    covered = {m: 0 for m in LIFT_METRICS}
    estimates = {m: [] for m in LIFT_METRICS}
    intervals = []
    verdicts = {d: {"certified": 0, "held": 0, "missed": 0} for d in deltas}
    margin_significant_up = 0
    for i in range(n):
        r = replay(world, arms, study, i, days, searches,
                   expected={"control": 0.5, "push": 0.5}, delta=deltas[0])
        lifts = r.comparison("push").lifts
        for m in LIFT_METRICS:
            lf = lifts[m]
            covered[m] += bool(lf.lift_low <= truth[m] <= lf.lift_high)
            estimates[m].append(lf.lift)
        lf = lifts["margin_per_search"]
        intervals.append((lf.lift, lf.lift_low, lf.lift_high))
        margin_significant_up += bool(lf.lift_low > 0)
        t, c = r.arm("push").metrics["ctr"], r.arm("control").metrics["ctr"]
        for d in deltas:
            verdicts[d][online_verdict("ctr", t, c, d).status] += 1
        _tick(progress, "A/B", i, n)
    true_ctr_drop = -truth["ctr"]
    verdict_rows = []
    for d in deltas:
        v = verdicts[d]
        truth_says = "within delta" if true_ctr_drop <= d else "beyond delta"
        wrong = v["missed"] if true_ctr_drop <= d else v["certified"]
        verdict_rows.append({"delta": d, "truth": truth_says, **v, "contradicting": wrong,
                             "matches": wrong == 0})
    return {"replays": n, "true_values": truth_values, "true_lift": truth,
            "coverage": {m: _rate(covered[m], n) for m in LIFT_METRICS},
            "mean_estimated_lift": {m: float(np.mean(estimates[m])) for m in LIFT_METRICS},
            "margin_significantly_up": _rate(margin_significant_up, n),
            "click_verdicts": verdict_rows, "margin_intervals": intervals}


def _rate(k: int, n: int) -> dict:
    low, high = clopper_pearson(int(k), n)
    return {"count": int(k), "n": n, "rate": k / n if n else float("nan"), "low": low,
            "high": high}


def _tick(on: bool, what: str, i: int, n: int) -> None:
    if on and ((i + 1) % max(1, n // 10) == 0 or i + 1 == n):
        print(f"  {what}: {i + 1}/{n}", file=sys.stderr, flush=True)


def _pct(r: dict) -> str:
    return (f"{100 * r['rate']:.1f}% ({r['count']}/{r['n']}; 95% CI {100 * r['low']:.1f}-"
            f"{100 * r['high']:.1f}%)")


def render(result: dict) -> str:
    aa, srm = result["aa"], result["srm"]
    s = result["settings"]
    fpr_margin = aa["false_positive_rate"]["margin_per_search"]
    fpr_ctr = aa["false_positive_rate"]["ctr"]
    lines = [
        *header("Experiment readouts on the traffic simulator (simulated)", result["command"],
                result["environment"], simulated=True),
        "No figure here is a timing.", "",
        f"World: bundle `{s['bundle']}` with judgments `{s['judgments']}`: "
        f"{s['customers']:,} customers, {s['queries']} queries, simulator seed {s['seed']}. "
        f"A replay is {s['days']} days x {s['searches']:,} searches with a fresh customer split "
        "and fresh draws; the readout is `ranking.experiments.readout.readout` (delta method "
        "clustered by customer, two-sided 95%). Every figure is **simulated**.", "",
        "## Must show", "",
        "| claim | result | target | status |", "| --- | --- | --- | --- |",
        f"| A/A false-positive rate, margin per search | {_pct(fpr_margin)} | 3-7% | "
        f"{_status(0.03 <= fpr_margin['rate'] <= 0.07)} |",
        f"| A/A false-positive rate, CTR | {_pct(fpr_ctr)} | 3-7% | "
        f"{_status(0.03 <= fpr_ctr['rate'] <= 0.07)} |",
        f"| SRM flags a 55/45 split read as 50/50 | "
        f"{_pct(srm['served_55_45_expected_50_50'])} | flagged | "
        f"{_status(srm['served_55_45_expected_50_50']['rate'] >= 0.9)} |",
        f"| SRM flags the logs of 20% of treatment customers lost | "
        f"{_pct(srm['lost_20pct_of_treatment_customers'])} | flagged | "
        f"{_status(srm['lost_20pct_of_treatment_customers']['rate'] >= 0.9)} |",
        f"| SRM false alarms on A/A | {_pct(aa['srm_false_alarms'])} | ~0.1% | "
        f"{_status(aa['srm_false_alarms']['rate'] <= 0.02)} |",
    ]
    for key, title in (("ab", f"A/B margin +{s['margin_push']:g}"),
                       ("ab_hard", f"A/B margin +{s['hard_push']:g}")):
        lines += _ab_claims(result[key], title)
    lines += ["", "## A/A: false-positive rate of the lift test, per metric", "",
              "| metric | interval excludes 0 |", "| --- | --- |"]
    for m in LIFT_METRICS:
        lines.append(f"| {m} | {_pct(aa['false_positive_rate'][m])} |")
    for key, push in (("ab", s["margin_push"]), ("ab_hard", s["hard_push"])):
        lines += _ab_table(result[key], push)
    lines += ["", "![A/B margin per search: each replay's 95% interval against the true lift]"
              "(experiment_replays.png)", "",
              "## Broken splits", "",
              f"Median SRM p-value: 55/45 served {srm['served_55_45_expected_50_50']['median_p']:.2g}; "  # noqa: E501
              f"logs of 20% of treatment customers lost "
              f"{srm['lost_20pct_of_treatment_customers']['median_p']:.2g} (flag below 0.001).",
              ""]
    return "\n".join(lines)


def _ab_claims(ab: dict, title: str) -> list[str]:
    cov = ab["coverage"]
    worst = min(LIFT_METRICS, key=lambda m: cov[m]["rate"])
    core = ("ctr", "conversion", "revenue_per_search", "margin_per_search")
    cov_core = min(cov[m]["rate"] for m in core)
    tl, est = ab["true_lift"]["margin_per_search"], ab["mean_estimated_lift"]["margin_per_search"]
    lines = [
        f"| {title}: intervals cover the true lift, lowest of CTR, conversion, revenue and "
        f"margin per search | {100 * cov_core:.1f}% | >= 90% | {_status(cov_core >= 0.9)} |",
        f"| {title}: coverage, lowest of all metrics ({worst}) | {_pct(cov[worst])} | >= 90% | "
        f"{_status(cov[worst]['rate'] >= 0.9)} |",
        f"| {title}: margin per search rises | true {100 * tl:+.2f}%, mean estimate "
        f"{100 * est:+.2f}%, interval above 0 in {_pct(ab['margin_significantly_up'])} | "
        f"rises | {_status(tl > 0 and est > 0)} |"]
    for v in ab["click_verdicts"]:
        lines.append(
            f"| {title}: click verdict at delta {v['delta']:g} (true CTR change "
            f"{100 * ab['true_lift']['ctr']:+.2f}%: {v['truth']}) | certified {v['certified']}, "
            f"held {v['held']}, missed {v['missed']} | none against the truth | "
            f"{_status(v['matches'])} |")
    return lines


def _ab_table(ab: dict, push: float) -> list[str]:
    lines = ["", f"## A/B, margin weight +{push:g}: true lift, mean estimate, coverage", "",
             "True lift: the ratio of the simulator's closed-form expectations for each arm "
             "(every customer weighted by search frequency, every query by frequency, the "
             f"ranked lists each arm serves). {ab['replays']} replays.", "",
             "| metric | control (true) | treatment (true) | true lift | mean estimate | "
             "coverage of the truth |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    for m in LIFT_METRICS:
        lines.append(f"| {m} | {ab['true_values']['control'][m]:.5g} | "
                     f"{ab['true_values']['push'][m]:.5g} | {100 * ab['true_lift'][m]:+.2f}% | "
                     f"{100 * ab['mean_estimated_lift'][m]:+.2f}% | {_pct(ab['coverage'][m])} |")
    return lines


def _status(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ab = result["ab"]
    iv = np.array(ab["margin_intervals"]) * 100
    order = np.argsort(iv[:, 0])
    truth = ab["true_lift"]["margin_per_search"] * 100
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = np.arange(iv.shape[0])
    miss = (iv[order, 1] > truth) | (iv[order, 2] < truth)
    ax.vlines(x[~miss], iv[order, 1][~miss], iv[order, 2][~miss], color="tab:blue", lw=0.8,
              label="95% interval covers the truth")
    ax.vlines(x[miss], iv[order, 1][miss], iv[order, 2][miss], color="tab:red", lw=0.8,
              label="misses it")
    ax.plot(x, iv[order, 0], ".", color="black", ms=2, label="estimate")
    ax.axhline(truth, color="tab:green", lw=1.2, label=f"true lift {truth:+.2f}%")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("A/B replays, sorted by estimate")
    ax.set_ylabel("margin per search lift, %")
    ax.set_title("Simulated A/B: margin push, readout intervals vs truth", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(bundle: Path | None, judgments: Path | None, *, work: Path, aa: int, ab: int,
        ab_hard: int, srm: int, days: int, searches: int, seed: int, margin_push: float,
        hard_push: float, deltas: tuple[float, float], progress: bool = True) -> dict:
    env = environment("numpy")
    world = build_world(bundle, judgments, work, seed, margin_push, hard_push)
    result = {
        "simulated": True,
        "settings": {"bundle": str(world.bundle), "judgments": str(world.judgments),
                     "customers": int(world.sim.customer_ids.size),
                     "queries": len(world.sim.queries), "seed": seed, "days": days,
                     "searches": searches, "margin_push": margin_push, "hard_push": hard_push,
                     "deltas": list(deltas)},
        "aa": aa_study(world, aa, days, searches, deltas[0], progress),
        "srm": srm_study(world, srm, days, searches, deltas[0], progress),
        "ab": ab_study(world, world.ab, 4, ab, days, searches, deltas, progress),
        "ab_hard": ab_study(world, world.ab_hard, 5, ab_hard, days, searches, deltas,
                            progress),
    }
    result["environment"] = finish(env)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--judgments", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=Path("/tmp/marginrank-experiment-replays"),
                        help="where the demo bundle and the configs are written")
    parser.add_argument("--aa", type=int, default=200)
    parser.add_argument("--ab", type=int, default=200)
    parser.add_argument("--srm", type=int, default=50)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--searches", type=int, default=1500, help="searches per day")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ab-hard", type=int, default=100)
    parser.add_argument("--margin-push", type=float, default=0.6)
    parser.add_argument("--hard-push", type=float, default=2.0)
    parser.add_argument("--deltas", default="0.01,0.10",
                        help="two non-inferiority deltas for the click verdict")
    parser.add_argument("--aa-only", action="store_true",
                        help="run the A/A study alone (a larger or differently seeded check)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "experiment_replays")
    args = parser.parse_args(argv)
    if args.aa_only:
        return main_aa_only(args, argv)
    deltas = tuple(float(x) for x in args.deltas.split(","))
    result = run(args.bundle, args.judgments, work=args.work, aa=args.aa, ab=args.ab,
                 ab_hard=args.ab_hard, srm=args.srm, days=args.days, searches=args.searches,
                 seed=args.seed, margin_push=args.margin_push, hard_push=args.hard_push,
                 deltas=deltas)  # type: ignore[arg-type]
    result["command"] = rerun_command(__file__, argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = render(result)
    args.out.with_suffix(".md").write_text(text, encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=float) + "\n",
                                             encoding="utf-8")
    plot(result, args.out.with_suffix(".png"))
    print(text)
    return 0


def main_aa_only(args: argparse.Namespace, argv: list[str] | None) -> int:
    """``--aa-only``: the A/A study with its own seed, reported on its own."""
    env = environment("numpy")
    world = build_world(args.bundle, args.judgments, args.work, args.seed, args.margin_push,
                        args.hard_push)
    aa = aa_study(world, args.aa, args.days, args.searches, 0.01)
    command = rerun_command(__file__, argv)
    env = finish(env)
    lines = [*header("A/A replays on the traffic simulator (simulated)", command, env,
                     simulated=True),
             "No figure here is a timing.", "",
             f"{aa['replays']} A/A replays (simulator seed {args.seed}; {args.days} days x "
             f"{args.searches:,} searches each), the protocol of "
             "[experiment_replays.md](experiment_replays.md).", "",
             "| metric | false-positive rate at 95% (interval excludes 0) |", "| --- | --- |"]
    lines += [f"| {m} | {_pct(aa['false_positive_rate'][m])} |" for m in LIFT_METRICS]
    lines += ["", f"Sample-ratio false alarms: {_pct(aa['srm_false_alarms'])}.", ""]
    text = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text, encoding="utf-8")
    args.out.with_suffix(".json").write_text(
        json.dumps({"simulated": True, "command": command, "environment": env,
                    "seed": args.seed, "aa": aa},
                   indent=2) + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
