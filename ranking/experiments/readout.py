"""The readout of a running experiment: every arm against the control, per customer.

DuckDB aggregates the validated impressions and outcomes to one row per (customer, arm, day):
searches, searches with a click / add-to-cart / purchase, net revenue and margin, units bought
and returned. Every metric is then a ratio of per-customer sums with a delta-method interval
clustered by customer (:mod:`ranking.experiments.stats`), because the customer is what the
experiment randomizes. Anonymous searches (no customer id) are in no arm and are left out,
counted in the notes.

Definitions, per arm:

- ``ctr``: searches with at least one click / searches;
- ``add_to_cart_rate``, ``conversion``: the same for add-to-cart and purchase events;
- ``revenue_per_search``: (purchased units x unit price - returned units x unit price) / searches;
- ``margin_per_search``: the same with unit margin (an unknown margin counts 0; the notes say how
  many);
- ``return_rate``: returned units / purchased units;
- ``clv_reached``: mean CLV of the arm's customers (only with a bundle's customers table).

Outcomes count for the search (request) they follow, on the day of that search.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from clv.errors import ArgumentError, DataError
from ranking.experiments.events import Events, load_events
from ranking.experiments.stats import (
    LEVEL,
    Lift,
    OnlineVerdict,
    RatioEstimate,
    SampleRatio,
    lift,
    online_verdict,
    ratio,
    sample_ratio,
)

#: Group name of customers with an id but no arm (past the last arm: the base weights).
NO_ARM = "(none)"

#: (name, label, numerator column, denominator column) of every metric.
METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("ctr", "CTR (searches with a click)", "click_searches", "searches"),
    ("add_to_cart_rate", "add-to-cart rate", "cart_searches", "searches"),
    ("conversion", "conversion per search", "purchase_searches", "searches"),
    ("revenue_per_search", "revenue per search", "revenue", "searches"),
    ("margin_per_search", "margin per search", "margin", "searches"),
    ("return_rate", "return rate (units)", "returned_units", "units"),
    ("clv_reached", "CLV of customers reached", "clv", "one"),
)
#: Metrics with a non-inferiority verdict: higher is better, and a drop is what must not happen.
VERDICT_METRICS = ("ctr", "conversion")
#: Metrics drawn in the lift-over-time plot.
PLOT_METRICS = ("ctr", "conversion", "margin_per_search")

_COLUMNS = ("searches", "click_searches", "cart_searches", "purchase_searches", "clicks",
            "revenue", "margin", "units", "returned_units", "margin_missing")

_AGGREGATE = """
WITH searches AS (
    SELECT request_id,
           min(customer_id) AS customer_id,
           count(DISTINCT coalesce(customer_id, '\x00')) AS n_customers,
           coalesce(min(arm), '{no_arm}') AS arm,
           count(DISTINCT coalesce(arm, '\x00')) AS n_arms,
           CAST(floor(epoch_us(min("timestamp")) / 86400000000) AS BIGINT) AS day
    FROM imp GROUP BY request_id
), acts AS (
    SELECT request_id,
           max(CASE WHEN type = 'click' THEN 1 ELSE 0 END) AS clicked,
           max(CASE WHEN type = 'add_to_cart' THEN 1 ELSE 0 END) AS carted,
           max(CASE WHEN type = 'purchase' THEN 1 ELSE 0 END) AS bought,
           sum(CASE WHEN type = 'click' THEN 1 ELSE 0 END) AS clicks,
           sum(CASE WHEN type = 'purchase' THEN quantity * unit_price
                    WHEN type = 'return' THEN -quantity * unit_price ELSE 0 END) AS revenue,
           sum(CASE WHEN type = 'purchase' THEN quantity * coalesce(unit_margin, 0)
                    WHEN type = 'return' THEN -quantity * coalesce(unit_margin, 0)
                    ELSE 0 END) AS margin,
           sum(CASE WHEN type = 'purchase' THEN quantity ELSE 0 END) AS units,
           sum(CASE WHEN type = 'return' THEN quantity ELSE 0 END) AS returned_units,
           sum(CASE WHEN type IN ('purchase', 'return') AND unit_margin IS NULL
                    THEN 1 ELSE 0 END) AS margin_missing
    FROM outc GROUP BY request_id
)
SELECT s.customer_id, s.arm, s.day,
       count(*) AS searches,
       sum(coalesce(a.clicked, 0)) AS click_searches,
       sum(coalesce(a.carted, 0)) AS cart_searches,
       sum(coalesce(a.bought, 0)) AS purchase_searches,
       sum(coalesce(a.clicks, 0)) AS clicks,
       sum(coalesce(a.revenue, 0)) AS revenue,
       sum(coalesce(a.margin, 0)) AS margin,
       sum(coalesce(a.units, 0)) AS units,
       sum(coalesce(a.returned_units, 0)) AS returned_units,
       sum(coalesce(a.margin_missing, 0)) AS margin_missing,
       max(s.n_customers) AS n_customers,
       max(s.n_arms) AS n_arms
