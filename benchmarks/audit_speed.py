"""How long the data audit takes on a large seeded synthetic catalog (issue 21: 1M products in
at most 60 s on the 2-core machine).

    .venv/bin/python benchmarks/audit_speed.py --products 1000000 --seed 0 [--out docs/audit_speed]

The catalog is generated in memory (titles from a vocabulary of brands, nouns and sizes, so
near-duplicate buckets are realistic; 200 leaf categories; prices, costs, return rates, stock and
sales), with 300,000 transaction lines over 50,000 customers and 20,000 judgments. The audit is
timed from frames (``audit_frames``, what ``build`` runs) after one warm-up call on a small
catalog that compiles the Numba kernels (cached on disk in later runs). Prints and writes the
report ``<out>.md`` and ``<out>.json`` (default ``docs/audit_speed``): wall and CPU time of the
audit and its findings, with the command and environment at the top (:mod:`report_env`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from report_env import (  # noqa: E402
    command,
    environment,
    finish,
    header,
    report_paths,
    write_report,
)

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


#: Issue 21: 1M products audited in at most this many seconds (wall).
TARGET_S = 60.0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1_000_000, help="catalog size")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "docs" / "audit_speed",
                        help="report path prefix (.md, .json)")
    args = parser.parse_args(argv)
    cmd, env = command(__file__, argv), environment("numpy", "pandas", "numba")
    audit_frames(synthetic(2000, args.seed + 1))  # compile / load the Numba kernels
    tables = synthetic(args.products, args.seed)
    start, start_cpu = time.perf_counter(), time.process_time()
    result = audit_frames(tables)
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    env = finish(env)
    verdict = "met" if seconds <= TARGET_S or args.products < 1_000_000 else "missed"
    lines = header("The data audit on a large synthetic catalog", cmd, env) + [
        f"Audit of {args.products:,} seeded synthetic products, {len(tables.transactions):,} "
        f"transaction lines and {len(tables.judgments):,} judgments (`audit_frames`, what "
        f"`build` runs), after a warm-up on a small catalog: **{seconds:.1f} s** wall, "
        f"{cpu:.1f} s CPU.", "",
        f"Target (1M products in at most {TARGET_S:g} s): "
        + (f"**{verdict}**." if args.products >= 1_000_000 else "not judged below 1M products."),
        "", "Findings (the catalog is synthetic; they show the checks ran):", "",
        *[f"- {line}" for line in result.summary_lines()]]
    print("\n".join(lines))
    report = write_report(args.out, lines, {
        "products": args.products, "transactions": len(tables.transactions),
        "judgments": len(tables.judgments), "seconds": seconds, "cpu_seconds": cpu,
        "target_s": TARGET_S, "summary": result.summary_lines()}, cmd, env)
    print("written: " + ", ".join(map(str, report_paths(args.out))))
    return report


if __name__ == "__main__":
    main()
