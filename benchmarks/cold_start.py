"""Cold start on UCI Online Retail: hierarchical priors for new products, BG/NBD for one-order
customers.

Time split as ``benchmarks/clv_holdout.py`` (calibration 2010-12-01 .. 2011-08-31, holdout
2011-09-01 .. 2011-12-09, same loader and non-product exclusions; only lines with a customer id,
as the loader keeps). Everything a prediction uses comes from the calibration period.

**Products.** A product first sold in the holdout is "new" at calibration time: it has no sales
and no returns. UCI has no category or brand, so the grouping is derived from the product's
description (its most frequent one in the file, upper case; it is known when the product is
listed): *category* = the last word (the product type: HOLDER, BAG, MUG, CANDLE ...; a trailing
S dropped from words longer than three letters, so CASES and CASE meet), *brand* = the first
word within that category (JUMBO BAG, LUNCH BAG, ...). Per product and window:

- return rate: over the product's buyers in the window (customers with units bought), the mean
  share of their units returned in the same window (returned units capped at units bought);
  one observation per buyer;
- sales velocity (``daily_sales``): units sold per day from the product's first sale in the
  window to the window's end; one observation per day, days without a sale count as 0.

``objectives.priors.shrink_hierarchical`` is fitted on the calibration products; a new product's
prediction is its brand's estimate (its category's when the brand has no calibration product,
the catalog's when the category has none). It is scored against the product's holdout value, for
new products with at least ``--min-buyers`` holdout buyers (a value from one or two buyers is
mostly noise), against: the catalog mean (plain mean over calibration products), today's handling
(a missing field gives term 0, i.e. the median calibration value, the robust z-score's centre),
a category-only prior (the hierarchy without brands), and what ``marginrank build`` does with
a catalog column (``objectives.priors.fill_from_priors``: the calibration values as catalog
values, one per product, no counts behind them). Reported: MAE and the paired
bootstrap 95% interval of the mean difference in absolute error (negative: the prior is better).

**Customers.** Customers whose first purchase falls in the last ``--recent-days`` days of the
calibration period and who bought on one day only (BG/NBD frequency 0). Their BG/NBD posterior
(the calibration fit's expected repeat purchases over the holdout given frequency 0, recency 0
and their T) against the default segment, which carries no information about the customer: its
implied prediction is the mean expected holdout purchases of all calibration customers (the
average customer the default weights are set for). Target: holdout purchase days. Reported: MAE
and mean squared error with paired bootstrap intervals of the differences, the CLV quantile
(segment position) these customers get among all calibration customers, and mean actual holdout
purchases by quantile quartile.

    python benchmarks/cold_start.py [--data PATH] [--out docs/cold_start.json]
                                    [--markdown docs/cold_start.md]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from report_env import command, environment, finish, header  # noqa: E402

from clv import (  # noqa: E402
    UCI_ONLINE_RETAIL_COLUMNS,
    CLVModel,
    ExclusionReport,
    calibration_holdout_split,
    load_transactions,
)
from clv.segments import clv_quantiles  # noqa: E402
from clv.transactions import UCI_ONLINE_RETAIL_NON_PRODUCTS  # noqa: E402
from objectives.metrics import paired_bootstrap  # noqa: E402
from objectives.priors import fill_from_priors, product_stats, shrink_hierarchical  # noqa: E402


def _clv_holdout():
    """benchmarks/clv_holdout.py (scripts are not a package): its split and JSON helpers."""
    spec = importlib.util.spec_from_file_location(
        "clv_holdout", Path(__file__).resolve().parent / "clv_holdout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_HOLDOUT = _clv_holdout()
CALIBRATION_END, OBSERVATION_END = _HOLDOUT.CALIBRATION_END, _HOLDOUT.OBSERVATION_END
DEFAULT_DATA = _HOLDOUT.DEFAULT_DATA
MIN_BUYERS = 5
RECENT_DAYS = 90
N_BOOT = 2000
COMMAND = "python benchmarks/cold_start.py --out docs/cold_start.json --markdown docs/cold_start.md"


# ------------------------------------------------------------------------------- grouping

def load_descriptions(path: str | Path) -> pd.Series:
    """StockCode -> its most frequent description (upper case, stripped)."""
    raw = pd.read_csv(path, usecols=["StockCode", "Description"], dtype=str).dropna()
    raw["Description"] = raw["Description"].str.strip().str.upper()
    raw = raw[raw["Description"] != ""]
    counts = raw.groupby(["StockCode", "Description"]).size().reset_index(name="n")
    counts = counts.sort_values(["StockCode", "n", "Description"], ascending=[True, False, True])
    return counts.drop_duplicates("StockCode").set_index("StockCode")["Description"]


def _word(word: str | None) -> str | None:
    if word is None:
        return None
    return word[:-1] if len(word) > 3 and word.endswith("S") else word


def product_groups(product_ids: Sequence[str], descriptions: pd.Series) -> pd.DataFrame:
    """category = last word of the description (plural S dropped), brand = first word; None
    where the product has no description (a group of its own in the priors)."""
    rows = []
    for pid in product_ids:
        words = re.findall(r"[A-Z][A-Z'\-]*", str(descriptions.get(pid, "")))
        rows.append((_word(words[-1]) if words else None, words[0] if words else None))
    return pd.DataFrame(rows, columns=["category", "brand"], index=pd.Index(product_ids))


# ------------------------------------------------------------------------------- windows

def _window(tx: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp) -> pd.DataFrame:
    """Lines with start <= timestamp < end (end exclusive; start None: from the beginning)."""
    ts = tx["timestamp"]
    mask = ts < end if start is None else (ts >= start) & (ts < end)
    return tx[mask.to_numpy()]


def return_observations(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per (product, buyer): the share of the buyer's units returned in the window."""
    qty = lines["quantity"].to_numpy()
    frame = pd.DataFrame({"p": lines["product_id"].to_numpy(),
                          "c": lines["customer_id"].to_numpy(),
                          "bought": np.where(qty > 0, qty, 0),
                          "returned": np.where(qty < 0, -qty, 0)})
    pairs = frame.groupby(["p", "c"], sort=False)[["bought", "returned"]].sum()
    pairs = pairs[pairs["bought"] > 0]
    share = np.minimum(pairs["returned"], pairs["bought"]) / pairs["bought"]
    return pd.DataFrame({"p": pairs.index.get_level_values("p"), "y": share.to_numpy(dtype=float)})


