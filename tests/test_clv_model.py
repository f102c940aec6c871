"""CLVModel: the published CDNOW estimates, agreement with lifetimes, failure modes, persistence,
and a fit on the real UCI Online Retail data."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import lifetimes
import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter

from clv import (
    UCI_ONLINE_RETAIL_COLUMNS,
    CLVFitError,
    CLVModel,
    DataError,
    load_transactions,
    rfm_summary,
    validate_transactions,
)

LIFETIMES_DATA = Path(lifetimes.__file__).parent / "datasets"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
UCI_FILE = SHARED_DATA / "uci-online-retail" / "online_retail.csv.gz"

#: Fader, Hardie & Lee (2005), CDNOW calibration sample in weeks; Fader & Hardie note 025.
PAPER = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER_LL = -9582.4
PAPER_GG = {"p": 6.25, "q": 3.74, "v": 15.44}


@pytest.fixture(scope="module")
def paper_summary() -> pd.DataFrame:
    """The paper's calibration data (2,357 customers, weeks) as shipped with lifetimes."""
    return pd.read_csv(LIFETIMES_DATA / "cdnow_customers_summary_with_transactions.csv").rename(
        columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"})


@pytest.fixture(scope="module")
def paper_model(paper_summary: pd.DataFrame) -> CLVModel:
    return CLVModel(time_unit="W", horizon=52.0).fit(paper_summary)


@pytest.fixture(scope="module")
def cdnow_daily() -> pd.DataFrame:
    """RFM of the full CDNOW_master (23,570 customers) in days, through our pipeline."""
    raw = pd.read_csv(LIFETIMES_DATA / "CDNOW_master.txt", sep=r"\s+",
                      dtype={"customer_id": str, "date": str})
    tx = pd.DataFrame({"customer_id": raw["customer_id"],
                       "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
                       "quantity": 1, "unit_price": raw["dollar_value"]})
    return rfm_summary(tx, observation_end="1998-06-30")


def test_reproduces_the_bgnbd_paper(paper_model: CLVModel) -> None:
    for name, value in PAPER.items():
        assert round(paper_model.bgnbd_params_[name], 3) == value, name
    assert paper_model.log_likelihood_ == pytest.approx(PAPER_LL, abs=0.1)
    assert paper_model.n_customers_ == 2357
    # the paper's customer 1: x=2, t_x=30.43, T=38.86 -> 1.226 purchases in the next 39 weeks
    assert paper_model.expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=1e-3)


