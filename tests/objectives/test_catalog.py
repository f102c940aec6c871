"""Catalog and judgments loaders: clear errors naming file, line, column and value."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from clv.errors import DataError
from objectives.catalog import load_catalog, load_judgments

GOOD = "product_id,title,price,cost,stock\nP1,Drill,10,6,3\nP2,Saw,20,,0\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_catalog_counts_missing_business_values(tmp_path: Path) -> None:
    frame, report = load_catalog(write(tmp_path, "c.csv", GOOD))
    assert frame["product_id"].tolist() == ["P1", "P2"]
    assert report.missing["cost"] == 1 and report.missing["return_rate"] == 2
    assert "cost: 1" in report.summary()


@pytest.mark.parametrize(("text", "needle"), [
    ("product_id,name\nP1,x\n", "missing required column(s) ['title']"),
    ("product_id,title,price\nP1,a,1\nP1,b,2\n", ":3: column 'product_id': duplicate id"),
    ("product_id,title,price\nP1,a,-5\n", ":2: column 'price': value below 0.0"),
    ("product_id,title,price\nP1,a,abc\n", ":2: column 'price': not a number"),
    ("product_id,title,return_rate\nP1,a,1.5\n", "column 'return_rate': value above 1.0"),
    ("product_id,title,stock\nP1,a,2.0\nP2,b,\nP3,c,2.5\n",
     ":4: column 'stock': not a whole number"),
    ("product_id,title,review_count\nP1,a,0.5\n", ":2: column 'review_count': not a whole number"),
    ("product_id,title\nP1,\n", ":2: column 'title': empty title"),
    ('product_id,title\nP1,"unclosed\n', "cannot parse table"),
    ("product_id,title\n", "the catalog has no products"),
])
def test_bad_catalogs(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, "c.csv", text)
    with pytest.raises(DataError) as err:
        load_catalog(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_catalog(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unsupported file type"):
        load_catalog(write(tmp_path, "c.xlsx", "x"))


def test_judgments_validation(tmp_path: Path) -> None:
    ids = pd.Index(["P1", "P2"])
    good = write(tmp_path, "j.csv", "query,product_id,grade\ndrill,P1,3\ndrill,P2,0\n")
    frame = load_judgments(good, ids)
    assert frame["query_id"].tolist() == ["drill", "drill"]
    unknown = write(tmp_path, "u.csv", "query,product_id,grade\ndrill,P1,3\ndrill,P9,1\n")
    with pytest.raises(DataError, match=r"u.csv:3: column 'product_id': unknown product"):
        load_judgments(unknown, ids)
    nan = write(tmp_path, "n.csv", "query,product_id,grade\ndrill,P1,\n")
    with pytest.raises(DataError, match=r"n.csv:2: column 'grade': missing value"):
        load_judgments(nan, ids)
    dup = write(tmp_path, "d.csv", "query,product_id,grade\ndrill,P1,3\ndrill,P1,2\n")
    with pytest.raises(DataError, match=r"d.csv:3: .*repeated"):
        load_judgments(dup, ids)


def test_line_numbers_count_quoted_newlines_and_blank_lines(tmp_path: Path) -> None:
    text = ('product_id,title,description,price\n'
            'P1,Drill,"two\nlines",10\n'
            '\n'
            'P2,Saw,plain,-3\n')
    path = write(tmp_path, "c.csv", text)
    with pytest.raises(DataError) as err:
        load_catalog(path)
    assert err.value.line == 5  # the line an editor shows for P2
    assert str(err.value).endswith("value below 0.0 (value: -3)")


def test_line_numbers_with_huge_fields_and_space_only_lines(tmp_path: Path) -> None:
    huge = "x" * 200_000
    path = write(tmp_path, "big.csv", f'product_id,title,description,price\nP1,T,"{huge}",-1\n')
    with pytest.raises(DataError) as err:
        load_catalog(path)
    assert err.value.line == 2
    path = write(tmp_path, "ws.csv", "product_id,title,price\nP1,T,1\n   \nP2,U,-5\n")
    with pytest.raises(DataError) as err:
        load_catalog(path)
    assert err.value.line == 4


def test_parquet_errors_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    pd.DataFrame({"product_id": ["P1", "P2"], "title": ["a", "b"], "price": [1.0, -2.0]}
                 ).to_parquet(path)
    with pytest.raises(DataError, match=r"c.parquet: column 'price': row 2: value below"):
        load_catalog(path)
