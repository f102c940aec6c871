"""The impression log in process: a real ranker, the real writer thread and real Parquet files,
read back through the event contract's own loader."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ranking.app.event_log import IMPRESSIONS_DIR, ImpressionLog, propensity
from ranking.experiments.events import event_files, load_events, query_hash
from ranking.ranker import Ranker
from tests.events_support import experiment_config, shared_bundle, wait_until


@pytest.fixture(scope="module")
def ranker(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Ranker:
    bundle = shared_bundle(small_world, tmp_path_factory)
    ranker = Ranker.load(bundle)
    ranker.reload_config(experiment_config(bundle, tmp_path_factory.mktemp("cfg") / "w.yaml"))
    return ranker


def search_and_log(log: ImpressionLog, ranker: Ranker, rid: str, query: str,
                   customer: str | None, k: int = 10) -> list:
    results = ranker.search(query, customer_id=customer, k=k)
    assert log.record(rid, query, customer, results, ranker.serving, ranker.customers)
    return results


def test_rows_are_what_the_search_showed(ranker: Ranker, tmp_path: Path) -> None:
    customers = [str(c) for c in ranker.customers.ids[:40]]
    shown = {}
    with ImpressionLog(tmp_path, bundle_version="b-1") as log:
        for i, customer in enumerate([*customers, None]):
            shown[f"r{i}"] = (customer, search_and_log(log, ranker, f"r{i}", "cordless drill",
                                                       customer))
    assert log.counters.searches_logged == len(shown) and log.counters.dropped == 0
    rows = load_events(tmp_path).impressions.to_pylist()
    assert len(rows) == sum(len(results) for _, results in shown.values())
    serving = ranker.serving
    shares = {"control": 0.5, "margin_push": 0.3, None: pytest.approx(0.2)}
    arms_seen, segments_seen = set(), set()
    for row in rows:
        customer, results = shown[row["request_id"]]
        hit = results[row["position"] - 1]
        assert (row["product_id"], row["score"]) == (hit.product_id, hit.score)
        assert row["customer_id"] == customer and row["arm"] == hit.arm
        assert row["query"] == "cordless drill" and row["query_hash"] == query_hash(
            "cordless drill")
        assert row["config_version"] == serving.version and row["bundle_version"] == "b-1"
        assert row["experiment"] == "margin_push"
        segment = serving.segment_index(ranker.customers.quantile_of(customer))
        assert row["segment"] == serving.segment_names[segment]
        segments_seen.add(row["segment"])
        # Propensity is the item-position one of exploration (off here), never an arm share.
        assert row["propensity"] is None and row["randomized"] is None
        assert customer is None or hit.arm in shares
        arms_seen.add(hit.arm)
    assert arms_seen == {"control", "margin_push", None}  # 40 customers reach every group
    assert segments_seen == {"top", "middle", None}


def test_a_search_that_showed_nothing_is_one_row(ranker: Ranker, tmp_path: Path) -> None:
    with ImpressionLog(tmp_path) as log:
        assert search_and_log(log, ranker, "empty", "zzqqx", "C00001") == []
    (row,) = load_events(tmp_path).impressions.to_pylist()
    assert row["position"] == -1 and row["product_id"] is None
    assert row["arm"] == ranker.serving.arm_names[ranker.serving.arm_index("C00001")]


def test_propensity_is_null_without_randomization(ranker: Ranker, small_world: Path,
                                                   tmp_path_factory: pytest.TempPathFactory
                                                   ) -> None:
    assert propensity(ranker.serving, None, "control") is None  # anonymous
    assert propensity(ranker.serving, "C1", "margin_push") == 0.3
    assert propensity(ranker.serving, "C1", None) == pytest.approx(0.2)  # past the last arm
    bundle = shared_bundle(small_world, tmp_path_factory)
    plain = ranker.variant(bundle / "weights.yaml")  # no experiment runs
    assert plain.serving.experiment is None
    assert propensity(plain.serving, "C1", None) is None


def test_a_full_queue_drops_and_counts_never_blocks(ranker: Ranker, tmp_path: Path) -> None:
    log = ImpressionLog(tmp_path, max_pending=5)  # not started: nothing drains the queue
    results = ranker.search("drill", k=5)
    taken = [log.record(f"r{i}", "drill", None, results, ranker.serving) for i in range(8)]
    assert taken == [True] * 5 + [False] * 3
    assert log.counters.dropped == 3 and log.counters.pending == 5
    log.start()
    counters = log.close()
    assert (counters.searches_logged, counters.dropped, counters.files) == (5, 3, 1)
    assert not log.record("late", "drill", None, results, ranker.serving)  # closed: dropped
    assert log.counters.dropped == 4
    assert sorted(load_events(tmp_path).impressions.column("request_id").unique().to_pylist()) \
        == [f"r{i}" for i in range(5)]


def test_files_rotate_by_size_and_only_complete_files_are_visible(ranker: Ranker,
                                                                  tmp_path: Path) -> None:
    results = ranker.search("paint brush", k=10)
    log = ImpressionLog(tmp_path, batch_searches=10, rotate_bytes=1, flush_seconds=0.05)
    for i in range(35):
        log.record(f"r{i}", "paint brush", None, results, ranker.serving)
    log.start()
    counters = log.close()
    files = event_files(tmp_path, IMPRESSIONS_DIR)
    assert counters.files == len(files) >= 4  # every batch of at most 10 closes its file
    per_file = [pq.read_table(f).column("request_id").unique() for f in files]
    assert all(len(ids) <= 10 for ids in per_file) and sum(map(len, per_file)) == 35
    assert not list((tmp_path / IMPRESSIONS_DIR).glob(".*.part"))


def test_files_rotate_by_age(ranker: Ranker, tmp_path: Path) -> None:
    results = ranker.search("paint brush", k=3)
    with ImpressionLog(tmp_path, rotate_seconds=0.2, flush_seconds=0.05) as log:
        log.record("first", "paint brush", None, results, ranker.serving)
        # The open file is hidden (a reader never sees half a file) until its age closes it.
        wait_until(lambda: event_files(tmp_path, IMPRESSIONS_DIR), "the file rotated by age")
        assert log.counters.files == 1
        log.record("second", "paint brush", None, results, ranker.serving)
    assert log.counters.files == 2
    assert load_events(tmp_path).searches == 2


def test_a_bad_record_or_a_broken_disk_is_counted_and_the_log_goes_on(
        ranker: Ranker, tmp_path: Path) -> None:
    results = ranker.search("drill", k=3)
    with ImpressionLog(tmp_path, flush_seconds=0.05) as log:
        assert log.record("bad", "drill", None, [object()], ranker.serving)  # queued anyway
        wait_until(lambda: log.counters.write_errors == 1, "the bad batch refused")
        assert log.counters.dropped == 1
        log.record("good", "drill", None, results, ranker.serving)
        log.flush()
        assert log.counters.searches_logged == 1 and log.counters.files == 1
        # The disk goes away: the directory becomes a file. Writes fail, are counted, and
        # record() still returns at once without raising.
        shutil.rmtree(tmp_path / IMPRESSIONS_DIR)
        (tmp_path / IMPRESSIONS_DIR).write_text("not a directory")
        assert log.record("lost", "drill", None, results, ranker.serving)
        wait_until(lambda: log.counters.write_errors == 2, "the failed write counted")
    assert log.counters.dropped == 2 and log.counters.searches_logged == 1


def test_many_threads_lose_nothing_they_were_told_was_queued(ranker: Ranker,
                                                            tmp_path: Path) -> None:
    results = ranker.search("drill", k=4)
    queued = [0] * 4

    def worker(n: int) -> None:
        for i in range(400):
            queued[n] += log.record(f"t{n}-{i}", "drill", None, results, ranker.serving)

    with ImpressionLog(tmp_path, max_pending=300, batch_searches=50) as log:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    counters = log.counters
    assert counters.searches_logged == sum(queued)
    assert counters.searches_logged + counters.dropped == 1600
    assert load_events(tmp_path).searches == sum(queued)
