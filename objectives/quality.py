"""Figures of the quality benchmark: rankers side by side on held-out queries, at several k.

Every ranker is a score per judged candidate; :class:`~objectives.groups.QueryGroups` orders
each query's pool by it as the blend core serves (demotions included) and every figure is a
per-query value at k, so the JSON can keep one row per query and the markdown shows means with
paired bootstrap intervals against LambdaMART, the baseline "relevance must not fall" is about.
The same functions (NDCG@k, lift, paired bootstrap) are those the tuner is checked with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from objectives.groups import QueryGroups
from objectives.metrics import finite_mean, lift, mean_at_k, ndcg_at_k, paired_bootstrap

#: Business figures at k: (key, column heading, format). Each is the mean over the top k of a
#: per-candidate value the benchmark supplies under that key.
BUSINESS_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("margin", "margin@{k} ($)", ".2f"),
    ("return_rate", "return rate@{k}", ".2%"),
    ("out_of_stock", "out-of-stock share@{k}", ".2%"),
    ("weeks_of_cover", "inventory@{k} (weeks of cover)", ".1f"),
    ("clv_affinity", "CLV affinity@{k} ($)", ".1f"),
)
BASELINE = "LambdaMART"


def per_query_figures(groups: QueryGroups, scores: np.ndarray, values: Mapping[str, np.ndarray],
                      k: int) -> dict[str, np.ndarray]:
    """Per-query NDCG@k and the mean of each business value over the top k by ``scores``."""
    orders = groups.orders(scores)  # once: the ordering is the costly part
    out = {"ndcg": np.array([ndcg_at_k(groups.grades[o], k) for o in orders])}
    for key, _, _ in BUSINESS_FIGURES:
        out[key] = np.array([mean_at_k(values[key][o], k) for o in orders])
    return out


@dataclass(frozen=True)
class Comparison:
    """Summary of one ranker's per-query figures against the baseline's, at one k."""

    name: str
    k: int
    means: dict[str, float]
    ndcg_diff: tuple[float, float, float] | None  # mean, low, high of the paired difference
    margin_diff: tuple[float, float, float] | None
    margin_lift_mean_of_ratios: float
    margin_lift_ratio_of_means: float

    @property
    def ndcg_ci_includes_zero(self) -> bool:
        return self.ndcg_diff is None or self.ndcg_diff[1] <= 0.0 <= self.ndcg_diff[2]


def compare(name: str, k: int, figures: Mapping[str, np.ndarray],
            base: Mapping[str, np.ndarray], seed: int = 0) -> Comparison:
    """Means of ``figures`` and their paired bootstrap differences to ``base``."""
    is_base = figures is base

    def diff(key: str) -> tuple[float, float, float] | None:
        if is_base:
            return None
        ci = paired_bootstrap(figures[key], base[key], seed=seed)
        return (ci.mean, ci.low, ci.high)

    margin_lift = lift(figures["margin"], base["margin"])
    return Comparison(name, k, {key: finite_mean(v) for key, v in figures.items()},
                      diff("ndcg"), diff("margin"), margin_lift.mean_of_ratios,
                      margin_lift.ratio_of_means)


def markdown_table(rows: list[Comparison]) -> str:
    """One table for one k: NDCG@k with its interval against the baseline, margin lift by both
    averages, and the business figures."""
    k = rows[0].k
    heads = [f"NDCG@{k}", f"ΔNDCG@{k} vs {BASELINE} [95% CI]",
             f"margin@{k} lift (ratio of means)",
             f"margin@{k} lift (mean of ratios, queries with margin > 0)",
             *(h.format(k=k) for _, h, _ in BUSINESS_FIGURES)]
    lines = ["| ranker | " + " | ".join(heads) + " |", "|" + " --- |" * (len(heads) + 1)]
    for r in rows:
        ci = "" if r.ndcg_diff is None else "{:+.4f} [{:+.4f}, {:+.4f}]".format(*r.ndcg_diff)
        lifts = ("", "") if r.ndcg_diff is None else (
            _fmt(r.margin_lift_ratio_of_means, "+.1%"), _fmt(r.margin_lift_mean_of_ratios, "+.1%"))
        cells = [_fmt(r.means["ndcg"], ".4f"), ci, *lifts,
                 *(_fmt(r.means[key], spec) for key, _, spec in BUSINESS_FIGURES)]
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: float, spec: str) -> str:
    return "n/a" if not np.isfinite(value) else format(value, spec)


@dataclass(frozen=True)
class CurvePoint:
    """One setting of a ranker family on the NDCG-vs-margin plane (held-out figures)."""

    label: str
    ndcg: float
    margin_lift: float  # ratio of means (money shown), against the baseline


def pareto(points: list[CurvePoint]) -> list[CurvePoint]:
    """The points no other point beats on both NDCG and margin lift, by rising NDCG."""
    ordered = sorted(points, key=lambda p: (-p.ndcg, -p.margin_lift))
    front, best = [], -np.inf
    for p in ordered:
        if p.margin_lift > best:
            front.append(p)
            best = p.margin_lift
    return front[::-1]


def lift_at(front: list[CurvePoint], ndcg: float) -> float:
    """Margin lift of a Pareto front at an NDCG level, interpolated linearly between its points
    (the front can reach any mix of two neighbouring settings); NaN outside its NDCG range."""
    x = np.array([p.ndcg for p in front])
    y = np.array([p.margin_lift for p in front])
    if x.size == 0 or ndcg < x[0] - 1e-12 or ndcg > x[-1] + 1e-12:
        return float("nan")
    return float(np.interp(ndcg, x, y))


def frontier_gaps(tuned: list[CurvePoint], naive: list[CurvePoint]) -> list[dict[str, float]]:
    """At every NDCG level of a naive Pareto point inside the tuned front's NDCG range: the
    lift of each front there and the gap (tuned minus naive; >= 0 means the tuned front is
    above). Naive points outside the tuned range are reported with a NaN tuned lift."""
    front = pareto(tuned)
    return [{"ndcg": p.ndcg, "naive": p.margin_lift, "tuned": lift_at(front, p.ndcg),
             "gap": lift_at(front, p.ndcg) - p.margin_lift} for p in pareto(naive)]


def plot_frontier(path: str, title: str, k: int, tuned: list[CurvePoint],
                  naive: list[CurvePoint], chosen: Mapping[str, CurvePoint]) -> None:
    """PNG of both curves on the same axes, with the chosen settings marked. Naive points far
    below the tuned frontier's lowest NDCG are left out, so the plot shows where both are."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    low = min(p.ndcg for p in tuned)
    span = max(p.ndcg for p in tuned + naive) - low
    naive = [p for p in naive if p.ndcg >= low - 0.15 * span]  # the plane the tuner covers
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, pts, style in (("tuned frontier (cvxpy, epsilon sweep)", tuned, "o-"),
                              ("naive blend z(LambdaMART) + w z(margin)", naive, "s--")):
        pts = sorted(pts, key=lambda p: p.ndcg)
        ax.plot([p.ndcg for p in pts], [100 * p.margin_lift for p in pts], style, label=label,
                markersize=4)
    for name, p in chosen.items():
        ax.plot(p.ndcg, 100 * p.margin_lift, "*", markersize=13, label=name)
    ax.set_xlabel(f"NDCG@{k} (held-out queries)")
    ax.set_ylabel(f"margin@{k} lift vs {BASELINE}, ratio of means (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
