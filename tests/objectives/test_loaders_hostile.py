"""Loaders that lose nothing and guess nothing (issue 16, "Loaders"): each case of the issue
with the message it gets."""

from __future__ import annotations

import gzip
import unicodedata
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from clv.errors import DataError
from clv.tables import MAX_INPUT_ENV, normalize_id, read_table
from clv.transactions import load_transactions
from objectives.catalog import load_catalog, load_judgments

TX_HEADER = "customer_id,timestamp,product_id,quantity,unit_price\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- ids are strings -------------------------------------------------------------------------
def test_na_null_none_nan_are_ids_not_missing(tmp_path: Path) -> None:
    catalog = write(tmp_path / "c.csv", "product_id,title,price\nNA,Drill,10\nNULL,Saw,NA\n"
                                        "None,Hammer,\nnan,Level,3\n")
    frame, report = load_catalog(catalog)
    assert frame["product_id"].tolist() == ["NA", "NULL", "None", "nan"]
    assert report.missing["price"] == 2  # numbers still read NA and "" as missing
    judged = write(tmp_path / "j.csv", "query_id,query,product_id,grade\nNone,NA,NA,2\n"
                                       "None,NA,NULL,0\nnull,null,nan,1\n")
    judgments = load_judgments(judged, pd.Index(frame["product_id"]))
    assert judgments["query"].tolist() == ["NA", "NA", "null"]
    assert judgments["query_id"].tolist() == ["None", "None", "null"]
    assert judgments["product_id"].tolist() == ["NA", "NULL", "nan"]
    tx = write(tmp_path / "tx.csv", TX_HEADER + "NULL,2024-01-01,NA,1,2.0\n"
                                                "None,2024-01-02,None,1,2.0\n,2024-01-03,NA,1,2.0\n")
    loaded, exclusions = load_transactions(tx)
    assert sorted(loaded["customer_id"]) == ["NULL", "None"]
    assert sorted(loaded["product_id"]) == ["NA", "None"]
    assert exclusions.excluded == {"missing customer_id": 1}  # only the empty one


# -- normalization and collisions ------------------------------------------------------------
def test_nfc_and_nfd_spellings_of_one_id_are_refused_naming_both_lines(tmp_path: Path) -> None:
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    path = write(tmp_path / "c.csv", f"product_id,title\n{nfc},A\nP2,B\n{nfd},C\n")
    with pytest.raises(DataError) as info:
        load_catalog(path)
    message = str(info.value)
    assert info.value.line == 4 and info.value.column == "product_id"
    assert f"ids {nfc!r} (line 2) and {nfd!r} (line 4) are the same id after normalization" \
        in message


@pytest.mark.parametrize(("spelling", "what"), [
    ("P00001 ", "trailing space"), ("\u200bP00001", "zero-width space"),
    ("P000\u200d01", "zero-width joiner inside"), ("\tP00001", "tab")])
def test_invisible_differences_are_one_id_and_refused_as_a_collision(
        tmp_path: Path, spelling: str, what: str) -> None:
    path = write(tmp_path / "tx.csv", TX_HEADER + f"C1,2024-01-01,P00001,1,2.0\n"
                                                  f"C2,2024-01-02,\"{spelling}\",1,2.0\n")
    with pytest.raises(DataError, match=r"ids 'P00001' \(line 2\) and .* \(line 3\) are the "
                                        "same id after normalization") as info:
        load_transactions(path)
    assert info.value.line == 3, what


def test_full_width_ids_are_refused_as_look_alikes(tmp_path: Path) -> None:
    """NFC does not fold width (NFKC would, and would also turn "²" into "2"), so
    "Ｐ00001" is not normalized into "P00001"; both in one file are refused."""
    assert normalize_id("\uff30" + "00001") != "P00001"
    path = write(tmp_path / "c.csv", "product_id,title\nP00001,A\n\uff30" + "00001,B\n")
    with pytest.raises(DataError, match=r"ids 'P00001' \(line 2\) and 'Ｐ00001' \(line 3\) "
                                        "look alike: they differ only in character width"):
        load_catalog(path)


def test_a_lone_spelling_is_stored_normalized(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "product_id,title\n cafe\u0301\u200b ,A\nP2,B\n")
    frame, _ = load_catalog(path)
    assert frame["product_id"].tolist() == ["caf\u00e9", "P2"]
    assert unicodedata.is_normalized("NFC", frame["product_id"].iat[0])


def test_customer_ids_colliding_across_rows_name_both(tmp_path: Path) -> None:
    path = write(tmp_path / "tx.csv", TX_HEADER + "C1,2024-01-01,P1,1,2.0\n"
                                                  "C1,2024-01-02,P1,1,2.0\n"
                                                  "C1 ,2024-01-03,P1,1,2.0\n")
    with pytest.raises(DataError, match=r"column 'customer_id': ids 'C1' \(line 2\) and "
                                        r"'C1 ' \(line 4\) are the same id"):
        load_transactions(path)


