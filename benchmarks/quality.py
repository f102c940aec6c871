"""Quality benchmark: NDCG and business figures of BM25, LambdaMART, the naive blend and the
tuned blend on held-out queries, and the NDCG-vs-margin Pareto frontier.

Datasets: the embedded demo world (``--dataset demo``), Home Depot (``--dataset home-depot``,
the Kaggle ``train.csv``), or any catalog + judgments in the generic form (``--catalog`` and
``--judgments``, optionally ``--transactions``). Business fields a dataset lacks (all of them
for Home Depot) are simulated by :mod:`objectives.simulate` with ``--seed`` and every report
says so; without transactions, a BG/NBD world is simulated for the CLV affinity.

Protocol: grouped cross-validation by query text (``--folds``, default 5). For each fold,
LambdaMART is trained on the other folds (early stopping on a fifth of them); the training
queries get cross-fitted relevance scores (:func:`ranking.ltr.cross_fit_relevance`), the held
fold the model's scores. On the training queries only: LambdaMART is checked against BM25
(when it loses, the fold keeps relevance only and ranks by BM25, as a build would serve);
the tuner chooses weights under the objective's ``max_ndcg_drop`` (cvxpy, the fixed-sequence
non-inferiority test of :mod:`objectives.guardrail`); the frontier is solved along the tuner's
strength path; and the naive blend ``z(LambdaMART) + w z(margin)`` (both z-scored within the
query's pool) gets its weight by the same rule, at the same ``max_ndcg_drop`` and at 0.5%.
Everything is then measured on the held fold; folds are pooled, so every judged query is a
held-out query exactly once.

Each ranker orders a query's judged pool, with relevance z-scored over that pool: the formula
and guardrails of the blend core (the compiled plan and kernel the served ranker uses),
applied to the pool as the candidate set. The served ranker z-scores
over its retrieved candidates instead; that set cannot be evaluated, because unjudged
candidates have no grade.

    python benchmarks/quality.py --dataset home-depot [--k 3] [--out quality_home_depot]
    python benchmarks/quality.py --dataset demo --k 10 --out quality_demo

Writes ``<out>.md`` (tables at k = 3, 5, 10), ``<out>.json`` (summary and per-query rows) and
``<out>.png`` (the frontier plot).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import types
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clv.model import CLVModel
from clv.rfm import rfm_summary
from clv.segments import product_clv_affinity
from clv.transactions import load_transactions, validate_transactions
from objectives.catalog import load_catalog, load_judgments
from objectives.config import TERM_NAMES, WeightsConfig, load_config, parse_config
from objectives.groups import QueryGroups
from objectives.guardrail import DEFAULT_MAX_NDCG_DROP, compare_with_bm25, fixed_sequence
from objectives.metrics import Verdict, finite_mean, non_inferiority, verdict
from objectives.public_data import load_home_depot
from objectives.quality import (
    BASELINE,
    CurvePoint,
    compare,
    frontier_gaps,
    markdown_table,
    per_query_figures,
    plot_frontier,
)
from objectives.simulate import simulate_business_fields, simulate_transactions
from objectives.terms import compute_terms, weeks_of_cover
from objectives.tuner import STRENGTH_PATH, TuneResult, frontier, tune_weights
from ranking import features
from ranking.app.build import Served, judged_features, judgment_labels, query_groups
from ranking.app.cluster import add_cluster_argument, dask_client
from ranking.app.help_text import plain_doc
from ranking.app.progress import Progress
from ranking.ltr import LambdaMART, train_and_cross_fit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from report_env import command, environment, finish, header  # noqa: E402

DEMO = ROOT / "data" / "demo"
HOME_DEPOT = ROOT.parent / "shared" / "data" / "home-depot-search-relevance" / "train.csv"
CUTOFFS = (3, 5, 10)
#: Weights of the naive blend tried, and the relative NDCG drop of the issue's reference point.
NAIVE_GRID = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0)
NAIVE_REFERENCE_DROP = 0.005
#: The frontier sweeps the tuner's path and past it, so the tuned curve spans the NDCG range of
#: the naive blend's strongest weights too and the two can be compared at every level.
FRONTIER_PATH = (*STRENGTH_PATH, (5.0, 1.0), (10.0, 1.0), (20.0, 1.0))
#: The benchmark's business objective unless ``--config`` names a weights file: margin alone,
#: since margin lift is the question; the default guardrail (``max_ndcg_drop`` 0.2%, or
#: ``--max-ndcg-drop``); margin picks the products of the first k places (the cut-off tuned
#: at), relevance orders the list.
MARGIN_OBJECTIVE = """\
version: 1
weights: {{margin: 1.0, clv: 0.0, returns: 0.0, inventory: 0.0}}
guardrails: {{max_ndcg_drop: {delta}, out_of_stock: demote, business_slots: {k}}}
"""


@dataclass
class World:
    """A dataset in the generic form, with its business values and what was simulated."""

    name: str
    catalog: pd.DataFrame
    judgments: pd.DataFrame
    transactions: pd.DataFrame
    notes: list[str]


def load_world(args: argparse.Namespace) -> World:
    """The chosen dataset with every missing business field simulated (seeded, noted)."""
    if args.dataset == "demo":
        catalog, _ = load_catalog(DEMO / "catalog.csv")
        judgments = load_judgments(DEMO / "judgments.csv", pd.Index(catalog["product_id"]))
        tx, _ = load_transactions(DEMO / "transactions.csv.gz")
        return World("demo world (simulated)", catalog, judgments, tx,
                     ["the demo world is simulated throughout (data/demo/README.md)"])
    if args.dataset == "home-depot":
        catalog, judgments, notes = load_home_depot(args.data or HOME_DEPOT)
        name = "Home Depot (real judgments, simulated business fields)"
    else:
        catalog, _ = load_catalog(args.catalog)
        judgments = load_judgments(args.judgments, pd.Index(catalog["product_id"]))
        notes, name = [], f"{args.catalog.name} + {args.judgments.name}"
    catalog, filled = simulate_business_fields(catalog, seed=args.seed)
    if filled:
        notes.append(f"simulated with seed {args.seed} (objectives/simulate.py): "
                     + ", ".join(filled))
    if args.transactions:
        tx, _ = load_transactions(args.transactions)
    else:
        tx, _ = validate_transactions(simulate_transactions(catalog, seed=args.seed),
                                      source="<simulated transactions>")
        notes.append(f"transactions simulated with seed {args.seed} (BG/NBD world) for the "
                     "CLV affinity")
    return World(name, catalog, judgments, tx, notes)


def clv_affinity(world: World) -> np.ndarray:
    """Product CLV affinity from a BG/NBD + Gamma-Gamma fit on the transactions."""
    summary = rfm_summary(world.transactions)
    clv = CLVModel().fit(summary).customer_clv(summary)
    affinity, _ = product_clv_affinity(world.transactions, pd.Series(clv, index=summary.index),
                                       world.catalog["product_id"].tolist())
    return affinity


def business_values(world: World, affinity: np.ndarray, terms_raw: dict[str, np.ndarray],
                    rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per-judgment values the business figures average over the top k."""
    cat = world.catalog
    stock = cat["stock"].to_numpy(np.float64)
    cover = weeks_of_cover(stock, cat["daily_sales"].to_numpy(np.float64))
    per_product = {"margin": terms_raw["unit_margin"],
                   "return_rate": cat["return_rate"].to_numpy(np.float64),
                   "out_of_stock": (stock <= 0).astype(np.float64),
                   "weeks_of_cover": cover, "clv_affinity": np.asarray(affinity, np.float64)}
    return {key: values[rows] for key, values in per_product.items()}


