"""Transactions loading/validation and RFM summaries, checked against lifetimes on CDNOW."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import lifetimes
import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import summary_data_from_transaction_data

from clv import (
    UCI_ONLINE_RETAIL_COLUMNS,
    CLVModel,
    DataError,
    calibration_holdout_split,
    load_transactions,
    rfm_summary,
    validate_transactions,
)
from clv.errors import ArgumentError, MarginRankError
from clv.transactions import UCI_ONLINE_RETAIL_NON_PRODUCTS
from tests.conftest import ONLINE_RETAIL, require_file

LIFETIMES_DATA = Path(lifetimes.__file__).parent / "datasets"


def _cdnow_master() -> pd.DataFrame:
    """CDNOW_master as lifetimes reads it: customer id, date, number of CDs, dollar value."""
    raw = pd.read_csv(LIFETIMES_DATA / "CDNOW_master.txt", sep=r"\s+",
                      dtype={"customer_id": str, "date": str})
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw


def _as_tx(customer_id: pd.Series, date: pd.Series, spend: pd.Series) -> pd.DataFrame:
    """One line per CDNOW row, spend as the price of one unit (kept raw: it has $0 rows)."""
    return pd.DataFrame({"customer_id": customer_id, "timestamp": date, "quantity": 1,
                         "unit_price": spend})


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return _cdnow_master()


def _frame(rows: list[tuple], order_id: bool = False) -> pd.DataFrame:
    columns = ["customer_id", "timestamp", "product_id", "quantity", "unit_price"]
    return pd.DataFrame(rows, columns=columns + (["order_id"] if order_id else []))


# ----------------------------------------------------------------------------- validation


def test_validate_types_order_and_synthesized_orders() -> None:
    tx, report = validate_transactions(_frame([
        ("b", "2024-01-02 10:00", "p1", 2, 3.5),
        ("a", "2024-01-03", "p2", 1, 10),
        ("a", "2024-01-01", "p1", 1, 3.5),
        ("a", "2024-01-01", "p3", 1, 1),
    ]))
    assert list(tx.columns) == ["customer_id", "timestamp", "product_id", "quantity",
                                "unit_price", "order_id"]
    assert tx["customer_id"].tolist() == ["a", "a", "a", "b"]
    assert tx["product_id"].tolist() == ["p1", "p3", "p2", "p1"]  # stable within a timestamp
    assert tx["quantity"].dtype == np.int64 and tx["unit_price"].dtype == np.float64
    assert pd.api.types.is_datetime64_dtype(tx["timestamp"].dtype)
    assert tx["order_id"].iloc[0] == tx["order_id"].iloc[1] != tx["order_id"].iloc[2]
    assert report.kept_rows == report.total_rows == 4


def test_load_csv_keeps_id_strings(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,product_id,quantity,unit_price,order_id\n"
                    "007,2024-01-01,0042,1,2.5,00001\n")
    tx, _ = load_transactions(path)
    assert tx.loc[0, ["customer_id", "product_id", "order_id"]].tolist() == ["007", "0042",
                                                                            "00001"]


def test_parquet_round_trip(tmp_path: Path) -> None:
    frame, _ = validate_transactions(_frame([("c1", "2024-01-01", "p", 3, 2.0)]))
    frame.to_parquet(tmp_path / "tx.parquet")
    tx, _ = load_transactions(tmp_path / "tx.parquet")
    pd.testing.assert_frame_equal(tx, frame, check_dtype=False)


def test_column_mapping_for_public_datasets(tmp_path: Path) -> None:
    path = tmp_path / "retail.csv"
    path.write_text("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
                    "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850\n"
                    "C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527\n"
                    "536414,22139,,56,2010-12-01 11:52:00,0.0,\n")
    tx, report = load_transactions(path, columns=UCI_ONLINE_RETAIL_COLUMNS)
    assert tx[["customer_id", "product_id", "quantity", "order_id"]].values.tolist() == [
        ["14527", "D", -1, "C536379"], ["17850", "85123A", 6, "536365"]]
    assert report.excluded == {"missing customer_id": 1}


def test_missing_datetime_is_an_error() -> None:
    frame = _frame([("c1", pd.Timestamp("2024-01-01"), "p", 1, 2.0), ("c1", pd.NaT, "p", 1, 2.0)])
    with pytest.raises(DataError, match="missing timestamp") as info:
        validate_transactions(frame)
    # An in-memory frame has no file lines: the row number goes into the message.
    assert (info.value.line, info.value.column) == (None, "timestamp")
    assert "row 2: missing timestamp" in str(info.value)


def test_missing_column_is_named() -> None:
    frame = _frame([("c1", "2024-01-01", "p", 1, 2.0)]).drop(columns="unit_price")
    with pytest.raises(DataError, match="unit_price"):
        validate_transactions(frame)


def test_unparsable_timestamp_names_file_line_column(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,product_id,quantity,unit_price\n"
                    "c1,2024-01-01,p,1,2.0\n"
                    "c1,not a date,p,1,2.0\n")
    with pytest.raises(DataError) as info:
        load_transactions(path)
    error = info.value
    assert (error.file, error.line, error.column, error.value) == (str(path), 3, "timestamp",
                                                                   "not a date")
    assert f"{path}:3" in str(error)


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("quantity", "two", "not a number"),
    ("quantity", 1.5, "not an integer"),
    ("quantity", None, "missing"),
    ("unit_price", "cheap", "not a number"),
    ("unit_price", np.inf, "infinite"),
    ("product_id", None, "missing product_id"),
])
def test_malformed_values_are_errors(column: str, value: object, reason: str) -> None:
    frame = _frame([("c1", "2024-01-01", "p", 1, 2.0), ("c1", "2024-01-02", "p", 1, 2.0)])
    frame[column] = frame[column].astype(object)
    frame.loc[1, column] = value
    with pytest.raises(DataError, match=reason) as info:
        validate_transactions(frame, source="orders.csv")
    assert (info.value.file, info.value.line, info.value.column) == ("orders.csv", None, column)
    assert "row 2: " in str(info.value)


def test_unusable_rows_are_excluded_and_counted() -> None:
    tx, report = validate_transactions(_frame([
        ("c1", "2024-01-01", "p", 1, 2.0),
        (None, "2024-01-01", "p", 1, 2.0),
        ("  ", "2024-01-01", "p", 1, 2.0),
        ("c1", "2030-01-01", "p", 1, 2.0),
        ("c1", "2024-01-02", "p", 1, np.nan),
        ("c1", "2024-01-02", "p", 1, 0.0),
        ("c1", "2024-01-02", "p", 1, -5.0),
        ("c1", "2024-01-02", "p", 0, 2.0),
        ("c1", "2024-01-03", "p", -1, 2.0),
    ]), now="2025-01-01")
    assert len(tx) == 2 and tx["quantity"].tolist() == [1, -1]
    assert report.total_rows == 9 and report.kept_rows == 2
    assert report.excluded == {"missing customer_id": 2, "timestamp after now": 1,
                               "missing unit_price": 1, "non-positive unit_price": 2,
                               "zero quantity": 1}
    assert "kept 2 of 9 rows" in report.summary()


def _orders_with_postage() -> pd.DataFrame:
    """Customer a: goods + postage (o1), postage alone (o2), a manual credit (C3), goods +
    postage (o4); customer b: goods only. POST and M are UCI's postage and manual codes."""
    return _frame([
        ("a", "2024-01-01", "85123A", 2, 5.0, "o1"),
        ("a", "2024-01-01", "POST", 1, 18.0, "o1"),
        ("a", "2024-01-05", "POST", 1, 18.0, "o2"),
        ("a", "2024-01-07", "M", -1, 7.95, "C3"),
        ("a", "2024-01-09", "22139", 1, 10.0, "o4"),
        ("a", "2024-01-09", "POST", 1, 15.0, "o4"),
        ("b", "2024-01-02", "22139", 3, 10.0, "o5"),
    ], order_id=True)


