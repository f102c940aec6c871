"""BG/NBD holdout test on real data: UCI Online Retail, calibration 9 months / holdout 3 months.

Loads the file through ``clv.transactions.load_transactions`` with the UCI column mapping
(cancellation invoices become returns; rows without a customer, with a non-product stock code of
``UCI_ONLINE_RETAIL_NON_PRODUCTS`` such as postage, manual adjustments and discounts, or with a
non-positive price are excluded and counted; ``--keep-non-products`` keeps the non-product
lines, as the benchmark did before), splits it with ``clv.rfm.calibration_holdout_split`` at
2011-08-31 (calibration 2010-12-01 .. 2011-08-31, holdout 2011-09-01 .. 2011-12-09, in days), fits
``CLVModel`` on the calibration summary and predicts each customer's repeat purchases in the
holdout (BG/NBD convention: distinct purchase days). Customers first seen in the holdout cannot
be scored from calibration data and are counted, not scored.

Reported: the loader's exclusions, the fitted BG/NBD and Gamma-Gamma parameters with the
log-likelihood and the model's notes, the aggregate predicted vs actual holdout purchases, and the
per-customer mean absolute error against a naive baseline that extrapolates each customer's
calibration rate (repeat purchases per day since the first purchase) over the holdout. Prints
markdown, writes JSON, and draws the calibration plot of Fader, Hardie and Lee (2005, figure 4):
mean predicted vs mean actual holdout purchases by calibration frequency (0, 1, ..., 7+).

    python benchmarks/clv_holdout.py [--data PATH] [--keep-non-products] [--out docs/clv_holdout]

Writes the report ``<out>.md`` (command and environment at the top, :mod:`report_env`),
``<out>.json`` and the plot ``<out>.png``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

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

from clv import (  # noqa: E402
    UCI_ONLINE_RETAIL_COLUMNS,
    CLVModel,
    ExclusionReport,
    calibration_holdout_split,
    load_transactions,
)
from clv.transactions import UCI_ONLINE_RETAIL_NON_PRODUCTS  # noqa: E402

DEFAULT_DATA = (Path(__file__).resolve().parents[2] / "shared" / "data"
                / "uci-online-retail" / "online_retail.csv.gz")
CALIBRATION_END = "2011-08-31"
OBSERVATION_END = "2011-12-09"
#: Calibration frequencies 0 .. TOP_BUCKET - 1 get a bucket each; the rest share "TOP_BUCKET+".
TOP_BUCKET = 7
DAYS_PER_MONTH = 365.25 / 12


def holdout_report(
    tx: pd.DataFrame,
    exclusions: ExclusionReport,
    *,
    calibration_end: str = CALIBRATION_END,
    observation_end: str = OBSERVATION_END,
    label: str = "UCI Online Retail",
) -> dict[str, Any]:
    """Split, fit, predict and score; everything as plain JSON types.

    ``tx`` is a validated transactions frame and ``exclusions`` the loader's report for it.
    Time is in days. Keys: ``data``, ``split``, ``model``, ``holdout``, ``buckets``, ``title``.
    """
    split = calibration_holdout_split(tx, calibration_end=calibration_end,
                                      observation_end=observation_end, freq="D")
    calibration = split[["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]]
    calibration = calibration.rename(columns=lambda c: c.removesuffix("_cal"))
    model = CLVModel(time_unit="D").fit(calibration)

    frequency = calibration["frequency"].to_numpy()
    T = calibration["T"].to_numpy()
    actual = split["frequency_holdout"].to_numpy()
    duration = float(split["duration_holdout"].iloc[0])
    predicted = model.expected_purchases(duration, frequency, calibration["recency"], T)
    # Naive baseline: the calibration repeat rate per day since the first purchase, carried on.
    # A customer first seen on the last calibration day (T = 0) has shown no rate: 0.
    rate = np.divide(frequency, T, out=np.zeros_like(frequency), where=T > 0)
    naive = rate * duration

    first_day = pd.Timestamp(tx["timestamp"].min()).normalize()
    cal_days = float((pd.Timestamp(calibration_end) - first_day).days + 1)
    months_cal = round(cal_days / DAYS_PER_MONTH)
    months_hold = round(duration / DAYS_PER_MONTH)
    model_mae = float(np.abs(predicted - actual).mean())
    activity = _store_activity(tx, calibration_end, observation_end, cal_days, duration)
    naive_mae = float(np.abs(naive - actual).mean())
    return {
        "title": (f"{label}, calibration {months_cal} months / holdout {months_hold} months"),
        "data": exclusions.to_dict(),
        "split": {
            "time_unit": "days",
            "first_day": first_day.date().isoformat(),
            "calibration_end": pd.Timestamp(calibration_end).date().isoformat(),
            "observation_end": pd.Timestamp(observation_end).date().isoformat(),
            "calibration_days": cal_days,
            "holdout_days": duration,
            "customers_in_calibration": len(split),
            "repeat_customers_in_calibration": int((frequency > 0).sum()),
            "repeat_purchases_in_calibration": float(frequency.sum()),
            "customers_first_seen_in_holdout": int(split.attrs["n_excluded_customers"]),
            "store_purchase_days_per_day": activity,
        },
        "model": model.to_dict(),
        "holdout": {
            "actual_purchases": float(actual.sum()),
            "predicted_purchases": float(predicted.sum()),
            "error_pct": _pct_error(predicted.sum(), actual.sum()),
            "naive_predicted_purchases": float(naive.sum()),
            "naive_error_pct": _pct_error(naive.sum(), actual.sum()),
            "mae_model": model_mae,
            "mae_naive": naive_mae,
            "mae_naive_over_model": naive_mae / model_mae if model_mae > 0 else None,
        },
        "buckets": _buckets(frequency, actual, predicted, naive),
    }


def _store_activity(tx: pd.DataFrame, calibration_end: str, observation_end: str,
                    cal_days: float, holdout_days: float) -> dict[str, float | None]:
    """Customer purchase days (distinct customer and day with a purchase line, all customers,
    new ones included) per calendar day in each window: a stationary model such as BG/NBD
    assumes this level does not change, so a seasonal holdout shows up here first."""
    purchases = tx[tx["quantity"].to_numpy() > 0]
    day = purchases["timestamp"].dt.floor("D")
    days = pd.DataFrame({"c": purchases["customer_id"], "d": day}).drop_duplicates()["d"]
    cal_end = pd.Timestamp(calibration_end).floor("D")
    obs_end = pd.Timestamp(observation_end).floor("D")
    cal = float((days <= cal_end).sum()) / cal_days
    hold = float(((days > cal_end) & (days <= obs_end)).sum()) / holdout_days
    return {"calibration": cal, "holdout": hold, "change_pct": _pct_error(hold, cal)}


def _pct_error(predicted: float, actual: float) -> float | None:
    return float(100.0 * (predicted - actual) / actual) if actual > 0 else None


def _buckets(frequency: np.ndarray, actual: np.ndarray, predicted: np.ndarray,
             naive: np.ndarray) -> list[dict[str, Any]]:
    """Mean holdout purchases by calibration frequency 0, 1, ..., TOP_BUCKET+ (empty ones left
    out)."""
    bucket = np.minimum(frequency, TOP_BUCKET).astype(int)
    rows = []
    for b in range(TOP_BUCKET + 1):
        mask = bucket == b
        if not mask.any():
            continue
        rows.append({
            "frequency": f"{b}+" if b == TOP_BUCKET else str(b),
            "customers": int(mask.sum()),
            "mean_actual": float(actual[mask].mean()),
            "mean_predicted": float(predicted[mask].mean()),
            "mean_naive": float(naive[mask].mean()),
        })
    return rows


def to_markdown(report: dict[str, Any]) -> str:
    """The report as markdown tables (without the title and header of :mod:`report_env`)."""
    data, split, model, hold = (report[k] for k in ("data", "split", "model", "holdout"))
    diagnostics = model["diagnostics"]
    activity = split["store_purchase_days_per_day"]
    out = [f"Calibration {split['first_day']} .. {split['calibration_end']} "
           f"({split['calibration_days']:.0f} days), holdout to {split['observation_end']} "
           f"({split['holdout_days']:.0f} days); time unit: days.", "",
           "| data | value |", "| --- | --- |",
           f"| lines in the file | {data['total_rows']:,} |"]
    for reason, count in sorted(data["excluded"].items()):
        out.append(f"| excluded: {reason} | {count:,} |")
    out += [f"| lines used | {data['kept_rows']:,} |",
            *[f"| note | {note} |" for note in data["notes"]],
            f"| customers in calibration | {split['customers_in_calibration']:,} |",
            f"| repeat customers in calibration | {split['repeat_customers_in_calibration']:,} |",
            f"| customers first seen in the holdout (not scored) | "
            f"{split['customers_first_seen_in_holdout']:,} |",
            f"| customer purchase days per calendar day, calibration -> holdout | "
            f"{activity['calibration']:.1f} -> {activity['holdout']:.1f} "
            f"({_signed(activity['change_pct'])}) |", ""]

    gg = model["gg_params"]
    corr = diagnostics["freq_monetary_corr"]
    out += ["| fitted model | value |", "| --- | --- |"]
    out += [f"| BG/NBD {k} | {v:.6g} |" for k, v in model["bgnbd_params"].items()]
    out += ([f"| Gamma-Gamma {k} | {v:.6g} |" for k, v in gg.items()] if gg else
            [f"| Gamma-Gamma | not fitted; mean spend {model['mean_spend']:.4g} |"])
    out += [f"| BG/NBD log-likelihood | {diagnostics['log_likelihood']:,.1f} |",
            "| frequency-monetary correlation (repeat customers) | "
            + ("n/a" if corr is None else f"{corr:.3f}") + " |", ""]
    if diagnostics["notes"]:
        out += ["Notes:", *[f"- {note}" for note in diagnostics["notes"]], ""]

    ratio = hold["mae_naive_over_model"]
    out += ["| holdout repeat purchases (distinct purchase days) | BG/NBD | naive rate | actual |",
            "| --- | --- | --- | --- |",
            f"| total | {hold['predicted_purchases']:,.1f} | "
            f"{hold['naive_predicted_purchases']:,.1f} | {hold['actual_purchases']:,.0f} |",
            f"| error of the total | {_signed(hold['error_pct'])} | "
            f"{_signed(hold['naive_error_pct'])} | |",
            f"| per-customer MAE | {hold['mae_model']:.3f} | {hold['mae_naive']:.3f} | |",
            "| naive MAE / BG/NBD MAE | | "
            + ("n/a" if ratio is None else f"{ratio:.2f}x") + " | |", "",
            "| calibration frequency | customers | mean actual | mean BG/NBD | mean naive |",
            "| --- | --- | --- | --- | --- |"]
    out += [f"| {b['frequency']} | {b['customers']:,} | {b['mean_actual']:.3f} | "
            f"{b['mean_predicted']:.3f} | {b['mean_naive']:.3f} |" for b in report["buckets"]]
    return "\n".join(out)


def _signed(pct: float | None) -> str:
    return "n/a" if pct is None else f"{pct:+.1f}%"


def plot_calibration(report: dict[str, Any], path: str | Path) -> None:
    """Mean actual vs mean predicted holdout purchases by calibration frequency, as a PNG."""
    buckets = report["buckets"]
    labels = [b["frequency"] for b in buckets]
    x = np.arange(len(buckets))
    fig = Figure(figsize=(7.5, 5.0), dpi=120)
    ax = fig.add_subplot()
    ax.plot(x, [b["mean_actual"] for b in buckets], "o-", color="black", label="actual")
    ax.plot(x, [b["mean_predicted"] for b in buckets], "s--", color="tab:blue",
            label="BG/NBD predicted")
    ax.set_xticks(x, labels)
    ax.set_xlabel("repeat purchases in calibration (distinct purchase days)")
    ax.set_ylabel(f"mean repeat purchases in holdout ({report['split']['holdout_days']:.0f} days)")
    ax.set_title(report["title"], fontsize=11)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    for xi, b in zip(x, buckets, strict=True):
        ax.annotate(f"n={b['customers']:,}", (xi, 0), textcoords="offset points",
                    xytext=(0, 4), ha="center", fontsize=7, color="gray")
    fig.tight_layout()
    fig.savefig(path)


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    """NaN/inf (not valid JSON) become None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="UCI Online Retail file (original column names)")
    parser.add_argument("--calibration-end", default=CALIBRATION_END,
                        help="last day of the calibration period")
    parser.add_argument("--observation-end", default=OBSERVATION_END,
                        help="last day of the holdout")
    parser.add_argument("--label", default="UCI Online Retail", help="data name for the title")
    parser.add_argument("--keep-non-products", action="store_true",
                        help="keep postage, fee, discount and adjustment lines as purchases")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs"
                        / "clv_holdout", help="report path prefix (.md, .json)")
    parser.add_argument("--plot", type=Path, default=None,
                        help="calibration plot (default: <out>.png)")
    args = parser.parse_args(argv)
    cmd, env = command(__file__, argv), environment("numpy", "pandas", "lifetimes")
    non_products = () if args.keep_non_products else UCI_ONLINE_RETAIL_NON_PRODUCTS
    tx, exclusions = load_transactions(args.data, columns=UCI_ONLINE_RETAIL_COLUMNS,
                                       non_product_ids=non_products)
    report = holdout_report(tx, exclusions, calibration_end=args.calibration_end,
                            observation_end=args.observation_end, label=args.label)
    md, _ = report_paths(args.out)
    plot = args.plot or md.with_suffix(".png")
    plot.parent.mkdir(parents=True, exist_ok=True)
    plot_calibration(report, plot)
    env = finish(env)
    body = to_markdown(report)
    text = "\n".join(header(f"BG/NBD holdout: {report['title']}", cmd, env)) + "\n" + body + (
        f"\n\n![Mean predicted and actual holdout purchases by calibration frequency]"
        f"({Path(os.path.relpath(plot, md.parent)).as_posix()})\n")
    print(body)
    report = write_report(args.out, text, _finite(report), cmd, env)
    print("\nwritten: " + ", ".join(map(str, [*report_paths(args.out), plot])))
    return report


if __name__ == "__main__":
    main()
