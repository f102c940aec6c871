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
from lifetimes.utils import ConvergenceError
from scipy.optimize import minimize
from scipy.special import expit, gammaln

from clv import (
    UCI_ONLINE_RETAIL_COLUMNS,
    CLVFitError,
    CLVModel,
    DataError,
    load_transactions,
    rfm_summary,
    validate_transactions,
)
from clv.model import _quietly

LIFETIMES_DATA = Path(lifetimes.__file__).parent / "datasets"
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
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
    assert paper_model.to_dict()["diagnostics"]["freq_monetary_corr"] == pytest.approx(0.11,
                                                                                   abs=0.005)


def test_correlated_spend_is_flagged(paper_summary: pd.DataFrame) -> None:
    """Gamma-Gamma's independence assumption is checked: spend that grows with frequency is
    reported in the notes and the saved diagnostics."""
    correlated = paper_summary.assign(
        monetary_value=paper_summary["monetary_value"] * (1 + paper_summary["frequency"]))
    model = CLVModel(time_unit="W").fit(correlated)
    assert model.freq_monetary_corr_ > 0.3
    assert any("frequency and spend are correlated" in n for n in model.notes_)
    assert model.to_dict()["diagnostics"]["freq_monetary_corr"] == model.freq_monetary_corr_


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


@pytest.mark.parametrize(("summary", "column", "message"), [
    (_summary([1, 0], [50, 0], [40, 40], [3.0, 0.0]), "recency", "row 1: recency exceeds T"),
    (_summary([1, 0], [5, 0], [40, np.nan], [3.0, 0.0]), "T", "row 2: missing value"),
    (_summary([1, 0], [5, 3], [40, 40], [3.0, 0.0]), "recency", "row 2: recency must be 0"),
    (_summary([1.5, 0], [5, 0], [40, 40], [3.0, 0.0]), "frequency", "row 1: frequency must be"),
    (_summary([1, 0], [5, 0], [40, 40], [-3.0, 0.0]), "monetary_value", "row 1: value below 0"),
])
def test_inconsistent_summary_is_a_data_error(summary: pd.DataFrame, column: str,
                                              message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        CLVModel().fit(summary)
    assert info.value.column == column


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


def _one_off_customers(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Half the customers leave right after their first purchase; the others buy at
    Gamma(2, 1/40) rates per day and drop out with p ~ Beta(0.5, 50) after each repeat
    purchase. BG/NBD lets nobody drop out before a repeat purchase, so it explains the one-off
    half by one dropout probability shared by everyone: its likelihood rises toward
    a, b -> infinity at a fixed a / (a + b), where lifetimes' BFGS stops on precision loss."""
    rng = np.random.default_rng(seed)
    rate, dropout = rng.gamma(2.0, 1 / 40, n), rng.beta(0.5, 50.0, n)
    T = rng.integers(1, 366, n).astype(float)
    arrivals = rng.poisson(rate * T)
    frequency = np.where(rng.random(n) < 0.5, 0, np.minimum(rng.geometric(dropout), arrivals))
    repeat = frequency > 0
    recency = np.zeros(n)
    recency[repeat] = np.ceil(T[repeat] * rng.beta(frequency[repeat],
                                                   arrivals[repeat] - frequency[repeat] + 1))
    return _summary(frequency.astype(float), recency, T,
                    np.where(repeat, rng.gamma(4.0, 5.0, n), 0.0))


def _same_dropout_fit(x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> tuple[float, ...]:
    """Maximum likelihood of BG/NBD's limit with one dropout probability p for everyone
    (Beta(a, b) -> point mass), by Nelder-Mead: no lifetimes, no gradients."""
    def negative_ll(theta: np.ndarray) -> float:
        r, alpha, p = np.exp(theta[0]), np.exp(theta[1]), expit(theta[2])
        alive = -(r + x) * np.log(alpha + T)
        gone = np.where(x > 0, np.log(p / (1 - p)) - (r + x) * np.log(alpha + tx), -np.inf)
        return -float((gammaln(r + x) - gammaln(r) + r * np.log(alpha) + x * np.log1p(-p)
                       + np.logaddexp(alive, gone)).sum())

    result = minimize(negative_ll, [0.0, 3.0, -4.0], method="Nelder-Mead",
                      options={"xatol": 1e-9, "fatol": 1e-9, "maxiter": 10_000})
    assert result.success
    return float(np.exp(result.x[0])), float(np.exp(result.x[1])), float(expit(result.x[2]))


def test_customers_who_leave_after_their_first_purchase() -> None:
    """The defect: plain lifetimes fails here; CLVModel fits, and its fit is the maximum of
    the same-dropout limit, found independently."""
    summary = _one_off_customers()
    x, tx, T = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    with pytest.raises(ConvergenceError):
        _quietly(BetaGeoFitter().fit, x, tx, T)

    model = CLVModel().fit(summary)
    assert any("trust-constr" in note for note in model.notes_)
    assert any("one dropout probability for everyone" in note for note in model.notes_)
    fitted = model.bgnbd_params_
    r, alpha, p = _same_dropout_fit(x, tx, T)
    assert fitted["r"] == pytest.approx(r, rel=1e-4)
    assert fitted["alpha"] == pytest.approx(alpha, rel=1e-4)
    assert fitted["a"] / (fitted["a"] + fitted["b"]) == pytest.approx(p, rel=1e-4)

    # The limit's predictions in closed form: P(alive), then purchases at rate
    # lambda ~ Gamma(r + x, alpha + T) with dropout p after each: (1 - E exp(-lambda p t)) / p.
    alive = 1 / (1 + (x > 0) * p / (1 - p) * ((alpha + T) / (alpha + tx)) ** (r + x))
    expected = alive * (1 - ((alpha + T) / (alpha + T + p * 90.0)) ** (r + x)) / p
    np.testing.assert_allclose(model.p_alive(x, tx, T), alive, rtol=1e-4)
    np.testing.assert_allclose(model.expected_purchases(90.0, x, tx, T), expected, rtol=1e-4)
    assert np.isfinite(model.customer_clv(summary)).all()


def test_a_fit_that_cannot_converge_says_why() -> None:
    """Three customers: lifetimes fails, and so does the fallback (r and alpha run off
    together, not along the same-dropout ridge): a CLVFitError, no traceback from lifetimes."""
    with pytest.raises(CLVFitError, match="trust-region fallback stopped at .* with gradient"):
        CLVModel().fit(_summary([1, 1, 0], [60, 60, 0], [64, 60, 29], [5.0, 7.0, 0.0]))


def test_one_customer_from_transactions_is_refused() -> None:
    tx, _ = validate_transactions(pd.DataFrame({
        "customer_id": "only", "timestamp": ["2024-01-01", "2024-02-01", "2024-03-01"],
        "product_id": "p", "quantity": 1, "unit_price": 5.0}))
    summary = rfm_summary(tx)
    assert summary.loc["only", "frequency"] == 2
    with pytest.raises(CLVFitError, match="one customer"):
        CLVModel().fit(summary)


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
