"""Guardrail calibration: does "relevance must not fall" hold on queries the tuner never saw,
over many datasets, and not just on the one it was developed on? (Issue 14, item 6.)

Every run is the whole protocol of ``benchmarks/quality.py``, with its own functions: grouped
5-fold cross-validation by query text (``query_folds``); per fold, LambdaMART trained on the
training folds as a build trains it (``fold_relevance``), the tuner run on the training folds
only (``run_fold`` -> ``objectives.tuner.tune_weights``), everything measured on the held fold;
the held folds pooled (``pooled``), so every query of a run is held out exactly once. The
objective is the benchmark's (``MARGIN_OBJECTIVE``: margin alone, ``business_slots`` = k) with
its ``max_ndcg_drop`` (delta), unless ``--max-ndcg-drop`` overrides it. The runs:

- **Home Depot subsets** (``--subsets``, default 20), tuned at k = 3. Subset ``s`` draws its
  size uniformly in 200..400 distinct query texts (the key ``query_folds`` groups by) and the
  queries themselves from ``numpy.random.default_rng([SUBSET_SALT, s])``, then runs the protocol
  with seed ``s`` (fold split, LambdaMART seeds ``s + fold``, tuner seed, bootstrap seed).
  Business fields are simulated once for the whole catalog (seed 0, as the quality benchmark
  does), so the subsets differ in their queries and in nothing else.
- **Demo world, seeds 0..5**, tuned at k = 10. These are the quality protocol's ``--seed`` on
  the committed world (``data/demo``; its business fields are part of the world, not
  simulated per seed): six fold splits and LambdaMART/tuner seeds over the same 300 queries.
  Regenerated worlds (``data/demo/generate.py --seed``) would also vary the catalog and the
  grades; the seed of the protocol is the cheap reading, and the one the issue's quality runs use.
  ``--demo-dir`` takes another generated world instead (the tests use a small one).
- **Full Home Depot** (11,795 queries), tuned at k = 3, seed 0: the quality benchmark's run.
  ``--skip-full`` leaves it out (it is the slowest).

The costly work is done once per dataset: the business terms, the CLV affinity and the
features of the judgments (``ranking.app.build.judged_features``: indexes of the whole catalog,
so a judgment's features are the same in every subset it falls in). Only the judgments some
run needs are featurized; each subset then takes its rows.

Per run the report gives the held-out difference of mean NDCG@k, tuned blend minus relevance
alone as served (LambdaMART, or BM25 in a fold where LambdaMART lost on the training queries,
as a build serves it; the difference against LambdaMART itself is a further column),
with its paired bootstrap 95% interval; the relative point drop; the verdict
(:func:`objectives.metrics.verdict`: ``held`` unless the interval lies entirely below
``-delta * NDCG``); whether the interval lies entirely below 0 (a significant drop); the
margin@k lift (ratio of means, :func:`objectives.metrics.lift`); the tuned weight strength (sum
of the tuned weights, mean over folds); the folds where LambdaMART did not beat BM25 on the
training queries (``run_fold`` then keeps relevance only, as a build does); and the seconds
the run took.

    python benchmarks/guardrail_calibration.py [--subsets 20] [--skip-full] [--max-ndcg-drop D]
    python benchmarks/guardrail_calibration.py --quick --skip-full --out /tmp/calibration

Writes ``<out>.md`` (command and environment, the table, the must-show counts), ``<out>.json``
(every row) and ``<out>.png`` (held-out relative NDCG change against margin lift, delta drawn).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from objectives.config import WeightsConfig, parse_config
from objectives.guardrail import DEFAULT_MAX_NDCG_DROP
from objectives.metrics import lift, verdict
from ranking.app.progress import Progress

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from report_env import command as rerun_command  # noqa: E402
from report_env import environment, environment_lines, finish  # noqa: E402

HOME_DEPOT = ROOT.parent / "shared" / "data" / "home-depot-search-relevance" / "train.csv"
DEMO = ROOT / "data" / "demo"
#: Mixed into the subset seed, so the draw of a subset's queries is not the stream that
#: ``query_folds`` uses for its fold split under the same seed.
SUBSET_SALT = 14
SUBSET_SIZES = (200, 400)  # distinct queries per Home Depot subset, inclusive
HD_K, DEMO_K = 3, 10
DEMO_SEEDS = 6  # seeds 0..5
#: ``--quick``: a few tiny runs that exercise every part (the tests), not a calibration.
QUICK_SUBSETS, QUICK_SIZES, QUICK_DEMO_SEEDS = 2, (40, 60), 1
#: Must-show targets of issue 14 over 20 subsets, scaled to the number of subsets run.
MAX_SIGNIFICANT_SHARE, MIN_WITHIN_DELTA_SHARE = 2 / 20, 19 / 20


def load_quality() -> ModuleType:
    """``benchmarks/quality.py`` as a module (benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("benchmark_quality",
                                                  ROOT / "benchmarks" / "quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through it
    spec.loader.exec_module(module)
    return module


Q = load_quality()


@dataclass
class Dataset:
    """One world with everything computed once (:class:`quality.Pools`: per-judgment
    features, labels, business values and the served arrays of the objective at its k)."""

    name: str
    pools: object  # quality.Pools; only the judgments some run needs, index reset
    seconds: float  # the one-off preparation

    @property
    def judgments(self) -> pd.DataFrame:
        return self.pools.judgments

    @property
    def k(self) -> int:
        return self.pools.k

    @property
    def config(self) -> WeightsConfig:
        return self.pools.config

    def take(self, mask: np.ndarray) -> Dataset:
        """The judgments of ``mask`` (a subset of queries), nothing recomputed."""
        p = self.pools
        return Dataset(self.name, Q.Pools(p.judgments[mask].reset_index(drop=True), p.X[mask],
                                          p.y[mask], p.rows[mask],
                                          p.served,
                                          {key: v[mask] for key, v in p.values.items()},
                                          p.config, p.k), 0.0)


@dataclass
class Run:
    """One row of the calibration table."""

    dataset: str
    subset_seed: int | None  # Home Depot subsets only
    seed: int  # the protocol's seed
    n_queries: int  # held-out queries (each once)
    n_measured: int  # of those, with a finite NDCG@k for both rankers (a relevant product)
    k: int
    delta: float
    base_ndcg: float  # LambdaMART's mean NDCG@k
    diff: float  # mean NDCG@k difference, tuned blend - LambdaMART
    ci_low: float
    ci_high: float
    drop: float  # relative point drop (negative: NDCG rose)
    drop_bound: float  # relative drop at the interval's low end
    held: bool
    significant_drop: bool  # interval entirely below 0
    point_within_delta: bool
    margin_lift: float  # ratio of means
    weight_strength: float  # sum of tuned weights, mean over folds
    fold_strengths: list[float]
    folds_bm25_ahead: int  # folds where LambdaMART did not beat BM25 (weights kept at 0)
    tune_seconds: float  # the tuner alone, summed over folds
    seconds: float
    #: The tuned blend against LambdaMART itself (mean and 95% interval): differs from ``diff``
    #: only in folds that serve BM25 because LambdaMART lost there.
    diff_vs_model: float = float("nan")
    ci_low_vs_model: float = float("nan")
    ci_high_vs_model: float = float("nan")


def objective(k: int, max_ndcg_drop: float | None) -> WeightsConfig:
    """The quality benchmark's objective at ``k`` with the default delta, or ``max_ndcg_drop``
    when one is given (validated by the schema of a merchandiser's file)."""
    delta = DEFAULT_MAX_NDCG_DROP if max_ndcg_drop is None else float(max_ndcg_drop)
    return parse_config(Q.MARGIN_OBJECTIVE.format(k=k, delta=delta),
                        source="<benchmark margin objective>")


def prepare(world: object, config: WeightsConfig, k: int, keep: np.ndarray | None,
            source: Path, progress: Progress) -> Dataset:
    """Terms, CLV affinity, served arrays and the features of the ``keep`` judgments (all
    when None) over indexes of the whole catalog."""
    start = time.perf_counter()
    with progress.stage(f"{world.name}: business terms and CLV affinity"):
        affinity = Q.clv_affinity(world)
        terms = Q.compute_terms(world.catalog, affinity,
                                target_weeks=config.inventory.target_weeks_of_cover)
        served = Q.Served.of(config, terms, world.catalog)
    judgments = world.judgments if keep is None else world.judgments[keep].reset_index(drop=True)
    X, rows = Q.judged_features(world.catalog, judgments, progress)
    y = Q.judgment_labels(judgments, source)
    values = Q.business_values(world, affinity, terms.raw, rows)
    return Dataset(world.name, Q.Pools(judgments, X, y, rows, served, values, config, k),
                   time.perf_counter() - start)


def protocol(data: Dataset, seed: int, folds: int, progress: Progress,
             label: str) -> list[object]:
    """The quality benchmark's protocol (``quality.cross_validate``) on ``data``, main rows
    only (no naive grid, frontier or reference orders): a FoldResult per fold."""
    return Q.cross_validate(data.pools, seed, folds, progress, curves=False,
                            label=f"{label}: ")


def measure(data: Dataset, subset_seed: int | None, seed: int, folds: int,
            progress: Progress, label: str) -> Run:
    """One calibration row: the protocol on ``data`` and the held-out verdict."""
    start = time.perf_counter()
    results = protocol(data, seed, folds, progress, label)
    seconds = time.perf_counter() - start
    figures = Q.pooled(results)
    # the guardrail is against relevance alone as served: LambdaMART, or BM25 in a fold
    # where LambdaMART lost on the training queries (then the weights are 0 as well)
    base, tuned = figures[Q.SERVED_RELEVANCE][data.k], figures["tuned blend"][data.k]
    model = figures[Q.BASELINE][data.k]
    delta = data.config.guardrails.max_ndcg_drop
    v = verdict(tuned["ndcg"], base["ndcg"], delta, seed=seed)
    strengths = [float(np.sum(r.tuned_weights)) for r in results]
    run = Run(dataset=data.name, subset_seed=subset_seed, seed=seed,
              n_queries=int(base["ndcg"].size), n_measured=int(v.ci.n), k=data.k, delta=delta,
              base_ndcg=v.base, diff=v.ci.mean, ci_low=v.ci.low, ci_high=v.ci.high,
              drop=v.drop, drop_bound=v.drop_bound, held=bool(v.held),
              significant_drop=bool(v.ci.high < 0.0), point_within_delta=bool(v.drop <= delta),
              margin_lift=lift(tuned["margin"], base["margin"]).ratio_of_means,
              weight_strength=float(np.mean(strengths)), fold_strengths=strengths,
              folds_bm25_ahead=sum(1 for r in results
                                   if not (r.relevance_check or {}).get("model_ahead", True)),
              tune_seconds=float(sum(r.tune_seconds for r in results)), seconds=seconds)
    vs_model = verdict(tuned["ndcg"], model["ndcg"], delta, seed=seed).ci
    run.diff_vs_model, run.ci_low_vs_model, run.ci_high_vs_model = (vs_model.mean, vs_model.low,
                                                                     vs_model.high)
    progress.note(f"{label}: {'held' if run.held else 'MISSED'}, ΔNDCG@{run.k} "
                  f"{run.diff:+.4f} [{run.ci_low:+.4f}, {run.ci_high:+.4f}], margin lift "
                  f"{run.margin_lift:+.1%}, strength {run.weight_strength:.3f}, "
                  f"{run.seconds:.0f} s")
    return run


def query_keys(judgments: pd.DataFrame) -> np.ndarray:
    """Per judgment, the index of its query text as ``quality.query_folds`` groups it."""
    return pd.factorize(judgments["query"].str.casefold().str.strip().to_numpy())[0]


def draw_subsets(keys: np.ndarray, n_subsets: int,
                 sizes: tuple[int, int]) -> list[np.ndarray]:
    """Per subset seed 0..n-1, the judgment mask of its queries (size uniform in ``sizes``)."""
    n_texts = int(keys.max()) + 1
    masks = []
    for s in range(n_subsets):
        rng = np.random.default_rng([SUBSET_SALT, s])
        size = min(int(rng.integers(sizes[0], sizes[1] + 1)), n_texts)
        masks.append(np.isin(keys, rng.choice(n_texts, size, replace=False)))
    return masks


def home_depot_runs(args: argparse.Namespace, progress: Progress,
                    prepared: dict[str, float]) -> list[Run]:
    """The subsets and (unless ``--skip-full``) the full dataset; the preparation's seconds
    go into ``prepared``."""
    world = Q.load_world(argparse.Namespace(dataset="home-depot", data=args.data, seed=0,
                                            transactions=None))
    sizes = QUICK_SIZES if args.quick else SUBSET_SIZES
    masks = draw_subsets(query_keys(world.judgments), args.subsets, sizes)
    keep = None if not args.skip_full else np.logical_or.reduce(masks)
    data = prepare(world, objective(HD_K, args.max_ndcg_drop), HD_K, keep, args.data, progress)
    name = "Home Depot"
    prepared[f"{name} ({len(data.judgments):,} judgments)"] = data.seconds
    runs = []
    if keep is not None:  # the masks were drawn on all judgments; keep their kept rows
        masks = [m[keep] for m in masks]
    for s, mask in enumerate(masks):
        sub = data.take(mask)
        sub.name = f"{name} subset"
        runs.append(measure(sub, s, s, args.folds, progress,
                            f"{name} subset {s + 1}/{len(masks)}"))
    if not args.skip_full:
        data.name = f"{name} (full)"
        runs.append(measure(data, None, 0, args.folds, progress, f"{name} (full)"))
    return runs


def demo_runs(args: argparse.Namespace, progress: Progress,
              prepared: dict[str, float]) -> list[Run]:
    """The demo world (or ``--demo-dir``) at each protocol seed; the preparation's seconds go
    into ``prepared``."""
    demo_dir = args.demo_dir.resolve()
    if demo_dir == DEMO.resolve():
        world = Q.load_world(argparse.Namespace(dataset="demo"))
    else:
        world = Q.load_world(argparse.Namespace(
            dataset="generic", catalog=demo_dir / "catalog.csv",
            judgments=demo_dir / "judgments.csv", seed=0,
            transactions=demo_dir / "transactions.csv.gz"))
        world.name = f"generated world {demo_dir.name}"
    data = prepare(world, objective(DEMO_K, args.max_ndcg_drop), DEMO_K, None,
                   demo_dir / "judgments.csv", progress)
    data.name = "demo world" if demo_dir == DEMO.resolve() else world.name
    prepared[data.name] = data.seconds
    return [measure(data, None, s, args.folds, progress, f"{data.name}, seed {s}")
            for s in range(args.demo_seeds)]


def summary(runs: list[Run]) -> dict[str, object]:
    """The must-show counts of issue 14."""
    subsets = [r for r in runs if r.subset_seed is not None]
    others = [r for r in runs if r.subset_seed is None]
    n = len(subsets)
    significant = sum(r.significant_drop for r in subsets)
    within = sum(r.point_within_delta for r in subsets)
    out: dict[str, object] = {
        "subsets": n, "subsets_significant_drop": significant,
        "subsets_point_drop_within_delta": within,
        "subsets_held": sum(r.held for r in subsets),
        # how often the tuner moved at all, so "held" is not read as vacuous
        "subsets_tuned": sum(r.weight_strength > 0 for r in subsets),
        "subsets_median_lift": float(np.median([r.margin_lift for r in subsets])) if n else None,
        "subsets_certified_on_held_out": sum(r.drop_bound <= r.delta + 1e-12 for r in subsets),
        # 2 of 20 and 19 of 20, for however many subsets were run
        "target_max_significant": int(np.floor(MAX_SIGNIFICANT_SHARE * n + 1e-9)),
        "target_min_within_delta": int(np.ceil(MIN_WITHIN_DELTA_SHARE * n - 1e-9)),
        "others": [{"dataset": r.dataset, "seed": r.seed, "held": r.held} for r in others]}
    out["subsets_pass"] = bool(n and significant <= out["target_max_significant"]
                               and within >= out["target_min_within_delta"])
    out["others_pass"] = all(r.held for r in others)
    return out


def markdown(runs: list[Run], command: str, env: dict[str, object], totals: dict[str, object],
             prepared: dict[str, float], plot_name: str) -> str:
    lines = ["# Guardrail calibration", "",
             f"Command: `{command}`", "", *environment_lines(env), "",
             "Each row is the whole quality protocol (grouped 5-fold cross-validation by query "
             "text; LambdaMART and the tuner on the training folds only; everything measured on "
             "the held folds, pooled). ΔNDCG@k is the tuned blend minus relevance alone as served "
             "(LambdaMART, or BM25 in folds where LambdaMART lost on the training queries, as a "
             "build serves it; the last ΔNDCG column is against LambdaMART itself) over the "
             "held-out queries, with its paired bootstrap 95% interval; the verdict is `held` "
             "unless that interval lies entirely below -δ·NDCG; \"significant drop\" means it "
             "lies entirely below 0. Margin lift is margin@k, ratio of means. Strength is the "
             "sum of the tuned weights, mean over the folds; \"folds BM25 ahead\" counts the folds "
             "whose LambdaMART did not beat BM25 on the training queries, where the weights "
             "stay at relevance only.", "",
             "| dataset | subset seed | seed | queries | k | δ | LambdaMART NDCG@k | ΔNDCG@k "
             "[95% CI] | relative drop | verdict | significant drop | margin@k lift | strength "
             "| folds BM25 ahead | ΔNDCG@k vs LambdaMART [95% CI] | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
             "| --- | --- | --- |"]
    for r in runs:
        lines.append(
            f"| {r.dataset} | {'' if r.subset_seed is None else r.subset_seed} | {r.seed} | "
            f"{r.n_queries:,} | {r.k} | {r.delta:g} | {r.base_ndcg:.4f} | {r.diff:+.4f} "
            f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}] | {r.drop:+.2%} | "
            f"{'held' if r.held else 'missed'} | {'yes' if r.significant_drop else 'no'} | "
            f"{r.margin_lift:+.1%} | {r.weight_strength:.3f} | {r.folds_bm25_ahead} | "
            f"{r.diff_vs_model:+.4f} [{r.ci_low_vs_model:+.4f}, {r.ci_high_vs_model:+.4f}] | "
            f"{r.seconds:.0f} |")
    n = totals["subsets"]
    lines += ["", "## Must show", ""]
    if n:
        lines += [
            f"- Home Depot subsets: {totals['subsets_significant_drop']} of {n} with a "
            f"significant held-out drop (target at most {totals['target_max_significant']}); "
            f"{totals['subsets_point_drop_within_delta']} of {n} with a point drop at most δ "
            f"(target at least {totals['target_min_within_delta']}); "
            f"{totals['subsets_held']} of {n} held. "
            f"{'Met.' if totals['subsets_pass'] else 'Not met.'}",
            f"- The tuner served business weight (strength > 0, mean over folds) in "
            f"{totals['subsets_tuned']} of {n} subsets; median margin@k lift over the subsets "
            f"{totals['subsets_median_lift']:+.1%}. In {totals['subsets_certified_on_held_out']} "
            f"of {n} the held-out interval alone also certifies the drop within δ (the rest "
            "hold without certifying: a few hundred queries leave a wide interval)."]
    for o in totals["others"]:
        lines.append(f"- {o['dataset']}, seed {o['seed']}: {'held' if o['held'] else 'missed'}.")
    if prepared:
        lines += ["", "Preparation, once per dataset (terms, CLV affinity, features): "
                  + ", ".join(f"{name} {s:.0f} s" for name, s in prepared.items()) + "."]
    lines += ["", f"Plot: `{plot_name}`: held-out relative NDCG@k change (with its 95% "
              "interval) against margin@k lift; the dashed line is -δ."]
    return "\n".join(lines)


