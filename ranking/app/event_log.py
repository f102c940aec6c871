"""The impression log: what every search showed, written to Parquet off the hot path.

A search must never wait for a disk, so :meth:`ImpressionLog.record` only appends one small
tuple to a bounded in-memory queue and returns; one background thread drains the queue in
batches, flattens each search into one row per shown product (the event contract of
:mod:`ranking.experiments.events`) and appends the batch as a row group to the open Parquet file.
When the queue is full the search goes on and its record is dropped and counted (``dropped``,
exported by the service as ``marginrank_impressions_dropped_total``): never silent, never a
slower search.

Files rotate by size and by age. The open file is written under a hidden ``.part`` name and
renamed to ``impressions-<UTC time>-<pid>-<n>.parquet`` when it is closed, so a reader (DuckDB,
the readout, the dashboard) only ever sees complete files; several worker processes write
side by side without clashing (the pid is in the name). :meth:`ImpressionLog.close` (the
service's shutdown) drains the queue and closes the last file.

Propensity: each shown product's item-position propensity, the logging policy's probability
of that product at that place (:mod:`ranking.exploration`: set by the ranker when the config's
``exploration`` shuffled, or could have shuffled, the search's top k), and ``randomized``, whether
this search was shuffled. Null below the explored top k and without exploration. Experiment arms
are a different, customer-level randomization: the readout reads the arms' shares from the
config; :func:`propensity` gives that assignment probability (per CLV segment) where needed.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ranking.experiments.events import (
    IMPRESSION_SCHEMA,
    NO_RESULT_POSITION,
    normalize_id,
    query_hash,
)

if TYPE_CHECKING:
    from objectives.plan import Plan
    from ranking.ranker import SearchResult

log = logging.getLogger("marginrank.events")

#: Sub-directory of the events directory the impression files go to.
IMPRESSIONS_DIR = "impressions"
#: Pending searches held before new ones are dropped (about 2 kB each with k=20).
MAX_PENDING = 50_000
#: The writer wakes at least this often, and at once when this many searches wait. Files are
#: visible at rotation anyway, so large batches cost no freshness, and per search a batch of
#: thousands costs about half the writer CPU of a batch of 150 (fewer, larger row groups).
FLUSH_SECONDS = 2.0
BATCH_SEARCHES = 2_000
#: A file is closed (made visible to readers) past this size or this age.
ROTATE_BYTES = 64 * 1024 * 1024
ROTATE_SECONDS = 60.0


@dataclass(frozen=True)
class LogCounters:
    """What the log did since it started (monotonic counts, for ``/metrics``)."""

    searches_logged: int  # searches written to a file (their rows too)
    rows_written: int  # impression rows (one per shown product)
    dropped: int  # searches not logged: queue full, log closed, or a failed write
    files: int  # files completed (renamed to their final name)
    write_errors: int  # batches that could not be written (their searches count as dropped)
    pending: int  # searches in the queue now
    writer_cpu_seconds: float = 0.0  # CPU time of the writer thread: what logging costs

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


# One queued search: (request_id, unix seconds, customer_id, query, results, serving config
# snapshot, customers). A plain tuple of references: the cheapest thing to build and queue; the
# writer thread derives every column from it.
_Record = tuple[str, float, "str | None", str, "Sequence[SearchResult]", "Plan", Any]


class ImpressionLog:
    """A bounded queue and one writer thread over ``directory/impressions/``.

    Thread-safe: :meth:`record` may be called from any thread. Use as a context manager or call
    :meth:`start` and :meth:`close`.
    """

    def __init__(self, directory: str | Path, *, bundle_version: str | None = None,
                 keep_query: bool = True, max_pending: int = MAX_PENDING,
                 batch_searches: int = BATCH_SEARCHES, flush_seconds: float = FLUSH_SECONDS,
                 rotate_bytes: int = ROTATE_BYTES, rotate_seconds: float = ROTATE_SECONDS) -> None:
        if max_pending < 1 or batch_searches < 1:
            raise ValueError("max_pending and batch_searches must be at least 1")
        self.directory = Path(directory) / IMPRESSIONS_DIR
        self.bundle_version = bundle_version
        self.keep_query = keep_query  # False: the query hash only (queries can be personal)
        self.max_pending = max_pending
        self.batch_searches = batch_searches
        self.flush_seconds = flush_seconds
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self._queue: deque[_Record] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._count_lock = threading.Lock()  # the drop path and the writer's counts
        self._dropped = 0
        self._searches = self._rows = self._files = self._errors = 0
        self._writer_cpu = 0.0
        self._sequence = itertools.count()
        self._writer: Any = None  # pyarrow.parquet.ParquetWriter of the open file
        self._part: Path | None = None
        self._opened_at = 0.0
        self._flush_requests: deque[threading.Event] = deque()

    # -- the hot path ----------------------------------------------------------------------
    def record(self, request_id: str, query: str, customer_id: str | None,
               results: Sequence[SearchResult], serving: Plan, customers: Any = None,
               timestamp: float | None = None) -> bool:
        """Queue one search for the log; True if queued, False if dropped (and counted).

        ``serving`` is the config snapshot that ranked it (a ``ServingConfig``: its version,
        experiment, arms and segments) and ``customers`` the bundle's customer table (the CLV
        segment of ``customer_id``; None: no segment). Only references are queued: never
        blocks and never raises into the search; everything that can fail (flattening, Arrow,
        validation, the disk) happens in the writer thread.
        """
        try:
            if self._stopping or len(self._queue) >= self.max_pending:
                self._drop()
                return False
            self._queue.append((request_id, time.time() if timestamp is None else timestamp,
                                customer_id, query, results, serving, customers))
            if len(self._queue) >= self.batch_searches:
                self._wake.set()
            return True
        except Exception:  # noqa: BLE001 - a log must not fail a search
            self._drop()
            return False

    def _drop(self) -> None:
        with self._count_lock:
            self._dropped += 1

    # -- counters --------------------------------------------------------------------------
    @property
    def counters(self) -> LogCounters:
        with self._count_lock:
            return LogCounters(self._searches, self._rows, self._dropped, self._files,
                               self._errors, len(self._queue), self._writer_cpu)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> ImpressionLog:
        """Create the directory and start the writer thread (idempotent)."""
        if self._thread is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._thread = threading.Thread(target=self._run, name="marginrank-impressions",
                                            daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 30.0) -> LogCounters:
        """Stop taking records, write what is queued, close the open file; the counters."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        else:  # never started: nothing can have been written, but the queue may hold records
            self._write_pending()
            self._finish_file()
        return self.counters

    def flush(self, timeout: float = 30.0) -> None:
        """Write what is queued and close the open file now, so readers see every search
        recorded so far (tests, and the dashboard of a lightly used service)."""
        done = threading.Event()
        self._flush_requests.append(done)
        self._wake.set()
        if self._thread is None or not self._thread.is_alive():
            self._write_pending()
            self._finish_file()
            return
        done.wait(timeout)

    def __enter__(self) -> ImpressionLog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(min(self.flush_seconds, self.rotate_seconds))
            self._wake.clear()
            cpu = time.thread_time()
            stopping = self._stopping
            # Requests first: a search recorded before a flush request is in the queue by now.
            requests = [self._flush_requests.popleft() for _ in range(len(self._flush_requests))]
            self._write_pending()
            if stopping or requests or (
                    self._writer is not None
                    and time.monotonic() - self._opened_at >= self.rotate_seconds):
                self._finish_file()
            if stopping:
                self._write_pending()  # records that raced with the stop flag
                self._finish_file()
            with self._count_lock:
                self._writer_cpu += time.thread_time() - cpu
            for done in requests:
                done.set()
            if stopping:
                return

    def _write_pending(self) -> None:
        while self._queue:
            batch = [self._queue.popleft()
                     for _ in range(min(len(self._queue), self.batch_searches))]
            try:
                rows = self._write(batch)
            except Exception as exc:  # noqa: BLE001 - counted and logged, the thread goes on
                with self._count_lock:
                    self._errors += 1
                    self._dropped += len(batch)
                log.error("impression batch not written", extra={"fields": {
                    "searches": len(batch), "error": f"{type(exc).__name__}: {exc}"}})
                self._abandon_file()
                continue
            with self._count_lock:
                self._searches += len(batch)
                self._rows += rows

    def _write(self, batch: list[_Record]) -> int:
        table = impressions_table(batch, self.bundle_version, self.keep_query)
        if self._writer is None:
            self._open_file(table.schema)
        self._writer.write_table(table)
        assert self._part is not None
        if self._part.stat().st_size >= self.rotate_bytes:
            self._finish_file()
        return table.num_rows

    def _open_file(self, schema: Any) -> None:
        import pyarrow.parquet as pq

        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"impressions-{stamp}-{os.getpid()}-{next(self._sequence):06d}.parquet"
        self._part = self.directory / f".{name}.part"
        self._writer = pq.ParquetWriter(self._part, schema, compression="zstd")
        self._opened_at = time.monotonic()

    def _finish_file(self) -> None:
        """Close the open file and give it its final name (readers see it from now on)."""
        if self._writer is None or self._part is None:
            return
        try:
            self._writer.close()
            os.replace(self._part, self._part.with_name(self._part.name[1:-len(".part")]))
        except OSError as exc:
            with self._count_lock:
                self._errors += 1
            log.error("impression file not completed", extra={"fields": {
                "file": str(self._part), "error": str(exc)}})
        else:
            with self._count_lock:
                self._files += 1
        finally:
            self._writer = self._part = None

    def _abandon_file(self) -> None:
        """After a failed write the open file may be corrupt: close it and start a new one."""
        try:
            if self._writer is not None:
                self._writer.close()
        except Exception:  # noqa: BLE001, S110 - the file is being given up anyway
            pass
        self._writer = self._part = None


