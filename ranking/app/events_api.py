"""The service's event endpoints: impressions logged for every search, outcomes ingested by
``POST /events``, and their counters in ``/metrics``.

Off by default. ``marginrank serve --events DIR`` (or the environment variable
``MARGINRANK_EVENTS`` the service factory reads) turns it on: every search is queued for the
:class:`~ranking.app.event_log.ImpressionLog` (``DIR/impressions/``), and ``POST /events``
accepts batches of outcome events (``DIR/outcomes/``) in the contract of
:mod:`ranking.experiments.events`.

``POST /events`` is idempotent per ``event_id``: an event id already accepted (in this process,
in a file another worker wrote, or before a restart: the ids on disk are read at start) is
answered as a duplicate and not written again, so a client retries a batch safely. A batch is
validated whole before anything is written: one bad event refuses the batch with 422 naming
the event's index and field (values cut to 80 characters, never the whole input echoed back).
An accepted batch is on disk (fsync, then an atomic rename) before the answer.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from clv.errors import DataError, MarginRankError
from ranking.app.event_log import ROTATE_SECONDS, ImpressionLog, LogCounters

if TYPE_CHECKING:
    from ranking.ranker import SearchResult

#: The events directory of the service (unset or empty: events off).
ENV_EVENTS = "MARGINRANK_EVENTS"
#: Seconds before the impression log completes a file (default 60): what the readout lags by.
ENV_ROTATE_SECONDS = "MARGINRANK_EVENTS_ROTATE_SECONDS"
#: Where the request middleware keeps the request id (the one echoed in X-Request-ID), so the
#: impression is logged under the id the client sees and joins its outcomes on.
REQUEST_ID_KEY = "marginrank.request_id"
OUTCOMES_DIR = "outcomes"
#: Limits of one POST /events.
MAX_EVENTS = 10_000
MAX_BODY_BYTES = 8 * 1024 * 1024
#: Longest value quoted back in an error.
MAX_ECHO = 80

log = logging.getLogger("marginrank.events")


# -- outcomes --------------------------------------------------------------------------------
@dataclass
class OutcomeCounts:
    accepted: int = 0
    duplicate: int = 0
    refused: int = 0


@dataclass
class OutcomeStore:
    """The accepted outcome events of ``directory/outcomes``, with the set of their ids."""

    directory: Path
    ids: set[str] = field(default_factory=set)
    known_files: set[str] = field(default_factory=set)
    counts: OutcomeCounts = field(default_factory=OutcomeCounts)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sequence: Iterator[int] = field(default_factory=itertools.count)

    @property
    def folder(self) -> Path:
        return self.directory / OUTCOMES_DIR

    def open(self) -> OutcomeStore:
        """Create the folder and read the ids of every outcome file already in it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._read_new_files()
        return self

    def _read_new_files(self) -> None:
        """Add the ids of files not read yet (written before a restart, or by another
        worker) to :attr:`ids`."""
        from ranking.experiments.events import event_files

        for path in event_files(self.directory, OUTCOMES_DIR):
            if path.name not in self.known_files:
                self.ids.update(_event_ids(path))
                self.known_files.add(path.name)

    def ingest(self, records: list[Any]) -> tuple[int, int]:
        """Validate the batch, write its new events; (accepted, duplicates). Raises
        :class:`DataError` (nothing written) for a bad event."""
        from ranking.experiments.events import validate_outcome_records

        try:
            table = validate_outcome_records(records, source="POST /events")
        except DataError:
            with self._lock:
                self.counts.refused += len(records)
            raise
        repeats_in_batch = len(records) - table.num_rows
        with self._lock:
            self._read_new_files()
            ids = table.column("event_id").to_pylist()
            new = [i not in self.ids for i in ids]
            fresh = table.filter(new) if not all(new) else table
            if fresh.num_rows:
                self._write(fresh)
                self.ids.update(fresh.column("event_id").to_pylist())
            duplicates = repeats_in_batch + table.num_rows - fresh.num_rows
            self.counts.accepted += fresh.num_rows
            self.counts.duplicate += duplicates
        return fresh.num_rows, duplicates

    def _write(self, table: Any) -> None:
        import pyarrow.parquet as pq

        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"outcomes-{stamp}-{os.getpid()}-{next(self._sequence):06d}.parquet"
        part = self.folder / f".{name}.part"
        pq.write_table(table, part)
        with part.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(part, self.folder / name)
        self.known_files.add(name)


def _event_ids(path: Path) -> list[str]:
    """The event ids of one outcome file (Parquet: that column only; JSON lines: each line)."""
    if path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return [str(i) for i in pq.read_table(path, columns=["event_id"]).column(0).to_pylist()]
    ids = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                if isinstance(record, dict) and isinstance(record.get("event_id"), str):
                    ids.append(record["event_id"].strip())
    return ids


