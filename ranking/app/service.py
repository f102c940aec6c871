"""The reference HTTP service: FastAPI over one :class:`~ranking.ranker.Ranker` per worker.

The service owns its weights config as state (:mod:`ranking.app.config_store`): a change
arrives as one atomic operation, is validated, written durably as the *last good config*, and
swapped into every worker in place, without restarting anything:

- ``PUT /config`` carries the YAML text (bearer token, same origin, ``application/yaml`` or
  JSON; :mod:`ranking.app.auth`);
- ``POST /reload`` re-reads the ``--config`` file, and SIGHUP to the supervisor does the same,
  only when the file is complete: its sha256 must match the one the caller sends
  (``{"sha256": ...}``) or the ``<file>.sha256`` sidecar, so a half-written file is refused;
- an invalid change is refused with its file/line/key errors and the last good config keeps
  serving; every worker (a restarted one too) serves the last good config, never a file it
  has not validated; a worker notices a new generation within :data:`config_store.POLL_SECONDS`
  (one ``stat``) and swaps it in between two searches.

Around that: ``/healthz`` (liveness) and ``/readyz`` (readiness, 503 until the bundle is loaded,
warmed and configured); ``/metrics`` (Prometheus; config version and generation, no paths);
one JSON log line per request (never the query text); every answer to ``/search`` names the
``config_version`` that ranked it. ``marginrank serve`` runs the workers under
:mod:`ranking.app.supervisor`; the protocol limits are in :mod:`ranking.app.limits`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from clv.errors import ConfigError, ConfigIssue, MarginRankError
from ranking.app import auth, dashboard, events_api
from ranking.app.config_store import (
    MAX_CONFIG_BYTES,
    POLL_SECONDS,
    ConfigStore,
    Generation,
    Validator,
    accept_file,
    accept_text,
    read_stable,
)
from ranking.ranker import WEIGHTS_FILE, Ranker, SearchResult, pin_rule

ENV_BUNDLE = "MARGINRANK_BUNDLE"
ENV_CONFIG = "MARGINRANK_CONFIG"
ENV_STATE_DIR = "MARGINRANK_STATE_DIR"
ENV_LOAD_FIRST = "MARGINRANK_LOAD_BEFORE_SERVING"
#: Set by the supervisor: this worker's slot and incarnation (``"0.1"``), in the
#: ``x-marginrank-worker`` header of every answer (which worker served it: no pid, no path).
ENV_WORKER_ID = "MARGINRANK_WORKER_ID"
#: Idle keep-alive connections are closed after this many seconds: longer than the idle timeout
#: of clients and load balancers (httpx 5 s, common balancers 60 s), so that the client, not the
#: server, drops an idle connection and never sends a request on one the server is closing.
KEEP_ALIVE_SECONDS = 75
#: Request limits of the HTTP API (tighter than the library's: a public endpoint).
MAX_QUERY_CHARS = 512
MAX_K = 200
MAX_CUSTOMER_ID_CHARS = 128
#: Sub-millisecond searches need fine buckets at the low end.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: A client's X-Request-ID is kept when it looks like an id, otherwise one is made.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_LOG_KEY = "marginrank.log"  # per-request fields a handler adds to the request's log line

log = logging.getLogger("marginrank.service")


# -- response models -------------------------------------------------------------------------
class Hit(BaseModel):
    """One ranked product."""

    model_config = ConfigDict(from_attributes=True)

    rank: int = Field(description="1-based position")
    product_id: str
    title: str
    score: float | None = Field(description="blended score; null for a pinned product")
    pinned: bool = Field(description="placed by a pin rule of the weights file")
    arm: str | None = Field(None, description="the customer's experiment arm, if any")
    contributions: dict[str, float] | None = Field(
        None, description="with explain=true: relevance and each business term; they add up "
                          "to the score")
    from_prior: list[str] | None = Field(
        None, description="with explain=true: the business terms whose value is a prior (the "
                          "product's brand or category estimate: it has no data of its own)")


class SearchResponse(BaseModel):
    query: str
    k: int
    config_version: str = Field(description="the weights config that ranked these results "
                                            "(sha256 prefix of its YAML)")
    results: list[Hit]


class Status(BaseModel):
    """Liveness or readiness, with the weights config serving now."""

    status: str = Field(description="loading | ready | failed (readiness); alive (liveness)")
    detail: str | None = None
    config_version: str | None = Field(None, description="sha256 prefix of the weights YAML")
    config_generation: int = Field(0, description="the last good config's generation this "
                                                  "worker serves (1 = the one given at start)")


class Reloaded(BaseModel):
    config_version: str
    config_generation: int
    loaded_at: float = Field(description="Unix time the config was accepted")
    source: str = Field(description="how it arrived: PUT /config, POST /reload, SIGHUP, start")


class Issue(BaseModel):
    """One problem in a refused weights file."""

    file: str
    line: int | None
    key: str
    message: str


class ReloadRefused(BaseModel):
    detail: str
    errors: list[Issue]
    config_version: str = Field(description="the version still serving")


class ReloadRequest(BaseModel):
    sha256: str | None = Field(None, min_length=64, max_length=64, pattern="^[0-9a-fA-F]{64}$",
                               description="sha256 of the complete file; without it the "
                                           "<file>.sha256 sidecar must hold it")


# -- metrics ---------------------------------------------------------------------------------
class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        reg = self.registry
        self.requests = Counter("marginrank_http_requests", "HTTP requests by path, method "
                                "and status", ["path", "method", "status"], registry=reg)
        self.latency = Histogram("marginrank_http_request_duration_seconds", "Request latency "
                                 "in the server", ["path"], buckets=LATENCY_BUCKETS, registry=reg)
        self.ready = Gauge("marginrank_ready", "1 once the bundle is loaded and warmed",
                           registry=reg)
        self.config = Gauge("marginrank_config_info", "The weights config serving now "
                            "(always 1; see the labels)", ["version", "source"], registry=reg)
        self.generation = Gauge("marginrank_config_generation", "The last good config's "
                                "generation this worker serves", registry=reg)
        self.loaded_at = Gauge("marginrank_config_loaded_timestamp_seconds", "Unix time the "
                               "serving config was accepted", registry=reg)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def swapped(self, generation: Generation) -> None:
        self.config.clear()
        self.config.labels(generation.version, generation.source).set(1)
        self.generation.set(generation.number)
        self.loaded_at.set(generation.accepted_at)

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        key = (path, method, status)
        children = self._children.get(key)
        if children is None:  # the label lookups (a lock and a tuple each) once per key
            children = self._children[key] = (self.requests.labels(path, method, str(status)),
                                               self.latency.labels(path))
        children[0].inc()
        children[1].observe(seconds)


class _StoreCounts:
    """``marginrank_config_reloads_total{result}``: changes accepted and refused by the whole
    service (every worker and the supervisor), read from the store at scrape time."""

    def __init__(self, store: ConfigStore) -> None:
        self.store = store

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("marginrank_config_reloads", "Config changes by result "
                                     "(ok, refused), all workers", labels=["result"])
        for result, value in sorted(self.store.counts().items()):
            family.add_metric([result], value)
        yield family


# -- state -----------------------------------------------------------------------------------
class ServiceState:
    """The ranker once loaded, and the worker's view of the last good config.

    ``ranker`` is only ever replaced, never changed: a search takes the reference once and
    reports that ranker's config version, so an answer always names the config that ranked it.
    """

    def __init__(self, bundle_dir: Path, config: Path | None, store: ConfigStore,
                 metrics: Metrics, token: str | None, seed: bool) -> None:
        self.bundle_dir = bundle_dir
        self.config_path = config
        self.store = store
        self.metrics = metrics
        self.token = token
        self.seed = seed  # seed an empty store from the file (standalone, not supervised)
        self.ranker: Ranker | None = None
        self.base: Ranker | None = None  # the bundle as loaded; variants share its arrays
        self.validator: Validator | None = None
        self.error: str | None = None
        self.generation = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def weights_path(self) -> Path:
        """The file reloads read: ``--config``, else the bundle's own weights."""
        return self.config_path or self.bundle_dir / WEIGHTS_FILE

    def load(self) -> None:
        """Open and warm the ranker, then serve the store's last good config (seeding an empty
        standalone store from the file first), then follow the store. Runs in a thread.

        A failure is kept in :attr:`error` (readiness and liveness report it) rather than
        raised, because nothing above this thread would show it.
        """
        start = time.perf_counter()
        try:
            base = Ranker.load(self.bundle_dir)  # verifies checksums, warms the kernels
            self.validator = Validator(base.catalog.row_of.keys(), base.target_weeks_of_cover,
                                       pin_rule=pin_rule(base.analyzer))
            self.base = base
            if self.seed and self.store.current() is None:
                text = read_stable(self.weights_path)
                self.validator.validate(text, str(self.weights_path))
                self.store.accept(text, "start")
            while (current := self.store.current()) is None:  # the supervisor seeds it
                if self._stop.wait(POLL_SECONDS):
                    return
            self.apply(current)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the probes
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("load failed", exc_info=not isinstance(exc, MarginRankError),
                      extra={"fields": {"error": self.error}})
            return
        self.metrics.ready.set(1)
        log.info("ready", extra={"fields": {
            "products": len(base.catalog.product_ids), "config_generation": self.generation,
            "load_ms": round((time.perf_counter() - start) * 1000, 1)}})
        threading.Thread(target=self._follow, name="marginrank-config", daemon=True).start()

    def apply(self, generation: Generation) -> bool:
        """Serve ``generation`` here unless this worker already serves it or a newer one."""
        first = self.generation == 0
        if generation.number <= self.generation or self.base is None:
            return False
        ranker = self.base.variant(generation.path)  # parse and compile off the event loop
        if ranker.serving.version != generation.version:
            raise MarginRankError(f"config generation {generation.number} does not match its "
                                  "recorded sha256; not served")
        with self._lock:
            if generation.number <= self.generation:
                return False
            self.ranker, self.generation = ranker, generation.number
            self.metrics.swapped(generation)
        log.info("config swapped in", extra={"fields": {
            "config_version": generation.version, "config_generation": generation.number,
            "source": generation.source, "first": first,
            "lag_ms": round((time.time() - generation.accepted_at) * 1000, 1)}})
        return True

    def _follow(self) -> None:
        """Poll the store (one stat every POLL_SECONDS) and swap in each new generation."""
        seen = self.store.stamp()
        while not self._stop.wait(POLL_SECONDS):
            stamp = self.store.stamp()
            if stamp == seen:
                continue
            try:
                current = self.store.current()
                if current is not None:
                    self.apply(current)
                seen = stamp
            except (OSError, ValueError, KeyError, MarginRankError) as exc:
                log.warning("config generation not swapped in yet", extra={"fields": {
                    "why": f"{type(exc).__name__}: {exc}"}})  # retried at the next poll

    def stop(self) -> None:
        self._stop.set()

    def change(self, text: str, source: str, file: str) -> Generation:
        """Validate ``text``, make it the last good config, and serve it here at once (other
        workers follow within a poll). Raises ConfigError (counted) for an invalid text."""
        self.require_ranker()
        assert self.validator is not None
        generation = accept_text(self.store, self.validator, text, source, file)
        self.apply(generation)
        return generation

    def reload_file(self, expected_sha256: str | None, source: str) -> Generation:
        """:meth:`change` with the ``--config`` file, read only if complete (its sha256)."""
        self.require_ranker()
        assert self.validator is not None
        generation = accept_file(self.store, self.validator, self.weights_path,
                                 expected_sha256, source)
        self.apply(generation)
        return generation

    def refused(self, exc: ConfigError) -> JSONResponse:
        log.warning("config change refused", extra={"fields": {
            "errors": [f"line {i.line} {i.key_path}: {i.message}" for i in exc.issues]}})
        errors = [Issue(file=i.file, line=i.line, key=i.key_path, message=i.message)
                  for i in exc.issues]
        body = ReloadRefused(detail="weights refused; the last good config keeps serving",
                             errors=errors, config_version=self.require_ranker().serving.version)
        return JSONResponse(body.model_dump(), status_code=400)

    def require_ranker(self) -> Ranker:
        ranker = self.ranker
        if ranker is None:
            detail = f"load failed: {self.error}" if self.error else "loading the bundle"
            raise HTTPException(503, f"not ready: {detail}", headers={"Retry-After": "1"})
        return ranker

    def status(self) -> Status:
        ranker = self.ranker
        if ranker is not None:
            return Status(status="ready", config_version=ranker.serving.version,
                          config_generation=self.generation)
        return Status(status="failed" if self.error else "loading", detail=self.error)


