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
                  naive: list[CurvePoint], chosen: Mapping[str, CurvePoint], *,
                  max_ndcg_drop: float | None = None) -> None:
    """PNG of both curves on the same axes, with LambdaMART, the NDCG floor it sets
    (LambdaMART's NDCG less ``max_ndcg_drop``, relative; default: the guardrail's default) and
    the chosen settings marked; a second panel zooms in on the floor, where the chosen settings
    sit close together. Naive points far below the tuned frontier's lowest NDCG are left out,
    so the plot shows where both are. ``tuned`` starts at LambdaMART itself (lift 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from objectives.guardrail import DEFAULT_MAX_NDCG_DROP

    delta = DEFAULT_MAX_NDCG_DROP if max_ndcg_drop is None else max_ndcg_drop
    base = next((p for p in tuned + naive if p.label == BASELINE), None)
    low = min(p.ndcg for p in tuned)
    span = max(p.ndcg for p in tuned + naive) - low
    naive = [p for p in naive if p.ndcg >= low - 0.15 * span]  # the plane the tuner covers
    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(12, 4.8),
                                   gridspec_kw={"width_ratios": [1.15, 1]})
    for axes in (ax, zoom):
        for label, pts, style in (
                ("tuned blend: the tuner's settings, weakest to strongest", tuned, "o-"),
                ("naive blend: LambdaMART + w × margin, w rising", naive, "s--")):
            pts = sorted(pts, key=lambda p: p.ndcg)
            axes.plot([p.ndcg for p in pts], [100 * p.margin_lift for p in pts], style,
                      label=label, markersize=4, alpha=0.8)
        if base is not None:
            axes.plot(base.ndcg, 0.0, "D", color="black", markersize=8,
                      label=f"{BASELINE} (relevance alone)")
            axes.axvline(base.ndcg * (1 - delta), color="firebrick", linestyle=":",
                         label=f"NDCG floor: {BASELINE} less {100 * delta:g}% (max_ndcg_drop)")
        for (name, p), marker in zip(chosen.items(), "*PXv^<>", strict=False):
            axes.plot(p.ndcg, 100 * p.margin_lift, marker, markersize=13, label=name)
        axes.grid(alpha=0.3)
        axes.set_xlabel(f"NDCG@{k} on held-out queries")
    ax.set_ylabel(f"margin@{k} change vs {BASELINE} (%, ratio of means)")
    ax.set_title(title, fontsize=10)
    # The zoom: from a little below the floor to the right of every marked point.
    marked = [*chosen.values(), *([base] if base is not None else [])]
    ref = base.ndcg if base is not None else max(p.ndcg for p in marked)
    floor = ref * (1 - delta)
    x_low = min([floor, *(p.ndcg for p in marked)]) - 0.6 * (ref - floor)
    x_high = max(p.ndcg for p in marked) + 0.6 * (ref - floor)
    shown = [100 * p.margin_lift for p in tuned + naive + marked if x_low <= p.ndcg <= x_high]
    y_pad = 0.12 * (max(shown) - min(shown) or 1.0)
    y_low, y_high = min(shown) - y_pad, max(shown) + y_pad
    zoom.set_xlim(x_low, x_high)
    zoom.set_ylim(y_low, y_high)
    zoom.set_title("zoom: around the NDCG floor", fontsize=10)
    for name, p in chosen.items():
        zoom.annotate(name, (p.ndcg, 100 * p.margin_lift), textcoords="offset points",
                      xytext=(6, 6), fontsize=8)
    ax.add_patch(Rectangle((x_low, y_low), x_high - x_low, y_high - y_low, fill=False,
                           edgecolor="grey", linestyle="-", linewidth=0.8))
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