def propensity(serving: Plan, customer_id: str | None, arm: str | None,
               segment: int = 0) -> float | None:
    """The probability that ``customer_id`` was assigned ``arm`` (None: the control, past the
    last arm) by the running experiment of ``serving``; None without randomization (no
    experiment, an anonymous request) or for an assignment of probability 0 (none happens)."""
    if serving.experiment is None or customer_id is None:
        return None
    shares = _arm_shares(serving)
    p = (shares[segment] if isinstance(shares, list) else shares).get(arm, 0.0)
    return p if p > 0.0 else None


def impressions_table(batch: Sequence[_Record], bundle_version: str | None = None,
                      keep_query: bool = True) -> Any:
    """One Arrow row per shown product of the queued searches (a search that showed nothing
    is one row at position -1), in the impressions contract's schema.

    Runs in the writer thread, which shares the GIL with the searches: per-search values are
    built once per search and repeated over its rows by Arrow (``take``), segments and
    propensities are computed for the whole batch with numpy, so the Python work per search
    is a few list comprehensions."""
    n = len(batch)
    counts = np.fromiter((max(len(rec[4]), 1) for rec in batch), np.int64, n)
    customers = [None if rec[2] is None else normalize_id(rec[2]) for rec in batch]
    queries = [rec[3] for rec in batch]
    hashes: dict[str, str] = {}
    per_search: dict[str, list[Any]] = {
        "request_id": [rec[0] for rec in batch],
        "timestamp": [int(rec[1] * 1_000_000) for rec in batch],
        "customer_id": customers,
        "query": queries if keep_query else [None] * n,
        "query_hash": [hashes.get(q) or hashes.setdefault(q, query_hash(q)) for q in queries],
        "bundle_version": [bundle_version] * n,
        "config_version": [None] * n, "experiment": [None] * n, "arm": [None] * n,
        "segment": [None] * n,
    }
    # Group the searches by the config snapshot that ranked them (usually one per batch).
    by_serving: dict[int, list[int]] = {}
    for i, rec in enumerate(batch):
        by_serving.setdefault(id(rec[5]), []).append(i)
    for rows in by_serving.values():
        serving, known = batch[rows[0]][5], batch[rows[0]][6]
        segments = _segments(serving, known, [customers[i] for i in rows])
        for i, segment in zip(rows, segments.tolist(), strict=True):
            results, customer = batch[i][4], batch[i][2]
            arm = results[0].arm if results else (
                serving.arm_names[serving.arm_index(customer)] if customer else None)
            per_search["config_version"][i] = serving.version
            per_search["experiment"][i] = serving.experiment
            per_search["arm"][i] = arm
            per_search["segment"][i] = serving.segment_names[segment]
    repeat = pa.array(np.repeat(np.arange(n), counts))
    columns: dict[str, Any] = {}
    for field in IMPRESSION_SCHEMA:
        if field.name in per_search:
            columns[field.name] = pa.array(per_search[field.name], field.type).take(repeat)
    columns["product_id"] = pa.array(
        [r.product_id for rec in batch for r in rec[4] or (_NOTHING,)], pa.string())
    columns["position"] = pa.array(
        [r.rank for rec in batch for r in rec[4] or (_NOTHING,)], pa.int32())
    columns["score"] = pa.array(
        [r.score for rec in batch for r in rec[4] or (_NOTHING,)], pa.float64())
    columns["propensity"] = pa.array(
        [getattr(r, "propensity", None) for rec in batch for r in rec[4] or (_NOTHING,)],
        pa.float64())
    columns["randomized"] = pa.array(
        [getattr(r, "randomized", None) for rec in batch for r in rec[4] or (_NOTHING,)],
        pa.bool_())
    return pa.Table.from_pydict({f.name: columns[f.name] for f in IMPRESSION_SCHEMA},
                                schema=IMPRESSION_SCHEMA)