def velocity_stats(lines: pd.DataFrame, product_ids: Sequence[str],
                   last_day: pd.Timestamp) -> pd.DataFrame:
    """n (days on sale: first sale .. last_day), mean units per day and their sample variance
    (days without a sale are zeros), in ``product_ids`` order."""
    sold = lines[lines["quantity"].to_numpy() > 0]
    daily = (pd.DataFrame({"p": sold["product_id"].to_numpy(),
                           "d": sold["timestamp"].dt.floor("D").to_numpy(),
                           "q": sold["quantity"].to_numpy(dtype=float)})
             .groupby(["p", "d"])["q"].sum().reset_index())
    daily["q2"] = daily["q"] ** 2
    agg = daily.groupby("p").agg(first=("d", "min"), s=("q", "sum"), s2=("q2", "sum"))
    agg = agg.reindex(pd.Index([str(p) for p in product_ids]))
    n = ((last_day - agg["first"]).dt.days + 1).fillna(0).to_numpy(dtype=float)
    s, s2 = agg["s"].to_numpy(), agg["s2"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / n, np.nan)
        var = np.where(n > 1, (s2 - n * mean**2) / (n - 1), np.nan)
    return pd.DataFrame({"n": n, "mean": mean, "var": var}, index=agg.index)


# ------------------------------------------------------------------------------- products

def _compare(name: str, truth: np.ndarray, preds: dict[str, np.ndarray], reference: str,
             seed: int) -> dict[str, Any]:
    err = {k: np.abs(v - truth) for k, v in preds.items()}
    rows = []
    for k in preds:
        row: dict[str, Any] = {"predictor": k, "mae": float(err[k].mean()),
                               "mse": float((err[k] ** 2).mean())}
        if k != reference:
            ci = paired_bootstrap(err[reference], err[k], n_boot=N_BOOT, seed=seed)
            row["prior_minus_this"] = {"mean": ci.mean, "low": ci.low, "high": ci.high}
            ci = paired_bootstrap(err[reference] ** 2, err[k] ** 2, n_boot=N_BOOT, seed=seed)
            row["prior_minus_this_mse"] = {"mean": ci.mean, "low": ci.low, "high": ci.high}
        rows.append(row)
    return {"quantity": name, "products": int(len(truth)),
            "mean_holdout_value": float(truth.mean()),
            "median_holdout_value": float(np.median(truth)), "rows": rows}


