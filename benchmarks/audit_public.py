"""The data audit on the public datasets: UCI Online Retail and the Home Depot catalog.

    .venv/bin/python benchmarks/audit_public.py --dataset uci
    .venv/bin/python benchmarks/audit_public.py --dataset home-depot

Neither file is a catalog in our contract, so one is derived and the derivation is stated:

- **UCI Online Retail**: transactions through the UCI loader (``UCI_ONLINE_RETAIL_COLUMNS``,
  non-product stock codes left out, lines without a customer excluded and counted). One product
  per StockCode of those lines: title = its most frequent Description, price = median unit price,
  return_rate = units returned / units sold (cancellations), daily_sales = units sold in the last
  90 days / 90. No cost, stock or category exists, so those checks have nothing to look at.
- **Home Depot** (``train.csv``): one product per product_uid with the title first seen, and the
  judgments (search term, product_uid); no category, so near-duplicate titles are searched
  across the whole catalog, and no business field.

Writes ``docs/audit_<dataset>/audit.{md,json,html}`` and prints the findings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clv.tables import read_table  # noqa: E402
from clv.transactions import (  # noqa: E402
    UCI_ONLINE_RETAIL_COLUMNS,
    UCI_ONLINE_RETAIL_NON_PRODUCTS,
    load_transactions,
)
from objectives.audit import AuditTables, audit_frames, prepare_catalog  # noqa: E402
from objectives.audit_report import write_reports  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
UCI = DATA / "uci-online-retail" / "online_retail.csv.gz"
HOME_DEPOT = DATA / "home-depot-search-relevance" / "train.csv"


def uci_tables(path: Path = UCI) -> tuple[AuditTables, list[str]]:
    tx, report = load_transactions(path, columns=UCI_ONLINE_RETAIL_COLUMNS,
                                   non_product_ids=UCI_ONLINE_RETAIL_NON_PRODUCTS)
    raw = read_table(path, dtype={"StockCode": str, "InvoiceNo": str})
    titles = (raw.dropna(subset=["Description"]).groupby("StockCode")["Description"]
              .agg(lambda s: s.value_counts().index[0]))
    sold = tx[tx["quantity"] > 0].groupby("product_id")["quantity"].sum()
    returned = -tx[tx["quantity"] < 0].groupby("product_id")["quantity"].sum()
    recent = tx[(tx["quantity"] > 0)
                & (tx["timestamp"] > tx["timestamp"].max() - pd.Timedelta(days=90))]
    ids = pd.Index(tx["product_id"].unique())
    catalog = pd.DataFrame({
        "product_id": ids,
        "title": titles.reindex(ids).fillna("(no description)").to_numpy(),
        "price": tx.groupby("product_id")["unit_price"].median().reindex(ids).to_numpy(),
        "return_rate": (returned.reindex(ids).fillna(0) / sold.reindex(ids)).to_numpy(),
        "daily_sales": (recent.groupby("product_id")["quantity"].sum().reindex(ids).fillna(0)
                        / 90).to_numpy(),
    })
    never_sold = int(sold.reindex(ids).isna().sum())
    notes = [report.summary(), f"catalog derived from the kept lines: {len(catalog):,} stock "
             f"codes; return_rate = units returned / units sold ({never_sold:,} codes only "
             "returned, never sold: rate undefined)"]
    return AuditTables(prepare_catalog(catalog, f"{path} (derived catalog)"), tx, None,
                       sources={"transactions": str(path),
                                "catalog": "derived from the transactions"}), notes


def home_depot_tables(path: Path = HOME_DEPOT) -> tuple[AuditTables, list[str]]:
    raw = read_table(path, encoding="latin-1", dtype={"product_uid": str})
    products = raw.drop_duplicates("product_uid")
    catalog = prepare_catalog(pd.DataFrame({"product_id": products["product_uid"],
                                            "title": products["product_title"]}),
                              f"{path} (distinct products)")
    judgments = pd.DataFrame({"query_id": raw["search_term"].astype(str),
                              "product_id": raw["product_uid"].astype(str)})
    notes = [f"{len(catalog):,} products, {judgments['query_id'].nunique():,} queries, "
             f"{len(judgments):,} judgments"]
    return AuditTables(catalog, None, judgments, sources={"train.csv": str(path)}), notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("uci", "home-depot"), required=True)
    parser.add_argument("--out", type=Path, help="report folder (default docs/audit_<dataset>)")
    args = parser.parse_args()
    name = args.dataset.replace("-", "_")
    tables, notes = uci_tables() if args.dataset == "uci" else home_depot_tables()
    start = time.perf_counter()
    result = audit_frames(tables)
    seconds = time.perf_counter() - start
    title = (f"Data audit: {args.dataset}\n\nCommand: `.venv/bin/python "
             f"benchmarks/audit_public.py --dataset {args.dataset}`\n\n"
             + "\n".join(f"- {n}" for n in notes) + f"\n- audit time {seconds:.1f} s")
    paths = write_reports(result, args.out or ROOT / "docs" / f"audit_{name}", title)
    print("\n".join(notes))
    print("\n".join(result.summary_lines()))
    for f in result.findings:
        print(f"  {f.code} e.g. {f.examples[:2]}")
    print(f"audit {seconds:.1f} s; report: {', '.join(str(p) for p in paths)}")


if __name__ == "__main__":
    main()
