"""``marginrank clv fit``: customer lifetime value from a (partitioned) transactions dataset.

Without ``--cluster`` the file is loaded and fitted in this process, as a build does. With it,
the dataset (a directory or glob of Parquet / CSV files) is validated, summarized, fitted and
scored out of core on Dask (:mod:`clv.scale`). Either way ``--out`` receives ``clv.json`` (the
model, as a bundle stores it), ``customers/`` (Parquet: RFM, CLV per customer),
``product_affinity.parquet`` and ``report.json`` (the exclusion report, timings).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ranking.app.cluster import add_cluster_argument, dask_client
from ranking.app.help_text import plain_doc, sentence

HELP = "customer lifetime value from partitioned transactions (clv fit)"


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``clv`` group and its one action, ``fit``."""
    parser = subparsers.add_parser("clv", help=HELP, description=sentence(HELP))
    sub = parser.add_subparsers(required=True, metavar="ACTION")
    fit = sub.add_parser("fit", help="fit BG/NBD + Gamma-Gamma and score every customer",
                         description=plain_doc(__doc__.split("\n\n")[1]))
    fit.add_argument("--transactions", required=True, metavar="PATH_OR_GLOB",
                     help="a transactions file, a directory of Parquet/CSV parts or a glob "
                          "(quote it)")
    fit.add_argument("--out", type=Path, required=True, help="output folder")
    fit.add_argument("--freq", choices=("D", "W"), default="D",
                     help="time unit of the RFM summary: days or weeks (default: D)")
    fit.add_argument("--now", default=None,
                     help="exclude lines dated after this moment (ISO 8601)")
    fit.add_argument("--uci", action="store_true",
                     help="the files are UCI Online Retail's layout (columns and non-product "
                          "codes mapped)")
    add_cluster_argument(fit)
    fit.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Fit, score and write ``--out``; in this process, or on Dask with ``--cluster``."""
    import pandas as pd

    from clv.model import CLVModel
    from clv.transactions import UCI_ONLINE_RETAIL_COLUMNS, UCI_ONLINE_RETAIL_NON_PRODUCTS

    columns = UCI_ONLINE_RETAIL_COLUMNS if args.uci else None
    non_products = UCI_ONLINE_RETAIL_NON_PRODUCTS if args.uci else ()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with dask_client(args.cluster) as client:
        if client is None:
            from clv.rfm import rfm_summary
            from clv.scale import transaction_files
            from clv.segments import product_clv_affinity
            from clv.transactions import load_transactions

            files = transaction_files(args.transactions)
            if len(files) > 1:
                from clv.errors import ArgumentError

                raise ArgumentError(f"{len(files)} files: a partitioned dataset needs --cluster "
                                    "(local:N or a scheduler address)")
            tx, report = load_transactions(files[0], now=args.now, columns=columns,
                                           non_product_ids=non_products)
            summary = rfm_summary(tx, freq=args.freq)
            model = CLVModel(time_unit=args.freq).fit(summary)
            clv = model.customer_clv(summary)
            (out / "customers").mkdir(exist_ok=True)
            summary.assign(clv=clv).to_parquet(out / "customers" / "part-00000.parquet")
            products = sorted(tx["product_id"].unique())
            affinity, buyers = product_clv_affinity(tx, pd.Series(clv, index=summary.index),
                                                    products)
            table = pd.DataFrame({"affinity": affinity, "buyers": buyers},
                                 index=pd.Index(products, name="product_id"))
            n_customers, timings = len(summary), {}
        else:
            from clv.scale import fit_clv

            result = fit_clv(client, args.transactions, out / ".scratch", columns=columns,
                             non_product_ids=non_products, now=args.now, freq=args.freq,
                             customers_out=out / "customers")
            model, report, table = result.model, result.report, result.affinity
            n_customers, timings = result.n_customers, result.timings
    model.save(out / "clv.json")
    table.to_parquet(out / "product_affinity.parquet")
    seconds = time.perf_counter() - start
    (out / "report.json").write_text(json.dumps({
        "transactions": str(args.transactions), "cluster": args.cluster,
        "exclusions": report.to_dict(), "n_customers": n_customers,
        "seconds": round(seconds, 2), "timings": timings}, indent=2))
    params = ", ".join(f"{k}={v:.4g}" for k, v in model.bgnbd_params_.items())
    print(f"{report.summary()}\n{n_customers:,} customers; BG/NBD {params}; "
          f"{seconds:.1f} s\nwrote {out / 'clv.json'}, {out / 'customers'}/, "
          f"{out / 'product_affinity.parquet'}")
    return 0