# -- the service's event state ---------------------------------------------------------------
@dataclass
class Online:
    """What ``--events DIR`` turns on: the impression log and the outcome store."""

    directory: Path
    impressions: ImpressionLog
    outcomes: OutcomeStore

    def counters(self) -> dict[str, Any]:
        c: LogCounters = self.impressions.counters
        return {"impressions": c.to_dict(), "outcomes": vars(self.outcomes.counts).copy()}


def events_dir_from_env() -> Path | None:
    value = os.environ.get(ENV_EVENTS, "").strip()
    return Path(value) if value else None


def _rotate_seconds() -> float:
    value = os.environ.get(ENV_ROTATE_SECONDS, "").strip()
    try:
        seconds = float(value) if value else ROTATE_SECONDS
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise MarginRankError(f"{ENV_ROTATE_SECONDS} must be a positive number of seconds, got "
                              f"{value!r}")
    return seconds


def bundle_version(bundle_dir: Path) -> str | None:
    """A short id of the bundle served: sha256 prefix of its manifest (which holds the
    checksum of every file)."""
    try:
        return hashlib.sha256((bundle_dir / "manifest.json").read_bytes()).hexdigest()[:12]
    except OSError:
        return None


class _Collector:
    """The event counters, read at each scrape of ``/metrics``."""

    def __init__(self, online: Online) -> None:
        self.online = online

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        c = self.online.impressions.counters
        for name, text, value in (
                ("impressions_logged", "Searches written to the impression log", c.searches_logged),
                ("impressions_dropped", "Searches whose impression record was dropped (queue "
                 "full or a failed write); the searches themselves were served", c.dropped),
                ("impression_rows_written", "Impression rows written (one per shown product)",
                 c.rows_written),
                ("impression_files", "Impression files completed", c.files),
                ("impression_write_errors", "Impression batches that failed to write",
                 c.write_errors)):
            yield CounterMetricFamily(f"marginrank_{name}", text, value=value)
        yield CounterMetricFamily("marginrank_impression_writer_cpu_seconds", "CPU time of "
                                  "the impression log's writer thread", value=c.writer_cpu_seconds)
        yield GaugeMetricFamily("marginrank_impressions_pending", "Searches queued for the "
                                "impression log", value=c.pending)
        outcomes = CounterMetricFamily("marginrank_outcome_events", "Outcome events posted "
                                       "to /events by result (accepted, duplicate, refused)",
                                       labels=["result"])
        for result, value in vars(self.online.outcomes.counts).items():
            outcomes.add_metric([result], value)
        yield outcomes


def _lifespan_for(directory: Path | None) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if directory is None:
            app.state.events = None
            yield
            return
        service = getattr(app.state, "service", None)
        bundle_dir = getattr(service, "bundle_dir", None)
        online = Online(directory, ImpressionLog(
            directory, bundle_version=bundle_version(bundle_dir) if bundle_dir else None,
            rotate_seconds=_rotate_seconds()), OutcomeStore(directory))
        online.outcomes.open()
        online.impressions.start()
        app.state.events = online
        registry = getattr(getattr(service, "metrics", None), "registry", None)
        collector = _Collector(online)
        if registry is not None:
            registry.register(collector)
        log.info("events on", extra={"fields": {"directory": str(directory),
                                                 "outcome_ids": len(online.outcomes.ids)}})
        try:
            yield
        finally:
            counters = online.impressions.close()
            if registry is not None:
                registry.unregister(collector)
            log.info("impression log closed", extra={"fields": counters.to_dict()})
    return lifespan


# -- hooks the service calls ------------------------------------------------------------------
def log_search(request: Request, query: str, customer_id: str | None,
               results: Sequence[SearchResult]) -> None:
    """Queue the impression of a search just answered (a no-op with events off). Never raises
    and never waits: see :meth:`ImpressionLog.record`.

    The config snapshot logged is the one serving when the search returned; a search that
    overlaps a config swap to the microsecond may be logged with the new version."""
    online: Online | None = getattr(request.app.state, "events", None)
    if online is None:
        return
    try:
        ranker = request.app.state.service.ranker
        request_id = request.scope.get(REQUEST_ID_KEY) or uuid.uuid4().hex
        online.impressions.record(request_id, query, customer_id, results, ranker.serving,
                                  ranker.customers)
    except Exception:  # noqa: BLE001 - a log must not fail a search
        online.impressions._drop()


