"""The data audit (issue 21): a seeded corrupted copy of the demo world has every injected problem
found and nothing else new, and each check flags what it should on small tables."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clv.errors import ArgumentError, DataError
from objectives.audit import AuditSettings, AuditTables, audit_files, audit_frames, prepare_catalog
from objectives.audit_findings import CODES, AuditError, AuditResult
from objectives.audit_report import write_reports
from ranking.app.build import BuildInputs, BuildSettings, build
from ranking.app.cli import main
from tests.conftest import HOME_DEPOT, ONLINE_RETAIL, load_benchmark, require_file

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo"
N = 5  # rows injected per kind


def _audit(folder: Path, **kwargs: object) -> AuditResult:
    return audit_files(folder / "catalog.csv", folder / "transactions.csv.gz",
                       folder / "judgments.csv", **kwargs)


@pytest.fixture(scope="module")
def clean() -> AuditResult:
    return _audit(DEMO)


def _flagged(result: AuditResult) -> set[object]:
    """Every product id and customer id any finding flagged (pairs unpacked)."""
    out: set[object] = set()
    for f in result.findings:
        for key in f.keys:
            out.update(key if isinstance(key, tuple) else (key,))
    return out


def corrupt(clean_result: AuditResult, out: Path, seed: int) -> dict[str, set[object]]:
    """Write a corrupted copy of the demo world into ``out``; return what each finding code
    must newly flag. Injected rows are copies of products no clean finding touches, so that each
    injection shows up under its own code only."""
    rng = np.random.default_rng(seed)
    catalog = pd.read_csv(DEMO / "catalog.csv", dtype={"product_id": str})
    tx = pd.read_csv(DEMO / "transactions.csv.gz", dtype={"customer_id": str, "product_id": str,
                                                         "order_id": str})
    judgments = pd.read_csv(DEMO / "judgments.csv", dtype=str)
    touched = _flagged(clean_result)
    calm = catalog[~catalog["product_id"].isin(touched) & (catalog["stock"] == 0)]
    picks = calm.sample(3 * N, random_state=seed)
    exact = picks.iloc[:N].assign(product_id=[f"XEXACT{i}" for i in range(N)])
    near = picks.iloc[N:2 * N].assign(product_id=[f"XNEAR{i}" for i in range(N)],
                                      price=picks["price"].iloc[N:2 * N] + 0.01)
    near["title"] = near["title"] + " New"
    letters = np.array(list(string.ascii_lowercase))
    stale = picks.iloc[2 * N:].assign(
        product_id=[f"XSTALE{i}" for i in range(N)], stock=50, daily_sales=1.0,
        return_rate=np.nan,  # a new product: no return history yet
        title=[" ".join("".join(rng.choice(letters, 7)) for _ in range(3)) for _ in range(N)])
    below = catalog.index[~catalog["product_id"].isin(touched | set(picks["product_id"]))]
    below = rng.choice(below, N, replace=False)
    catalog.loc[below, "cost"] = (catalog.loc[below, "price"] * 1.25).round(2)
    pd.concat([catalog, exact, near, stale]).to_csv(out / "catalog.csv", index=False)

    ts = pd.to_datetime(tx["timestamp"])
    last = ts.groupby(tx["customer_id"]).transform("max")
    recent = tx[(last == ts) & (ts > ts.max() - pd.Timedelta(days=60))
                & ~tx["customer_id"].isin(touched)]
    originals = recent.drop_duplicates("customer_id").sample(3, random_state=seed)
    variants = [originals["customer_id"].iat[0].lower(),
                "\uff23" + originals["customer_id"].iat[1][1:],  # fullwidth C
                " " + originals["customer_id"].iat[2] + " "]
    twins = originals.assign(customer_id=variants)
    old = tx.sample(N, random_state=seed).assign(
        customer_id=[f"ZOLD{i}" for i in range(N)],
        timestamp=(ts.max() - pd.Timedelta(days=800)).isoformat(),
        order_id=[f"ZO{i}" for i in range(N)])
    pd.concat([tx, twins, old]).to_csv(out / "transactions.csv.gz", index=False)

    gone = judgments.sample(N, random_state=seed).assign(
        product_id=[f"XGONE{i}" for i in range(N)])
    pd.concat([judgments, gone]).to_csv(out / "judgments.csv", index=False)
    return {
        "exact_duplicate_product": set(exact["product_id"]),
        "near_duplicate_title": set(zip(picks["product_id"].iloc[N:2 * N], near["product_id"],
                                        strict=True)),
        "duplicate_customer_id": set(originals["customer_id"]) | set(variants),
        "stale_stock": set(stale["product_id"]),
        "stale_customer": set(old["customer_id"]),
        "judged_product_missing": set(gone["product_id"]),
        "price_below_cost": set(catalog.loc[below, "product_id"]),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_corrupted_demo_world_every_injection_found_and_nothing_else(
        clean: AuditResult, tmp_path: Path, seed: int) -> None:
    injected = corrupt(clean, tmp_path, seed)
    found = _audit(tmp_path)
    for code in CODES:
        if code == "drift":
            continue
        new = found.keys(code) - clean.keys(code)
        assert new == injected.get(code, set()), code
        assert clean.keys(code) <= found.keys(code), f"{code}: a clean finding disappeared"


def test_drift_against_the_previous_audit(clean: AuditResult, tmp_path: Path) -> None:
    write_reports(clean, tmp_path / "before")
    catalog = pd.read_csv(DEMO / "catalog.csv", dtype={"product_id": str})
    catalog.loc[catalog.index[:1500], "brand"] = ""  # brand missing on 30%: a share moving
    catalog.loc[catalog.index[:1500], "price"] *= 3  # the median price moves by more than 20%
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    again = audit_files(tmp_path / "catalog.csv", DEMO / "transactions.csv.gz",
                        DEMO / "judgments.csv", previous=tmp_path / "before" / "audit.json")
    assert {"missing.brand", "price_median"} <= again.keys("drift")
    same = _audit(DEMO, previous=tmp_path / "before" / "audit.json")
    assert same.by_code("drift") is None


def _frames(**columns: object) -> pd.DataFrame:
    base = {"product_id": ["a", "b", "c", "d", "e", "f"], "title": ["t1", "t2", "t3", "t4", "t5",
                                                                    "t6"]}
    return prepare_catalog(pd.DataFrame(base | columns), "<test>")


def _run(catalog: pd.DataFrame, **kwargs: object) -> AuditResult:
    return audit_frames(AuditTables(catalog, **kwargs))


def test_duplicate_ids_and_exact_duplicates() -> None:
    frame = pd.DataFrame({"product_id": ["a", "a", "b", "c"], "title": ["x", "y", "Lamp", "Lamp"],
                          "price": [1, 2, 3, 3]})
    result = _run(prepare_catalog(frame, "<test>"))
    assert result.keys("duplicate_product_id") == {"a"}
    assert result.keys("exact_duplicate_product") == {"c"}
    assert result.by_code("duplicate_product_id").severity == "blocking"


def test_near_duplicate_titles_within_a_category_only() -> None:
    titles = ["Cordless 20V Drill Driver Kit", "cordless  20v drill driver kit!",
              "Cordless 20V Drill Driver Kit", "Garden Hose 50 ft.", "Garden Hose 50 ft.",
              "Garden Rake Steel"]
    cats = ["Tools", "Tools", "Garden", "Garden", "Garden", "Garden"]
    result = _run(_frames(title=titles, category=cats, price=[1, 2, 3, 4, 5, 6]))
    # a/b same category; c has the same title in another category; d/e identical titles
    assert result.keys("near_duplicate_title") == {("a", "b"), ("d", "e")}


def test_duplicate_customers_by_case_width_space_and_unicode_form() -> None:
    tx = pd.DataFrame({"customer_id": ["Ab1", "ab1", "\uff21b1", " Ab1", "é2", "e\u03012", "x"],
                       "product_id": "a", "quantity": 1,
                       "timestamp": pd.Timestamp("2024-01-01"), "unit_price": 1.0})
    result = _run(_frames(), transactions=tx)
    assert result.keys("duplicate_customer_id") == {"Ab1", "ab1", "\uff21b1", " Ab1", "é2",
                                                     "e\u03012"}


def test_stale_stock_customers_and_missing_products() -> None:
    day = pd.Timestamp("2024-06-01")
    tx = pd.DataFrame({"customer_id": ["old", "new", "new"], "product_id": ["a", "b", "c"],
                       "quantity": [1, 1, -1], "unit_price": 1.0,
                       "timestamp": [day - pd.Timedelta(days=400), day, day]})
    catalog = _frames(stock=[5, 5, 5, 0, np.nan, 1])
    judged = pd.DataFrame({"query_id": ["q", "q"], "product_id": ["a", "zz"]})
    result = _run(catalog, transactions=tx, judgments=judged, pinned=("b", "yy"))
    # a: last sale 400 days ago; c: only a return; f: never sold; d: no stock; e: unknown
    assert result.keys("stale_stock") == {"a", "c", "f"}
    assert result.keys("stale_customer") == {"old"}
    assert result.keys("judged_product_missing") == {"zz"}
    assert result.keys("pinned_product_missing") == {"yy"}


def test_stale_price_where_a_timestamp_column_exists() -> None:
    stamps = ["2020-01-01", "2024-05-01", None, "2024-05-01", "2024-05-01", "2019-03-03"]
    result = audit_frames(AuditTables(_frames(price_updated_at=stamps)),
                          AuditSettings(as_of="2024-06-01"))
    assert result.keys("stale_price") == {"a", "f"}


def test_inconsistencies() -> None:
    catalog = _frames(price=[10, 10, 10, 10, 10, 1000], cost=[12, 5, 5.1, 4.9, 5, 500],
                      return_rate=[0.05, 1.4, 0.05, 0.05, 0.06, 0.9],
                      stock=[1, 0, -2, 3, 3, 3], daily_sales=[1, 1, 1, 0, np.nan, 1],
                      category=["A"] * 5 + ["B"])
    result = _run(catalog)
    assert result.keys("price_below_cost") == {"a"}
    assert result.keys("return_rate_out_of_range") == {"b"}
    assert result.keys("negative_value") == {"c"}
    assert result.keys("stock_without_velocity") == {"d", "e"}
    assert result.keys("single_product_category") == {"B"}
    assert result.by_code("return_rate_out_of_range").severity == "blocking"


def test_robust_outliers_margin_return_rate_and_price_scale() -> None:
    n = 40
    rng = np.random.default_rng(3)
    price = np.r_[rng.uniform(9, 11, n - 1), 300.0]
    cost = price * np.r_[rng.uniform(0.45, 0.55, n - 2), 0.02, 0.5]
    rate = np.r_[rng.uniform(0.04, 0.06, n - 1), 0.5]
    frame = prepare_catalog(pd.DataFrame({
        "product_id": [f"p{i}" for i in range(n)], "title": [f"t{i}" for i in range(n)],
        "price": price, "cost": cost, "return_rate": rate, "category": "A"}), "<test>")
    result = _run(frame)
    assert result.keys("margin_outlier") == {f"p{n - 2}"}
    assert result.keys("return_rate_high") == {f"p{n - 1}"}
    assert result.keys("price_scale_outlier") == {f"p{n - 1}"}


def test_coverage_and_currency() -> None:
    result = _run(_frames(price=[1, 2, 3, np.nan, np.nan, np.nan],
                          currency=["USD", "usd", "EUR", "USD", "USD", "USD"]))
    shares = result.coverage["missing_share"]
    assert shares["price"] == 0.5 and shares["cost"] == 1.0
    assert "cost" in result.keys("field_mostly_missing")
    assert "price" not in result.keys("field_mostly_missing")
    assert result.keys("mixed_currency") == {"USD", "EUR"}


def test_severity_overrides_and_errors() -> None:
    catalog = _frames(price=[1, 2, 3, 4, 5, 6], cost=[2, 1, 1, 1, 1, 1])
    up = audit_frames(AuditTables(catalog),
                      AuditSettings(severity=(("price_below_cost", "blocking"),)))
    assert [f.code for f in up.blocking] == ["price_below_cost"]
    off = audit_frames(AuditTables(catalog), AuditSettings(severity=(("price_below_cost", "off"),)))
    assert off.by_code("price_below_cost") is None
    with pytest.raises(ArgumentError, match="unknown audit finding code"):
        audit_frames(AuditTables(catalog), AuditSettings(severity=(("nope", "off"),)))


def test_unparsable_number_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text("product_id,title,price\na,x,1\nb,y,cheap\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"catalog.csv:3: column 'price'.*not a number"):
        audit_files(path)


def test_cli_writes_markdown_json_html_and_exits_1_on_blocking(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text("product_id,title,category,return_rate\na,Lamp,L,0.1\na,Lamp 2,L,1.5\n",
                    encoding="utf-8")
    code = main(["audit", "--catalog", str(path), "--out", str(tmp_path / "report")])
    assert code == 1
    assert "BLOCKING duplicate_product_id" in capsys.readouterr().out
    report = json.loads((tmp_path / "report" / "audit.json").read_text())
    assert {f["code"] for f in report["findings"]} >= {"duplicate_product_id",
                                                       "return_rate_out_of_range"}
    assert "data:image/png;base64," in (tmp_path / "report" / "audit.html").read_text()
    assert "return_rate_out_of_range" in (tmp_path / "report" / "audit.md").read_text()
    assert main(["audit", "--catalog", str(path), "--out", str(tmp_path / "r2"),
                 "--severity", "duplicate_product_id=warning",
                 "--severity", "return_rate_out_of_range=off"]) == 0


def test_build_stops_on_blocking_findings_before_the_work(tmp_path: Path) -> None:
    inputs = BuildInputs(DEMO / "catalog.csv", DEMO / "judgments.csv",
                         DEMO / "transactions.csv.gz", DEMO / "weights.yaml")
    settings = BuildSettings(audit_severity=(("price_below_cost", "blocking"),))
    with pytest.raises(AuditError, match=r"BLOCKING price_below_cost \(41\)"):
        build(inputs, tmp_path / "bundle", settings)


@pytest.mark.realdata
def test_audit_of_the_public_catalogs() -> None:
    public = load_benchmark("audit_public")
    uci = audit_frames(public.uci_tables(require_file(ONLINE_RETAIL))[0])
    assert uci.by_code("return_rate_out_of_range").count == 8  # returns of units sold earlier
    assert "81953B" in uci.keys("exact_duplicate_product")
    hd = audit_frames(public.home_depot_tables(require_file(HOME_DEPOT))[0])
    assert hd.by_code("exact_duplicate_product").count == 1193
    assert not hd.blocking
