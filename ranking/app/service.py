"""The reference HTTP service: FastAPI over one :class:`~ranking.ranker.Ranker`.

Production habits a search team can keep when they copy it:

- the bundle is loaded and warmed in a background thread, so ``/healthz`` (liveness) answers at
  once and ``/readyz`` (readiness) says 503 until the first search would be fast;
- ``POST /reload`` and SIGHUP re-read the weights YAML; a valid file is swapped in atomically by
  the ranker, an invalid one is refused with its file/line/key errors and the old weights keep
  serving; with several workers a valid ``POST /reload`` also asks uvicorn's supervisor (SIGHUP)
  to replace every worker, so the workers the request did not reach load the file too;
- ``/metrics`` in the Prometheus text format (prometheus-client): requests by status, latency
  histogram, the config version serving now and when it was loaded;
- one JSON log line per request (request id, latency, arm, customer id; never the query text,
  which can hold personal data).

``marginrank serve`` runs :func:`serve`, which starts uvicorn on the factory
:func:`app_from_env`; the settings travel in environment variables (``MARGINRANK_BUNDLE``,
``MARGINRANK_CONFIG``) because uvicorn's worker processes import the app by name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

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
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from clv.errors import MarginRankError
from objectives.config import ConfigError, ConfigIssue
from ranking import bundle, core
from ranking.app import dashboard, events_api
from ranking.ranker import WEIGHTS_FILE, Ranker

ENV_BUNDLE = "MARGINRANK_BUNDLE"
ENV_CONFIG = "MARGINRANK_CONFIG"
ENV_LOAD_FIRST = "MARGINRANK_LOAD_BEFORE_SERVING"
#: Set by ``serve`` with several workers: the workers run under uvicorn's supervisor (their
#: parent process), which replaces them all, one at a time, on SIGHUP.
ENV_SUPERVISED = "MARGINRANK_SUPERVISED_WORKERS"
#: Seconds uvicorn's supervisor gives a worker to start (imports and, with several workers, the
#: bundle load) and to answer its health pings.
WORKER_START_SECONDS = 120
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
    results: list[Hit]


class Status(BaseModel):
    """Liveness or readiness, with the weights config serving now."""

    status: str = Field(description="loading | ready | failed (readiness); alive (liveness)")
    detail: str | None = None
    config_version: str | None = Field(None, description="sha256 prefix of the weights YAML")
    config_generation: int = Field(0, description="successful config loads since start")


class Reloaded(BaseModel):
    config_version: str
    config_generation: int
    loaded_at: float = Field(description="Unix time the config was swapped in")
    source: str
    workers_restarting: bool = Field(
        False, description="true with several workers: the file was valid here, and the main "
        "process is replacing every worker, one at a time, with one that loads it")


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
        self.generation = Gauge("marginrank_config_generation", "Successful config loads "
                                "since start (1 = the one loaded at start)", registry=reg)
        self.loaded_at = Gauge("marginrank_config_loaded_timestamp_seconds", "Unix time the "
                               "serving config was swapped in", registry=reg)
        self.reloads = Counter("marginrank_config_reloads", "Reload attempts by result "
                               "(ok, refused)", ["result"], registry=reg)

    def swapped(self, serving: core.ServingConfig, source: str, generation: int,
                at: float) -> None:
        self.config.clear()
        self.config.labels(serving.version, source).set(1)
        self.generation.set(generation)
        self.loaded_at.set(at)

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(path, method, str(status)).inc()
        self.latency.labels(path).observe(seconds)


# -- state -----------------------------------------------------------------------------------
class ServiceState:
    """The ranker once loaded, and the bookkeeping of its config swaps."""

    def __init__(self, bundle_dir: Path, config: Path | None, metrics: Metrics,
                 supervised: bool = False) -> None:
        self.bundle_dir = bundle_dir
        self.config_path = config
        self.metrics = metrics
        self.supervised = supervised  # one of several workers under uvicorn's supervisor
        self.ranker: Ranker | None = None
        self.error: str | None = None
        self.generation = 0
        self.loaded_at = 0.0
        self._lock = threading.Lock()  # keeps (swap, generation, metrics) in step

    @property
    def weights_path(self) -> Path:
        """The file reloads read: ``--config``, else the bundle's own weights."""
        return self.config_path or self.bundle_dir / WEIGHTS_FILE

    def load(self) -> None:
        """Open, warm and configure the ranker (runs in a background thread at start).

        A failure is kept in :attr:`error` (readiness and liveness report it) rather than
        raised, because nothing above this thread would show it.
        """
        start = time.perf_counter()
        try:
            ranker = Ranker.load(self.bundle_dir)  # verifies checksums, warms the kernels
            if self.config_path is not None:
                ranker.reload_config(self.config_path)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the probes
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("load failed", exc_info=not isinstance(exc, MarginRankError),
                      extra={"fields": {"error": self.error}})
            return
        with self._lock:
            self._swapped(ranker.serving, "start")
            self.ranker = ranker
        self.metrics.ready.set(1)
        log.info("ready", extra={"fields": {
            "bundle": str(self.bundle_dir), "products": len(ranker.catalog.product_ids),
            "load_ms": round((time.perf_counter() - start) * 1000, 1)}})

    def reload(self, trigger: str) -> core.ServingConfig:
        """Re-read the weights file. Raises ConfigError for an invalid file (the old config
        keeps serving), or a 503 HTTPException while the ranker is not loaded."""
        ranker = self.require_ranker()
        with self._lock:
            try:
                serving = ranker.reload_config(self.weights_path)
            except ConfigError as exc:
                self.metrics.reloads.labels("refused").inc()
                log.warning("reload refused", extra={"fields": {
                    "trigger": trigger, "errors": [str(i) for i in exc.issues],
                    "config_version": ranker.serving.version}})
                raise
            self._swapped(serving, trigger)
            return serving

    def reload_quietly(self, trigger: str) -> None:
        """:meth:`reload` for a signal: the outcome is in the log and metrics only."""
        try:
            self.reload(trigger)
        except ConfigError:
            pass  # reload() logged and counted it
        except HTTPException as exc:
            log.warning("reload ignored", extra={"fields": {"trigger": trigger,
                                                            "why": exc.detail}})

    def _swapped(self, serving: core.ServingConfig, trigger: str) -> None:
        self.generation += 1
        self.loaded_at = time.time()
        if trigger != "start":
            self.metrics.reloads.labels("ok").inc()
        self.metrics.swapped(serving, str(self.weights_path), self.generation, self.loaded_at)
        log.info("config loaded", extra={"fields": {
            "trigger": trigger, "config_version": serving.version,
            "config_generation": self.generation, "source": str(self.weights_path)}})

    def require_ranker(self) -> Ranker:
        if self.ranker is None:
            detail = f"load failed: {self.error}" if self.error else "loading the bundle"
            raise HTTPException(503, f"not ready: {detail}", headers={"Retry-After": "1"})
        return self.ranker

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


