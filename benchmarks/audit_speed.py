"""How long the data audit takes on a large seeded synthetic catalog (issue 21: 1M products in
at most 60 s on the 2-core machine).

    .venv/bin/python benchmarks/audit_speed.py --products 1000000 --seed 0

The catalog is generated in memory (titles from a vocabulary of brands, nouns and sizes, so
near-duplicate buckets are realistic; 200 leaf categories; prices, costs, return rates, stock and
sales), with 300,000 transaction lines over 50,000 customers and 20,000 judgments. The audit is
timed from frames (``audit_frames``, what ``build`` runs) after one warm-up call on a small
catalog that compiles the Numba kernels (cached on disk in later runs). Prints the timing and
the finding counts; writes nothing.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from objectives.audit import AuditTables, audit_frames, prepare_catalog  # noqa: E402

BRANDS = [f"Brand{i}" for i in range(300)]
NOUNS = ["Drill", "Hammer", "Lamp", "Faucet", "Tile", "Paint", "Hose", "Saw", "Outlet", "Rake",
         "Shelf", "Door", "Lock", "Fan", "Grout", "Primer", "Cable", "Switch", "Vanity", "Sink"]
ADJS = ["Cordless", "Steel", "Brushed", "Matte", "Heavy-Duty", "Compact", "Outdoor", "LED",
        "Smart", "Classic", "Modern", "Oak", "White", "Black", "Copper", "Quiet"]


def synthetic(n: int, seed: int) -> AuditTables:
    """A seeded catalog of ``n`` products with transactions and judgments."""
    rng = np.random.default_rng(seed)
    brand = rng.choice(BRANDS, n)
    title = (pd.Series(brand) + " " + rng.choice(ADJS, n) + " " + rng.choice(ADJS, n) + " "
             + rng.choice(NOUNS, n) + " " + rng.integers(1, 500, n).astype(str) + " in. Model "
             + rng.integers(0, 10**6, n).astype(str))
    price = np.round(rng.lognormal(3.0, 1.0, n), 2)
    catalog = prepare_catalog(pd.DataFrame({
        "product_id": np.char.add("P", np.arange(n).astype(str)),
        "title": title, "category": np.char.add("Dept/Cat", rng.integers(0, 200, n).astype(str)),
        "brand": brand, "price": price, "cost": np.round(price * rng.uniform(0.4, 0.9, n), 2),
        "return_rate": np.round(rng.beta(2, 30, n), 3), "stock": rng.integers(0, 500, n),
        "daily_sales": np.round(rng.gamma(1.0, 2.0, n), 2),
    }), "<synthetic>")
    lines = 300_000
    tx = pd.DataFrame({
        "customer_id": np.char.add("C", rng.integers(0, 50_000, lines).astype(str)),
        "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 730, lines),
                                                                  unit="D"),
        "product_id": catalog["product_id"].to_numpy()[rng.integers(0, n, lines)],
        "quantity": rng.integers(1, 4, lines), "unit_price": 10.0,
    })
    judgments = pd.DataFrame({"query_id": np.char.add("Q", rng.integers(0, 2000, 20_000)
                                                      .astype(str)),
                              "product_id": catalog["product_id"].to_numpy()[
                                  rng.integers(0, n, 20_000)]})
    return AuditTables(catalog, tx, judgments, sources={"catalog": f"synthetic n={n} seed={seed}"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"command: {' '.join(sys.argv)}")
    print(f"python {platform.python_version()}, {platform.machine()}, {platform.processor()}")
    audit_frames(synthetic(2000, args.seed + 1))  # compile / load the Numba kernels
    tables = synthetic(args.products, args.seed)
    start = time.perf_counter()
    result = audit_frames(tables)
    seconds = time.perf_counter() - start
    for line in result.summary_lines():
        print(line)
    print(f"audit of {args.products:,} products, {len(tables.transactions):,} transaction lines, "
          f"{len(tables.judgments):,} judgments: {seconds:.1f} s")


if __name__ == "__main__":
    main()