async def _state(request: Request) -> ServiceState:
    """The app's state (async: FastAPI would run a plain function in its thread pool)."""
    return request.app.state.service


State = Annotated[ServiceState, Depends(_state)]


# -- request parameters ----------------------------------------------------------------------
def _has_text(q: str) -> str:
    if not q.strip():
        raise ValueError("empty or only whitespace; send the words to search for")
    return q


QueryText = Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS,
                                 description="the search text"), AfterValidator(_has_text)]
CustomerId = Annotated[str | None, Query(max_length=MAX_CUSTOMER_ID_CHARS,
                                         description="selects the customer's CLV segment; an "
                                                     "unknown id gets the default segment")]
TopK = Annotated[int, Query(ge=1, le=MAX_K, description="number of results")]
Explain = Annotated[bool, Query(description="add each term's contribution to every result")]


# -- endpoints -------------------------------------------------------------------------------
async def search(request: Request, state: State, q: QueryText, customer_id: CustomerId = None,
                 k: TopK = 20, explain: Explain = False) -> Response:
    """Ranked products for ``q``. A query with no known word returns no results.

    Runs on the event loop, not in a thread pool: a search is about a millisecond of work,
    mostly under the GIL (the Numba kernels do not release it), so threads would add hand-offs
    and GIL contention; for more cores, run more worker processes (docs/service.md).
    """
    # (The docstring above is the OpenAPI description.) A valid search seldom gets here:
    # _FastSearch answers it first, with the same body.
    ranker = state.require_ranker()  # one snapshot: its config ranks, its version is reported
    return Response(search_body(request, ranker, q, customer_id, k, explain),
                    media_type="application/json",
                    headers={"x-config-version": ranker.serving.version})