def plot(runs: list[Run], path: str, delta: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    kinds = {}
    for r in runs:
        kind = ("Home Depot subsets (k = 3)" if r.subset_seed is not None else
                f"{r.dataset} (k = {r.k})")
        kinds.setdefault(kind, []).append(r)
    markers = iter("osD^v<>p*")
    for kind, rs in kinds.items():
        x = np.array([100 * r.margin_lift for r in rs])
        y = np.array([100 * r.diff / r.base_ndcg for r in rs])
        low = np.array([100 * r.ci_low / r.base_ndcg for r in rs])
        high = np.array([100 * r.ci_high / r.base_ndcg for r in rs])
        ax.errorbar(x, y, yerr=[y - low, high - y], fmt=next(markers), capsize=2, alpha=0.8,
                    label=kind)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.axhline(-100 * delta, color="red", ls="--", lw=1.2, label=f"-δ = {-100 * delta:g}%")
    ax.set_xlabel("margin@k lift, ratio of means (%)")
    ax.set_ylabel("held-out NDCG@k change vs relevance served (%, 95% interval)")
    ax.set_title("Guardrail calibration: tuned blend on held-out queries")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="guardrail_calibration", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subsets", type=int, default=None,
                        help=f"Home Depot subsets (default 20; {QUICK_SUBSETS} with --quick)")
    parser.add_argument("--skip-full", action="store_true", help="leave out full Home Depot")
    parser.add_argument("--skip-home-depot", action="store_true",
                        help="no Home Depot runs at all (subsets and full)")
    parser.add_argument("--skip-demo", action="store_true", help="no demo-world runs")
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny runs for tests: {QUICK_SUBSETS} subsets of {QUICK_SIZES[0]}-"
                             f"{QUICK_SIZES[1]} queries, {QUICK_DEMO_SEEDS} demo seed")
    parser.add_argument("--demo-seeds", type=int, default=None,
                        help=f"demo-world protocol seeds 0..N-1 (default {DEMO_SEEDS}; "
                             f"{QUICK_DEMO_SEEDS} with --quick)")
    parser.add_argument("--max-ndcg-drop", type=float, default=None,
                        help="delta (default: the benchmark objective's max_ndcg_drop)")
    parser.add_argument("--data", type=Path, default=HOME_DEPOT, help="Home Depot train.csv")
    parser.add_argument("--demo-dir", type=Path, default=DEMO,
                        help="the demo world, or another world data/demo/generate.py wrote")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", default="guardrail_calibration",
                        help="output path prefix (.md .json .png)")
    args = parser.parse_args(argv)
    if args.subsets is None:
        args.subsets = QUICK_SUBSETS if args.quick else 20
    if args.demo_seeds is None:
        args.demo_seeds = QUICK_DEMO_SEEDS if args.quick else DEMO_SEEDS
    if min(args.subsets, args.demo_seeds) < 0 or args.folds < 2:
        parser.error("--subsets and --demo-seeds must be at least 0 and --folds at least 2")
    if args.max_ndcg_drop is not None and not 0.0 <= args.max_ndcg_drop < 1.0:
        parser.error(f"--max-ndcg-drop must be in [0, 1) (got {args.max_ndcg_drop})")
    return args


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the study; returns the JSON written to ``<out>.json``."""
    args = parse_args(argv)
    command = rerun_command(__file__, argv)
    env = environment("numpy", "xgboost")  # at the start: the tree may move meanwhile
    progress = Progress()
    runs: list[Run] = []
    prepared: dict[str, float] = {}
    hd = not args.skip_home_depot and (args.subsets or not args.skip_full)
    if hd and not args.data.is_file():
        raise SystemExit(f"Home Depot train.csv not found at {args.data} (see data/README.md; "
                         "--skip-home-depot runs without it)")
    if not args.skip_demo and args.demo_seeds:
        runs += demo_runs(args, progress, prepared)
    if hd:
        runs += home_depot_runs(args, progress, prepared)
    delta = runs[0].delta if runs else objective(HD_K, args.max_ndcg_drop).guardrails.max_ndcg_drop
    totals = summary(runs)
    env = finish(env)
    plot(runs, f"{args.out}.png", delta)
    text = markdown(runs, command, env, totals, prepared, f"{Path(args.out).name}.png")
    Path(f"{args.out}.md").write_text(text + "\n", encoding="utf-8")
    report = {"command": command, "environment": env, "max_ndcg_drop": delta,
              "folds": args.folds, "summary": totals, "rows": [asdict(r) for r in runs]}
    Path(f"{args.out}.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(text)
    return report


if __name__ == "__main__":
    main()
