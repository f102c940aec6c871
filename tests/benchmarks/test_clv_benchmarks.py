"""The CLV benchmark scripts at a tiny scale: their outputs are well formed and sane.

``benchmarks/`` holds scripts, not a package (it is not installed), so the scripts are imported
by path. Timings are printed by the scripts, never asserted here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from clv import CLVModel, validate_transactions
from tests.conftest import load_benchmark

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def clv_holdout() -> ModuleType:
    return load_benchmark("clv_holdout")


@pytest.fixture(scope="module")
def clv_speed() -> ModuleType:
    return load_benchmark("clv_speed")


def _uci_like_file(path: Path, *, customers: int = 1500, anonymous: int = 37,
                   seed: int = 0) -> Path:
    """BG/NBD customers in the UCI Online Retail layout over its dates (2010-12-01 ..
    2011-12-09): first purchase in the first 9 months, then Poisson purchases at a rate
    lambda ~ Gamma(0.6, 1/40) per day, dropping out with probability p ~ Beta(1, 4) right after
    each repeat purchase; one unit price per customer. Every purchase is an invoice of 1-3
    lines, a few followed by a partial cancellation (``C`` invoice) the same day; ``anonymous``
    lines have no CustomerID."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2010-12-01 08:00")
    end_day = (pd.Timestamp("2011-12-09") - pd.Timestamp("2010-12-01")).days + 0.4
    rows = []
    invoice = 536_000
    for c in range(customers):
        rate, dropout = rng.gamma(0.6, 1 / 40), rng.beta(1.0, 4.0)
        price = round(float(rng.lognormal(1.0, 0.6)), 2)
        t, repeat = rng.uniform(0, 273.6), False  # first purchase by 2011-08-31 22:24
        while t < end_day:
            invoice += 1
            stamp = (start + pd.Timedelta(days=t)).strftime("%Y-%m-%d %H:%M:%S")
            for _ in range(rng.integers(1, 4)):
                product = f"{rng.integers(20_000, 20_050)}"
                quantity = int(rng.integers(2, 13))
                rows.append((str(invoice), product, quantity, stamp, price, 12_000 + c))
                if rng.random() < 0.05:
                    rows.append((f"C{invoice}", product, -1, stamp, price, 12_000 + c))
            if repeat and rng.random() < dropout:
                break  # dropout follows a repeat purchase, never the first one
            t, repeat = t + rng.exponential(1 / rate), True
    for i in range(anonymous):
        rows.append((str(invoice + 1 + i), "20001", 1, "2011-05-05 10:00:00", 2.5, None))
    frame = pd.DataFrame(rows, columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate",
                                        "UnitPrice", "CustomerID"])
    frame["CustomerID"] = frame["CustomerID"].astype("Int64")
    frame.to_csv(path, index=False)
    return path