FROM searches s LEFT JOIN acts a USING (request_id)
GROUP BY s.customer_id, s.arm, s.day
ORDER BY s.day, s.arm, s.customer_id
"""


@dataclass(frozen=True)
class CustomerDays:
    """Per (customer, group, day) sums: what every readout figure is computed from."""

    customer: np.ndarray  # str (None for anonymous searches)
    group: np.ndarray  # str: arm name or NO_ARM
    day: np.ndarray  # int64 days since 1970-01-01 (UTC)
    sums: dict[str, np.ndarray]  # _COLUMNS -> float64


def customer_days(impressions: pa.Table, outcomes: pa.Table) -> CustomerDays:
    """Aggregate validated events with DuckDB (in memory, over the Arrow tables)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("imp", impressions)
        con.register("outc", outcomes)
        out = con.sql(_AGGREGATE.format(no_arm=NO_ARM)).to_arrow_table()
    finally:
        con.close()
    if out.num_rows and max(out.column("n_customers").to_pylist()) > 1:
        raise DataError("a request's impression rows name different customers")
    if out.num_rows and max(out.column("n_arms").to_pylist()) > 1:
        raise DataError("a request's impression rows name different arms")
    return CustomerDays(
        customer=np.array(out.column("customer_id").to_pylist(), dtype=object),
        group=np.array(out.column("arm").to_pylist(), dtype=object),
        day=out.column("day").to_numpy().astype(np.int64),
        sums={c: out.column(c).to_numpy().astype(np.float64) for c in _COLUMNS})


def _per_customer(cd: CustomerDays, mask: np.ndarray, group: str,
                  clv: dict[str, float] | None) -> dict[str, np.ndarray]:
    """Sums per customer of ``group`` over the rows in ``mask``."""
    rows = mask & (cd.group == group)
    customers, inverse = np.unique(cd.customer[rows].astype(str), return_inverse=True)
    out = {c: np.bincount(inverse, weights=cd.sums[c][rows], minlength=customers.size)
           for c in _COLUMNS}
    out["one"] = np.ones(customers.size)
    if clv is not None:
        out["clv"] = np.array([clv.get(c, np.nan) for c in customers], np.float64)
        known = np.isfinite(out["clv"])
        out["clv"] = np.where(known, out["clv"], 0.0)
        out["one"] = known.astype(np.float64)  # customers without a CLV are not averaged
    out["customers"] = customers
    return out


def _estimates(per: dict[str, np.ndarray], with_clv: bool) -> dict[str, RatioEstimate]:
    return {name: ratio(per[num], per[den]) for name, _, num, den in METRICS
            if with_clv or name != "clv_reached"}


@dataclass
class ArmSummary:
    """One group's totals and metric values."""

    name: str
    customers: int
    searches: int
    clicks: int
    metrics: dict[str, RatioEstimate]

    def to_dict(self) -> dict[str, object]:
        return {"arm": self.name, "customers": self.customers, "searches": self.searches,
                "clicks": self.clicks,
                "metrics": {k: {"value": _num(v.value), "se": _num(v.se)}
                            for k, v in self.metrics.items()}}


@dataclass
class Comparison:
    """One arm against the control: a lift per metric and the non-inferiority verdicts."""

    arm: str
    lifts: dict[str, Lift]
    verdicts: dict[str, OnlineVerdict]

    def to_dict(self) -> dict[str, object]:
        return {"arm": self.arm,
                "lifts": {k: {f: _num(x) for f, x in v.to_dict().items()}
                          for k, v in self.lifts.items()},
                "verdicts": {k: {f: _num(x) for f, x in v.to_dict().items()}
                             for k, v in self.verdicts.items()}}