# -- timestamps ------------------------------------------------------------------------------
def test_day_month_file_is_read_in_one_order(tmp_path: Path) -> None:
    """The issue's file: 02/01/2011 was read as February 1 and 13/01/2011 as January 13.
    13 can only be a day, so the file is day first and both are January."""
    path = write(tmp_path / "tx.csv", TX_HEADER + "C1,02/01/2011 08:26,P1,1,2.0\n"
                                                  "C1,13/01/2011,P1,1,2.0\n")
    tx, _ = load_transactions(path)
    assert tx["timestamp"].astype(str).tolist() == ["2011-01-02 08:26:00", "2011-01-13 00:00:00"]


def test_contradicting_day_month_orders_are_refused_naming_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tx.csv", TX_HEADER + "C1,02/01/2011,P1,1,2.0\n"
                                                  "C1,13/01/2011,P1,1,2.0\n"
                                                  "C1,01/14/2011,P1,1,2.0\n")
    with pytest.raises(DataError, match=r"tx.csv:4: column 'timestamp': contradicts line 3 "
                                        r"\(13/01/2011, day first\): one date order per file"):
        load_transactions(path)


def test_unsettled_day_month_dates_are_ambiguous_naming_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tx.csv", TX_HEADER + "C1,01/01/2011,P1,1,2.0\n"
                                                  "C1,02/01/2011,P1,1,2.0\n"
                                                  "C1,03/01/2011,P1,1,2.0\n")
    with pytest.raises(DataError, match=r"tx.csv:3: column 'timestamp': ambiguous date: "
                                        r"day/month or month/day.*\(2 rows in all\)"):
        load_transactions(path)


def test_iso_and_day_month_in_one_file_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "tx.csv", TX_HEADER + "C1,2011-01-02T08:00:00,P1,1,2.0\n"
                                                  "C1,13/01/2011,P1,1,2.0\n")
    with pytest.raises(DataError, match=r"tx.csv:3: column 'timestamp': a day/month date in "
                                        r"a file of ISO 8601 timestamps \(as at line 2\)"):
        load_transactions(path)


def test_iso_8601_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "tx.csv", TX_HEADER + "C1,2011-01-02,P1,1,2.0\n"
                                                  "C1,2011-01-13T10:00:00+01:00,P1,1,2.0\n")
    tx, _ = load_transactions(path)
    assert tx["timestamp"].astype(str).tolist() == ["2011-01-02 00:00:00", "2011-01-13 09:00:00"]


# -- numbers and columns ---------------------------------------------------------------------
def test_integer_overflow_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tx.csv", TX_HEADER + "C1,2024-01-01,P1,1,2.0\n"
                                                  "C1,2024-01-02,P1,100000000000000000000,2.0\n")
    with pytest.raises(DataError, match=r"tx.csv:3: column 'quantity': integer overflow") as info:
        load_transactions(path)
    assert info.value.value == 1e20


def test_repeated_column_names_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "product_id,title,price,cost,price\nP1,A,1,0.5,2\n")
    with pytest.raises(DataError, match=r"c.csv:1: column 'price': column name 'price' appears "
                                        r"twice \(columns 3 and 5\)"):
        load_catalog(path)
    tx = write(tmp_path / "tx.csv", TX_HEADER.strip() + ", quantity\nC1,2024-01-01,P1,1,2.0,5\n")
    with pytest.raises(DataError, match=r"column name 'quantity' appears twice"):
        load_transactions(tx)


# -- size and encoding -----------------------------------------------------------------------
def test_decompressed_size_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = TX_HEADER + "C1,2024-01-01,P1,1,2.0\n" * 200_000  # 4.8 MB of text
    bomb = tmp_path / "tx.csv.gz"
    with gzip.open(bomb, "wt") as handle:
        handle.write(body)
    assert bomb.stat().st_size < 100_000
    monkeypatch.setenv(MAX_INPUT_ENV, str(1 << 20))
    with pytest.raises(DataError, match=r"decompresses to more than 1,048,576 bytes, the input "
                                        f"limit \\(set {MAX_INPUT_ENV} to raise it\\)"):
        load_transactions(bomb)
    zipped = tmp_path / "tx.csv.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tx.csv", body)
    with pytest.raises(DataError, match="decompresses to more than 1,048,576 bytes"):
        load_transactions(zipped)
    assert len(read_table(zipped, max_bytes=len(body))) == 200_000  # at the bound: read


def test_decode_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes("product_id,title\nP1,Drill\nP2,Caf\u00e9 table\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"c.csv:3: not valid utf-8: byte 0xe9 at column 7"):
        load_catalog(path)
    gz = tmp_path / "tx.csv.gz"
    gz.write_bytes(gzip.compress((TX_HEADER + "C1,2024-01-01,P1,1,2.0\n"
                                  "C\xff,2024-01-01,P1,1,2.0\n").encode("latin-1")))
    with pytest.raises(DataError, match=r"tx.csv.gz:3: not valid utf-8: byte 0xff"):
        load_transactions(gz)