# -- POST /events ----------------------------------------------------------------------------
class Outcome(BaseModel):
    """One outcome event (documentation of the body; the handler validates with the
    contract's own validator)."""

    event_id: str = Field(description="unique per event; a repeated id is not written twice")
    request_id: str = Field(description="the search's X-Request-ID")
    product_id: str
    type: str = Field(description="click | add_to_cart | purchase | return")
    timestamp: str = Field(description="ISO 8601; UTC when no offset is given")
    quantity: int | None = Field(None, description="required for purchase and return")
    unit_price: float | None = Field(None, description="required for purchase and return")
    unit_margin: float | None = None


class Ingested(BaseModel):
    accepted: int = Field(description="events written now")
    duplicates: int = Field(description="events whose id was already accepted (not written "
                            "again)")


_ROW = re.compile(r"^records\[(\d+)\]: (.*)$", re.DOTALL)


def _short(value: Any) -> Any:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return value if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "..."


def _refuse(status: int, msg: str, loc: list[Any] | None = None, value: Any = None,
            kind: str = "value_error") -> JSONResponse:
    error: dict[str, Any] = {"loc": loc or ["body"], "msg": msg, "type": kind}
    if value is not None:
        error["input"] = _short(value)
    return JSONResponse({"detail": [error]}, status_code=status)


async def post_events(request: Request) -> Ingested | JSONResponse:
    """Ingest a batch of outcome events (``{"events": [...]}``, at most 10,000): validated
    whole, written once per event id. 422 names the event (its index) and the field."""
    online: Online | None = getattr(request.app.state, "events", None)
    if online is None:
        return _refuse(404, "events are off: start the service with --events DIR "
                       f"(or {ENV_EVENTS})", kind="events_off")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return _refuse(413, f"body larger than {MAX_BODY_BYTES} bytes; send smaller batches",
                       kind="too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return _refuse(413, f"body larger than {MAX_BODY_BYTES} bytes; send smaller "
                           "batches", kind="too_large")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _refuse(422, f"body: not valid JSON ({exc})", kind="json_invalid")
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list):
        return _refuse(422, 'events: the body must be {"events": [ ... ]}',
                       ["body", "events"], kind="missing")
    if len(events) > MAX_EVENTS:
        return _refuse(422, f"events: at most {MAX_EVENTS} events per batch, got "
                       f"{len(events)}", ["body", "events"], kind="too_long")
    if not events:
        return Ingested(accepted=0, duplicates=0)
    try:
        accepted, duplicates = await _in_thread(online.outcomes.ingest, events)
    except DataError as exc:
        match = _ROW.match(exc.reason)
        row = int(match.group(1)) if match else None
        reason = match.group(2) if match else exc.reason
        loc: list[Any] = ["body", "events"]
        if row is not None:
            loc.append(row)
        if exc.column:
            loc.append(exc.column)
        where = f"events[{row}]" if row is not None else "events"
        msg = f"{where}.{exc.column}: {reason}" if exc.column else f"{where}: {reason}"
        return _refuse(422, msg, loc, exc.value)
    except (OSError, MarginRankError) as exc:
        log.error("outcomes not written", extra={"fields": {"error": str(exc)}})
        return _refuse(503, f"outcomes not written: {type(exc).__name__}", kind="storage")
    return Ingested(accepted=accepted, duplicates=duplicates)


async def _in_thread(func: Any, *args: Any) -> Any:
    """Validation and the fsync'd write off the event loop, so searches go on meanwhile."""
    import asyncio

    return await asyncio.to_thread(func, *args)


_BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["events"], "properties": {"events": {
        "type": "array", "maxItems": MAX_EVENTS, "items": Outcome.model_json_schema()}}}}}}}


def install(app: FastAPI, events_dir: str | Path | None = None) -> None:
    """Add ``POST /events`` to ``app`` and the event lifecycle to its lifespan (impression log
    started with the app, drained and closed at shutdown) for the directory ``events_dir``
    (default: ``MARGINRANK_EVENTS``; neither: events off, ``POST /events`` answers 404).

    Routes are added to the app itself rather than through an included router, so that
    ``app.routes`` stays a flat list of paths (the service labels its metrics by them)."""
    directory = Path(events_dir) if events_dir else events_dir_from_env()
    app.add_api_route("/events", post_events, methods=["POST"], response_model=Ingested,
                      openapi_extra=_BODY_DOC, responses={
                          404: {"description": "events are off"},
                          413: {"description": "body too large"},
                          422: {"description": "an event breaks the contract (its index and "
                                "field are named)"}})
    chain_lifespan(app, _lifespan_for(directory))


def chain_lifespan(app: FastAPI, inner: Any) -> None:
    """Run ``inner`` (an async context manager factory taking the app) inside the app's own
    lifespan: started after it, stopped before it."""
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def both(app_: Any) -> AsyncIterator[Any]:
        async with outer(app_) as state, inner(app_):
            yield state

    app.router.lifespan_context = both