@dataclass
class DayPoint:
    """Cumulative lift of one arm on one metric, with everything up to the end of ``day``."""

    day: str
    arm: str
    metric: str
    lift: float
    low: float
    high: float


@dataclass
class Readout:
    """Everything ``marginrank experiment report`` prints; ``to_json`` is what the dashboard
    renders."""

    control: str
    delta: float
    arms: list[ArmSummary]
    comparisons: list[Comparison]
    srm: SampleRatio
    over_time: list[DayPoint]
    first_day: str
    last_day: str
    power_at: float
    notes: list[str] = field(default_factory=list)
    source: str = ""

    def arm(self, name: str) -> ArmSummary:
        return next(a for a in self.arms if a.name == name)

    def comparison(self, arm: str) -> Comparison:
        return next(c for c in self.comparisons if c.arm == arm)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "control": self.control, "delta": self.delta,
                "level": LEVEL, "first_day": self.first_day, "last_day": self.last_day,
                "power_at": self.power_at,
                "metrics": {name: label for name, label, _, _ in METRICS},
                "arms": [a.to_dict() for a in self.arms],
                "comparisons": [c.to_dict() for c in self.comparisons],
                "srm": {k: _num(v) for k, v in self.srm.to_dict().items()},
                "over_time": [{k: _num(v) for k, v in vars(p).items()} for p in self.over_time],
                "notes": list(self.notes)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def to_markdown(self) -> str:
        return _markdown(self)

    def plot(self, path: str | Path) -> Path:
        """Cumulative lift by day with its 95% interval, one panel per metric."""
        return _plot(self, Path(path))

    def write(self, out: str | Path) -> dict[str, Path]:
        """``report.md``, ``report.json`` and ``lift_over_time.png`` into ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "report.json", "markdown": out / "report.md",
                 "plot": out / "lift_over_time.png"}
        paths["json"].write_text(self.to_json() + "\n", encoding="utf-8")
        paths["markdown"].write_text(self.to_markdown(), encoding="utf-8")
        self.plot(paths["plot"])
        return paths


def _num(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None; numpy scalars plain Python."""
    if isinstance(value, dict):
        return {k: _num(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def parse_shares(text: str) -> dict[str, float]:
    """``control=0.5,push=0.25`` -> {arm: share}; a malformed entry is an ArgumentError."""
    shares: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            share = float(value)
        except ValueError:
            share = float("nan")
        if not sep or not name.strip() or not math.isfinite(share) or share < 0:
            raise ArgumentError(f"expected shares as ARM=SHARE,ARM=SHARE (shares >= 0); "
                                f"cannot read {part!r}")
        shares[name.strip()] = share
    return shares


def shares_from_config(path: str | Path) -> dict[str, float]:
    """Arm shares of a weights YAML, the rest of the traffic under :data:`NO_ARM`."""
    from objectives.config import load_config

    arms = load_config(path).arms()
    shares = {name: arm.share for name, arm in arms.items()}
    rest = 1.0 - sum(shares.values())
    if rest > 1e-9:
        shares[NO_ARM] = rest
    return shares


def customer_clv(bundle_dir: str | Path) -> dict[str, float]:
    """CLV of every customer in a bundle (checksums verified)."""
    from clv.segments import load_customers
    from ranking import bundle
    from ranking.ranker import BUNDLE_FILES

    directory = Path(bundle_dir)
    bundle.verify(directory, BUNDLE_FILES)
    ids, clv, _ = load_customers(directory / "customers.npz")
    return dict(zip(ids.tolist(), np.asarray(clv, np.float64).tolist(), strict=True))


def readout(events: str | Path | Events, *, control: str | None = None, delta: float = 0.002,
            expected_shares: dict[str, float] | None = None, shares_source: str | None = None,
            clv: dict[str, float] | None = None, power_at: float = 0.05,
            over_time: bool = True) -> Readout:
    """The readout of an event directory (or loaded :class:`Events`).

    ``control``: the control arm (default: ``control`` if there is one, else the first arm by
    name). ``delta``: the relative drop the non-inferiority verdicts allow, as the NDCG
    guardrail's ``max_ndcg_drop``. ``expected_shares``: arm shares for the sample-ratio test
    (default: equal shares over the groups seen, said in the notes). ``clv``: customer id ->
    CLV, for ``clv_reached``. ``power_at``: the relative effect whose power is reported.
    """
    if not 0 <= delta < 1:
        raise ArgumentError(f"delta is a relative drop in [0, 1), got {delta}")
    source = str(events) if not isinstance(events, Events) else ""
    ev = events if isinstance(events, Events) else load_events(events)
    cd = customer_days(ev.impressions, ev.outcomes)
    notes: list[str] = []
    if ev.report.excluded:
        notes.append(ev.report.summary())
    anonymous = np.array([c is None for c in cd.customer], bool)
    if anonymous.any():
        notes.append(f"{int(cd.sums['searches'][anonymous].sum()):,} anonymous searches (no "
                     "customer id) are in no arm and left out")
    cd = CustomerDays(cd.customer[~anonymous], cd.group[~anonymous], cd.day[~anonymous],
                      {k: v[~anonymous] for k, v in cd.sums.items()})
    if cd.day.size == 0:
        raise DataError("no search by a known customer in the events", file=source or None)
    groups = sorted(set(cd.group.tolist()))
    control = _pick_control(groups, control)
    if int(cd.sums["margin_missing"].sum()):
        notes.append(f"{int(cd.sums['margin_missing'].sum()):,} purchase/return events have no "
                     "unit_margin and count 0 in margin per search")
    if clv is None:
        notes.append("clv_reached omitted: no customer CLV given (pass --bundle)")
    everything = np.ones(cd.day.size, bool)
    per = {g: _per_customer(cd, everything, g, clv) for g in groups}
    arms = [ArmSummary(g, int(per[g]["customers"].size), int(per[g]["searches"].sum()),
                       int(per[g]["clicks"].sum()), _estimates(per[g], clv is not None))
            for g in groups]
    by_name = {a.name: a for a in arms}
    comparisons = []
    for g in groups:
        if g == control:
            continue
        t, c = by_name[g].metrics, by_name[control].metrics
        comparisons.append(Comparison(
            g, {m: lift(t[m], c[m], power_at=power_at) for m in t},
            {m: online_verdict(m, t[m], c[m], delta) for m in VERDICT_METRICS}))
    if expected_shares is None:
        expected_shares = {g: 1.0 / len(groups) for g in groups}
        shares_source = "equal shares over the groups seen (no --config or --expected-shares)"
        notes.append("sample-ratio test against equal shares: pass --config or "
                     "--expected-shares for the configured split")
    srm = sample_ratio({a.name: a.customers for a in arms}, expected_shares,
                       shares_source or "given")
    days = np.unique(cd.day)
    points = _over_time(cd, days, groups, control, clv) if over_time else []
    return Readout(control, delta, arms, comparisons, srm, points, _date(days[0]),
                   _date(days[-1]), power_at, notes, source)


def _pick_control(groups: list[str], control: str | None) -> str:
    if control is not None:
        if control not in groups:
            raise ArgumentError(f"control arm {control!r} has no searches; arms seen: "
                                f"{', '.join(groups)}")
        return control
    if "control" in groups:
        return "control"
    named = [g for g in groups if g != NO_ARM]
    return (named or groups)[0]


def _date(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def _over_time(cd: CustomerDays, days: np.ndarray, groups: list[str], control: str,
               clv: dict[str, float] | None) -> list[DayPoint]:
    points = []
    for day in days:
        upto = cd.day <= day
        est = {}
        for g in groups:
            per = _per_customer(cd, upto, g, None)
            est[g] = {m: ratio(per[num], per[den]) for m, _, num, den in METRICS
                      if m in PLOT_METRICS}
        for g in groups:
            if g == control:
                continue
            for m in PLOT_METRICS:
                lf = lift(est[g][m], est[control][m])
                points.append(DayPoint(_date(day), g, m, lf.lift, lf.lift_low, lf.lift_high))
    return points


# ---------------------------------------------------------------------------------------------
# Rendering


_MONEY = ("revenue_per_search", "margin_per_search", "clv_reached")


def _fmt(metric: str, value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:,.4f}" if metric in _MONEY else f"{100 * value:.3f}%"


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:+.2f}%"


def _markdown(r: Readout) -> str:
    labels = {name: label for name, label, _, _ in METRICS}
    metrics = list(r.arms[0].metrics)
    lines = [f"# Experiment readout: {', '.join(a.name for a in r.arms)}", "",
             f"Events {r.first_day} to {r.last_day}" + (f" from `{r.source}`" if r.source else "")
             + f". Control: **{r.control}**. Unit of randomization and of the intervals: the "
             "customer (delta method on per-customer sums). Intervals are two-sided "
             f"{100 * LEVEL:.0f}%.", "", "## Arms", "",
             "| arm | customers | searches | " + " | ".join(labels[m] for m in metrics) + " |",
             "| --- | ---: | ---: | " + " | ".join("---:" for _ in metrics) + " |"]
    for a in r.arms:
        lines.append(f"| {a.name} | {a.customers:,} | {a.searches:,} | "
                     + " | ".join(_fmt(m, a.metrics[m].value) for m in metrics) + " |")
    s = r.srm
    lines += ["", "## Sample ratio", "",
              f"Customers per group {s.observed} against expected shares "
              f"{ {k: round(v, 4) for k, v in s.expected_shares.items()} } ({s.source}): "
              f"chi-square {s.chi2:.2f} on {s.dof} df, p = {s.p_value:.3g}. "
              + ("**Sample ratio mismatch: the split is not what was configured; do not trust "
                 "the lifts below until it is explained.**" if s.mismatch else
                 f"No mismatch (flagged below p = {0.001:g})."), ""]
    for c in r.comparisons:
        lines += [f"## {c.arm} against {r.control}", "",
                  "| metric | control | arm | lift | 95% interval | p | MDE (80% power) | "
                  f"power at {100 * r.power_at:.0f}% |",
                  "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
        for m, lf in c.lifts.items():
            lines.append(_lift_row(labels[m], m, lf))
        lines += ["", "`*`: the interval excludes 0. Non-inferiority (relative drop "
                  f"delta = {r.delta:g}, one-sided 95% bound, the NDCG guardrail's semantics):", ""]
        for v in c.verdicts.values():
            lines.append(f"- **{labels[v.metric]}**: {v.status}. {v.text()}")
        lines.append("")
    if r.over_time:
        lines += ["## Lift over time", "", "![cumulative lift by day](lift_over_time.png)", ""]
    if r.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in r.notes], ""]
    return "\n".join(lines)


def _lift_row(label: str, metric: str, lf: Lift) -> str:
    head = f"| {label} | {_fmt(metric, lf.control)} | {_fmt(metric, lf.treatment)} | "
    if not math.isfinite(lf.lift):
        return head + "n/a | n/a | n/a | n/a | n/a |"
    power = f"{100 * lf.power:.0f}%" if math.isfinite(lf.power) else "n/a"
    return (head + f"{_pct(lf.lift)}{' *' if lf.significant else ''} | "
            f"[{_pct(lf.lift_low)}, {_pct(lf.lift_high)}] | {lf.p_value:.3g} | "
            f"{_pct(lf.mde_relative)} | {power} |")


def _plot(r: Readout, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {name: label for name, label, _, _ in METRICS}
    fig, axes = plt.subplots(1, len(PLOT_METRICS), figsize=(4.2 * len(PLOT_METRICS), 3.4),
                             squeeze=False)
    for ax, metric in zip(axes[0], PLOT_METRICS, strict=True):
        for c in r.comparisons:
            pts = [p for p in r.over_time if p.arm == c.arm and p.metric == metric]
            x = [np.datetime64(p.day) for p in pts]
            y = np.array([p.lift for p in pts], np.float64) * 100
            lo = np.array([p.low for p in pts], np.float64) * 100
            hi = np.array([p.high for p in pts], np.float64) * 100
            ax.plot(x, y, marker="o", ms=3, label=c.arm)
            ax.fill_between(x, lo, hi, alpha=0.2)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(f"{labels[metric]}: lift vs {r.control}", fontsize=9)
        ax.set_ylabel("cumulative lift, % (95% interval)", fontsize=8)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