def test_paper_fit_from_raw_transactions() -> None:
    """Our RFM of CDNOW_sample (calibration to 1997-09-30, in weeks) gives the same fit."""
    raw = pd.read_csv(LIFETIMES_DATA / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master_id", "customer_id", "date", "cds", "spend"], dtype=str)
    tx = pd.DataFrame({"customer_id": raw["customer_id"],
                       "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
                       "quantity": 1, "unit_price": raw["spend"].astype(float)})
    days = rfm_summary(tx, observation_end="1997-09-30")
    weeks = pd.DataFrame({"frequency": days["frequency"], "recency": days["recency"] / 7,
                          "T": days["T"] / 7, "monetary_value": days["monetary_value"]})
    model = CLVModel(time_unit="W").fit(weeks)
    for name, value in PAPER.items():
        assert round(model.bgnbd_params_[name], 3) == value, name
    assert model.log_likelihood_ == pytest.approx(PAPER_LL, abs=0.1)


def test_gamma_gamma_and_spend_diagnostics(paper_model: CLVModel,
                                           paper_summary: pd.DataFrame) -> None:
    for name, value in PAPER_GG.items():
        assert paper_model.gg_params_[name] == pytest.approx(value, abs=0.01), name
    repeat = paper_summary[paper_summary["frequency"] > 0]
    assert paper_model.freq_monetary_corr_ == pytest.approx(
        np.corrcoef(repeat["frequency"], repeat["monetary_value"])[0, 1])
    assert paper_model.notes_ == []


def test_weighted_fit_equals_unweighted(cdnow_daily: pd.DataFrame) -> None:
    """Fitting distinct (frequency, recency, T) rows with counts = lifetimes on every row."""
    reference = BetaGeoFitter().fit(cdnow_daily["frequency"], cdnow_daily["recency"],
                                    cdnow_daily["T"])
    model = CLVModel().fit(cdnow_daily)
    for name in ("r", "alpha", "a", "b"):
        assert model.bgnbd_params_[name] == pytest.approx(reference.params_[name], rel=1e-4)
    assert model.n_customers_ == len(cdnow_daily) == 23570


def test_predictions_match_lifetimes(paper_model: CLVModel,
                                     paper_summary: pd.DataFrame) -> None:
    s = paper_summary
    bgf = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    np.testing.assert_allclose(
        paper_model.expected_purchases(10.0, s["frequency"], s["recency"], s["T"]),
        bgf.conditional_expected_number_of_purchases_up_to_time(10.0, s["frequency"],
                                                                s["recency"], s["T"]),
        rtol=1e-6)
    np.testing.assert_allclose(paper_model.p_alive(s["frequency"], s["recency"], s["T"]),
                               bgf.conditional_probability_alive(s["frequency"], s["recency"],
                                                                 s["T"]), rtol=1e-6)
    repeat = s[s["frequency"] > 0]
    ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    np.testing.assert_allclose(
        paper_model.expected_spend(s["frequency"], s["monetary_value"]),
        ggf.conditional_expected_average_profit(s["frequency"], s["monetary_value"]),
        rtol=1e-6)


def test_customer_clv_is_the_discounted_sum_of_steps(paper_model: CLVModel,
                                                     paper_summary: pd.DataFrame) -> None:
    s = paper_summary.iloc[:50]
    clv = paper_model.customer_clv(s)
    spend = paper_model.expected_spend(s["frequency"], s["monetary_value"])
    ends = np.linspace(52.0 / 12, 52.0, 12)
    expected = np.zeros(len(s))
    previous = np.zeros(len(s))
    for end in ends:  # the definition, one step at a time
        cumulative = paper_model.expected_purchases(end, s["frequency"], s["recency"], s["T"])
        expected += (cumulative - previous) * spend / 1.10 ** (end / (365 / 7))
        previous = cumulative
    np.testing.assert_allclose(clv, expected, rtol=1e-10)

    undiscounted = CLVModel.from_dict({**paper_model.to_dict(), "settings": {
        **paper_model.to_dict()["settings"], "discount_rate": 0.0}})
    np.testing.assert_allclose(
        undiscounted.customer_clv(s),
        paper_model.expected_purchases(52.0, s["frequency"], s["recency"], s["T"]) * spend)
    assert (clv < undiscounted.customer_clv(s)).all() and (clv > 0).all()


def _summary(frequency: Sequence[float], recency: Sequence[float], T: Sequence[float],
             monetary: Sequence[float]) -> pd.DataFrame:
    return pd.DataFrame({"frequency": frequency, "recency": recency, "T": T,
                         "monetary_value": monetary})


def test_empty_summary_is_refused() -> None:
    with pytest.raises(CLVFitError, match="empty summary"):
        CLVModel().fit(_summary([], [], [], []))


def test_empty_transactions_cannot_be_fitted() -> None:
    tx, _ = validate_transactions(pd.DataFrame(
        columns=["customer_id", "timestamp", "product_id", "quantity", "unit_price"]))
    with pytest.raises(CLVFitError, match="no customers"):
        CLVModel().fit(rfm_summary(tx))


def test_one_customer_is_refused() -> None:
    with pytest.raises(CLVFitError, match="one customer"):
        CLVModel().fit(_summary([3], [40], [60], [12.0]))


def test_no_repeat_purchases_is_refused() -> None:
    """lifetimes would 'converge' to r -> 0, alpha -> inf; we say why that is meaningless."""
    tx, _ = validate_transactions(pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(30)],
        "timestamp": pd.date_range("2024-01-01", periods=30, freq="D"),
        "product_id": "p", "quantity": 1, "unit_price": 5.0}))
    with pytest.raises(CLVFitError, match="none of the 30 customers made a repeat purchase"):
        CLVModel().fit(rfm_summary(tx, observation_end="2024-03-01"))


def test_inconsistent_summary_is_a_data_error() -> None:
    with pytest.raises(DataError, match="recency exceeds T"):
        CLVModel().fit(_summary([1, 0], [50, 0], [40, 40], [3.0, 0.0]))
    with pytest.raises(DataError, match="finite"):
        CLVModel().fit(_summary([1, 0], [5, 0], [40, np.nan], [3.0, 0.0]))