class _Nothing:
    """Stands for the one row of a search that showed nothing (position -1, no product)."""

    product_id = None
    rank = NO_RESULT_POSITION
    score = None
    propensity = None
    randomized = None


_NOTHING = _Nothing()


def _segments(serving: Plan, customers: Any, ids: list[str | None]) -> Any:
    """The weight-table segment row of each customer id (:meth:`Plan.segment_index` of
    :meth:`Customers.quantile_of`, for many at once); 0 without a customers table."""
    rows = np.zeros(len(ids), np.int64)
    thresholds = serving.segment_thresholds
    if customers is None or customers.ids.size == 0 or thresholds.size <= 1:
        return rows
    named = np.array([i is not None for i in ids])
    if not named.any():
        return rows
    wanted = np.array([i for i in ids if i is not None], dtype=customers.ids.dtype)
    pos = np.minimum(np.searchsorted(customers.ids, wanted), customers.ids.size - 1)
    found = customers.ids[pos] == np.array([i for i in ids if i is not None])
    quantile = np.where(found, customers.quantile[pos], np.nan)
    with np.errstate(invalid="ignore"):
        eligible = thresholds[None, :] <= quantile[:, None]  # row 0 (NaN) never eligible
    best = np.argmax(np.where(eligible, thresholds[None, :], -np.inf), axis=1)
    rows[named] = np.where(eligible.any(axis=1), best, 0)
    return rows


def _arm_shares(serving: Plan) -> dict[str | None, float] | list[dict[str | None, float]]:
    """Arm name -> assignment probability (None: the control past the last arm); a list of
    such maps, one per segment row, when the plan carries shares per segment."""
    shares = np.asarray(serving.segment_arm_shares, np.float64)  # one row per segment

    def one(values: Any) -> dict[str | None, float]:
        out: dict[str | None, float] = dict(zip(serving.arm_names[1:], map(float, values),
                                                 strict=True))
        out[None] = max(0.0, 1.0 - float(sum(values)))
        return out

    if shares.ndim == 2:
        return [one(row) for row in shares]
    return one(shares)
