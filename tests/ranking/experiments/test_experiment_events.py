"""The event contract: schemas, validated writers and loaders, error messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clv.errors import DataError
from ranking.experiments import (
    IMPRESSION_SCHEMA,
    OUTCOME_SCHEMA,
    impression_rows,
    load_events,
    query_hash,
    validate_impressions,
    validate_outcome_records,
    write_events,
    write_impressions,
    write_outcomes,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _search(request: str, customer: str | None, products: list[str], **kw: object) -> list[dict]:
    results = [{"product_id": p, "rank": i + 1, "score": 2.0 - i / 10}
               for i, p in enumerate(products)]
    return impression_rows(request, customer, "cordless drill", results, config_version="v1",
                           experiment="exp", arm="push", segment=None, timestamp=T0, **kw)


def _click(event: str, request: str, product: str, **kw: object) -> dict:
    return {"event_id": event, "request_id": request, "product_id": product, "type": "click",
            "timestamp": "2026-03-01T12:00:05Z", **kw}


def _purchase(event: str, request: str, product: str, **kw: object) -> dict:
    return {"event_id": event, "request_id": request, "product_id": product,
            "type": "purchase", "timestamp": "2026-03-01T12:03:00Z", "quantity": 2,
            "unit_price": 19.99, "unit_margin": 6.5, **kw}


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_round_trip_keeps_ids_as_written(tmp_path: Path, fmt: str) -> None:
    imps = _search("r1", "NA", ["NULL", "None", "Cafe\u0301 "]) + _search("r2", "c2", [])
    outs = [_click("e1", "r1", "NULL"), _purchase("e2", "r1", "None")]
    write_events(tmp_path, imps, outs, fmt=fmt)
    assert (tmp_path / "impressions" / f"events.{fmt}").is_file()
    ev = load_events(tmp_path)
    assert ev.impressions.schema == IMPRESSION_SCHEMA
    assert ev.outcomes.schema == OUTCOME_SCHEMA
    rows = ev.impressions.to_pylist()
    # "NA", "NULL" and "None" are ids; ids are NFC and stripped
    assert [r["product_id"] for r in rows] == ["NULL", "None", "Caf\u00e9", None]
    assert rows[0]["customer_id"] == "NA"
    assert [r["position"] for r in rows] == [1, 2, 3, -1]  # r2 showed nothing: one row
    assert rows[0]["query_hash"] == query_hash("cordless drill")
    assert rows[0]["timestamp"] == T0
    assert ev.searches == 2
    out = ev.outcomes.to_pylist()
    assert out[1]["quantity"] == 2 and out[1]["unit_price"] == pytest.approx(19.99)
    assert out[0]["quantity"] is None and out[0]["unit_margin"] is None
    assert ev.report.kept_rows == 2 and not ev.report.excluded


def test_query_text_can_be_dropped_keeping_its_hash(tmp_path: Path) -> None:
    path = write_impressions(_search("r1", "c1", ["P1"]), tmp_path / "i.parquet",
                             keep_query=False)
    row = pq.read_table(path).to_pylist()[0]
    assert row["query"] is None
    assert row["query_hash"] == query_hash("cordless drill")
    assert len(row["query_hash"]) == 16


def test_timestamps_are_utc(tmp_path: Path) -> None:
    rows = [_click("e1", "r1", "P1", timestamp="2026-03-01T14:00:00+02:00"),
            _click("e2", "r1", "P1", timestamp="2026-03-01T12:00:00"),
            _click("e3", "r1", "P1", timestamp=datetime(2026, 3, 1, 7, tzinfo=timezone(
                timedelta(hours=-5))))]
    stamps = validate_outcome_records(rows).column("timestamp").to_pylist()
    assert stamps == [datetime(2026, 3, 1, 12, tzinfo=UTC)] * 3


@pytest.mark.parametrize(("record", "column", "reason"), [
    ({"type": "view"}, "type", "must be one of click"),
    ({"request_id": 17}, "request_id", "must be text"),
    ({"timestamp": "yesterday"}, "timestamp", "ISO 8601"),
    ({"event_id": None}, "event_id", "missing value"),
    ({"type": "purchase"}, "quantity", "required for a purchase"),
    ({"type": "return", "quantity": 1}, "unit_price", "required for a return"),
    ({"quantity": 0}, "quantity", ">= 1"),
    ({"quantity": 1.5}, "quantity", "whole number"),
    ({"unit_price": -1.0}, "unit_price", ">= 0"),
    ({"unit_margin": float("nan")}, "unit_margin", "finite"),
    ({"unit_price": True}, "unit_price", "not a number"),
])
def test_bad_outcome_records_name_record_column_and_value(record: dict, column: str,
                                                          reason: str) -> None:
    good = _click("e0", "r0", "P0")
    with pytest.raises(DataError) as err:
        validate_outcome_records([good, {**_click("e1", "r1", "P1"), **record}],
                                 source="POST /events")
    assert err.value.column == column
    assert reason in str(err.value)
    assert "records[1]" in str(err.value) and "POST /events" in str(err.value)


def test_missing_columns_are_listed() -> None:
    with pytest.raises(DataError, match=r"missing required column\(s\) \['type'"):
        validate_outcome_records([{"event_id": "e", "request_id": "r", "product_id": "p",
                                   "timestamp": "2026-03-01T00:00:00Z"}])


def test_repeated_event_ids_are_idempotent_unless_they_conflict() -> None:
    table = validate_outcome_records([_click("e1", "r1", "P1"), _click("e1", "r1", "P1"),
                                      _click("e2", "r1", "P2")])
    assert table.column("event_id").to_pylist() == ["e1", "e2"]
    with pytest.raises(DataError, match="event id repeated with different content"):
        validate_outcome_records([_click("e1", "r1", "P1"), _click("e1", "r1", "P2")])


def test_jsonl_errors_give_the_file_line(tmp_path: Path) -> None:
    folder = tmp_path / "impressions"
    folder.mkdir()
    rows = _search("r1", "c1", ["P1", "P2"])
    lines = [json.dumps({**r, "timestamp": "2026-03-01T12:00:00Z"}) for r in rows]
    lines[1] = lines[1].replace('"position": 2', '"position": 0')
    (folder / "a.jsonl").write_text(lines[0] + "\n\n" + lines[1] + "\n")
    with pytest.raises(DataError) as err:
        load_events(tmp_path)
    assert err.value.line == 3 and err.value.column == "position"
    assert str(err.value).startswith(str(folder / "a.jsonl") + ":3")
    (folder / "a.jsonl").write_text(lines[0] + "\n{not json\n")
    with pytest.raises(DataError, match="not valid JSON") as err:
        load_events(tmp_path)
    assert err.value.line == 2


def test_parquet_errors_give_the_row(tmp_path: Path) -> None:
    rows = _search("r1", "c1", ["P1", "P2"])
    table = pa.Table.from_pylist(rows).set_column(
        11, "position", pa.array([1, 1], pa.int32()))
    (tmp_path / "impressions").mkdir()
    pq.write_table(table, tmp_path / "impressions" / "x.parquet")
    with pytest.raises(DataError, match=r"row 2: a request shows one product per position"):
        load_events(tmp_path)


@pytest.mark.parametrize(("change", "reason"), [
    ({"product_id": None}, "only a row with position -1"),
    ({"propensity": 1.5}, "probability in \\(0, 1\\]"),
    ({"propensity": 0.0}, "probability in \\(0, 1\\]"),
    ({"position": -2}, "1-based"),
    ({"config_version": None}, "missing value"),
])
def test_bad_impressions_are_refused(change: dict, reason: str) -> None:
    rows = _search("r1", "c1", ["P1"])
    with pytest.raises(DataError, match=reason):
        validate_impressions([{**rows[0], **change}])


def test_a_no_result_row_carries_no_product() -> None:
    row = _search("r1", "c1", [])[0]
    assert row["position"] == -1 and row["product_id"] is None
    with pytest.raises(DataError, match="must have no product"):
        validate_impressions([{**row, "product_id": "P1"}])


def test_duplicates_across_files_and_unknown_requests(tmp_path: Path) -> None:
    write_events(tmp_path, _search("r1", "c1", ["P1"]),
                 [_click("e1", "r1", "P1"), _click("e9", "gone", "P1")], name="a")
    write_outcomes([_click("e1", "r1", "P1"), _click("e2", "r1", "P1")],
                   tmp_path / "outcomes" / "b.jsonl")
    ev = load_events(tmp_path)
    assert sorted(ev.outcomes.column("event_id").to_pylist()) == ["e1", "e2"]
    assert ev.report.excluded == {"repeated event id (same content)": 1,
                                  "request_id not among the impressions": 1}
    write_impressions(_search("r1", "c1", ["P7"]), tmp_path / "impressions" / "b.parquet")
    with pytest.raises(DataError, match="repeats"):
        load_events(tmp_path)


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no impression files"):
        load_events(tmp_path)
    with pytest.raises(DataError, match="unsupported event file type"):
        write_outcomes([_click("e1", "r1", "P1")], tmp_path / "x.csv")