def test_non_product_lines_are_excluded_and_counted() -> None:
    tx, report = validate_transactions(_orders_with_postage(),
                                       non_product_ids=UCI_ONLINE_RETAIL_NON_PRODUCTS)
    assert tx["product_id"].tolist() == ["85123A", "22139", "22139"]
    assert tx["order_id"].tolist() == ["o1", "o4", "o5"]
    assert report.excluded == {"non-product product_id": 4}
    assert report.kept_rows == 3 and "4 non-product product_id" in report.summary()
    assert report.notes == ["2 of 5 orders consisted only of non-product lines and were "
                            "excluded with them"]


def test_non_product_lines_are_kept_by_default() -> None:
    """Other datasets must not lose lines to UCI's codes: "M" or "D" may be real products."""
    tx, report = validate_transactions(_orders_with_postage())
    assert len(tx) == 7 and report.excluded == {} and report.notes == []
    tx, report = validate_transactions(_orders_with_postage(), non_product_ids={"D", "S"})
    assert len(tx) == 7 and report.excluded == {} and report.notes == []


def test_an_order_of_postage_alone_is_no_purchase() -> None:
    """Kept, the postage-only order of Jan 5 is a repeat purchase and postage inflates spend;
    excluded, customer a has one repeat purchase (Jan 9) worth its goods alone."""
    frame = _orders_with_postage()
    with_postage = rfm_summary(validate_transactions(frame)[0])
    goods_only = rfm_summary(validate_transactions(
        frame, non_product_ids=UCI_ONLINE_RETAIL_NON_PRODUCTS)[0])
    assert with_postage.loc["a", "frequency"] == 2
    assert goods_only.loc["a", ["frequency", "recency", "T", "monetary_value"]].tolist() == [
        1.0, 8.0, 8.0, 10.0]
    assert goods_only.loc["b", "frequency"] == 0