QueryText = Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="the search text"),
                      AfterValidator(_has_text)]
CustomerId = Annotated[str | None, Query(max_length=MAX_CUSTOMER_ID_CHARS,
                                         description="selects the customer's CLV segment; an "
                                                     "unknown id gets the default segment")]
TopK = Annotated[int, Query(ge=1, le=MAX_K, description="number of results")]
Explain = Annotated[bool, Query(description="add each term's contribution to every result")]


# -- endpoints -------------------------------------------------------------------------------
async def search(request: Request, state: State, q: QueryText, customer_id: CustomerId = None,
           k: TopK = 20, explain: Explain = False) -> SearchResponse:
    """Ranked products for ``q``. A query with no known word returns no results.

    Runs on the event loop, not in a thread pool: a search is under a millisecond of work that
    holds the GIL, so threads would add hand-offs and GIL contention, not parallelism (for more
    cores, run more workers).
    """
    results = state.require_ranker().search(q, customer_id=customer_id, k=k, explain=explain)
    hits = [Hit.model_validate(r) for r in results]
    events_api.log_search(request, q, customer_id, results)  # queued; never waits (--events)
    request.scope[_LOG_KEY].update(customer_id=customer_id, k=k, results=len(hits),
                                   arm=hits[0].arm if hits else None)
    return SearchResponse(query=q, k=k, results=hits)


async def healthz(state: State) -> JSONResponse:
    """Liveness: 200 while the process can serve or is still loading; 503 if loading failed."""
    failed = state.error is not None
    body = Status(status="failed" if failed else "alive", detail=state.error)
    return JSONResponse(body.model_dump(), status_code=503 if failed else 200)


async def readyz(state: State) -> JSONResponse:
    """Readiness: 200 once the bundle is loaded and warmed, 503 before (or if it failed)."""
    body = state.status()
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ready" else 503)


def reload(state: State) -> Reloaded | JSONResponse:
    """Re-read the weights YAML (``--config``, else the bundle's) and swap it in."""
    try:
        serving = state.reload("http")
    except ConfigError as exc:
        errors = [Issue(file=i.file, line=i.line, key=i.key_path, message=i.message)
                  for i in exc.issues]
        body = ReloadRefused(detail="weights file refused; the previous weights keep serving",
                             errors=errors, config_version=state.require_ranker().serving.version)
        return JSONResponse(body.model_dump(), status_code=400)
    if state.supervised:
        # This worker swapped the file in; the others cannot hear this request. SIGHUP to the
        # supervisor replaces every worker (this one too) with one that loads the same file.
        os.kill(os.getppid(), signal.SIGHUP)
    return Reloaded(config_version=serving.version, config_generation=state.generation,
                    loaded_at=state.loaded_at, source=str(state.weights_path),
                    workers_restarting=state.supervised)