def products_report(tx: pd.DataFrame, descriptions: pd.Series, *, calibration_end: str,
                    observation_end: str, min_buyers: int = MIN_BUYERS,
                    seed: int = 0) -> dict[str, Any]:
    """Priors for products first sold in the holdout, scored on their holdout values."""
    cal_end = pd.Timestamp(calibration_end).normalize() + pd.Timedelta(days=1)
    obs_end = pd.Timestamp(observation_end).normalize() + pd.Timedelta(days=1)
    cal, hold = _window(tx, None, cal_end), _window(tx, cal_end, obs_end)
    sold_cal = set(cal.loc[cal["quantity"] > 0, "product_id"])
    sold_hold = set(hold.loc[hold["quantity"] > 0, "product_id"])
    new = sorted(sold_hold - sold_cal)
    known = sorted(sold_cal)
    products = known + new
    groups = product_groups(products, descriptions)
    is_new = np.r_[np.zeros(len(known), bool), np.ones(len(new), bool)]

    cal_ret = return_observations(cal)
    hold_ret = return_observations(hold)
    ret_stats = product_stats(products, cal_ret["p"], cal_ret["y"])
    vel_stats = velocity_stats(cal, products, cal_end - pd.Timedelta(days=1))
    hold_ret_stats = product_stats(new, hold_ret["p"], hold_ret["y"])
    hold_vel = velocity_stats(hold, new, obs_end - pd.Timedelta(days=1))
    scored = hold_ret_stats["n"].to_numpy() >= min_buyers

    out: dict[str, Any] = {
        "grouping": "category = last word of the description, brand = first word",
        "calibration_products": len(known), "new_products": len(new),
        "new_products_scored": int(scored.sum()), "min_holdout_buyers": min_buyers,
        "new_products_whose_brand_has_calibration_data": None, "fits": {}, "tables": [],
    }
    cal_keys = set(map(tuple, groups.loc[known, ["category", "brand"]].astype(str).to_numpy()))
    cal_cats = set(groups.loc[known, "category"].astype(str))
    new_groups = groups.loc[new]
    out["new_products_whose_brand_has_calibration_data"] = int(sum(
        (str(c), str(b)) in cal_keys for c, b in new_groups.to_numpy()))
    out["new_products_whose_category_has_calibration_data"] = int(
        new_groups["category"].astype(str).isin(cal_cats).sum())
    for name, stats, truth in (("return rate", ret_stats, hold_ret_stats["mean"].to_numpy()),
                               ("sales velocity (units/day)", vel_stats,
                                hold_vel["mean"].to_numpy())):
        n = np.where(is_new, 0.0, stats["n"].to_numpy())
        mean, var = stats["mean"].to_numpy(), stats["var"].to_numpy()
        fit = shrink_hierarchical(groups[["category", "brand"]], n, mean, var)
        fit_cat = shrink_hierarchical(groups[["category"]], n, mean, var)
        values = mean[~is_new & (n > 0)]
        # What a build does with a catalog column (one value per product, no counts).
        as_catalog = pd.DataFrame({"category": groups["category"].to_numpy(),
                                   "brand": groups["brand"].to_numpy(),
                                   "v": np.where(n > 0, mean, np.nan)})
        build_fill = fill_from_priors(as_catalog, "v")[0]
        preds = {
            "hierarchical prior (category -> brand)": fit.estimate[is_new][scored],
            "category-only prior": fit_cat.estimate[is_new][scored],
            "build's fill (catalog values, no counts)": build_fill[is_new][scored],
            "catalog mean": np.full(int(scored.sum()), float(values.mean())),
            "today: missing -> neutral (catalog median)": np.full(int(scored.sum()),
                                                                 float(np.median(values))),
        }
        out["fits"][name] = fit.to_dict()
        out["tables"].append(_compare(name, truth[scored], preds,
                                      "hierarchical prior (category -> brand)", seed))
    return out


# ------------------------------------------------------------------------------- customers