def search_body(request: Request, ranker: Ranker, q: str, customer_id: str | None, k: int,
                explain: bool) -> bytes:
    """Search with ``ranker`` (its config ranks; its version is the one reported), queue the
    impression, note the log fields, and return the JSON body of :class:`SearchResponse`."""
    results = ranker.search(q, customer_id=customer_id, k=k, explain=explain,
                            request_id=request.scope.get(events_api.REQUEST_ID_KEY))
    events_api.log_search(request, q, customer_id, results)  # queued; never waits (--events)
    request.scope[_LOG_KEY].update(customer_id=customer_id, k=k, results=len(results),
                                   arm=results[0].arm if results else None)
    return encode_search_response(q, k, ranker.serving.version, results)


def encode_search_response(q: str, k: int, version: str, results: list[SearchResult]) -> bytes:
    """``SearchResponse(...).model_dump()`` rendered as ``JSONResponse`` renders it, built
    from the results directly: validating each hit through pydantic and dumping it again
    cost more than the HTTP work around it (tests/ranking/app/test_service_fast.py holds the
    two byte-equal)."""
    if type(q) is not str or type(k) is not int or type(version) is not str:
        return _BODY_JSON.encode({"query": q, "k": k, "config_version": version, "results": [
            {"rank": r.rank, "product_id": r.product_id, "title": r.title, "score": r.score,
             "pinned": r.pinned, "arm": r.arm, "contributions": r.contributions,
             "from_prior": r.from_prior} for r in results]}).encode()
    hits = []
    for r in results:
        score, pinned, rank = r.score, r.pinned, r.rank
        if type(score) is float and score - score == 0.0 and type(rank) is int \
                and (pinned is True or pinned is False) and r.arm is None \
                and r.contributions is None and r.from_prior is None:
            # the common hit, written as the encoder writes it (finite float: its repr)
            hits.append(f'{{"rank":{rank!r},{_id_title(r.product_id, r.title)},"score":'
                        f'{float.__repr__(score)},"pinned":{"true" if pinned else "false"},'
                        '"arm":null,"contributions":null,"from_prior":null}')
        else:  # explain, an arm, a pinned product (null score), anything unusual
            hits.append(_BODY_JSON.encode({
                "rank": rank, "product_id": r.product_id, "title": r.title, "score": score,
                "pinned": pinned, "arm": r.arm, "contributions": r.contributions,
                "from_prior": r.from_prior}))
    return (f'{{"query":{_json_str(q)},"k":{k!r},"config_version":{_json_str(version)},'
            f'"results":[{",".join(hits)}]}}').encode()


