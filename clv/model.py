"""CLV model: BG/NBD for purchase counts and survival, Gamma-Gamma for spend, discounted value.

Fitting uses lifetimes' ``BetaGeoFitter`` and ``GammaGammaFitter``; the learned state is just
their parameters, stored as JSON. Predictions rebuild the lifetimes fitters from those
parameters, so a loaded model predicts exactly what the fitted one did, without refitting or
keeping the training data. Fits run on the distinct (frequency, recency, T) and
(frequency, monetary_value) rows with their counts as weights: the likelihood is the same sum,
grouped, so the parameters are identical and large customer bases fit in a fraction of the time.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from autograd import value_and_grad  # lifetimes differentiates its likelihood with it
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import ConvergenceError
from scipy.optimize import minimize
from scipy.special import betaln, gammaln

from clv.errors import ArgumentError, CLVFitError, DataError
from clv.tables import numeric_column, raise_at_first, require_columns

FORMAT = "marginrank.clv-model/1"
#: Below this many repeat customers with positive spend, Gamma-Gamma's three parameters are
#: not worth estimating; the mean spend is a more honest prediction.
MIN_GAMMA_GAMMA_CUSTOMERS = 10
#: Gamma-Gamma assumes spend independent of purchase frequency; beyond this Pearson
#: correlation (CDNOW's is 0.11) the fit notes warn: expected spend may be biased.
MAX_FREQ_MONETARY_CORR = 0.3
#: Time units per year, for turning the annual discount rate into a per-step factor.
UNITS_PER_YEAR = {"D": 365.0, "W": 365.0 / 7.0}
CLV_STEPS = 12
#: Gradient tolerance of the one retry after lifetimes' fit stops on precision loss, and the
#: largest gradient (of lifetimes' mean negative log-likelihood in log-parameters) the
#: fallback optimizer may stop at off a ridge.
RETRY_TOL = 1e-6
#: Mean dropout probability below which the data show no dropout at all (see notes_).
NO_DROPOUT = 1e-6
#: a + b above which the Beta distribution of dropout probabilities is, for every prediction, a
#: point mass: all customers drop out with the same probability a / (a + b) (see notes_).
SAME_DROPOUT = 1e4
#: A fit on the same-dropout ridge is moved along it (a and b times 10, at most RIDGE_STEPS
#: times) until no customer's expected purchases change by more than RIDGE_RTOL (relative).
RIDGE_RTOL = 1e-4
RIDGE_STEPS = 5

ArrayLike = np.ndarray | pd.Series | float | int


class CLVModel:
    """BG/NBD + Gamma-Gamma customer lifetime value, with scikit-learn habits.

    ``horizon`` is in ``time_unit`` periods ("D" days, "W" weeks: the unit of the summary it is
    fitted on); ``discount_rate`` is annual. ``penalizer`` and ``gg_penalizer`` are lifetimes'
    L2 penalizers for the two fits (0 reproduces the published estimates).
    """

    def __init__(
        self,
        *,
        penalizer: float = 0.0,
        gg_penalizer: float = 0.0,
        horizon: float = 365.0,
        discount_rate: float = 0.10,
        time_unit: str = "D",
    ) -> None:
        self.penalizer = penalizer
        self.gg_penalizer = gg_penalizer
        self.horizon = horizon
        self.discount_rate = discount_rate
        self.time_unit = time_unit

    # ------------------------------------------------------------------ fitting

    def fit(self, summary: pd.DataFrame) -> CLVModel:
        """Fit BG/NBD on (frequency, recency, T) and Gamma-Gamma on repeat customers' spend.

        Raises :class:`CLVFitError` when BG/NBD is not identified: no customers, one customer,
        or nobody with a repeat purchase (then purchase rate and dropout cannot be told apart:
        lifetimes drives r to 0 and alpha to infinity and "converges" to a degenerate model
        that predicts no purchases for anyone).
        """
        self._check_settings()
        frequency, recency, T, monetary = _summary_arrays(summary)
        if summary.attrs.get("freq", self.time_unit) != self.time_unit:
            raise CLVFitError(
                f"the summary is in '{summary.attrs['freq']}' periods but time_unit is "
                f"'{self.time_unit}'; horizon and discounting would be off by that factor"
            )
        n = len(frequency)
        if n == 0:
            raise CLVFitError("cannot fit CLV on an empty summary: there are no customers")
        if n == 1:
            raise CLVFitError(
                "cannot fit CLV on one customer: BG/NBD's four parameters describe how purchase "
                "rates and dropout vary across customers, which one customer cannot show"
            )
        repeat = frequency > 0
        if not repeat.any():
            raise CLVFitError(
                f"cannot fit BG/NBD: none of the {n} customers made a repeat purchase, so the "
                "purchase rate and the dropout probability cannot be separated (the fit "
                "degenerates to r -> 0, alpha -> infinity); use a longer observation period"
            )
        self.notes_: list[str] = []
        self.bgnbd_params_ = self._fit_bgnbd(frequency, recency, T)
        self.log_likelihood_ = bgnbd_log_likelihood(self.bgnbd_params_, frequency, recency, T)
        self.n_customers_ = n
        self.n_repeat_customers_ = int(repeat.sum())
        self.freq_monetary_corr_ = _pearson(frequency[repeat], monetary[repeat])
        if abs(self.freq_monetary_corr_) > MAX_FREQ_MONETARY_CORR:
            self.notes_.append(
                f"frequency and spend are correlated (Pearson {self.freq_monetary_corr_:.2f} "
                f"over repeat customers, beyond +-{MAX_FREQ_MONETARY_CORR:g}); Gamma-Gamma "
                "assumes they are independent, so expected spend and CLV may be biased"
            )
        spenders = repeat & (monetary > 0)
        self.mean_spend_ = float(monetary[spenders].mean()) if spenders.any() else 0.0
        self.gg_params_ = self._fit_gamma_gamma(frequency[spenders], monetary[spenders])
        return self

    def _fit_bgnbd(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
                   ) -> dict[str, float]:
        """BG/NBD parameters, fitted on distinct rows with counts as weights.

        First lifetimes' own fit (BFGS), then, if it fails, a trust-region fit of lifetimes' own
        likelihood (see :meth:`_fit_trust_region`). The fallback exists for likelihoods whose
        maximum lies at infinity, where BFGS stops on precision loss: customers who leave right
        after their first purchase look, to BG/NBD, like a population that all shares one
        dropout probability, and the likelihood keeps rising along a, b -> infinity at a fixed
        a / (a + b). The CDNOW fit never reaches the fallback, so it is lifetimes' fit exactly.
        """
        return self._fit_bgnbd_rows(_distinct(frequency=frequency, recency=recency, T=T))

    def _fit_bgnbd_rows(self, rows: pd.DataFrame) -> dict[str, float]:
        """:meth:`_fit_bgnbd` on rows already distinct (``frequency``, ``recency``, ``T``,
        ``weight``): the one fitting path, shared with the partitioned fit (:mod:`clv.scale`)."""
        try:
            params = self._fit_with_lifetimes(rows)
        except (ConvergenceError, np.linalg.LinAlgError) as exc:
            params = self._fit_trust_region(rows, _first_line(exc))
        predictions = _bgnbd_fitter(params, self.penalizer) \
            .conditional_expected_number_of_purchases_up_to_time(
                self.horizon, rows["frequency"], rows["recency"], rows["T"])
        if not (all(math.isfinite(v) and v > 0 for v in params.values())
                and np.isfinite(predictions).all()):
            raise CLVFitError(f"BG/NBD converged to unusable parameters {params}: its "
                              "predictions are not finite")
        self._note_ridges(params)
        return params

    def _fit_with_lifetimes(self, rows: pd.DataFrame) -> dict[str, float]:
        """lifetimes' BetaGeoFitter, retried once at gradient tolerance 1e-6.

        lifetimes counts scipy's "precision loss" stop as a failure. On a flat optimum that
        stop comes with the gradient already near 1e-7: on UCI Online Retail the likelihood
        is flat along a -> 0, b -> infinity (nobody seen dropping out in a year).
        """
        fitter = BetaGeoFitter(penalizer_coef=self.penalizer)
        data = (rows["frequency"], rows["recency"], rows["T"])
        try:
            _quietly(fitter.fit, *data, weights=rows["weight"])
        except ConvergenceError:
            _quietly(fitter.fit, *data, weights=rows["weight"], tol=RETRY_TOL)
            self.notes_.append(f"BG/NBD converged at gradient tolerance {RETRY_TOL:g} "
                               "(lifetimes' 1e-7 stopped on precision loss)")
        return {k: float(v) for k, v in fitter.params_.items()}

    def _fit_trust_region(self, rows: pd.DataFrame, failure: str) -> dict[str, float]:
        """Minimize lifetimes' own negative log-likelihood with scipy's trust-constr.

        Same objective, time scaling, weights, penalizer and start as lifetimes' fit; only the
        optimizer differs: a trust region needs no line search, which is what fails on a
        nearly flat ridge. The result is accepted when its gradient is at most RETRY_TOL, or
        when it lies on the same-dropout ridge and :meth:`_along_ridge` finds where the
        predictions stop changing; otherwise CLVFitError.
        """
        scale = 1.0 / float(rows["T"].max())  # lifetimes' _scale_time: the oldest customer is 1
        args = (rows["frequency"].to_numpy().astype(int), rows["recency"].to_numpy() * scale,
                rows["T"].to_numpy() * scale, rows["weight"].to_numpy(), self.penalizer)
        objective = value_and_grad(BetaGeoFitter._negative_log_likelihood)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # overflow probes and trust-constr's chatter
            x = minimize(objective, np.full(4, 0.1), args=args, jac=True, method="trust-constr",
                         options={"gtol": 1e-8, "maxiter": 3000}).x
            gradient = objective(x, *args)[1]
        stop = _from_log(x, scale)
        if np.abs(gradient).max() > RETRY_TOL:
            outward = gradient[2] + gradient[3] < 0  # the likelihood still rises with a and b
            limit = (self._along_ridge(x, scale, rows)
                     if outward and stop["a"] + stop["b"] > SAME_DROPOUT else None)
            if limit is None:
                raise CLVFitError(
                    f"BG/NBD did not converge on {int(rows['weight'].sum())} customers: "
                    f"lifetimes failed ({failure}) and the trust-region fallback stopped at "
                    f"{stop} with gradient {np.abs(gradient).max():.2g} > {RETRY_TOL:g}; the "
                    "data do not pin down the four parameters: fit on more customers or a "
                    "longer history, and check the summary's time unit and observation end"
                )
            x = limit
        self.notes_.append(f"BG/NBD fitted by scipy trust-constr on lifetimes' likelihood "
                           f"(lifetimes' BFGS failed: {failure})")
        return _from_log(x, scale)

    def _along_ridge(self, x: np.ndarray, scale: float, rows: pd.DataFrame
                     ) -> np.ndarray | None:
        """Where the same-dropout ridge's predictions settle, or None if they do not.

        On this ridge the likelihood rises toward a, b -> infinity at a fixed a / (a + b), and
        the predictions approach a limit (the relative change shrinks like 1 / (a + b)). So
        a and b are multiplied by 10 at a time, up to RIDGE_STEPS times, until no customer's
        expected purchases over the horizon change by more than RIDGE_RTOL.
        """
        def predict(log_params: np.ndarray) -> np.ndarray:
            fitter = _bgnbd_fitter(_from_log(log_params, scale), self.penalizer)
            return np.asarray(fitter.conditional_expected_number_of_purchases_up_to_time(
                self.horizon, rows["frequency"], rows["recency"], rows["T"]))

        step = np.array([0.0, 0.0, math.log(10.0), math.log(10.0)])
        here = predict(x)
        for _ in range(RIDGE_STEPS):
            there = predict(x + step)
            if np.allclose(here, there, rtol=RIDGE_RTOL, atol=0.0):
                return x + step
            x, here = x + step, there
        return None

    def _note_ridges(self, params: dict[str, float]) -> None:
        """Say when a and b are not separately identified (the predictions still are)."""
        a, b = params["a"], params["b"]
        dropout = a / (a + b)
        if dropout < NO_DROPOUT:
            self.notes_.append(
                f"BG/NBD sees no dropout (mean dropout probability a/(a+b) = {dropout:.2g}): "
                "a and b are not separately identified and the model acts as an NBD with "
                "P(alive) ~ 1; predictions are stable, the values of a and b are not"
            )
        elif a + b > SAME_DROPOUT:
            self.notes_.append(
                f"BG/NBD sees one dropout probability for everyone (a + b = {a + b:.3g}, "
                f"a/(a+b) = {dropout:.4g}): a and b are not separately identified, their "
                "ratio and the predictions are; typical of many customers who never return "
                "after their first purchase"
            )

    def _fit_gamma_gamma(self, frequency: np.ndarray, monetary: np.ndarray
                         ) -> dict[str, float] | None:
        """Gamma-Gamma parameters, or None (with a note) when spend falls back to the mean."""
        fallback = f"expected spend is the mean spend per occasion, {self.mean_spend_:.4g}"
        if len(frequency) < MIN_GAMMA_GAMMA_CUSTOMERS:
            self.notes_.append(
                f"Gamma-Gamma not fitted: {len(frequency)} repeat customers with positive "
                f"spend (< {MIN_GAMMA_GAMMA_CUSTOMERS}); {fallback}"
            )
            return None
        rows = _distinct(frequency=frequency, monetary_value=monetary)
        fitter = GammaGammaFitter(penalizer_coef=self.gg_penalizer)
        try:
            _quietly(fitter.fit, rows["frequency"], rows["monetary_value"],
                     weights=rows["weight"])
        except (ConvergenceError, np.linalg.LinAlgError, ValueError) as exc:
            self.notes_.append(f"Gamma-Gamma did not converge ({_first_line(exc)}); {fallback}")
            return None
        params = {k: float(v) for k, v in fitter.params_.items()}
        if not (all(math.isfinite(v) and v > 0 for v in params.values()) and params["q"] > 1):
            self.notes_.append(
                f"Gamma-Gamma estimate {params} has q <= 1, so the population mean spend "
                f"v*p/(q-1) is undefined; {fallback}"
            )
            return None
        return params

    # --------------------------------------------------------------- prediction

    def expected_purchases(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike,
                           T: ArrayLike) -> np.ndarray:
        """Expected repeat purchases in the next ``t`` periods given each history (BG/NBD)."""
        return np.asarray(self._bgnbd().conditional_expected_number_of_purchases_up_to_time(
            _floats(t), _floats(frequency), _floats(recency), _floats(T)), dtype=np.float64)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """Probability that each customer has not dropped out by now (BG/NBD)."""
        return np.asarray(self._bgnbd().conditional_probability_alive(
            _floats(frequency), _floats(recency), _floats(T)), dtype=np.float64)

    def expected_spend(self, frequency: ArrayLike, monetary_value: ArrayLike) -> np.ndarray:
        """Expected spend per future purchase occasion.

        Gamma-Gamma's posterior mean: a credibility blend of the customer's own mean spend
        (weight grows with frequency) and the population mean. Without a Gamma-Gamma fit, the
        mean spend of the repeat customers, for everyone.
        """
        frequency, monetary_value = np.broadcast_arrays(_floats(frequency),
                                                        _floats(monetary_value))
        self._require_fitted()
        if self.gg_params_ is None:
            return np.full(frequency.shape, self.mean_spend_, dtype=np.float64)
        fitter = GammaGammaFitter(penalizer_coef=self.gg_penalizer)
        fitter.params_ = pd.Series(self.gg_params_)
        return np.asarray(fitter.conditional_expected_average_profit(frequency, monetary_value),
                          dtype=np.float64)

    def customer_clv(self, summary: pd.DataFrame) -> np.ndarray:
        """Discounted expected value of each customer over ``horizon``, in summary row order.

        The horizon is cut into 12 equal steps; step k contributes the expected purchases in
        that step (difference of the conditional expectations at its two ends) times the
        expected spend, discounted by (1 + discount_rate) ** (end of step in years).
        """
        frequency, recency, T, monetary = _summary_arrays(summary)
        ends = self.horizon * np.arange(1, CLV_STEPS + 1) / CLV_STEPS
        cumulative = self.expected_purchases(ends[:, None], frequency, recency, T)
        per_step = np.diff(cumulative, axis=0, prepend=0.0)
        discount = (1.0 + self.discount_rate) ** (ends / UNITS_PER_YEAR[self.time_unit])
        purchases = (per_step / discount[:, None]).sum(axis=0)
        return purchases * self.expected_spend(frequency, monetary)

    def _bgnbd(self) -> BetaGeoFitter:
        self._require_fitted()
        return _bgnbd_fitter(self.bgnbd_params_, self.penalizer)

    def _require_fitted(self) -> None:
        if not hasattr(self, "bgnbd_params_"):
            raise CLVFitError("this CLVModel is not fitted: call fit() or CLVModel.load()")

    def _check_settings(self) -> None:
        if self.time_unit not in UNITS_PER_YEAR:
            raise ArgumentError(f"time_unit must be one of {sorted(UNITS_PER_YEAR)}, "
                             f"not {self.time_unit!r}")
        if not (self.horizon > 0 and math.isfinite(self.horizon)):
            raise ArgumentError(f"horizon must be a positive number of periods, not {self.horizon}")
        if not (self.discount_rate > -1 and math.isfinite(self.discount_rate)):
            raise ArgumentError(f"discount_rate must be > -1, not {self.discount_rate}")

    # ------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """Settings, parameters and diagnostics as plain JSON types (NaN becomes None)."""
        self._require_fitted()
        corr = self.freq_monetary_corr_
        return {
            "format": FORMAT,
            "settings": {"penalizer": self.penalizer, "gg_penalizer": self.gg_penalizer,
                         "horizon": self.horizon, "discount_rate": self.discount_rate,
                         "time_unit": self.time_unit},
            "bgnbd_params": dict(self.bgnbd_params_),
            "gg_params": dict(self.gg_params_) if self.gg_params_ is not None else None,
            "mean_spend": self.mean_spend_,
            "diagnostics": {
                "log_likelihood": self.log_likelihood_,
                "freq_monetary_corr": None if math.isnan(corr) else corr,
                "n_customers": self.n_customers_,
                "n_repeat_customers": self.n_repeat_customers_,
                "notes": list(self.notes_),
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> CLVModel:
        """Rebuild a fitted model from :meth:`to_dict` output; a malformed dict is a DataError."""
        try:
            if data.get("format") != FORMAT:
                raise KeyError(f"format {data.get('format')!r}, expected {FORMAT!r}")
            model = cls(**data["settings"])
            model._check_settings()
            model.bgnbd_params_ = {k: float(data["bgnbd_params"][k])
                                   for k in ("r", "alpha", "a", "b")}
            gg = data["gg_params"]
            model.gg_params_ = None if gg is None else {k: float(gg[k]) for k in ("p", "q", "v")}
            model.mean_spend_ = float(data["mean_spend"])
            diagnostics = data["diagnostics"]
            model.log_likelihood_ = float(diagnostics["log_likelihood"])
            corr = diagnostics["freq_monetary_corr"]
            model.freq_monetary_corr_ = math.nan if corr is None else float(corr)
            model.n_customers_ = int(diagnostics["n_customers"])
            model.n_repeat_customers_ = int(diagnostics["n_repeat_customers"])
            model.notes_ = [str(note) for note in diagnostics["notes"]]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"not a CLV model: {exc}", file=source) from exc
        return model

    def save(self, path: str | Path) -> None:
        """Write the model as JSON, atomically (a reader never sees half a file)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> CLVModel:
        """Read a model written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read CLV model: {exc}", file=path) from exc
        if not isinstance(data, dict):
            raise DataError("not a CLV model: expected a JSON object", file=path)
        return cls.from_dict(data, source=str(path))

    def __repr__(self) -> str:
        return (f"CLVModel(penalizer={self.penalizer}, gg_penalizer={self.gg_penalizer}, "
                f"horizon={self.horizon}, discount_rate={self.discount_rate}, "
                f"time_unit={self.time_unit!r})")


def bgnbd_log_likelihood(params: dict[str, float], frequency: np.ndarray, recency: np.ndarray,
                         T: np.ndarray) -> float:
    """Total BG/NBD log-likelihood in the summary's own time unit (Fader et al. 2005, eq. 6).

    lifetimes reports a mean over customers, computed on rescaled time and including the
    penalty; this is the unpenalized sum that the paper reports (-9582.4 on CDNOW).
    """
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    x = np.asarray(frequency, dtype=np.float64)
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    still_alive = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore"):
        dropped = np.where(
            x > 0,
            np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + recency),
            -np.inf,
        )
    return float((common + np.logaddexp(still_alive, dropped)).sum())


def _summary_arrays(summary: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """frequency, recency, T, monetary_value as float arrays, checked for BG/NBD's invariants.

    A violation is a DataError naming the column, the row and its value.
    """
    source = "<summary>"
    require_columns(summary, ("frequency", "recency", "T", "monetary_value"), file=source)
    frequency, recency, T, monetary = (
        numeric_column(summary, column, file=source, min_value=0.0)
        for column in ("frequency", "recency", "T", "monetary_value"))
    raise_at_first(frequency != np.round(frequency), summary["frequency"], "frequency", source,
                   "frequency must be a whole number of repeat purchases")
    raise_at_first(recency > T, summary["recency"], "recency", source,
                   "recency exceeds T (last purchase after the end of observation)")
    raise_at_first((frequency == 0) & (recency != 0), summary["recency"], "recency", source,
                   "recency must be 0 for customers without repeat purchases")
    return frequency, recency, T, monetary


def _from_log(log_params: np.ndarray, scale: float) -> dict[str, float]:
    """Parameters from lifetimes' optimizer space: logs, with alpha in scaled time."""
    r, alpha, a, b = (float(v) for v in np.exp(log_params))
    return {"r": r, "alpha": alpha / scale, "a": a, "b": b}


def _bgnbd_fitter(params: dict[str, float], penalizer: float) -> BetaGeoFitter:
    """A lifetimes fitter carrying the given parameters (lifetimes predicts from params_)."""
    fitter = BetaGeoFitter(penalizer_coef=penalizer)
    fitter.params_ = pd.Series(params)
    return fitter


def _distinct(**columns: np.ndarray) -> pd.DataFrame:
    """Distinct rows of the given columns with their multiplicity as ``weight``."""
    return (pd.DataFrame(columns).groupby(list(columns), sort=True).size()
            .rename("weight").reset_index())


def _quietly(fit: Any, *args: Any, **kwargs: Any) -> None:
    """Run a lifetimes fit without its stdout dump of the optimizer state on failure, nor the
    overflow warnings of the line search probing extreme parameters (results are checked)."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fit(*args, **kwargs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation, NaN when undefined (fewer than two points or no variation)."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def _floats(values: ArrayLike) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)
