"""RFM summaries (frequency, recency, T, monetary value) in the BG/NBD convention.

The convention is that of Fader, Hardie and Lee (2005) and of
``lifetimes.utils.summary_data_from_transaction_data``: time is cut into periods (days or
weeks); a purchase occasion is a period with purchases, however many orders it holds;
frequency counts the *repeat* occasions. On data without returns the summary equals lifetimes'
(a test checks it on CDNOW). Beyond lifetimes, returns are netted out: a return belongs to the
occasion of the order it returns, and an occasion that returns cancel entirely is no purchase.

Everything is grouped by integer period numbers with pandas; there is no loop over customers.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from clv.errors import ArgumentError, DataError
from clv.tables import require_columns
from clv.transactions import utc_naive

RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
_NEEDED = ("customer_id", "timestamp", "quantity", "unit_price")
#: Days from the Monday that starts a ``W`` period to 1970-01-01 (a Thursday): pandas' "W" is
#: "W-SUN", weeks that end on Sunday, the periods lifetimes uses for ``freq="W"``.
_MONDAY_OFFSET = 3

Moment = str | datetime | pd.Timestamp


def rfm_summary(
    tx: pd.DataFrame, *, observation_end: Moment | None = None, freq: str = "D"
) -> pd.DataFrame:
    """Summarize transactions per customer: frequency, recency, T, monetary_value (float64).

    ``tx`` is a validated transactions frame (see :func:`clv.transactions.validate_transactions`);
    order matters nowhere. Units are periods of ``freq``: "D" (days) or "W" (weeks ending on
    Sunday, as lifetimes). ``observation_end`` defaults to the last timestamp; lines in later
    periods are ignored.

    - occasions: periods with purchases (same-period orders count once); a return line belongs
      to the period of its original order (same customer and order_id) when that order is
      known, else to its own period; an occasion that holds returns and nets to <= 0 is
      cancelled (zero-value purchases without returns still count, as in lifetimes);
    - frequency = occasions - 1; recency = last - first occasion; T = observation_end - first;
    - monetary_value = mean net value of the repeat occasions (0 when frequency is 0).

    Indexed by customer_id. ``attrs`` records ``freq``, ``observation_end`` and
    ``n_customers_without_purchase`` (customers whose every line was cancelled by returns),
    so the customers that have no row are counted, not lost.
    """
    _check_frame(tx)
    periods = _period_numbers(tx["timestamp"], freq)
    end = (_period_of(observation_end, freq) if observation_end is not None
           else int(periods.max()) if len(periods) else 0)
    window = periods <= end
    occasions = _purchase_occasions(tx[window], periods[window])
    summary = _summarize(occasions, end)
    summary.attrs.update(
        freq=freq,
        observation_end=_period_start(end, freq).isoformat(),
        n_customers_without_purchase=int(tx.loc[window, "customer_id"].nunique()) - len(summary),
    )
    return summary


def calibration_holdout_split(
    tx: pd.DataFrame, *, calibration_end: Moment, observation_end: Moment, freq: str = "D"
) -> pd.DataFrame:
    """Calibration summary plus holdout counts, for testing a fitted model on later data.

    Columns as ``lifetimes.utils.calibration_and_holdout_data`` (which fails on pandas 3):
    frequency_cal, recency_cal, T_cal, monetary_value_cal (the :func:`rfm_summary` of the
    periods up to ``calibration_end``), frequency_holdout (purchase occasions in the periods
    after ``calibration_end`` up to ``observation_end``; every one counts, none is "first") and
    duration_holdout (periods between the two ends).

    Each side sees only its own lines, so the calibration summary never uses the future: a
    return made in the holdout against a calibration order is a holdout event. Customers whose
    first purchase falls in the holdout cannot be scored from calibration data and are
    excluded; ``attrs["n_excluded_customers"]`` says how many.
    """
    _check_frame(tx)
    cal_end = _period_of(calibration_end, freq)
    obs_end = _period_of(observation_end, freq)
    if obs_end <= cal_end:
        raise ArgumentError(
            f"observation_end ({observation_end}) must fall in a later {freq} period than "
            f"calibration_end ({calibration_end})"
        )
    periods = _period_numbers(tx["timestamp"], freq)
    cal = periods <= cal_end
    hold = ~cal & (periods <= obs_end)
    summary = _summarize(_purchase_occasions(tx[cal], periods[cal]), cal_end)
    summary.columns = [f"{c}_cal" for c in summary.columns]
    holdout_counts = _purchase_occasions(tx[hold], periods[hold])["customer_id"].value_counts()
    summary["frequency_holdout"] = (
        holdout_counts.reindex(summary.index, fill_value=0).astype(np.float64).to_numpy()
    )
    summary["duration_holdout"] = float(obs_end - cal_end)
    summary.attrs.update(
        freq=freq,
        n_excluded_customers=int((~holdout_counts.index.isin(summary.index)).sum()),
    )
    return summary


def _check_frame(tx: pd.DataFrame) -> None:
    """Fail early, with our error, on a frame that did not come through the validator."""
    require_columns(tx, _NEEDED, file="<transactions>")
    if not pd.api.types.is_datetime64_dtype(tx["timestamp"].dtype):
        raise DataError(
            f"timestamps must be tz-naive datetime64, not {tx['timestamp'].dtype}; "
            "pass the frame through validate_transactions first",
            file="<transactions>", column="timestamp",
        )


def _purchase_occasions(lines: pd.DataFrame, periods: np.ndarray) -> pd.DataFrame:
    """One row per (customer_id, period) purchase occasion with its net value, sorted."""
    quantity = lines["quantity"].to_numpy()
    frame = pd.DataFrame({
        "customer_id": lines["customer_id"].to_numpy(),
        "period": periods,
        "value": quantity * lines["unit_price"].to_numpy(dtype=np.float64),
        "is_return": quantity < 0,
    })
    if "order_id" in lines.columns and frame["is_return"].any():
        frame["order_id"] = lines["order_id"].to_numpy()
        order_period = (frame[~frame["is_return"]]
                        .groupby(["customer_id", "order_id"], sort=False)["period"].min())
        returns = frame.loc[frame["is_return"], ["customer_id", "order_id"]]
        original = order_period.reindex(pd.MultiIndex.from_frame(returns)).to_numpy()
        known = ~np.isnan(original)
        frame.loc[returns.index[known], "period"] = original[known].astype(np.int64)
    occasions = (frame.groupby(["customer_id", "period"], sort=True)
                 .agg(value=("value", "sum"), has_return=("is_return", "any"))
                 .reset_index())
    cancelled = occasions["has_return"] & (occasions["value"] <= 0)
    return occasions.loc[~cancelled, ["customer_id", "period", "value"]].reset_index(drop=True)


def _summarize(occasions: pd.DataFrame, end: int) -> pd.DataFrame:
    """Frequency, recency, T, monetary value from sorted occasions ending at period ``end``."""
    by_customer = occasions.groupby("customer_id", sort=True)["period"]
    first = by_customer.min()
    summary = pd.DataFrame({
        "frequency": by_customer.size() - 1,
        "recency": by_customer.max() - first,
        "T": end - first,
    }).astype(np.float64)
    repeat = occasions[occasions["customer_id"].duplicated(keep="first")]
    summary["monetary_value"] = (
        repeat.groupby("customer_id")["value"].mean().reindex(summary.index, fill_value=0.0)
    )
    summary.index.name = "customer_id"
    return summary


def _period_numbers(timestamps: pd.Series, freq: str) -> np.ndarray:
    """Integer period of every timestamp: days since 1970-01-01, or Monday-based weeks."""
    days = timestamps.to_numpy().astype("datetime64[D]").astype(np.int64)
    if freq == "D":
        return days
    if freq == "W":
        return (days + _MONDAY_OFFSET) // 7
    raise ArgumentError(f"freq must be 'D' (days) or 'W' (weeks), not {freq!r}")


def _period_of(moment: Moment, freq: str) -> int:
    return int(_period_numbers(pd.Series([utc_naive(moment)]), freq)[0])


def _period_start(period: int, freq: str) -> pd.Timestamp:
    days = period if freq == "D" else period * 7 - _MONDAY_OFFSET
    return pd.Timestamp(np.datetime64(days, "D"))