def _id_title(product_id: str, title: str) -> str:
    """``"product_id":...,"title":...`` as the encoder writes them, kept per product (a
    bounded cache: the catalog's strings never change under a product id and title)."""
    key = (product_id, title)
    text = _ID_TITLE.get(key)
    if text is None:
        if len(_ID_TITLE) >= _ID_TITLE_MAX:
            _ID_TITLE.clear()
        text = _ID_TITLE[key] = (f'"product_id":{_BODY_JSON.encode(product_id)},'
                                 f'"title":{_BODY_JSON.encode(title)}')
    return text


_ID_TITLE: dict[tuple[str, str], str] = {}
_ID_TITLE_MAX = 100_000


#: What ``json.dumps`` builds per call with these options (as ``JSONResponse`` renders), built
#: once; and the log line's encoder (:class:`JsonFormatter`).
_BODY_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None,
                              separators=(",", ":"))
_LOG_JSON = json.JSONEncoder(ensure_ascii=False, default=str)
_json_str = json.encoder.encode_basestring  # a str as the encoder above writes it


async def healthz(state: State) -> JSONResponse:
    """Liveness: 200 while the process can serve or is still loading; 503 if loading failed."""
    failed = state.error is not None
    body = Status(status="failed" if failed else "alive", detail=state.error)
    return JSONResponse(body.model_dump(), status_code=503 if failed else 200)