def query_folds(judgments: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    """A fold per judgment, by query text, so one text never sits on both sides."""
    text = judgments["query"].str.casefold().str.strip().to_numpy()
    key, uniques = pd.factorize(text)
    fold_of_text = np.random.default_rng(seed).permutation(np.arange(len(uniques)) % n_folds)
    return fold_of_text[key]


def fold_relevance(X: np.ndarray, y: np.ndarray, qid: np.ndarray, train: np.ndarray,
                   seed: int, k: int) -> np.ndarray:
    """Scores for every row from the model a build would train on the training rows
    (:func:`ranking.ltr.train_and_cross_fit`): cross-fitted on the training rows, the model's
    own on the rest. A fifth of the training queries (by qid) is used for early stopping."""
    train_q = np.unique(qid[train])
    valid_q = np.random.default_rng(seed).choice(train_q, max(1, train_q.size // 5),
                                                 replace=False)
    valid = train & np.isin(qid, valid_q)
    base = LambdaMART(feature_names=features.FEATURE_NAMES, eval_at=k, seed=seed)
    return train_and_cross_fit(base, X, y, qid, train & ~valid, valid)[2]


def pool_z(groups: QueryGroups, values: np.ndarray) -> np.ndarray:
    """``values`` z-scored within each query's pool (0 where a pool's values are all equal).
    A missing value counts as its pool's mean, so it does not blank the whole pool."""
    filled = np.asarray(values, np.float64).copy()
    for s in groups.slices():
        known = np.isfinite(filled[s])
        filled[s] = np.where(known, filled[s], filled[s][known].mean() if known.any() else 0.0)
    return QueryGroups(groups.qptr, filled, groups.terms, groups.grades,
                       groups.margin).z_relevance()


def naive_weights(groups: QueryGroups, z_margin: np.ndarray, k: int,
                  tolerances: dict[str, float], seed: int) -> dict[str, float]:
    """For each named ``max_ndcg_drop``, the weight of the naive grid chosen by the tuner's own
    rule (:mod:`objectives.guardrail`): weights tested from the smallest up, each accepted if
    the one-sided 95% bound of its NDCG@k drop on ``groups`` is within that tolerance, the
    first refusal stopping the walk; 0 if the smallest fails. A single weight is not fitted,
    so its NDCG on the training queries is already an honest measurement. The grid is
    measured once for all tolerances."""
    z = groups.z_relevance()
    base = groups.ndcg(z, k)
    tuned = [groups.ndcg(z + w * z_margin, k) for w in NAIVE_GRID]
    chosen = {}
    for name, tolerance in tolerances.items():
        last = fixed_sequence([non_inferiority(t, base, tolerance, seed=seed) for t in tuned])
        chosen[name] = NAIVE_GRID[last] if last >= 0 else 0.0
    return chosen


#: Reference orders that know every grade: the best NDCG possible with out-of-stock products
#: demoted (as every ranker here demotes them), equal grades ordered by the model or by margin.
#: Their margin gap is the margin a ranker could add at no NDCG cost.
ORACLE_BY_MODEL = "ideal order, equal grades by LambdaMART"
ORACLE_BY_MARGIN = "ideal order, equal grades by margin"
#: Grade multiplier of the reference orders. The smallest step between Home Depot's averaged
#: grades is 0.08 (1.25 to 1.33), times 3,000 is 240: more than the spread of z-scores in any
#: pool (at most sqrt(2 n) for n candidates) below 28,000 candidates.
ORACLE_GRADE_SCALE = 3e3


def oracle_scores(groups: QueryGroups, z: np.ndarray,
                  z_margin: np.ndarray) -> dict[str, np.ndarray]:
    """Scores that order each pool by judged grade, equal grades by ``z`` (the model) or by
    ``z_margin`` (:func:`pool_z` of the margins)."""
    by_grade = ORACLE_GRADE_SCALE * groups.grades
    return {ORACLE_BY_MODEL: by_grade + z, ORACLE_BY_MARGIN: by_grade + z_margin}


@dataclass
class FoldResult:
    """Per-query figures of every ranker (name -> k -> figure -> values) on one held fold."""

    queries: list[str]
    figures: dict[str, dict[int, dict[str, np.ndarray]]]
    tuned_weights: list[float]
    naive_weights: dict[str, float]
    tune_seconds: float
    tune_message: str
    #: The tuner's certificate in words and its notes; LambdaMART against BM25 on the
    #: training queries (when BM25 was given).
    certifiable: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)
    relevance_check: dict[str, object] | None = None


def run_fold(groups: dict[str, QueryGroups], values: dict[str, dict[str, np.ndarray]],
             bm25: np.ndarray, config: WeightsConfig, k: int, seed: int,
             queries: list[str], train_bm25: np.ndarray | None = None,
             curves: bool = True) -> FoldResult:
    """Tune and choose on ``groups['train']``, measure everything on ``groups['test']``.

    With ``train_bm25`` (BM25 scores of the training rows), the tuner runs only if
    LambdaMART beats BM25 on the training queries, as a build does; otherwise the tuned blend
    stays relevance only and the fold says why. ``curves=False`` leaves out the naive grid,
    the frontier and the reference orders (the calibration study needs the main rows only)."""
    train, test = groups["train"], groups["test"]
    importance, tolerance = config.weight_vector(), config.guardrails.max_ndcg_drop
    start = time.perf_counter()
    check = None
    if train_bm25 is not None:
        bm25_train = dataclasses.replace(train, relevance=np.asarray(train_bm25, np.float64))
        check = compare_with_bm25(train.ndcg(train.z_relevance(), k),
                                  bm25_train.ndcg(bm25_train.z_relevance(), k), k, seed)
    served = test  # what a build would serve: LambdaMART, or BM25 when it loses
    if check is not None and not check.model_ahead:
        tune = TuneResult(np.zeros(importance.shape[0]), 0.0,
                          check.warning(f"{train.n_queries} training queries"),
                          max_ndcg_drop=tolerance, n_queries=train.n_queries)
        served = dataclasses.replace(test, relevance=np.asarray(bm25, np.float64))
    else:
        tune = tune_weights(train, importance, k=k, max_ndcg_drop=tolerance, seed=seed)
    seconds = time.perf_counter() - start
    # BM25 and the naive blend are plain orders by their score: no business slots.
    plain_train, plain = (dataclasses.replace(g, slots=0) for g in (train, test))
    z_margin_train, z_margin = pool_z(train, train.margin), pool_z(test, test.margin)
    naive = naive_weights(plain_train, z_margin_train, k,
                          {"within tolerance": tolerance, "0.5% drop": NAIVE_REFERENCE_DROP},
                          seed)
    z = test.z_relevance()
    scores = {"BM25": (plain, bm25), BASELINE: (plain, z),
              **{f"naive blend ({n}, w={w:g})": (plain, z + w * z_margin)
                 for n, w in naive.items()},
              SERVED_RELEVANCE: (served, served.z_relevance()),
              "tuned blend": (served, served.blend(tune.weights))}
    if curves:
        scores |= {f"naive w={w:g}": (plain, z + w * z_margin) for w in NAIVE_GRID}
        ideal = dataclasses.replace(plain, tier_width=0.0)  # grade first, whatever the tiers
        scores |= {name: (ideal, oracle)
                   for name, oracle in oracle_scores(test, z, z_margin).items()}
        scores |= {f"frontier eps={p.epsilon:g} scale={p.scale:g}": (test, test.blend(p.weights))
                   for p in frontier(train, importance, k=k, seed=seed, path=FRONTIER_PATH)}
    figures = {name: {c: per_query_figures(g, s, values["test"], c) for c in CUTOFFS}
               for name, (g, s) in scores.items()}
    return FoldResult(queries, figures, tune.weights.tolist(), naive, seconds, tune.message,
                      tune.certifiable(), tune.notes,
                      None if check is None else check.to_dict())


def pooled(results: list[FoldResult]) -> dict[str, dict[int, dict[str, np.ndarray]]]:
    """Per-query figures of every ranker over all held folds. Rankers are matched by the
    name without its per-fold weight, so a fold-chosen naive weight pools as one ranker."""
    out: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    for name in results[0].figures:
        key = stable_name(name)
        parts = [next(f[n] for n in f if stable_name(n) == key)
                 for f in (r.figures for r in results)]
        out[key] = {c: {fig: np.concatenate([p[c][fig] for p in parts]) for fig in parts[0][c]}
                    for c in CUTOFFS}
    return out


def stable_name(name: str) -> str:
    """A ranker's name without a fold-specific weight (``naive blend (0.5% drop, w=0.3)``)."""
    return name.split(", w=")[0] + (")" if ", w=" in name else "")


#: Relevance alone as a build would serve it in each fold: LambdaMART, or BM25 in folds where
#: LambdaMART lost on the training queries. The guardrail is about what business weight does to
#: the relevance that is served, so the tuned blend's verdict is against this ranker; it equals
#: LambdaMART wherever LambdaMART won.
SERVED_RELEVANCE = "relevance served"
MAIN_RANKERS = ("BM25", BASELINE, SERVED_RELEVANCE, "naive blend (within tolerance)",
                "naive blend (0.5% drop)", "tuned blend")


def curve(figures: dict[str, dict[int, dict[str, np.ndarray]]], prefix: str,
          k: int) -> list[CurvePoint]:
    """The held-out (NDCG@k, margin@k lift) point of every ranker whose name starts with
    ``prefix``, plus relevance alone (the curves' common origin)."""
    base = figures[BASELINE][k]
    names = [BASELINE] + [n for n in figures if n.startswith(prefix)]
    return [CurvePoint(n, finite_mean(figures[n][k]["ndcg"]),
                       compare(n, k, figures[n][k], base).margin_lift_ratio_of_means)
            for n in names]


def report(world: World, args: argparse.Namespace, config: WeightsConfig,
           results: list[FoldResult]) -> tuple[str, dict[str, object]]:
    """Markdown and the JSON summary (per-query rows added by :func:`per_query_rows`)."""
    figures = pooled(results)
    k = args.k
    tables = {c: [compare(n, c, figures[n][c], figures[BASELINE][c], seed=args.seed)
                  for n in MAIN_RANKERS] for c in CUTOFFS}
    tuned_curve, naive_curve = curve(figures, "frontier ", k), curve(figures, "naive w=", k)
    gaps = frontier_gaps(tuned_curve, naive_curve)
    chosen = {n: curve(figures, n, k)[1] for n in ("tuned blend", "naive blend (within tolerance)")}
    plot_frontier(f"{args.out}.png", f"{world.name}: held-out queries, {args.folds}-fold CV",
                  k, tuned_curve, naive_curve, chosen,
                  max_ndcg_drop=config.guardrails.max_ndcg_drop)
    n_queries = len(figures[BASELINE][k]["ndcg"])
    lines = [f"# Quality benchmark: {world.name}", "",
             f"{n_queries:,} judged queries, each held out once ({args.folds}-fold grouped "
             f"cross-validation by query text, seed {args.seed}); tuned at k = {k} with "
             f"max_ndcg_drop {config.guardrails.max_ndcg_drop}. Figures are means over "
             "queries; intervals are paired bootstrap 95% intervals against LambdaMART.", "",
             *(f"- {note}" for note in world.notes), ""]
    delta = config.guardrails.max_ndcg_drop
    verdicts = guardrail_verdicts(figures, delta, args.seed)
    for c in CUTOFFS:
        lines += [f"## k = {c}", "", markdown_table(tables[c]), "",
                  *(f"- Guardrail at k = {c}, {name} against {GUARDED[name]}: {v.text()}"
                    for name, v in verdicts[c].items()), ""]
    lines += ["## Per fold", "", f"| fold | tuner seconds | tuned weights ({', '.join(TERM_NAMES)}"
              ") | naive w (within tolerance / 0.5% drop) | what the training "
              "queries certified |", "| --- | --- | --- | --- | --- |"]
    for i, r in enumerate(results):
        naive = " / ".join(f"{w:g}" for w in r.naive_weights.values())
        lines.append(f"| {i} | {r.tune_seconds:.1f} | "
                     f"{', '.join(f'{w:.4f}' for w in r.tuned_weights)} | {naive} | "
                     f"{r.certifiable or r.tune_message} |")
    lines += [f"- fold {i}: {note}" for i, r in enumerate(results)
              for note in r.notes + ([r.tune_message] if r.tune_message.startswith("WARNING")
                                     else [])]
    lines += ["", f"## Frontier at k = {k}", "", frontier_text(gaps, k, Path(args.out).name), ""]
    headroom = headroom_rows(figures)
    lines += ["## Headroom (reference orders that know every grade)", "", HEADROOM_TEXT, "",
              headroom_table(headroom), ""]
    summary = {"dataset": world.name, "notes": world.notes, "k": k, "folds": args.folds,
               "seed": args.seed, "max_ndcg_drop": config.guardrails.max_ndcg_drop,
               "guardrail": {c: {name: v.to_dict() for name, v in verdicts[c].items()}
                             for c in CUTOFFS},
               "tables": {c: [asdict(t) for t in tables[c]] for c in CUTOFFS},
               "frontier": {"tuned": [asdict(p) for p in tuned_curve],
                            "naive": [asdict(p) for p in naive_curve], "gaps": gaps},
               "folds_detail": [{"tune_seconds": r.tune_seconds, "tuned_weights": r.tuned_weights,
                                 "naive_weights": r.naive_weights, "tuner": r.tune_message,
                                 "certifiable": r.certifiable, "notes": r.notes,
                                 "relevance_check": r.relevance_check}
                                for r in results],
               "headroom": headroom}
    return "\n".join(lines), summary


#: The rankers whose guardrail verdict every report states (both chosen under the same
#: ``max_ndcg_drop``, by the same rule).
#: ranker -> the relevance alone it adds business weight to.
GUARDED = {"tuned blend": SERVED_RELEVANCE, "naive blend (within tolerance)": BASELINE}


def guardrail_verdicts(figures: dict[str, dict[int, dict[str, np.ndarray]]], delta: float,
                       seed: int) -> dict[int, dict[str, Verdict]]:
    """Per cut-off, the held-out verdict (:func:`objectives.metrics.verdict`) of each ranker
    of :data:`GUARDED` against its relevance alone."""
    return {c: {name: verdict(figures[name][c]["ndcg"], figures[base][c]["ndcg"], delta,
                              seed=seed) for name, base in GUARDED.items()} for c in CUTOFFS}


HEADROOM_TEXT = (
    "Not rankers: orders that see the judgments. The ideal order sorts each pool by grade (out-"
    "of-stock products last, as every ranker here demotes them). With "
    "equal grades sorted by margin instead of by LambdaMART, its NDCG is the same, and its "
    "margin is the most that reordering equal grades can add: the margin free of any NDCG "
    "cost, for a ranker that knew every grade. More than that means putting a lower grade "
    "above a higher one, which costs NDCG in expectation; a ranker whose own order is "
    "imperfect can do some of it within the noise of a finite test.")


def headroom_rows(figures: dict[str, dict[int, dict[str, np.ndarray]]]) -> list[dict[str, float]]:
    """Per cut-off: the ideal order's NDCG gain over LambdaMART, the margin lift (mean of
    ratios) of equal-grade reordering over the ideal order, and of the ideal order by margin
    over LambdaMART, beside the tuned blend's lift."""
    rows = []
    for c in CUTOFFS:
        base, model, margin = (figures[n][c] for n in (BASELINE, ORACLE_BY_MODEL, ORACLE_BY_MARGIN))
        rows.append({
            "k": c, "ideal_ndcg": finite_mean(model["ndcg"]),
            "ideal_ndcg_gain": finite_mean(model["ndcg"]) - finite_mean(base["ndcg"]),
            "equal_grade_lift": compare(ORACLE_BY_MARGIN, c, margin, model)
            .margin_lift_ratio_of_means,
            "ideal_by_margin_lift": compare(ORACLE_BY_MARGIN, c, margin, base)
            .margin_lift_ratio_of_means,
            "tuned_lift": compare("tuned blend", c, figures["tuned blend"][c], base)
            .margin_lift_ratio_of_means})
    return rows


def headroom_table(rows: list[dict[str, float]]) -> str:
    """Markdown of :func:`headroom_rows`."""
    lines = ["| k | ideal NDCG@k (gain over LambdaMART) | margin@k lift: equal grades by margin "
             "vs by LambdaMART | margin@k lift: ideal order by margin vs LambdaMART | tuned "
             "blend's margin@k lift |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['k']} | {r['ideal_ndcg']:.4f} ({r['ideal_ndcg_gain']:+.4f}) | "
              f"{r['equal_grade_lift']:+.1%} | {r['ideal_by_margin_lift']:+.1%} | "
              f"{r['tuned_lift']:+.1%} |" for r in rows]
    return "\n".join(lines)


def frontier_text(gaps: list[dict[str, float]], k: int, name: str) -> str:
    """Where the tuned frontier stands against the naive blend's, in words."""
    inside = [g for g in gaps if np.isfinite(g["tuned"])]
    below = [g for g in inside if g["gap"] < 0]
    text = (f"Plot: `{name}.png`. At each NDCG@{k} level of the naive blend's Pareto points "
            "within the tuned frontier's NDCG range, the tuned frontier's margin lift minus the "
            "naive one: " + ", ".join(f"{g['ndcg']:.4f}: {100 * g['gap']:+.1f} pts"
                                      for g in inside) + ". ")
    text += ("The tuned frontier is at or above the naive one at every one of these levels "
             "(both start at LambdaMART)." if not below else
             f"The tuned frontier is below at {len(below)} of {len(inside)} levels.")
    if len(inside) < len(gaps):
        text += (f" {len(gaps) - len(inside)} naive point(s) lie outside the tuned frontier's "
                 "NDCG range (lower NDCG than the tuned frontier's path ever reaches).")
    return text


def per_query_rows(results: list[FoldResult]) -> list[dict[str, object]]:
    """One row per held-out query: its fold, text and every main ranker's figures at each k."""
    figures, rows = pooled(results), []
    queries = [(i, q) for i, r in enumerate(results) for q in r.queries]
    for j, (fold, query) in enumerate(queries):
        row: dict[str, object] = {"fold": fold, "query": query}
        for name in MAIN_RANKERS:
            row[name] = {str(c): {fig: _json_number(v[j]) for fig, v in figures[name][c].items()}
                         for c in CUTOFFS}
        rows.append(row)
    return rows


def _json_number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def run(args: argparse.Namespace, progress: Progress) -> str:
    """The whole benchmark; returns the markdown and writes the three outputs, the report with
    the command (``args.command``, set by :func:`main`) and environment at its top."""
    cmd = getattr(args, "command", None) or command(__file__)
    env = environment("numpy", "xgboost", "cvxpy")
    with progress.stage("loading data"):
        world = load_world(args)
        config = (load_config(args.config) if args.config else
                  parse_config(MARGIN_OBJECTIVE.format(k=args.k, delta=args.max_ndcg_drop),
                               source="<benchmark margin objective>"))
    with progress.stage("business terms and CLV affinity"):
        affinity = clv_affinity(world)
        terms = compute_terms(world.catalog, affinity,
                              target_weeks=config.inventory.target_weeks_of_cover)
        served = Served.of(config, terms, world.catalog)
    X, rows = judged_features(world.catalog, world.judgments, progress)
    y = judgment_labels(world.judgments, Path(args.judgments or args.data or "<judgments>"))
    values = business_values(world, affinity, terms.raw, rows)
    with dask_client(args.cluster) as client:
        results = cross_validate(Pools(world.judgments, X, y, rows, served, values, config,
                                       args.k), args.seed, args.folds, progress, client=client)
    markdown, summary = report(world, args, config, results)
    summary["per_query"] = per_query_rows(results)
    env = finish(env)
    title, _, body = markdown.partition("\n\n")  # the report's own title, then its text
    markdown = "\n".join(header(title.removeprefix("# "), cmd, env)) + "\n" + body
    summary = {"command": cmd, "environment": env, **summary}
    Path(f"{args.out}.md").write_text(markdown + "\n", encoding="utf-8")
    Path(f"{args.out}.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return markdown


@dataclass(frozen=True)
class Pools:
    """Everything the protocol needs of a dataset's judged pools: the judgments, their
    feature rows, labels and catalog rows, the served arrays and per-judgment business values,
    the objective and the cut-off it is tuned at."""

    judgments: pd.DataFrame
    X: np.ndarray
    y: np.ndarray
    rows: np.ndarray
    served: Served
    values: dict[str, np.ndarray]
    config: WeightsConfig
    k: int

    @property
    def bm25(self) -> np.ndarray:
        return self.X[:, features.FEATURE_NAMES.index("bm25_all")].astype(np.float64)


def cross_validate(pools: Pools, seed: int, folds: int, progress: Progress,
                   curves: bool = True, label: str = "",
                   client: object | None = None) -> list[FoldResult]:
    """The protocol: grouped ``folds``-fold cross-validation by query text; per fold,
    LambdaMART trained on the other folds, the tuner on them (:func:`run_fold`), everything
    measured on the held fold. One :class:`FoldResult` per fold. With a Dask ``client`` each
    fold is a task (5 folds use 5 workers); the results are the same, fold by fold."""
    fold = query_folds(pools.judgments, folds, seed)
    if client is not None:
        from ranking.app.bench_command import load_on_workers

        # tasks name this script's functions and dataclasses by module: register it under
        # its name here (a loader may not have) and load it on every worker
        registered = sys.modules.get(__name__)
        if registered is None or registered.__dict__ is not globals():
            sys.modules[__name__] = types.ModuleType(__name__)
            sys.modules[__name__].__dict__.update(globals())
        load_on_workers(client, "quality")
        with progress.stage(f"{label}{folds} folds as Dask tasks"):
            shared = client.scatter(pools, broadcast=True)
            return client.gather([client.submit(one_fold, shared, fold, f, seed, curves,
                                                pure=False) for f in range(folds)])
    results = []
    for f in range(folds):
        with progress.stage(f"{label}fold {f + 1}/{folds}: LambdaMART, tuner, evaluation"):
            results.append(one_fold(pools, fold, f, seed, curves))
    return results


def one_fold(pools: Pools, fold: np.ndarray, f: int, seed: int, curves: bool) -> FoldResult:
    """Fold ``f`` held out: train and tune on the others, measure on it."""
    judgments, bm25 = pools.judgments, pools.bm25
    qid = pd.factorize(judgments["query_id"])[0]
    train, test = fold != f, fold == f
    relevance = fold_relevance(pools.X, pools.y, qid, train, seed + f, pools.k)
    groups = {name: query_groups(judgments, mask, relevance, pools.rows, pools.served)
              for name, mask in (("train", train), ("test", test))}
    order = _group_order(judgments, test)
    test_values = {"test": {key: v[order] for key, v in pools.values.items()}}
    queries = judgments["query"].to_numpy()[order][groups["test"].qptr[:-1]]
    return run_fold(groups, test_values, bm25[order], pools.config, pools.k, seed,
                    queries.tolist(), bm25[_group_order(judgments, train)], curves)


def _group_order(judgments: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """The judgment rows of ``mask`` in the order :func:`ranking.app.build.query_groups` lays
    them out (stably by query id), so per-row values line up with the groups."""
    sel = np.flatnonzero(mask)
    return sel[np.argsort(judgments["query_id"].to_numpy()[sel], kind="stable")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="marginrank bench quality",
                                     description=plain_doc(__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("demo", "home-depot", "generic"), default="demo",
                        help="the demo world, Home Depot, or your own files (default: demo)")
    parser.add_argument("--data", type=Path, help="Home Depot train.csv (default: ../shared)")
    parser.add_argument("--catalog", type=Path, help="generic catalog (with --judgments)")
    parser.add_argument("--judgments", type=Path, help="generic judgments (with --catalog)")
    parser.add_argument("--transactions", type=Path, help="generic transactions (optional)")
    parser.add_argument("--config", type=Path,
                        help="weights YAML: the business objective (default: margin alone, "
                             "with --max-ndcg-drop)")
    parser.add_argument("--max-ndcg-drop", type=float, default=DEFAULT_MAX_NDCG_DROP,
                        help="the default objective's guardrail (relative NDCG@k drop "
                             f"certified at 95%%; default {DEFAULT_MAX_NDCG_DROP})")
    parser.add_argument("--k", type=int, default=10, help="cut-off the tuner works at")
    parser.add_argument("--folds", type=int, default=5,
                        help="cross-validation folds, grouped by query (default: 5)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed for folds, simulation and bootstrap (default: 0)")
    parser.add_argument("--out", default="quality", help="output path prefix (.md .json .png)")
    add_cluster_argument(parser)
    args = parser.parse_args(argv)
    if args.k < 1 or args.folds < 2:
        parser.error(f"--k must be at least 1 and --folds at least 2 (got {args.k}, {args.folds})")
    if args.dataset == "generic" and not (args.catalog and args.judgments):
        parser.error("--dataset generic needs --catalog and --judgments")
    if args.catalog and args.dataset != "generic":
        args.dataset = "generic"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.command = command(__file__, argv)
    print(run(args, Progress()))
    return 0


if __name__ == "__main__":
    # Run as the module bench_command registers (benchmark_quality), not as __main__, so that
    # Dask workers find its functions and dataclasses under the same name.
    from ranking.app.bench_command import load_script

    sys.exit(load_script("quality").main())