def test_holdout_benchmark_on_simulated_bgnbd_data(tmp_path: Path, clv_holdout: ModuleType,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = _uci_like_file(tmp_path / "retail.csv")
    out, plot = tmp_path / "holdout.json", tmp_path / "holdout.png"
    report = clv_holdout.main(["--data", str(data), "--label", "Simulated", "--out", str(out),
                               "--plot", str(plot)])

    assert report["title"] == "Simulated, calibration 9 months / holdout 3 months"
    assert report["data"]["excluded"] == {"missing customer_id": 37}
    split, hold = report["split"], report["holdout"]
    assert split["holdout_days"] == 100.0 and split["calibration_days"] == 274.0
    assert split["customers_first_seen_in_holdout"] == 0
    assert 0 < split["repeat_customers_in_calibration"] < split["customers_in_calibration"]
    model = report["model"]
    params = {**model["bgnbd_params"], **(model["gg_params"] or {})}
    assert all(math.isfinite(v) and v > 0 for v in params.values())
    assert math.isfinite(model["diagnostics"]["log_likelihood"])

    # On data the model describes, the aggregate forecast is close to what happened.
    assert hold["actual_purchases"] > 200
    assert 1 / 1.3 < hold["predicted_purchases"] / hold["actual_purchases"] < 1.3
    assert abs(hold["error_pct"]) < 30
    assert hold["mae_model"] > 0 and hold["mae_naive"] > 0
    assert hold["mae_naive_over_model"] > 1.1  # and beats extrapolating each customer's rate
    assert hold["mae_naive_over_model"] == pytest.approx(hold["mae_naive"] / hold["mae_model"])

    buckets = report["buckets"]
    assert [b["frequency"] for b in buckets][:2] == ["0", "1"]
    assert len(buckets) <= 8 and buckets[-1]["frequency"] in {"7+", *map(str, range(7))}
    assert sum(b["customers"] for b in buckets) == split["customers_in_calibration"]
    assert all(math.isfinite(b[k]) and b[k] >= 0 for b in buckets
               for k in ("mean_actual", "mean_predicted", "mean_naive"))
    assert buckets[0]["mean_naive"] == 0.0  # no calibration repeats, no rate to extrapolate

    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert plot.read_bytes()[:8] == PNG_SIGNATURE and plot.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "| per-customer MAE |" in printed and "| 7+ |" in printed
    assert "| frequency-monetary correlation (repeat customers) |" in printed


def test_holdout_benchmark_leaves_out_postage_only_invoices(
        tmp_path: Path, clv_holdout: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    """Postage-only invoices (UCI's POST code) in the holdout are no purchases: excluded, the
    report is that of the file without them; kept (``--keep-non-products``), they add
    purchase days."""
    goods = _uci_like_file(tmp_path / "goods.csv", customers=400)
    frame = pd.read_csv(goods, dtype=str)
    postage = pd.DataFrame({"InvoiceNo": [str(900_000 + i) for i in range(25)],
                            "StockCode": "POST", "Quantity": "1",
                            "InvoiceDate": "2011-11-20 12:00:00", "UnitPrice": "18.0",
                            "CustomerID": [str(12_000 + i) for i in range(25)]})
    mixed = tmp_path / "mixed.csv"
    pd.concat([frame, postage], ignore_index=True).to_csv(mixed, index=False)

    def run(path: Path, *flags: str) -> dict:
        return clv_holdout.main(["--data", str(path), "--out", str(tmp_path / "r.json"),
                                 "--plot", str(tmp_path / "r.png"), *flags])

    reference, excluded = run(goods), run(mixed)
    assert excluded["data"]["excluded"] == {"missing customer_id": 37,
                                            "non-product product_id": 25}
    assert excluded["data"]["notes"][0].startswith("25 of ")
    assert "| note | 25 of " in capsys.readouterr().out
    assert excluded["holdout"] == reference["holdout"]
    assert excluded["model"] == reference["model"]
    kept = run(mixed, "--keep-non-products")
    assert kept["data"]["excluded"] == {"missing customer_id": 37}
    assert kept["holdout"]["actual_purchases"] > reference["holdout"]["actual_purchases"]


def test_speed_benchmark_tiny(tmp_path: Path, clv_speed: ModuleType,
                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "speed.json"
    report = clv_speed.main(["--customers", "2000", "--rows", "20000", "--repeats", "1",
                             "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))

    fit = report["fit"]
    assert fit["customers"] == 2000 and 0 < fit["distinct_bgnbd_rows"] < 2000
    assert set(fit["ours_params"]) == set(fit["lifetimes_params"]) == set(fit["true_params"])
    assert all(math.isfinite(v) and v > 0 for v in fit["ours_params"].values())
    assert fit["max_rel_diff"] < 1e-5  # weighted distinct rows: the same optimum
    assert abs(fit["freq_monetary_corr"]) < 0.2  # Gamma-Gamma spend: independent by design
    assert all(t > 0 for t in (fit["ours_s"], fit["lifetimes_bgnbd_s"], fit["lifetimes_gg_s"],
                               fit["ours_cpu_s"], fit["lifetimes_bgnbd_cpu_s"]))
    assert set(report["load_average"]) == {"start", "end"}

    summ = report["summarize"]
    assert summ["rows"] == 20_000 and summ["return_rows"] == 600 and summ["excluded"] == {}
    ours, theirs = summ["rfm_summary"], summ["lifetimes"]
    assert theirs["rows"] == 20_000 and summ["ratio"] > 0
    # lifetimes counts return lines as purchase days; netting them can only lower frequency.
    assert 0 < ours["customers"] <= theirs["customers"]
    assert ours["mean_frequency"] < theirs["mean_frequency"]
    for step in (summ["validate"], ours, theirs):
        assert step["s"] > 0 and step["cpu_s"] > 0 and step["peak_rss_mb"] > 0
    printed = capsys.readouterr().out
    assert "| RFM summary | 20,000 lines |" in printed
    assert "frequency-monetary correlation" in printed


def test_simulated_customers_are_bgnbd(clv_speed: ModuleType) -> None:
    """The fit benchmark's generator: valid summaries, and a fit recovers its parameters."""
    summary = clv_speed.simulate_customers(50_000, seed=1)
    repeat = summary["frequency"] > 0
    assert (summary["recency"] <= summary["T"]).all()
    assert (summary.loc[~repeat, ["recency", "monetary_value"]] == 0).all().all()
    assert (summary.loc[repeat, "recency"] >= 1).all()
    model = CLVModel().fit(summary)
    truth = {**clv_speed.TRUE_BGNBD, **clv_speed.TRUE_GG}
    fitted = {**model.bgnbd_params_, **model.gg_params_}
    for name, value in truth.items():
        assert fitted[name] == pytest.approx(value, rel=0.25), name


def test_synthetic_transactions_follow_the_contract(clv_speed: ModuleType) -> None:
    raw = clv_speed.synthetic_transactions(30_000, seed=5)
    assert len(raw) == 30_000
    tx, report = validate_transactions(raw)
    assert report.excluded == {} and len(tx) == 30_000
    returns = tx["quantity"] < 0
    assert returns.sum() == 900
    assert tx["timestamp"].min() >= pd.Timestamp("2022-01-01")
    assert tx["timestamp"].max() < pd.Timestamp("2024-01-01")
    # Two thirds of the returns carry an order id that also has purchase lines.
    bought = set(zip(tx.loc[~returns, "customer_id"], tx.loc[~returns, "order_id"], strict=True))
    matched = np.mean([key in bought for key in zip(tx.loc[returns, "customer_id"],
                                                    tx.loc[returns, "order_id"], strict=True)])
    assert 0.55 < matched < 0.78
    assert (clv_speed.synthetic_transactions(30_000, seed=5) == raw).all().all()