async def readyz(state: State) -> JSONResponse:
    """Readiness: 200 once the bundle is loaded, warmed and configured, 503 before."""
    body = state.status()
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ready" else 503)


def _accepted(generation: Generation) -> Reloaded:
    return Reloaded(config_version=generation.version, config_generation=generation.number,
                    loaded_at=generation.accepted_at, source=generation.source)


async def _body(request: Request, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (counted as it arrives)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def put_config(request: Request, state: State) -> Reloaded | JSONResponse:
    """Replace the weights config with the YAML in the body (``application/yaml``), or with
    ``{"text": ..., "sha256": ...}`` (``application/json``): validated, written durably as the
    last good config, served by this worker at once and by every worker within a poll. With
    an ``X-Content-SHA256`` header (or the JSON ``sha256``), a text with another hash is
    refused: a client that read a half-written file finds out here."""
    auth.require_admin(request, state.token, auth.YAML_TYPES | auth.JSON_TYPES)
    raw = await _body(request)
    expected = request.headers.get("x-content-sha256")
    try:
        if auth.media_type(request) in auth.JSON_TYPES:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or not isinstance(doc.get("text"), str) \
                    or not isinstance(doc.get("sha256", ""), str):
                raise ValueError('a JSON body is {"text": "<the weights YAML>", '
                                 '"sha256": "<optional>"}')
            text, expected = doc["text"], doc.get("sha256") or expected
        else:
            text = raw.decode("utf-8-sig")
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        detail = str(exc) if "JSON body is" in str(exc) else "the body is not UTF-8 YAML/JSON"
        raise HTTPException(400, detail) from None
    if expected is not None and hashlib.sha256(text.encode()).hexdigest() != \
            expected.strip().lower():
        state.store.refused()
        return state.refused(ConfigError([ConfigIssue(
            "PUT /config", None, "", "the text's sha256 is not the one sent with it: "
            "incomplete or not the text meant (nothing was swapped)")]))
    try:
        generation = await asyncio.to_thread(state.change, text, "PUT /config", "PUT /config")
    except ConfigError as exc:
        return state.refused(exc)
    return _accepted(generation)


async def reload(request: Request, state: State) -> Reloaded | JSONResponse:
    """Re-read the ``--config`` file (else the bundle's weights) and make it the last good
    config, only if it is complete: its sha256 must equal the body's ``sha256`` or, without
    one, the ``<file>.sha256`` sidecar."""
    auth.require_admin(request, state.token, auth.JSON_TYPES, body_optional=True)
    raw = await _body(request, 4096)
    try:
        expected = ReloadRequest.model_validate_json(raw).sha256 if raw.strip() else None
    except ValueError:
        raise HTTPException(400, 'the body is {"sha256": "<64 hex digits>"} or empty') from None
    try:
        generation = await asyncio.to_thread(state.reload_file, expected, "POST /reload")
    except ConfigError as exc:
        return state.refused(exc)
    return _accepted(generation)


async def metrics(state: State) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 body, each message starting with the field it is about, without the
    ``input`` (a client's 100 KB query is not echoed back)."""
    assert isinstance(exc, RequestValidationError)
    errors = []
    for e in exc.errors():
        error = {key: value for key, value in e.items() if key not in ("input", "url")}
        error["msg"] = f"{e['loc'][-1]}: {e['msg'].removeprefix('Value error, ')}"
        if error["type"] == "value_error":
            error.pop("ctx", None)  # holds the exception object; its text is in msg
        errors.append(error)
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


_NOT_READY = {503: {"model": Status, "description": "not ready (loading or failed)"}}
_ADMIN = {401: {"description": "admin token missing or wrong"},
          403: {"description": "admin endpoints off, or a cross-origin write"},
          413: {"description": "body too large"}, 415: {"description": "content type refused"}}
_CONFIG_BODY = {"requestBody": {"required": True, "content": {
    "application/yaml": {"schema": {"type": "string", "maxLength": MAX_CONFIG_BYTES}},
    "application/json": {"schema": {"type": "object", "required": ["text"], "properties": {
        "text": {"type": "string", "maxLength": MAX_CONFIG_BYTES},
        "sha256": {"type": "string"}}}}}}}
_RELOAD_BODY = {"requestBody": {"required": False, "content": {
    "application/json": {"schema": ReloadRequest.model_json_schema()}}}}


def create_app(bundle_dir: str | Path, config: str | Path | None = None, *,
               state_dir: str | Path | None = None, load_first: bool = False,
               admin_token: str | None = None) -> FastAPI:
    """The service over the bundle at ``bundle_dir``. ``config`` is the file reloads read
    (default: the bundle's own weights). ``state_dir`` holds the last good config; without
    one (a standalone app) a private temporary one is made and seeded from the file at
    start. Loading starts when the app starts (its lifespan), in the background; with
    ``load_first`` the app does not start serving until the ranker is ready, and fails to
    start if it cannot load (what a worker among several needs)."""
    metrics_ = Metrics()
    seed = state_dir is None
    if state_dir is None:
        state_dir = tempfile.mkdtemp(prefix="marginrank-state-")
    store = ConfigStore(state_dir)
    metrics_.registry.register(_StoreCounts(store))
    state = ServiceState(Path(bundle_dir), Path(config) if config else None, store, metrics_,
                         admin_token, seed)
    app = _ServiceApp(title="marginrank", summary="Product search ranked for relevance, then for "
                  "margin, CLV, returns and inventory", lifespan=_lifespan,
                  docs_url=None, redoc_url=None)  # their assets come from a CDN: off
    app.state.service = state
    app.state.load_first = load_first
    app.add_api_route("/search", search, methods=["GET"], response_model=SearchResponse,
                      responses=_NOT_READY)
    app.add_api_route("/healthz", healthz, methods=["GET"],
                      responses={200: {"model": Status}, 503: {"model": Status}})
    app.add_api_route("/readyz", readyz, methods=["GET"],
                      responses={200: {"model": Status}, **_NOT_READY})
    app.add_api_route("/config", put_config, methods=["PUT"], response_model=Reloaded,
                      openapi_extra=_CONFIG_BODY,
                      responses={400: {"model": ReloadRefused}, **_ADMIN, **_NOT_READY})
    app.add_api_route("/reload", reload, methods=["POST"], response_model=Reloaded,
                      openapi_extra=_RELOAD_BODY,
                      responses={400: {"model": ReloadRefused}, **_ADMIN, **_NOT_READY})
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    events_api.install(app)  # POST /events and the impression log (--events DIR)
    dashboard.install(app)  # /ui
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.front = _Observe(_FastSearch(app, state, app.framework), metrics=metrics_,
                         paths=frozenset(r.path for r in app.routes),
                         worker=os.environ.get(ENV_WORKER_ID, ""))
    return app


class _ServiceApp(FastAPI):
    """FastAPI with the request observation (:class:`_Observe`) outermost and the fast path
    of ``GET /search`` (:class:`_FastSearch`) inside it; every other request, and a search
    the fast path declines, goes through the framework as before."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None:
            await self.framework(scope, receive, send)
        else:
            await self.front(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start loading (in the background, or before serving); stop following the store at
    the end."""
    state: ServiceState = app.state.service
    if app.state.load_first:
        await asyncio.to_thread(state.load)
        if state.error is not None:
            raise MarginRankError(f"cannot serve {state.bundle_dir}: {state.error}")
    else:
        threading.Thread(target=state.load, name="marginrank-load", daemon=True).start()
    try:
        yield
    finally:
        state.stop()


# -- request observation ---------------------------------------------------------------------
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Observe:
    """ASGI middleware: a request id (the client's X-Request-ID or a new one, echoed back), the
    worker that answered, the latency and status into the metrics, and one JSON log line per
    request."""

    def __init__(self, app: ASGIApp, metrics: Metrics, paths: frozenset[str],
                 worker: str = "") -> None:
        self.app = app
        self.metrics = metrics
        self.paths = paths
        self.worker = worker.encode()

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _request_id(scope)
        fields: dict[str, object] = {}
        scope[_LOG_KEY] = fields
        scope[events_api.REQUEST_ID_KEY] = request_id  # the impression log's request id
        status = 500  # unless a response starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(b"x-request-id", request_id.encode())]
                if self.worker:
                    extra.append((b"x-marginrank-worker", self.worker))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            path = scope["path"] if scope["path"] in self.paths else "other"
            self.metrics.observe(path, scope["method"], status, seconds)
            if log.isEnabledFor(logging.INFO):  # log.info without looking up its caller's
                # frame (file, line, function: no part of the JSON line)
                log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, "request", (),
                                          None, "_Observe", {"fields": {
                    "request_id": request_id, "method": scope["method"], "path": path,
                    "status": status, "latency_ms": round(seconds * 1000, 3), **fields}}))


