"""The dashboard served at ``/ui``: the running experiment's readout, and a merchandiser's
side-by-side preview of proposed weights.

- ``GET /ui``: the page (HTML, CSS and JS from ``ranking/app/static``, served by the service
  itself: no CDN, nothing fetched from elsewhere).
- ``GET /ui/readout.json``: the readout (:func:`ranking.experiments.readout.readout`) of the
  service's event directory, with the guardrail flags the page shows; the page renders this
  JSON, so what a person reads is what an API client gets. The readout uses the weights
  serving now: their experiment arms' shares for the sample-ratio test, their
  ``max_ndcg_drop`` as the non-inferiority δ, and the bundle's customer CLV. It is computed
  again only when an event file or the config changes.
- ``GET /ui/plot.png``: the readout's lift-over-time plot.
- ``GET /ui/config.json``: the weights text serving now (the preview starts from it).
- ``POST /ui/preview``: a query ranked with the current weights and with a proposed weights
  YAML (validated like a weights file: line and key of every problem), with each result's
  per-term contributions and how far it moved.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from clv.errors import ConfigError, MarginRankError

STATIC = Path(__file__).with_name("static")
#: The page's own files; nothing else is served from the static folder.
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
#: Limits of a preview request.
MAX_YAML_CHARS = 200_000
MAX_PREVIEW_K = 50


# -- readout -----------------------------------------------------------------------------------
@dataclass
class _Cached:
    key: tuple[Any, ...]
    body: dict[str, Any]
    plot: Path | None


class ReadoutCache:
    """The last readout of an event directory, recomputed when a file or the config changes.
    One computation at a time (DuckDB, the delta method and a matplotlib figure: seconds on a
    large log, so never twice at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: _Cached | None = None
        self._clv: dict[str, float] | None = None
        self.plots_dir = Path(tempfile.mkdtemp(prefix="marginrank-ui-"))
        self._generation = 0

    def get(self, directory: Path, ranker: Any, bundle_dir: Path) -> _Cached:
        from ranking.experiments.events import event_files

        files = [*event_files(directory, "impressions"), *event_files(directory, "outcomes")]
        key = (ranker.serving.version,
               tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
        with self._lock:
            if self._cached is not None and self._cached.key == key:
                return self._cached
            self._cached = self._compute(key, directory, ranker, bundle_dir)
            return self._cached

    def _compute(self, key: tuple[Any, ...], directory: Path, ranker: Any,
                 bundle_dir: Path) -> _Cached:
        from ranking.experiments.readout import NO_ARM, customer_clv, readout

        serving = ranker.serving
        base: dict[str, Any] = {"experiment": serving.experiment,
                                "config_version": serving.version,
                                "events_dir": str(directory)}
        if not key[1]:
            return _Cached(key, {**base, "readout": None, "flags": [],
                                 "reason": "no event files yet (the impression log completes a "
                                 "file every minute, and at shutdown)"}, None)
        if self._clv is None:
            self._clv = customer_clv(bundle_dir)
        shares = {name: arm.share for name, arm in ranker.config.arms().items()}
        if shares and 1.0 - sum(shares.values()) > 1e-9:
            shares[NO_ARM] = 1.0 - sum(shares.values())
        try:
            result = readout(directory, delta=ranker.config.guardrails.max_ndcg_drop,
                             expected_shares=shares or None,
                             shares_source=f"weights serving now ({serving.version})"
                             if shares else None, clv=self._clv)
        except MarginRankError as exc:
            return _Cached(key, {**base, "readout": None, "flags": [],
                                 "reason": f"no readout: {exc}"}, None)
        previous = self._cached.plot if self._cached is not None else None
        self._generation += 1
        plot = result.plot(self.plots_dir / f"lift-{self._generation}.png")
        if previous is not None:
            previous.unlink(missing_ok=True)  # a reader holding it open keeps its copy
        body = {**base, "readout": result.to_dict(), "flags": flags(result.to_dict())}
        return _Cached(key, body, plot)


def flags(readout: dict[str, Any]) -> list[dict[str, str]]:
    """The guardrail flags of a readout (its JSON form): every non-inferiority verdict of every
    arm (missed: red, held but not certified: amber, certified: green) and the sample-ratio
    test (a mismatch is red: the split is broken and no lift can be trusted)."""
    out = []
    srm = readout["srm"]
    out.append({"level": "red" if srm["mismatch"] else "green", "arm": "all",
                "metric": "sample ratio",
                "text": (f"sample-ratio mismatch: p = {srm['p_value']:.3g} < {srm['alpha']}; "
                         "the split is broken, lifts cannot be trusted") if srm["mismatch"]
                else f"sample ratio as configured (p = {srm['p_value']:.3g})"})
    for comparison in readout["comparisons"]:
        for metric, verdict in comparison["verdicts"].items():
            level = {"missed": "red", "held": "amber", "certified": "green"}[verdict["status"]]
            out.append({"level": level, "arm": comparison["arm"], "metric": metric,
                        "text": f"{comparison['arm']}: {verdict['text']}"})
    return out


# -- preview -----------------------------------------------------------------------------------
class PreviewRequest(BaseModel):
    query: str = Field(min_length=1, max_length=512)
    customer_id: str | None = Field(None, max_length=128)
    k: int = Field(10, ge=1, le=MAX_PREVIEW_K)
    weights_yaml: str = Field(max_length=MAX_YAML_CHARS,
                              description="the proposed weights file, as text")


def preview(ranker: Any, request: PreviewRequest) -> dict[str, Any]:
    """Both rankings of one query, each result with its term contributions; raises
    :class:`objectives.config.ConfigError` for an invalid proposal."""
    from objectives.config import parse_config
    from objectives.term_registry import TERM_NAMES

    parse_config(request.weights_yaml, source="proposed weights",
                 product_ids=ranker.catalog.row_of.keys(),
                 target_weeks_of_cover=ranker.target_weeks_of_cover)
    with tempfile.TemporaryDirectory(prefix="marginrank-preview-") as tmp:
        path = Path(tmp) / "proposed.yaml"
        path.write_text(request.weights_yaml, encoding="utf-8")
        proposed = ranker.variant(path)
    sides = {}
    for name, side in (("current", ranker), ("proposed", proposed)):
        results = side.search(request.query, customer_id=request.customer_id, k=request.k,
                              explain=True)
        sides[name] = {"config_version": side.serving.version,
                       "results": [r.to_dict() for r in results]}
    before = {r["product_id"]: r["rank"] for r in sides["current"]["results"]}
    for r in sides["proposed"]["results"]:
        was = before.get(r["product_id"])
        r["moved"] = None if was is None else was - r["rank"]  # + moved up; None: new here
    totals = {}
    for name, side in sides.items():
        terms: dict[str, float] = {}
        for r in side["results"]:
            for term, value in (r["contributions"] or {}).items():
                terms[term] = terms.get(term, 0.0) + value
        totals[name] = terms
    # the columns come from the term registry, so the page shows every declared term
    return {"query": request.query, "customer_id": request.customer_id, "k": request.k,
            "terms": ["relevance", *TERM_NAMES], **sides, "term_totals": totals}


# -- endpoints ---------------------------------------------------------------------------------
def _service(request: Request) -> Any:
    return request.app.state.service


def _ranker_or_503(request: Request) -> Any:
    ranker = _service(request).ranker
    if ranker is None:
        return JSONResponse({"detail": "not ready: loading the bundle"}, status_code=503,
                            headers={"Retry-After": "1"})
    return ranker


async def page() -> HTMLResponse:
    """The dashboard page."""
    return HTMLResponse((STATIC / "dashboard.html").read_text(encoding="utf-8"))


async def asset(name: str) -> Response:
    if name not in ASSETS:
        return JSONResponse({"detail": "no such asset"}, status_code=404)
    return FileResponse(STATIC / name, media_type=ASSETS[name])


async def readout_json(request: Request) -> JSONResponse:
    """The running experiment's readout over the service's event directory, and its flags."""
    ranker = _ranker_or_503(request)
    if isinstance(ranker, JSONResponse):
        return ranker
    online = getattr(request.app.state, "events", None)
    if online is None:
        return JSONResponse({"experiment": ranker.serving.experiment,
                             "config_version": ranker.serving.version, "readout": None,
                             "flags": [], "events_dir": None,
                             "reason": "events are off: start the service with --events DIR"})
    cache: ReadoutCache = request.app.state.dashboard_cache
    cached = await asyncio.to_thread(cache.get, online.directory, ranker,
                                     _service(request).bundle_dir)
    body = {**cached.body, "plot": "/ui/plot.png" if cached.plot else None}
    return JSONResponse(body)


async def plot_png(request: Request) -> Response:
    cached = request.app.state.dashboard_cache._cached
    if cached is None or cached.plot is None:
        return JSONResponse({"detail": "no readout plot yet; GET /ui/readout.json first"},
                            status_code=404)
    return FileResponse(cached.plot, media_type="image/png",
                        headers={"Cache-Control": "no-store"})


async def config_json(request: Request) -> JSONResponse:
    ranker = _ranker_or_503(request)
    if isinstance(ranker, JSONResponse):
        return ranker
    return JSONResponse({"config_version": ranker.serving.version,
                         "experiment": ranker.serving.experiment,
                         "weights_yaml": ranker.serving.text})


async def preview_endpoint(request: Request, body: PreviewRequest) -> JSONResponse:
    """Current vs proposed weights for one query (422 with the line and key of each problem
    of an invalid proposal)."""
    ranker = _ranker_or_503(request)
    if isinstance(ranker, JSONResponse):
        return ranker
    try:
        answer = await asyncio.to_thread(preview, ranker, body)
    except ConfigError as exc:
        return JSONResponse({"detail": [
            {"loc": ["body", "weights_yaml"], "line": i.line, "key": i.key_path,
             "msg": f"weights_yaml: line {i.line}: {i.key_path or '(document)'}: {i.message}",
             "type": "config_error"} for i in exc.issues]}, status_code=422)
    except MarginRankError as exc:
        return JSONResponse({"detail": [{"loc": ["body"], "msg": str(exc)[:300],
                                         "type": "value_error"}]}, status_code=422)
    return JSONResponse(answer)


def install(app: Any) -> None:
    """Add the ``/ui`` routes to ``app`` (they read the service's state and its event
    directory, if any)."""
    from ranking.app.events_api import chain_lifespan

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[None]:
        app_.state.dashboard_cache = cache = ReadoutCache()
        try:
            yield
        finally:
            shutil.rmtree(cache.plots_dir, ignore_errors=True)

    app.add_api_route("/ui", page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/ui/static/{name}", asset, methods=["GET"], include_in_schema=False)
    app.add_api_route("/ui/readout.json", readout_json, methods=["GET"],
                      summary="the running experiment's readout and its guardrail flags")
    app.add_api_route("/ui/plot.png", plot_png, methods=["GET"], include_in_schema=False)
    app.add_api_route("/ui/config.json", config_json, methods=["GET"],
                      summary="the weights file serving now")
    app.add_api_route("/ui/preview", preview_endpoint, methods=["POST"],
                      summary="current vs proposed weights for one query, explained per term")
    chain_lifespan(app, lifespan)
