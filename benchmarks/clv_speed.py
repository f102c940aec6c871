"""CLV speed at scale, side by side in one process: marginrank's clv vs lifetimes.

Fit. ``--customers`` (default 1,000,000) synthetic customers drawn from BG/NBD and
Gamma-Gamma (generator below) are fitted by ``CLVModel.fit``, which fits lifetimes' BG/NBD on
the distinct (frequency, recency, T) rows with their counts as weights (and Gamma-Gamma on the
distinct (frequency, monetary_value) rows), and by plain ``lifetimes.BetaGeoFitter().fit`` and
``GammaGammaFitter().fit`` on one row per customer. Reported: times (ours: median of
``--repeats`` runs; lifetimes: one run), the parameters of both next to the true ones, and their
largest relative difference.

Summarize. A synthetic transaction table of ``--rows`` lines (default 10,000,000; generator
below) is validated by ``clv.transactions.validate_transactions`` and summarized by
``clv.rfm.rfm_summary`` (days; returns netted into their orders), and summarized by
``lifetimes.utils.summary_data_from_transaction_data`` on the same lines (``--lifetimes-rows``
limits it to a prefix). lifetimes has no notion of returns: it counts a return line as a purchase
occasion of negative value, so its frequencies are higher; the time is the comparison. Peak
memory is the peak resident set size during each step (Linux: the high-water mark is reset before
the step through ``/proc/self/clear_refs``; elsewhere the process peak so far), reported with the
increase over the resident size when the step started.

Every time is reported as wall time and as CPU time of this process (all threads), with the
1-minute load average at the start and the end: on a machine shared with other busy processes
the wall time includes waiting for a core, and the CPU time shows how much. Targets are judged on
wall time.

Generators (numpy ``default_rng(--seed)``; same seed, same data):

- customers: purchase rate lambda ~ Gamma(r, 1/alpha) per day and dropout probability
  p ~ Beta(a, b), with the CDNOW estimates of Fader, Hardie and Lee (2005) (r 0.243,
  alpha 4.414 weeks = 30.898 days, a 0.793, b 2.426); first purchase on one of the last 365 days
  (T uniform on 1..365). Without dropout a customer makes N ~ Poisson(lambda T) repeat
  purchases, at N uniform times on (0, T); after each repeat purchase they drop out with
  probability p, so they live through K ~ Geometric(p) of them. frequency = min(K, N) and
  recency = the time of purchase number frequency, which is T * Beta(frequency, N - frequency + 1)
  (order statistics of uniforms), rounded up to whole days so that rows repeat the way a daily
  summary's do. Exact BG/NBD in continuous time apart from that rounding. Spend: Gamma-Gamma
  with the paper's p 6.25, q 3.74, v 15.44 (nu ~ Gamma(q, 1/v); the mean of x purchases is
  Gamma(p x, 1/(nu x))), rounded to cents.
- transactions: rows / 20 customers, each with an acquisition time uniform over the two years
  2022-01-01 .. 2023-12-31 and an activity weight ~ Gamma(0.5, 1); orders (one per 4 purchase
  lines on average, 1 + a multinomial share of the rest each) go to customers in proportion to
  their weight, at a time uniform between the customer's acquisition and the end; rows / 200
  products with lognormal popularity and prices (median 12.19, in cents); quantities
  Geometric(0.5) on 1, 2, ... 3% of the rows are returns: copies of random purchase lines with
  -1 .. -quantity units, 1 to 30 days later (capped at the end); two thirds carry the original
  order id (netted into that order), one third a credit-note id of their own (like UCI's ``C``
  invoices). Ids are strings, as a loaded CSV gives them.

    python benchmarks/clv_speed.py [--customers 1000000] [--rows 10000000] [--out docs/clv_speed]

Prints and writes the report ``<out>.md`` and ``<out>.json``, with the command and environment
at the top (:mod:`report_env`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

sys.path[:0] = [str(Path(__file__).resolve().parents[1]),
                str(Path(__file__).resolve().parent)]
from report_env import (  # noqa: E402
    command,
    environment,
    finish,
    header,
    report_paths,
    write_report,
)

from clv import CLVModel, rfm_summary, validate_transactions  # noqa: E402

#: Fader, Hardie & Lee (2005) CDNOW estimates; alpha converted from weeks to days.
TRUE_BGNBD = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}
TRUE_GG = {"p": 6.25, "q": 3.74, "v": 15.44}
FIT_TARGET_S = 2.0
SUMMARY_TARGET_S = 30.0
RETURN_SHARE = 0.03
START = np.datetime64("2022-01-01T00:00:00", "s")
SPAN_S = 730 * 86_400


# ------------------------------------------------------------------------------- generators

def simulate_customers(n: int, *, seed: int = 0, days: int = 365) -> pd.DataFrame:
    """frequency, recency, T (days) and monetary_value of ``n`` BG/NBD + Gamma-Gamma customers
    (see the module docstring)."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = (TRUE_BGNBD[k] for k in ("r", "alpha", "a", "b"))
    rate = rng.gamma(r, 1.0 / alpha, n)
    dropout = rng.beta(a, b, n)
    T = rng.integers(1, days + 1, n).astype(np.float64)
    survived = rng.geometric(dropout)
    arrivals = rng.poisson(rate * T)
    frequency = np.minimum(survived, arrivals)
    repeat = frequency > 0
    recency = np.zeros(n)
    recency[repeat] = np.ceil(
        T[repeat] * rng.beta(frequency[repeat], arrivals[repeat] - frequency[repeat] + 1))
    p, q, v = (TRUE_GG[k] for k in ("p", "q", "v"))
    nu = rng.gamma(q, 1.0 / v, n)
    monetary = np.zeros(n)
    x = frequency[repeat].astype(np.float64)
    monetary[repeat] = np.round(rng.gamma(p * x, 1.0 / (nu[repeat] * x)), 2)
    return pd.DataFrame({"frequency": frequency.astype(np.float64), "recency": recency,
                         "T": T, "monetary_value": monetary})