@pytest.mark.realdata
def test_uci_non_product_codes_cover_the_file() -> None:
    """Every StockCode of the real file that does not start with five digits is either in
    UCI_ONLINE_RETAIL_NON_PRODUCTS or a product of the dotcom/eBay shop (DCGS...)."""
    file = require_file(ONLINE_RETAIL)
    codes = pd.read_csv(file, usecols=["StockCode"], dtype=str)["StockCode"].unique()
    odd = {c for c in codes if not c[:5].isdigit()}
    assert {c for c in odd - UCI_ONLINE_RETAIL_NON_PRODUCTS if not c.startswith("DCGS")} == set()
    assert UCI_ONLINE_RETAIL_NON_PRODUCTS <= set(codes)


def test_rows_dated_after_today_are_kept_but_noted_without_now() -> None:
    """Without ``now`` the result must not depend on the day it runs, so future-dated rows stay;
    the report says how many there are and how to exclude them."""
    tx, report = validate_transactions(_frame([
        ("c1", "2024-01-01", "p", 1, 2.0),
        ("c1", "2999-01-01", "p", 1, 2.0),
    ]))
    assert len(tx) == 2 and report.excluded == {}
    assert report.notes and "1 rows are dated after the current time" in report.notes[0]
    assert "pass now=" in report.summary() and report.to_dict()["notes"] == report.notes
    _, clean = validate_transactions(_frame([("c1", "2024-01-01", "p", 1, 2.0)]))
    assert clean.notes == []


def test_mixed_time_zones_become_naive_utc() -> None:
    tx, _ = validate_transactions(_frame([
        ("c1", "2024-03-01T12:00:00+02:00", "p", 1, 1.0),
        ("c1", "2024-03-01 11:00:00", "p", 1, 1.0),
        ("c1", "2024-03-01T09:30:00Z", "p", 1, 1.0),
        ("c1", "2024-03-02 08:00", "p", 1, 1.0),  # one format per file (issue 16)
    ]), now=pd.Timestamp("2024-03-02 09:00", tz="Europe/Paris"))  # = 08:00 UTC
    assert tx["timestamp"].dt.tz is None
    assert tx["timestamp"].astype(str).tolist() == [
        "2024-03-01 09:30:00", "2024-03-01 10:00:00", "2024-03-01 11:00:00",
        "2024-03-02 08:00:00"]


def test_mixed_time_zones_in_a_file_and_in_datetime_objects(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,product_id,quantity,unit_price\n"
                    "c1,2024-03-01T23:30:00-05:00,p,1,1.0\n"   # 04:30 UTC on March 2
                    "c1,2024-03-02T01:00:00+01:00,p,1,1.0\n"   # 00:00 UTC on March 2
                    "c1,2024-03-01 23:59:59,p,1,1.0\n")       # naive: UTC
    tx, _ = load_transactions(path)
    assert tx["timestamp"].astype(str).tolist() == [
        "2024-03-01 23:59:59", "2024-03-02 00:00:00", "2024-03-02 04:30:00"]
    # Occasions are UTC days: the New York evening purchase is on March 2, with Berlin's, so
    # one repeat occasion worth both lines.
    assert rfm_summary(tx).loc["c1"].tolist() == [1.0, 1.0, 1.0, 2.0]

    aware = _frame([("c1", datetime(2024, 3, 1, 12, tzinfo=timezone(timedelta(hours=2))), "p", 1,
                     1.0),
                    ("c1", pd.Timestamp("2024-03-01 12:00", tz="America/New_York"), "p", 1, 1.0)])
    assert validate_transactions(aware)[0]["timestamp"].astype(str).tolist() == [
        "2024-03-01 10:00:00", "2024-03-01 17:00:00"]