#: ``explain`` values pydantic reads as a bool (the lower-case forms; others: the framework).
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_K = re.compile(r"[0-9]{1,3}")


def search_args(query_string: bytes) -> tuple[str, str | None, int, bool] | None:
    """``GET /search``'s arguments (q, customer_id, k, explain) when they surely pass the
    route's validation (:data:`QueryText`, :data:`CustomerId`, :data:`TopK`,
    :data:`Explain`); None for anything else (a repeated name, an empty customer id, a ``k``
    that is not plain digits...), which the framework then validates and answers itself.
    The query string is split as Starlette splits it."""
    q = customer_id = None
    k, explain, seen = 20, False, set()
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return None
        seen.add(name)
        if name == "q":
            q = value
        elif name == "customer_id":
            customer_id = value
        elif name == "k":
            if not _K.fullmatch(value):
                return None
            k = int(value)
        elif name == "explain":
            if value not in _TRUE and value not in _FALSE:
                return None
            explain = value in _TRUE
    if q is None or not 1 <= len(q) <= MAX_QUERY_CHARS or not q.strip() or not 1 <= k <= MAX_K:
        return None
    if customer_id is not None and not 1 <= len(customer_id) <= MAX_CUSTOMER_ID_CHARS:
        return None
    return q, customer_id, k, explain