def test_unit_mismatch_is_refused(cdnow_daily: pd.DataFrame) -> None:
    with pytest.raises(CLVFitError, match="'D' periods but time_unit is 'W'"):
        CLVModel(time_unit="W").fit(cdnow_daily)


def test_unfitted_model_says_so() -> None:
    with pytest.raises(CLVFitError, match="not fitted"):
        CLVModel().p_alive(1, 2, 3)


def test_few_spenders_fall_back_to_mean_spend(paper_summary: pd.DataFrame) -> None:
    sample = pd.concat([paper_summary[paper_summary["frequency"] == 0].iloc[:200],
                        paper_summary[paper_summary["frequency"] > 0].iloc[:6]])
    model = CLVModel(time_unit="W").fit(sample)
    assert model.gg_params_ is None
    assert any("Gamma-Gamma not fitted" in note for note in model.notes_)
    mean_spend = sample.loc[sample["frequency"] > 0, "monetary_value"].mean()
    np.testing.assert_allclose(model.expected_spend([0, 3], [0.0, 99.0]), mean_spend)
    assert np.isfinite(model.customer_clv(sample)).all()


def test_no_dropout_data_fit_as_nbd() -> None:
    """Purchases simulated without dropout: the likelihood is flat along a -> 0, b -> inf;
    the fit still succeeds and predicts like the NBD limit, (r + x) t / (alpha + T)."""
    rng = np.random.default_rng(3)
    n = 3000
    rate = rng.gamma(0.8, 1 / 70, n)
    T = rng.integers(30, 365, n).astype(float)
    x = rng.poisson(rate * T).astype(float)
    recency = np.where(x > 0, np.floor(T * rng.random(n) ** (1 / np.maximum(x, 1))), 0.0)
    model = CLVModel().fit(_summary(x, recency, T, np.where(x > 0, 20.0 + x, 0.0)))
    assert any("no dropout" in note for note in model.notes_)
    assert model.p_alive(x, recency, T).min() > 0.999
    r, alpha = model.bgnbd_params_["r"], model.bgnbd_params_["alpha"]
    np.testing.assert_allclose(model.expected_purchases(90.0, x, recency, T),
                               (r + x) * 90.0 / (alpha + T), rtol=1e-3)


def test_save_load_round_trip(tmp_path: Path, paper_model: CLVModel,
                              paper_summary: pd.DataFrame) -> None:
    path = tmp_path / "clv.json"
    paper_model.save(path)
    loaded = CLVModel.load(path)
    s = paper_summary
    np.testing.assert_array_equal(loaded.customer_clv(s), paper_model.customer_clv(s))
    np.testing.assert_array_equal(loaded.p_alive(s["frequency"], s["recency"], s["T"]),
                                  paper_model.p_alive(s["frequency"], s["recency"], s["T"]))
    assert loaded.to_dict() == paper_model.to_dict()
    assert json.loads(path.read_text())["bgnbd_params"] == paper_model.bgnbd_params_
    assert repr(loaded) == repr(paper_model)


def test_load_refuses_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "clv.json"
    path.write_text('{"format": "marginrank.clv-model/1", "settings": {}}')
    with pytest.raises(DataError, match="not a CLV model"):
        CLVModel.load(path)
    path.write_text("{broken")
    with pytest.raises(DataError, match="cannot read"):
        CLVModel.load(path)


@pytest.mark.realdata
def test_fit_on_uci_online_retail() -> None:
    if not UCI_FILE.exists():
        pytest.skip(f"real dataset not present: {UCI_FILE} (see data/README.md)")
    tx, report = load_transactions(UCI_FILE, columns=UCI_ONLINE_RETAIL_COLUMNS)
    assert report.excluded["missing customer_id"] == 135_080
    summary = rfm_summary(tx)
    model = CLVModel().fit(summary)
    params = {**model.bgnbd_params_, **(model.gg_params_ or {})}
    assert len(params) == 7 and all(math.isfinite(v) and v > 0 for v in params.values())
    assert math.isfinite(model.log_likelihood_)
    assert model.n_customers_ == len(summary) > 4000
    assert model.p_alive(summary["frequency"], summary["recency"], summary["T"]).max() <= 1.0
    clv = model.customer_clv(summary)
    assert np.isfinite(clv).all() and (clv >= 0).all()