def test_ambiguous_zone_names_are_errors_naming_file_line_column(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,product_id,quantity,unit_price\n"
                    "c1,2024-03-01T12:00:00+02:00,p,1,1.0\n"
                    "c1,2024-03-01 12:00 EST,p,1,1.0\n")
    with pytest.raises(DataError, match="zone names such as CET are ambiguous") as info:
        load_transactions(path)
    assert (info.value.line, info.value.column, info.value.value) == (3, "timestamp",
                                                                      "2024-03-01 12:00 EST")


def test_numeric_ids_with_gaps_keep_their_written_form() -> None:
    frame = _frame([(17850.0, "2024-01-01", "p", 1, 1.0), (np.nan, "2024-01-01", "p", 1, 1.0)])
    tx, report = validate_transactions(frame)
    assert tx["customer_id"].tolist() == ["17850"]
    assert report.excluded == {"missing customer_id": 1}


# ----------------------------------------------------------------------------- RFM


def test_empty_transactions(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("customer_id,timestamp,product_id,quantity,unit_price\n")
    tx, report = load_transactions(path)
    assert tx.empty and report.total_rows == 0
    summary = rfm_summary(tx)
    assert summary.empty and list(summary.columns) == ["frequency", "recency", "T",
                                                       "monetary_value"]


def test_rfm_counts_occasions_not_orders() -> None:
    tx, _ = validate_transactions(_frame([
        ("a", "2024-01-01 09:00", "p", 1, 10.0, "o1"),
        ("a", "2024-01-01 18:00", "p", 1, 5.0, "o2"),   # same day: same occasion
        ("a", "2024-01-05", "p", 2, 10.0, "o3"),
        ("a", "2024-01-11", "p", 1, 40.0, "o4"),
        ("b", "2024-01-10", "p", 1, 7.0, "o5"),
    ], order_id=True))
    summary = rfm_summary(tx, observation_end="2024-01-11")
    assert summary.loc["a"].tolist() == [2.0, 10.0, 10.0, 30.0]  # mean of 20 and 40
    assert summary.loc["b"].tolist() == [0.0, 0.0, 1.0, 0.0]
    weekly = rfm_summary(tx, observation_end="2024-01-11", freq="W")
    assert weekly.loc["a"].tolist() == [1.0, 1.0, 1.0, 40.0]  # Mon 1 and Fri 5 share a week


def test_returns_are_netted_into_their_order() -> None:
    tx, _ = validate_transactions(_frame([
        ("a", "2024-01-01", "p", 2, 10.0, "o1"),
        ("a", "2024-01-03", "p", 1, 10.0, "o2"),
        ("a", "2024-01-04", "p", -1, 10.0, "o2"),   # o2 fully returned: no occasion
        ("a", "2024-01-06", "p", 3, 10.0, "o3"),
        ("a", "2024-01-08", "p", -1, 10.0, "o3"),   # partial return of o3, netted on Jan 6
        ("a", "2024-01-09", "q", -1, 5.0, "x9"),    # unknown order: its own day, cancelled
        ("r", "2024-01-02", "p", -1, 10.0, "o0"),   # only returns: no purchase at all
    ], order_id=True))
    summary = rfm_summary(tx, observation_end="2024-01-10")
    assert summary.index.tolist() == ["a"]
    assert summary.loc["a"].tolist() == [1.0, 5.0, 9.0, 20.0]
    assert summary.attrs["n_customers_without_purchase"] == 1


def test_unsorted_input_gives_the_same_summary(cdnow: pd.DataFrame) -> None:
    tx = _as_tx(cdnow["customer_id"], cdnow["date"], cdnow["dollar_value"])
    shuffled = tx.sample(frac=1.0, random_state=7)
    pd.testing.assert_frame_equal(rfm_summary(shuffled, observation_end="1998-06-30"),
                                  rfm_summary(tx, observation_end="1998-06-30"))


def test_validation_sorts_unsorted_input() -> None:
    rows = [("b", "2024-01-03", "p2", 1, 2.0), ("a", "2024-01-02", "p1", 2, 1.0),
            ("b", "2024-01-01", "p1", 1, 2.0), ("a", "2024-01-01", "p3", 1, 4.0)]
    in_order, _ = validate_transactions(_frame(sorted(rows, key=lambda row: row[:2])))
    pd.testing.assert_frame_equal(validate_transactions(_frame(rows))[0], in_order)


@pytest.mark.parametrize(("freq", "end"), [("D", "1998-06-30"), ("W", "1998-06-30"),
                                           ("W", "1997-09-30")])
def test_equals_lifetimes_summary_on_cdnow(cdnow: pd.DataFrame, freq: str, end: str) -> None:
    expected = summary_data_from_transaction_data(
        cdnow, "customer_id", "date", monetary_value_col="dollar_value",
        observation_period_end=end, freq=freq).sort_index()
    ours = rfm_summary(_as_tx(cdnow["customer_id"], cdnow["date"], cdnow["dollar_value"]),
                       observation_end=end, freq=freq)
    assert ours.index.tolist() == expected.index.tolist()
    for column in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(ours[column].to_numpy(), expected[column].to_numpy())
    np.testing.assert_allclose(ours["monetary_value"], expected["monetary_value"], rtol=1e-9)


def test_reproduces_the_papers_calibration_summary() -> None:
    """CDNOW_sample, days to 1997-09-30, in weeks = lifetimes' cdnow_customers_summary.csv."""
    raw = pd.read_csv(LIFETIMES_DATA / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master_id", "customer_id", "date", "cds", "spend"], dtype=str)
    tx = _as_tx(raw["customer_id"], pd.to_datetime(raw["date"], format="%Y%m%d"),
                raw["spend"].astype(float))
    ours = rfm_summary(tx, observation_end="1997-09-30")
    paper = pd.read_csv(LIFETIMES_DATA / "cdnow_customers_summary_with_transactions.csv")
    assert ours.index.astype(int).tolist() == paper["ID"].tolist()
    np.testing.assert_array_equal(ours["frequency"], paper["x"])
    np.testing.assert_array_equal((ours["recency"] / 7).round(2), paper["t_x"])
    np.testing.assert_array_equal((ours["T"] / 7).round(2), paper["T"])
    np.testing.assert_allclose(ours["monetary_value"], paper["zbar"], atol=0.005 + 1e-9)


def test_calibration_holdout_split_on_cdnow(cdnow: pd.DataFrame) -> None:
    tx = _as_tx(cdnow["customer_id"], cdnow["date"], cdnow["dollar_value"])
    late = pd.DataFrame({"customer_id": ["new"], "timestamp": [pd.Timestamp("1998-01-05")],
                         "quantity": [1], "unit_price": [9.0]})
    split = calibration_holdout_split(pd.concat([tx, late]), calibration_end="1997-09-30",
                                      observation_end="1998-06-30")
    assert split.attrs["n_excluded_customers"] == 1 and "new" not in split.index

    calibration = cdnow[cdnow["date"] <= "1997-09-30"]
    expected_cal = summary_data_from_transaction_data(
        calibration, "customer_id", "date", monetary_value_col="dollar_value",
        observation_period_end="1997-09-30").sort_index()
    cal = split[["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]]
    np.testing.assert_allclose(cal.to_numpy(), expected_cal.to_numpy(), rtol=1e-9)

    holdout = cdnow[cdnow["date"] > "1997-09-30"]
    expected_hold = (holdout.groupby("customer_id")["date"].nunique()
                     .reindex(split.index, fill_value=0))
    np.testing.assert_array_equal(split["frequency_holdout"], expected_hold.to_numpy())
    assert (split["duration_holdout"] == 273.0).all()


def test_calibration_must_end_before_observation() -> None:
    tx, _ = validate_transactions(_frame([("a", "2024-01-01", "p", 1, 1.0)]))
    with pytest.raises(ValueError, match="later"):
        calibration_holdout_split(tx, calibration_end="2024-02-01",
                                  observation_end="2024-02-01")


@pytest.mark.parametrize("call", [
    lambda tx: calibration_holdout_split(tx, calibration_end="2024-02-01",
                                         observation_end="2024-01-01"),
    lambda tx: rfm_summary(tx, freq="M"),
    lambda tx: CLVModel(horizon=-1.0).fit(rfm_summary(tx)),
    lambda tx: CLVModel(time_unit="Y").fit(rfm_summary(tx)),
    lambda tx: CLVModel(discount_rate=float("nan")).fit(rfm_summary(tx)),
])
def test_bad_arguments_are_marginrank_errors_naming_the_setting(call) -> None:  # noqa: ANN001
    """Argument errors share the project's error base (and stay ValueErrors for old callers)."""
    tx, _ = validate_transactions(_frame([("a", "2024-01-01", "p", 1, 1.0)]))
    with pytest.raises(ArgumentError) as info:
        call(tx)
    assert isinstance(info.value, MarginRankError) and isinstance(info.value, ValueError)


def test_rfm_refuses_unvalidated_timestamps() -> None:
    with pytest.raises(DataError, match="validate_transactions"):
        rfm_summary(_frame([("a", "2024-01-01", "p", 1, 1.0)]))