def synthetic_transactions(n_rows: int, *, seed: int = 0) -> pd.DataFrame:
    """A transactions table of ``n_rows`` lines in the contract's columns (see the module
    docstring), string ids, not yet validated."""
    rng = np.random.default_rng(seed)
    n_customers = max(n_rows // 20, 10)
    n_products = max(n_rows // 200, 10)
    n_returns = int(round(n_rows * RETURN_SHARE))
    n_lines = n_rows - n_returns
    n_orders = max(n_lines // 4, 1)

    acquired = rng.integers(0, SPAN_S, n_customers)
    weight = rng.gamma(0.5, 1.0, n_customers)
    order_customer = rng.choice(n_customers, n_orders, p=weight / weight.sum())
    start = acquired[order_customer]
    order_time = start + (rng.random(n_orders) * (SPAN_S - start)).astype(np.int64)
    lines_per_order = 1 + rng.multinomial(n_lines - n_orders, np.full(n_orders, 1.0 / n_orders))
    line_order = np.repeat(np.arange(n_orders), lines_per_order)

    popularity = rng.lognormal(0.0, 1.5, n_products)
    product = rng.choice(n_products, n_lines, p=popularity / popularity.sum())
    price = np.round(rng.lognormal(2.5, 0.8, n_products), 2) + 0.01
    quantity = rng.geometric(0.5, n_lines)

    returned = rng.choice(n_lines, n_returns, replace=False)
    delay = rng.integers(86_400, 30 * 86_400 + 1, n_returns)
    credit_note = rng.random(n_returns) < 1.0 / 3.0
    return_order = np.where(credit_note, n_orders + np.arange(n_returns), line_order[returned])

    order = np.concatenate([line_order, return_order])
    customer = np.concatenate([order_customer[line_order], order_customer[line_order[returned]]])
    seconds = np.concatenate([order_time[line_order],
                              np.minimum(order_time[line_order[returned]] + delay, SPAN_S - 1)])
    item = np.concatenate([product, product[returned]])
    units = np.concatenate([quantity, -rng.integers(1, quantity[returned] + 1)])

    customer_ids = np.array([f"C{i:07d}" for i in range(n_customers)], dtype=object)
    product_ids = np.array([f"P{i:06d}" for i in range(n_products)], dtype=object)
    order_ids = np.array([f"O{i:08d}" for i in range(n_orders)]
                         + [f"R{i:08d}" for i in range(n_returns)], dtype=object)
    return pd.DataFrame({
        "customer_id": pd.array(customer_ids[customer], dtype="str"),
        "timestamp": (START + seconds.astype("timedelta64[s]")).astype("datetime64[us]"),
        "product_id": pd.array(product_ids[item], dtype="str"),
        "quantity": units.astype(np.int64),
        "unit_price": price[item],
        "order_id": pd.array(order_ids[order], dtype="str"),
    })


# ---------------------------------------------------------------------------------- memory

def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _maxrss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS reports bytes


@contextlib.contextmanager
def peak_memory(into: dict[str, Any]) -> Iterator[None]:
    """Record into ``into`` the peak resident memory (MB) during the block and its increase
    over the resident memory at the start."""
    start = _status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")  # reset the high-water mark to the current RSS (Linux >= 4.0)
        scope = "step"
    except OSError:
        scope = "process"
    yield
    peak = _status_kib("VmHWM") if scope == "step" else None
    peak = peak if peak is not None else _maxrss_kib()
    into["peak_rss_mb"] = peak / 1024
    into["added_mb"] = (peak - start) / 1024 if start is not None else None
    into["peak_scope"] = scope


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, float, Any]:
    """Wall time, CPU time of this process (all its threads) and the result of one call.

    On a machine shared with other busy processes the wall time includes waiting for a core;
    the CPU time does not, so the two together say how much of the wall time was contention.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, result


# ------------------------------------------------------------------------------ benchmarks

def bench_fit(n_customers: int, *, seed: int = 0, repeats: int = 3) -> dict[str, Any]:
    """CLVModel.fit vs lifetimes' BetaGeoFitter / GammaGammaFitter on the same customers."""
    summary = simulate_customers(n_customers, seed=seed)
    f, r, T, m = (summary[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    ours, ours_cpu = [], []
    for _ in range(max(repeats, 1)):
        elapsed, cpu, model = _timed(CLVModel(time_unit="D").fit, summary)
        ours.append(elapsed)
        ours_cpu.append(cpu)
    bg_s, bg_cpu, bg = _timed(BetaGeoFitter().fit, f, r, T)
    spenders = (f > 0) & (m > 0)
    gg_s, gg_cpu, gg = _timed(GammaGammaFitter().fit, f[spenders], m[spenders])
    theirs = {**{k: float(v) for k, v in bg.params_.items()},
              **{k: float(v) for k, v in gg.params_.items()}}
    mine = {**model.bgnbd_params_, **(model.gg_params_ or {})}
    rel = {k: abs(mine[k] - theirs[k]) / abs(theirs[k]) if k in mine else None for k in theirs}
    return {
        "customers": n_customers,
        "repeat_customers": int((f > 0).sum()),
        "distinct_bgnbd_rows": int(summary[["frequency", "recency", "T"]].drop_duplicates()
                                   .shape[0]),
        "ours_s": statistics.median(ours), "ours_runs_s": ours,
        "ours_cpu_s": statistics.median(ours_cpu),
        "lifetimes_bgnbd_s": bg_s, "lifetimes_gg_s": gg_s,
        "lifetimes_bgnbd_cpu_s": bg_cpu, "lifetimes_gg_cpu_s": gg_cpu,
        "ratio_bgnbd": bg_s / statistics.median(ours),
        "ratio_bgnbd_gg": (bg_s + gg_s) / statistics.median(ours),
        "true_params": {**TRUE_BGNBD, **TRUE_GG}, "ours_params": mine,
        "lifetimes_params": theirs, "rel_diff": rel,
        "max_rel_diff": max((v for v in rel.values() if v is not None), default=None),
        "freq_monetary_corr": model.freq_monetary_corr_,
        "notes": list(model.notes_),
    }


def bench_summarize(n_rows: int, *, seed: int = 0, lifetimes_rows: int | None = None
                    ) -> dict[str, Any]:
    """validate_transactions + rfm_summary vs lifetimes' summary on the same lines."""
    gen_s, _, raw = _timed(synthetic_transactions, n_rows, seed=seed)
    validate: dict[str, Any] = {}
    with peak_memory(validate):
        validate["s"], validate["cpu_s"], (tx, exclusions) = _timed(
            validate_transactions, raw, source="synthetic")
    del raw
    ours: dict[str, Any] = {}
    with peak_memory(ours):
        ours["s"], ours["cpu_s"], summary = _timed(rfm_summary, tx)
    lt_rows = len(tx) if lifetimes_rows is None else min(lifetimes_rows, len(tx))
    lines = pd.DataFrame({"customer_id": tx["customer_id"].iloc[:lt_rows],
                          "timestamp": tx["timestamp"].iloc[:lt_rows],
                          "value": (tx["quantity"] * tx["unit_price"]).iloc[:lt_rows]})
    theirs: dict[str, Any] = {"rows": lt_rows}
    with peak_memory(theirs):
        theirs["s"], theirs["cpu_s"], reference = _timed(summary_data_from_transaction_data, lines,
                                        "customer_id", "timestamp", monetary_value_col="value")
    returns = int((tx["quantity"] < 0).sum())
    return {
        "rows": len(tx), "return_rows": returns, "excluded": exclusions.to_dict()["excluded"],
        "generate_s": gen_s, "validate": validate,
        "rfm_summary": {**ours, "customers": len(summary),
                        "mean_frequency": float(summary["frequency"].mean())},
        "lifetimes": {**theirs, "customers": len(reference),
                      "mean_frequency": float(reference["frequency"].mean())},
        "ratio": theirs["s"] / ours["s"] if lt_rows == len(tx) else None,
    }


# --------------------------------------------------------------------------------- report

def to_markdown(report: dict[str, Any]) -> str:
    fit, summ = report["fit"], report["summarize"]
    lt = summ["lifetimes"]
    rows_note = "" if lt["rows"] == summ["rows"] else f" (first {lt['rows']:,} lines)"
    size = f"{fit['customers']:,} customers ({fit['distinct_bgnbd_rows']:,} distinct rows)"
    lines_size = f"{summ['rows']:,} lines"
    ours_fit = _seconds(fit["ours_s"], fit["ours_cpu_s"])
    load = report["load_average"]
    out = [f"CLV at scale, {report['cpus']} CPUs, seed {report['seed']}; 1-minute load average "
           f"{load['start']:.1f} at the start, {load['end']:.1f} at the end. Times are wall "
           "(CPU of this process): wall above CPU is time spent waiting for a core.", "",
           "| task | size | marginrank | lifetimes | lifetimes / marginrank |",
           "| --- | --- | --- | --- | --- |",
           f"| fit BG/NBD | {size} | {ours_fit} (CLVModel.fit, whole: BG/NBD + "
           f"Gamma-Gamma) | {_seconds(fit['lifetimes_bgnbd_s'], fit['lifetimes_bgnbd_cpu_s'])} "
           f"(BetaGeoFitter.fit) | {fit['ratio_bgnbd']:.1f}x |",
           f"| fit BG/NBD + Gamma-Gamma | {size} | {ours_fit} | "
           f"{fit['lifetimes_bgnbd_s'] + fit['lifetimes_gg_s']:.2f} s (+ GammaGammaFitter.fit "
           f"{_seconds(fit['lifetimes_gg_s'], fit['lifetimes_gg_cpu_s'])}) | "
           f"{fit['ratio_bgnbd_gg']:.1f}x |",
           f"| validate_transactions | {lines_size} | {_step(summ['validate'])} | | |",
           f"| RFM summary | {lines_size} | {_step(summ['rfm_summary'])} (rfm_summary) | "
           f"{_step(lt)} (summary_data_from_transaction_data{rows_note}) | "
           + (f"{summ['ratio']:.1f}x" if summ["ratio"] is not None else "n/a") + " |",
           "",
           f"Targets: fit <= {FIT_TARGET_S:g} s: {_verdict(fit['ours_s'] <= FIT_TARGET_S)} "
           f"({ours_fit}, median of {len(fit['ours_runs_s'])}); "
           f"rfm_summary <= {SUMMARY_TARGET_S:g} s: "
           f"{_verdict(summ['rfm_summary']['s'] <= SUMMARY_TARGET_S)} "
           f"({_seconds(summ['rfm_summary']['s'], summ['rfm_summary']['cpu_s'])}). "
           "Judged on wall time.",
           "",
           "| parameter | true | CLVModel | lifetimes | relative difference |",
           "| --- | --- | --- | --- | --- |"]
    for k, truth in fit["true_params"].items():
        mine, theirs, rel = (fit["ours_params"].get(k), fit["lifetimes_params"].get(k),
                             fit["rel_diff"].get(k))
        out.append(f"| {k} | {truth:.4g} | {_num(mine)} | {_num(theirs)} | "
                   + ("n/a" if rel is None else f"{rel:.1e}") + " |")
    out += ["", f"Max relative difference CLVModel vs lifetimes: {_num(fit['max_rel_diff'], 'e')}."
            f" {fit['repeat_customers']:,} repeat customers; frequency-monetary correlation "
            f"{fit['freq_monetary_corr']:.3f} (Gamma-Gamma assumes independence)."]
    out += [f"Note: {note}" for note in fit["notes"]]
    out += ["", f"Summary: {summ['rows']:,} lines ({summ['return_rows']:,} returns), "
            f"generated in {summ['generate_s']:.1f} s; rfm_summary: "
            f"{summ['rfm_summary']['customers']:,} customers, mean frequency "
            f"{summ['rfm_summary']['mean_frequency']:.3f} (returns netted); lifetimes: "
            f"{lt['customers']:,} customers, mean frequency {lt['mean_frequency']:.3f} "
            "(return lines counted as purchase days)."]
    return "\n".join(out)


def _step(step: dict[str, Any]) -> str:
    added = step["added_mb"]
    text = f"{_seconds(step['s'], step['cpu_s'])}, peak RSS {step['peak_rss_mb'] / 1024:.2f} GB"
    if added is not None:
        text += f" (+{added / 1024:.2f} GB)"
    return text + (" [process peak]" if step["peak_scope"] == "process" else "")


def _seconds(wall: float, cpu: float) -> str:
    return f"{wall:.2f} s ({cpu:.2f} s CPU)"


def _num(value: float | None, style: str = "g") -> str:
    if value is None:
        return "n/a"
    return f"{value:.1e}" if style == "e" else f"{value:.6g}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000,
                        help="synthetic customers to fit")
    parser.add_argument("--rows", type=int, default=10_000_000,
                        help="synthetic transaction lines to summarize")
    parser.add_argument("--lifetimes-rows", type=int, default=None,
                        help="summarize only the first N lines with lifetimes (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of CLVModel.fit (median)")
    parser.add_argument("--seed", type=int, default=0, help="seed of both generators")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs"
                        / "clv_speed", help="report path prefix (.md, .json)")
    args = parser.parse_args(argv)
    cmd, env = command(__file__, argv), environment("numpy", "pandas", "lifetimes")
    load_at_start = os.getloadavg()[0]
    report = {
        "seed": args.seed, "cpus": _cpus(),
        "fit": bench_fit(args.customers, seed=args.seed, repeats=args.repeats),
        "summarize": bench_summarize(args.rows, seed=args.seed,
                                     lifetimes_rows=args.lifetimes_rows),
        "load_average": {"start": load_at_start, "end": os.getloadavg()[0]},
    }
    env = finish(env)
    body = to_markdown(report)
    print(body)
    text = "\n".join(header("CLV at scale: marginrank against lifetimes", cmd, env)) + "\n" + body
    report = write_report(args.out, text, report, cmd, env)
    print("\nwritten: " + ", ".join(map(str, report_paths(args.out))))
    return report


def _cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
