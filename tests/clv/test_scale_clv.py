"""CLV on a Dask LocalCluster (2 worker processes) against the one-process path: the RFM summary
row for row, the exclusion report summed over partitions, BG/NBD + Gamma-Gamma parameters within
1e-9 relative, per-customer CLV and product CLV affinity."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clv.errors import DataError
from clv.model import CLVModel
from clv.rfm import rfm_summary
from clv.scale import fit_clv, rfm_summary_partitioned
from clv.segments import product_clv_affinity
from clv.transactions import (
    UCI_ONLINE_RETAIL_COLUMNS,
    UCI_ONLINE_RETAIL_NON_PRODUCTS,
    load_transactions,
)
from tests.conftest import ONLINE_RETAIL, require_file

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """Two real worker processes, one thread each, closed after the module."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address="127.0.0.1:0", host="127.0.0.1") as cluster, \
            distributed.Client(cluster) as dask_client:
        yield dask_client


def synthetic_lines(n_customers: int, seed: int) -> pd.DataFrame:
    """Orders with returns against earlier orders, several lines per order; customers differ in
    how often they buy and how much they spend (so BG/NBD and Gamma-Gamma are identified)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_customers):
        start = pd.Timestamp("2023-01-01") + pd.Timedelta(days=int(rng.integers(0, 200)))
        spend = float(rng.gamma(4.0, 0.25))
        for o in range(int(rng.geometric(rng.beta(2.0, 4.0)))):
            when = start + pd.Timedelta(hours=int(rng.integers(0, 24 * 300)))
            order = f"o{c}-{o}"
            for _ in range(int(rng.integers(1, 4))):
                q = int(rng.integers(1, 5))
                price = round(spend * float(rng.gamma(6.0, 3.0)) + 0.5, 2)
                product = f"p{int(rng.zipf(1.6)) % 40}"
                rows.append((f"c{c:05d}", when.isoformat(), product, q, price, order))
                if rng.random() < 0.08:
                    later = when + pd.Timedelta(days=int(rng.integers(1, 20)))
                    rows.append((f"c{c:05d}", later.isoformat(), product, -q, price, order))
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "product_id", "quantity",
                                       "unit_price", "order_id"])


def write_parts(frame: pd.DataFrame, directory: Path, n: int) -> Path:
    """The frame in ``n`` Parquet files, split by row position (a customer spans files)."""
    directory.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(frame)), n)):
        frame.iloc[part].to_parquet(directory / f"part-{i:03d}.parquet", index=False)
    return directory


def test_synthetic_rfm_clv_and_affinity_equal_one_process(client: object,
                                                         tmp_path: Path) -> None:
    frame = synthetic_lines(600, seed=3)
    frame.loc[5, "unit_price"] = np.nan  # excluded, counted in the report
    frame.loc[9, "customer_id"] = None
    shuffled = frame.sample(frac=1.0, random_state=2)
    data = write_parts(shuffled, tmp_path / "tx", 4)
    shuffled.to_parquet(tmp_path / "whole.parquet", index=False)
    single_tx, single_report = load_transactions(tmp_path / "whole.parquet")
    single = rfm_summary(single_tx)

    summary, report = rfm_summary_partitioned(client, data, tmp_path / "scratch", n_buckets=3)
    pd.testing.assert_frame_equal(summary, single, check_exact=True)
    assert summary.attrs == single.attrs
    assert report.excluded == single_report.excluded == {"missing customer_id": 1,
                                                         "missing unit_price": 1}
    assert report.total_rows == single_report.total_rows == len(frame)
    assert not (tmp_path / "scratch").exists()

    products = sorted(single_tx["product_id"].unique()) + ["never-sold"]
    result = fit_clv(client, str(data / "*.parquet"), tmp_path / "scratch", n_buckets=3,
                     product_ids=products)
    model = CLVModel().fit(single)
    for name in ("bgnbd_params_", "gg_params_"):
        ours, theirs = getattr(result.model, name), getattr(model, name)
        assert ours is not None and theirs is not None
        for key in theirs:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-9, abs=0), (name, key)
    assert result.model.mean_spend_ == pytest.approx(model.mean_spend_, rel=1e-12)
    assert result.model.log_likelihood_ == pytest.approx(model.log_likelihood_, rel=1e-12)
    assert result.model.freq_monetary_corr_ == pytest.approx(model.freq_monetary_corr_,
                                                             rel=1e-9)
    assert (result.model.n_customers_, result.model.n_repeat_customers_) == \
        (model.n_customers_, model.n_repeat_customers_)
    assert result.n_customers == len(single)

    clv = pd.Series(model.customer_clv(single), index=single.index)
    assert result.customers is not None
    np.testing.assert_allclose(result.customers.to_numpy(), clv.to_numpy(), rtol=1e-9)
    assert result.customers.index.tolist() == clv.index.tolist()
    affinity, buyers = product_clv_affinity(single_tx, clv, products)
    assert result.affinity is not None
    np.testing.assert_allclose(result.affinity["affinity"].to_numpy(), affinity, rtol=1e-9)
    np.testing.assert_array_equal(result.affinity["buyers"].to_numpy(), buyers)
    assert buyers[-1] == 0 and buyers[:-1].sum() > 0


def test_bad_line_names_its_file_and_line(client: object, tmp_path: Path) -> None:
    data = tmp_path / "tx"
    data.mkdir()
    good = "customer_id,timestamp,product_id,quantity,unit_price\nc1,2024-01-01,p,1,2.0\n"
    (data / "a.csv").write_text(good)
    (data / "b.csv").write_text(good + "c2,2024-01-02,p,one,2.0\n")
    with pytest.raises(DataError, match="quantity") as info:
        rfm_summary_partitioned(client, data, tmp_path / "scratch")
    assert str(info.value.file).endswith("b.csv") and info.value.line == 3


@pytest.mark.realdata
def test_uci_online_retail_rfm_identical_row_for_row(client: object, tmp_path: Path) -> None:
    """UCI Online Retail split into 3 CSV files by line: the partitioned summary, report and
    CLV parameters equal those of the whole file loaded in one process."""
    path = require_file(ONLINE_RETAIL)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as source:
        rows = list(csv.reader(source))
    data = tmp_path / "uci"
    data.mkdir()
    body = rows[1:]
    for i, part in enumerate(np.array_split(np.arange(len(body)), 3)):
        with open(data / f"part-{i}.csv", "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(rows[0])
            writer.writerows(body[j] for j in part)
    tx, single_report = load_transactions(path, columns=UCI_ONLINE_RETAIL_COLUMNS,
                                          non_product_ids=UCI_ONLINE_RETAIL_NON_PRODUCTS)
    single = rfm_summary(tx)
    summary, report = rfm_summary_partitioned(
        client, data, tmp_path / "scratch", columns=UCI_ONLINE_RETAIL_COLUMNS,
        non_product_ids=UCI_ONLINE_RETAIL_NON_PRODUCTS)
    pd.testing.assert_frame_equal(summary, single, check_exact=True)
    assert summary.attrs == single.attrs
    assert report.excluded == single_report.excluded
    assert report.total_rows == single_report.total_rows

    result = fit_clv(client, data, tmp_path / "scratch", columns=UCI_ONLINE_RETAIL_COLUMNS,
                     non_product_ids=UCI_ONLINE_RETAIL_NON_PRODUCTS)
    model = CLVModel().fit(single)
    for key, value in model.bgnbd_params_.items():
        assert result.model.bgnbd_params_[key] == pytest.approx(value, rel=1e-9, abs=0)
    assert model.gg_params_ is not None and result.model.gg_params_ is not None
    for key, value in model.gg_params_.items():
        assert result.model.gg_params_[key] == pytest.approx(value, rel=1e-9, abs=0)


def test_cli_clv_fit_on_the_cluster_equals_one_process(client: object, tmp_path: Path) -> None:
    """`marginrank clv fit --cluster ADDRESS` on 3 Parquet parts against `clv fit` of the
    whole file in one process: same parameters (1e-9), customers and affinity."""
    from ranking.app.cli import main

    frame = synthetic_lines(300, seed=5)
    data = write_parts(frame, tmp_path / "tx", 3)
    frame.to_parquet(tmp_path / "whole.parquet", index=False)
    assert main(["clv", "fit", "--transactions", str(data / "*.parquet"), "--out",
                 str(tmp_path / "dask"), "--cluster", client.scheduler.address]) == 0
    assert main(["clv", "fit", "--transactions", str(tmp_path / "whole.parquet"), "--out",
                 str(tmp_path / "one")]) == 0
    ours, theirs = (CLVModel.load(tmp_path / d / "clv.json") for d in ("dask", "one"))
    for key, value in theirs.bgnbd_params_.items():
        assert ours.bgnbd_params_[key] == pytest.approx(value, rel=1e-9, abs=0)
    customers = [pd.read_parquet(tmp_path / d / "customers").sort_index() for d in ("dask", "one")]
    pd.testing.assert_frame_equal(customers[0], customers[1], rtol=1e-9)
    affinity = [pd.read_parquet(tmp_path / d / "product_affinity.parquet") for d in ("dask", "one")]
    pd.testing.assert_frame_equal(affinity[0], affinity[1], rtol=1e-9)
    # several files without --cluster: a clear error, not a silent first-file fit
    assert main(["clv", "fit", "--transactions", str(data), "--out", str(tmp_path / "x")]) == 2


def test_typed_parquet_takes_the_vectorized_path_with_equal_results(client: object,
                                                                     tmp_path: Path) -> None:
    """Typed Parquet (datetime timestamps, integer quantities, clean ASCII ids) is validated by
    clv.scale.fast_validate, not the reference: its lines and report equal the reference's,
    and the summary (gathered, and written in parts) equals the one-process summary."""
    import pyarrow.parquet as pq

    from clv.scale import fast_validate, write_rfm_summary
    from clv.transactions import validate_transactions

    frame = synthetic_lines(500, seed=7)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame.loc[3, "unit_price"] = np.nan
    frame.loc[4, "unit_price"] = -1.0
    frame.loc[6, "quantity"] = 0
    frame.loc[8, "customer_id"] = None
    shuffled = frame.sample(frac=1.0, random_state=4)
    data = write_parts(shuffled, tmp_path / "tx", 4)
    for part in sorted(data.glob("*.parquet")):
        fast = fast_validate(pq.read_table(part), str(part))
        assert fast is not None
        lines, report = fast
        ref_lines, ref_report = validate_transactions(pd.read_parquet(part), source=str(part))
        assert report.to_dict() == ref_report.to_dict()
        ours = lines.to_pandas().sort_values(["customer_id", "timestamp"], kind="stable",
                                             ignore_index=True)
        pd.testing.assert_frame_equal(ours, ref_lines, check_dtype=False, check_exact=True)
    shuffled.to_parquet(tmp_path / "whole.parquet", index=False)
    single_tx, single_report = load_transactions(tmp_path / "whole.parquet")
    single = rfm_summary(single_tx)
    summary, report = rfm_summary_partitioned(client, data, tmp_path / "scratch", n_buckets=3)
    pd.testing.assert_frame_equal(summary, single, check_exact=True)
    assert summary.attrs == single.attrs
    assert report.excluded == single_report.excluded == {
        "missing customer_id": 1, "missing unit_price": 1, "non-positive unit_price": 1,
        "zero quantity": 1}
    attrs, report = write_rfm_summary(client, data, tmp_path / "scratch", tmp_path / "rfm",
                                      n_buckets=5)
    parts = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "rfm").glob("*.parquet"))])
    pd.testing.assert_frame_equal(parts.sort_index(), single, check_exact=True)
    assert attrs == {**single.attrs, "n_customers": len(single)}
    assert report.total_rows == len(frame)


def test_ids_to_normalize_or_text_times_take_the_reference_path(tmp_path: Path) -> None:
    """What the vectorized check cannot vouch for goes to validate_transactions."""
    import pyarrow as pa

    from clv.scale import fast_validate

    good = {"customer_id": ["c1", "c2"], "timestamp": pd.to_datetime(["2024-01-01"] * 2),
            "product_id": ["p", "q"], "quantity": [1, 2], "unit_price": [1.0, 2.0],
            "order_id": ["o1", "o2"]}
    assert fast_validate(pa.Table.from_pandas(pd.DataFrame(good)), "x") is not None
    for column, values in (("customer_id", [" c1", "c2"]), ("product_id", ["caf\u00e9", "q"]),
                           ("order_id", ["", "o2"]), ("timestamp", ["2024-01-01"] * 2)):
        bad = pd.DataFrame({**good, column: values})
        assert fast_validate(pa.Table.from_pandas(bad), "x") is None, column
    late = pd.DataFrame({**good, "timestamp": pd.to_datetime(["2024-01-01", "2999-01-01"])})
    assert fast_validate(pa.Table.from_pandas(late), "x") is None  # the reference notes it