class _FastSearch:
    """``GET /search`` without the framework's per-request machinery (routing, dependency
    injection, parameter and answer models), which cost a worker more CPU than the search
    itself: the same rules (:func:`search_args`), the same body (:func:`search_body`) and
    headers. A search the rules do not surely accept, or one that arrives before the ranker
    is ready, goes to the framework, which answers it (422, 503) as before; so does every
    other request."""

    def __init__(self, app: FastAPI, state: ServiceState, framework: ASGIApp) -> None:
        self.app, self.state, self.framework = app, state, framework

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ranker = self.state.ranker
        args = None
        if scope["type"] == "http" and scope["path"] == "/search" and scope["method"] == "GET" \
                and ranker is not None:
            args = search_args(scope["query_string"])
        if args is None:
            await self.framework(scope, receive, send)
            return
        scope["app"] = self.app  # what the framework sets; the impression log reads it
        version = ranker.serving.version
        body = search_body(Request(scope), ranker, *args)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"x-config-version", version.encode("latin-1")),
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
    return uuid.uuid4().hex


# -- logging ---------------------------------------------------------------------------------
class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``fields``."""

    _second, _prefix = -1, ""

    def _ts(self, created: float) -> str:
        """``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`` (the
        same rounding), with the part up to the second formatted once a second."""
        second = int(created)
        micros = round((created - second) * 1e6)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{micros // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": self._ts(record.created),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage(), "pid": record.process,
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return _LOG_JSON.encode(doc)  # json.dumps(doc, ensure_ascii=False, default=str)


#: uvicorn's and our loggers, all as JSON lines on stderr.
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JsonFormatter}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                            "stream": "ext://sys.stderr"}},
    "loggers": {name: {"handlers": ["stderr"], "level": "INFO", "propagate": False}
                for name in ("uvicorn", "marginrank")},
}


# -- running ---------------------------------------------------------------------------------
def app_from_env() -> FastAPI:
    """The app of one worker, its settings from the environment the supervisor sets
    (``MARGINRANK_BUNDLE``, ``MARGINRANK_CONFIG``, ``MARGINRANK_STATE_DIR``, the admin token)."""
    bundle_dir = os.environ.get(ENV_BUNDLE)
    if not bundle_dir:
        raise MarginRankError(f"{ENV_BUNDLE} is not set: it names the bundle directory to serve")
    return create_app(bundle_dir, os.environ.get(ENV_CONFIG) or None,
                      state_dir=os.environ.get(ENV_STATE_DIR) or None,
                      load_first=os.environ.get(ENV_LOAD_FIRST) == "1",
                      admin_token=auth.load_token())


def serve(bundle_dir: Path, config: Path | None = None, host: str = "127.0.0.1",
          port: int = 8080, workers: int = 1, *, state_dir: Path | None = None,
          admin_token_file: Path | None = None) -> int:
    """Run the service until SIGTERM or SIGINT (``marginrank serve``): the supervisor binds
    the socket once and runs ``workers`` worker processes (:mod:`ranking.app.supervisor`).
    Returns the exit code."""
    from ranking.app.supervisor import Supervisor

    return Supervisor(bundle_dir, config, host, port, workers, state_dir=state_dir,
                      admin_token_file=admin_token_file).run()