async def metrics(state: State) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 body, with each message starting with the field it is about."""
    assert isinstance(exc, RequestValidationError)
    errors = [{**e, "msg": f"{e['loc'][-1]}: {e['msg'].removeprefix('Value error, ')}"}
              for e in exc.errors()]
    for error in errors:
        if error["type"] == "value_error":
            error.pop("ctx", None)  # holds the exception object; its text is in msg
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


_NOT_READY = {503: {"model": Status, "description": "not ready (loading or failed)"}}


def create_app(bundle_dir: str | Path, config: str | Path | None = None,
               load_first: bool = False, supervised: bool = False) -> FastAPI:
    """The service over the bundle at ``bundle_dir``, serving the weights in ``config`` (default:
    the bundle's own). Loading starts when the app starts (its lifespan), in the background;
    with ``load_first`` the app does not start until the ranker is ready, and fails to start if
    it cannot load (what uvicorn's rolling restart of several workers needs). ``supervised``
    (one of several workers) makes ``POST /reload`` restart all workers through the supervisor.
    """
    metrics_ = Metrics()
    state = ServiceState(Path(bundle_dir), Path(config) if config else None, metrics_,
                         supervised)
    app = FastAPI(title="marginrank", summary="Product search ranked for relevance, then for "
                  "margin, CLV, returns and inventory", lifespan=_lifespan)
    app.state.service = state
    app.state.load_first = load_first
    app.add_api_route("/search", search, methods=["GET"], response_model=SearchResponse,
                      responses=_NOT_READY)
    app.add_api_route("/healthz", healthz, methods=["GET"],
                      responses={200: {"model": Status}, 503: {"model": Status}})
    app.add_api_route("/readyz", readyz, methods=["GET"],
                      responses={200: {"model": Status}, **_NOT_READY})
    app.add_api_route("/reload", reload, methods=["POST"], response_model=Reloaded,
                      responses={400: {"model": ReloadRefused}, **_NOT_READY})
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    events_api.install(app)  # POST /events and the impression log (--events DIR)
    dashboard.install(app)  # /ui
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(_Observe, metrics=metrics_, paths=frozenset(r.path for r in app.routes))
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start loading (in the background, or before serving) and install the SIGHUP reload."""
    state: ServiceState = app.state.service
    if app.state.load_first:
        await asyncio.to_thread(state.load)
        if state.error is not None:
            raise MarginRankError(f"cannot serve {state.bundle_dir}: {state.error}")
    else:
        threading.Thread(target=state.load, name="marginrank-load", daemon=True).start()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(
            None, state.reload_quietly, "SIGHUP"))
    except (RuntimeError, ValueError, NotImplementedError) as exc:  # not the main thread
        log.warning("no SIGHUP reload in this process", extra={"fields": {"why": str(exc)}})
        yield
        return
    yield
    loop.remove_signal_handler(signal.SIGHUP)


# -- request observation ---------------------------------------------------------------------
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]


class _Observe:
    """ASGI middleware: a request id (the client's X-Request-ID or a new one, echoed back), the
    latency and status into the metrics, and one JSON log line per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics, paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = paths

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
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            path = scope["path"] if scope["path"] in self.paths else "other"
            self.metrics.observe(path, scope["method"], status, seconds)
            log.info("request", extra={"fields": {
                "request_id": request_id, "method": scope["method"], "path": path,
                "status": status, "latency_ms": round(seconds * 1000, 3), **fields}})


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

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage(), "pid": record.process,
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


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
    """The uvicorn factory (``ranking.app.service:app_from_env``): settings from the environment."""
    bundle_dir = os.environ.get(ENV_BUNDLE)
    if not bundle_dir:
        raise MarginRankError(f"{ENV_BUNDLE} is not set: it names the bundle directory to serve")
    return create_app(bundle_dir, os.environ.get(ENV_CONFIG) or None,
                      load_first=os.environ.get(ENV_LOAD_FIRST) == "1",
                      supervised=os.environ.get(ENV_SUPERVISED) == "1")


def serve(bundle_dir: Path, config: Path | None = None, host: str = "127.0.0.1",
          port: int = 8080, workers: int = 1) -> None:
    """Run uvicorn on :func:`app_from_env` until interrupted (``marginrank serve``).

    One worker loads in the background (liveness answers during warm-up; SIGHUP reloads the
    weights in place). Several workers load before serving, so that SIGHUP to the main process,
    which makes uvicorn replace the workers one at a time, retires an old worker only once its
    replacement has loaded, and keeps it if the replacement cannot load.
    """
    import uvicorn  # the service extra; imported only when serving

    if not (bundle_dir / bundle.MANIFEST).is_file():
        raise bundle.BundleError(f"{bundle_dir}: not a bundle ({bundle.MANIFEST} missing)")
    if config is not None and not config.exists():
        raise ConfigError([ConfigIssue(str(config), None, "", "no such file")])
    if workers < 1:
        raise MarginRankError(f"--workers must be at least 1, got {workers}")
    os.environ[ENV_BUNDLE] = str(bundle_dir.resolve())
    os.environ[ENV_CONFIG] = str(config.resolve()) if config else ""
    os.environ[ENV_LOAD_FIRST] = "1" if workers > 1 else ""
    os.environ[ENV_SUPERVISED] = "1" if workers > 1 else ""
    uvicorn.run("ranking.app.service:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_config=LOG_CONFIG, access_log=False,
                timeout_worker_healthcheck=WORKER_START_SECONDS,
                timeout_keep_alive=KEEP_ALIVE_SECONDS)