def customers_report(tx: pd.DataFrame, *, calibration_end: str, observation_end: str,
                     recent_days: int = RECENT_DAYS, seed: int = 0) -> dict[str, Any]:
    """BG/NBD posterior of recent one-purchase-day customers vs the default segment."""
    split = calibration_holdout_split(tx, calibration_end=calibration_end,
                                      observation_end=observation_end, freq="D")
    calibration = split[["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]]
    calibration = calibration.rename(columns=lambda c: c.removesuffix("_cal"))
    model = CLVModel(time_unit="D").fit(calibration)
    duration = float(split["duration_holdout"].iloc[0])
    f, r, T = (calibration[c].to_numpy() for c in ("frequency", "recency", "T"))
    predicted_all = model.expected_purchases(duration, f, r, T)
    quantile = clv_quantiles(model.customer_clv(calibration))
    chosen = (f == 0) & (T < recent_days)
    actual = split["frequency_holdout"].to_numpy()[chosen]
    posterior = predicted_all[chosen]
    default = np.full(int(chosen.sum()), float(predicted_all.mean()))
    q = quantile[chosen]
    mae = paired_bootstrap(np.abs(posterior - actual), np.abs(default - actual), n_boot=N_BOOT,
                           seed=seed)
    mse = paired_bootstrap((posterior - actual) ** 2, (default - actual) ** 2, n_boot=N_BOOT,
                           seed=seed)
    quartile = np.minimum((q * 4).astype(int), 3)
    by_quartile = [{"quantile_range": f"[{b / 4:.2f}, {(b + 1) / 4:.2f}" + ("]" if b == 3 else ")"),
                    "customers": int((quartile == b).sum()),
                    "mean_predicted": float(posterior[quartile == b].mean()),
                    "mean_actual": float(actual[quartile == b].mean())}
                   for b in range(4) if (quartile == b).any()]
    return {
        "customers": int(chosen.sum()), "recent_days": recent_days,
        "calibration_customers": len(split), "holdout_days": duration,
        "mean_actual": float(actual.mean()),
        "share_with_holdout_purchase": float((actual > 0).mean()),
        "mean_posterior": float(posterior.mean()), "default_prediction": float(default[0]),
        "mae_posterior": float(np.abs(posterior - actual).mean()),
        "mae_default": float(np.abs(default - actual).mean()),
        "mae_diff": {"mean": mae.mean, "low": mae.low, "high": mae.high},
        "mse_posterior": float(((posterior - actual) ** 2).mean()),
        "mse_default": float(((default - actual) ** 2).mean()),
        "mse_diff": {"mean": mse.mean, "low": mse.low, "high": mse.high},
        "quantile_min": float(q.min()), "quantile_median": float(np.median(q)),
        "quantile_max": float(q.max()), "by_quartile": by_quartile,
    }


# ------------------------------------------------------------------------------- report

def cold_start_report(tx: pd.DataFrame, exclusions: ExclusionReport, descriptions: pd.Series, *,
                      calibration_end: str = CALIBRATION_END,
                      observation_end: str = OBSERVATION_END, min_buyers: int = MIN_BUYERS,
                      recent_days: int = RECENT_DAYS, seed: int = 0) -> dict[str, Any]:
    return {
        "command": COMMAND,
        "environment": environment("numpy", "pandas"),
        "data": exclusions.to_dict(),
        "split": {"calibration_end": calibration_end, "observation_end": observation_end},
        "products": products_report(tx, descriptions, calibration_end=calibration_end,
                                    observation_end=observation_end, min_buyers=min_buyers,
                                    seed=seed),
        "customers": customers_report(tx, calibration_end=calibration_end,
                                      observation_end=observation_end,
                                      recent_days=recent_days, seed=seed),
    }


def _ci(d: dict[str, float], fmt: str = "+.4f") -> str:
    return f"{d['mean']:{fmt}} [{d['low']:{fmt}}, {d['high']:{fmt}}]"


def to_markdown(report: dict[str, Any]) -> str:
    p, c = report["products"], report["customers"]
    out = [*header("Cold start on UCI Online Retail", report["command"], report["environment"]),
           f"Calibration to {report['split']['calibration_end']}, holdout to "
           f"{report['split']['observation_end']}; {report['data']['kept_rows']:,} of "
           f"{report['data']['total_rows']:,} lines used (the loader's exclusions, as "
           "`benchmarks/clv_holdout.py`). Method and definitions: the script's docstring.", "",
           "## New products (first sold in the holdout)", "",
           f"Grouping: {p['grouping']}. {p['calibration_products']:,} calibration products; "
           f"{p['new_products']:,} new, {p['new_products_scored']:,} of them with at least "
           f"{p['min_holdout_buyers']} holdout buyers (scored). Of the new products, "
           f"{p['new_products_whose_brand_has_calibration_data']:,} have a brand and "
           f"{p['new_products_whose_category_has_calibration_data']:,} a category with "
           "calibration products.", ""]
    for name, fit in p["fits"].items():
        tau = ", ".join(f"{k} {v:.4g}" for k, v in fit["tau2"].items())
        pc = fit["pseudo_count"]
        out.append(f"- {name}: within-product variance {fit['sigma2']:.4g}, tau^2 {tau}; "
                   f"product pseudo-count {'inf' if pc is None else f'{pc:.1f}'} observations; "
                   f"catalog mean {fit['catalog_mean']:.4g}.")
    out.append("")
    for table in p["tables"]:
        out += [f"### {table['quantity']} ({table['products']:,} products, holdout mean "
                f"{table['mean_holdout_value']:.4g}, median {table['median_holdout_value']:.4g})",
                "", "| predictor | MAE | prior's MAE minus this one, 95% CI | MSE "
                "| prior's MSE minus this one, 95% CI |", "| --- | --- | --- | --- | --- |"]
        for row in table["rows"]:
            ref = "prior_minus_this" not in row
            diff = "(reference)" if ref else _ci(row["prior_minus_this"])
            diff_mse = "(reference)" if ref else _ci(row["prior_minus_this_mse"], "+.4g")
            out.append(f"| {row['predictor']} | {row['mae']:.4f} | {diff} | {row['mse']:.4g} "
                       f"| {diff_mse} |")
        out.append("")
    out += ["## One-order customers", "",
            f"{c['customers']:,} customers first seen in the last {c['recent_days']} calibration "
            f"days with one purchase day (of {c['calibration_customers']:,} calibration "
            f"customers); {100 * c['share_with_holdout_purchase']:.1f}% bought again in the "
            f"{c['holdout_days']:.0f}-day holdout, mean {c['mean_actual']:.3f} purchase days.", "",
            "| prediction of holdout purchase days | mean | MAE | MSE |",
            "| --- | --- | --- | --- |",
            f"| BG/NBD posterior from one order | {c['mean_posterior']:.3f} | "
            f"{c['mae_posterior']:.4f} | {c['mse_posterior']:.4f} |",
            f"| default segment (average calibration customer) | {c['default_prediction']:.3f} | "
            f"{c['mae_default']:.4f} | {c['mse_default']:.4f} |",
            f"| posterior minus default, 95% CI | | {_ci(c['mae_diff'])} | {_ci(c['mse_diff'])} |",
            "", "Their CLV quantile (segment position) among all calibration customers: min "
            f"{c['quantile_min']:.3f}, median {c['quantile_median']:.3f}, max "
            f"{c['quantile_max']:.3f}.", "",
            "| CLV quantile | customers | mean predicted | mean actual |",
            "| --- | --- | --- | --- |"]
    out += [f"| {b['quantile_range']} | {b['customers']:,} | {b['mean_predicted']:.3f} | "
            f"{b['mean_actual']:.3f} |" for b in c["by_quartile"]]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="UCI Online Retail file (original column names)")
    parser.add_argument("--min-buyers", type=int, default=MIN_BUYERS,
                        help="holdout buyers a new product needs to be scored")
    parser.add_argument("--recent-days", type=int, default=RECENT_DAYS,
                        help="customers first seen in the last this-many days of the "
                             "calibration period are scored")
    parser.add_argument("--out", type=Path, default=Path("cold_start.json"), help="JSON report")
    parser.add_argument("--markdown", type=Path, default=Path("cold_start.md"),
                        help="markdown report")
    args = parser.parse_args(argv)
    cmd = command(__file__, argv)
    tx, exclusions = load_transactions(args.data, columns=UCI_ONLINE_RETAIL_COLUMNS,
                                       non_product_ids=UCI_ONLINE_RETAIL_NON_PRODUCTS)
    report = cold_start_report(tx, exclusions, load_descriptions(args.data),
                               min_buyers=args.min_buyers, recent_days=args.recent_days)
    report.update(command=cmd, environment=finish(report["environment"]))
    text = to_markdown(report)
    print(text)
    args.out.write_text(json.dumps(_HOLDOUT._finite(report), indent=2,
                                   default=_HOLDOUT._json_default) + "\n")
    args.markdown.write_text(text)
    print(f"written: {args.out}, {args.markdown}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
