"""The reference service over real HTTP: ``marginrank serve`` runs as a subprocess on a free
127.0.0.1 port (a bundle of the reduced demo world) and the tests talk to it with httpx."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from clv.errors import MarginRankError
from objectives.config import TERM_NAMES
from ranking.app.build import BuildInputs, BuildSettings, build
from ranking.app.cli import main
from ranking.app.service import ENV_BUNDLE, app_from_env
from ranking.ranker import Ranker
from tests.conftest import load_benchmark

load = load_benchmark("service_load")


@pytest.fixture(scope="module")
def bundle_dir(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("service") / "bundle"
    build(BuildInputs(small_world / "catalog.csv", small_world / "judgments.csv",
                      small_world / "transactions.csv.gz"), out, BuildSettings(seed=3))
    return out


@pytest.fixture(scope="module")
def config(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The weights file the server reloads; tests that change it put the original back."""
    path = tmp_path_factory.mktemp("config") / "weights.yaml"
    path.write_text((bundle_dir / "weights.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(bundle_dir: Path, config: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[load.ServiceProcess]:
    log = tmp_path_factory.mktemp("log") / "server.log"
    with load.ServiceProcess(bundle_dir, config, log) as srv:
        srv.wait_for("/readyz")
        yield srv


@pytest.fixture(scope="module")
def library(bundle_dir: Path) -> Ranker:
    """The same bundle opened in-process, to compare the service's answers with."""
    return Ranker.load(bundle_dir)


@pytest.fixture()
def http(server: load.ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture()
def restore(config: Path, http: httpx.Client, server: load.ServiceProcess) -> Iterator[None]:
    """Put the original weights file back (and serve it) after a test that changes it."""
    original = config.read_text(encoding="utf-8")
    yield
    config.write_text(original, encoding="utf-8")
    assert reload_file(http, server, original).status_code == 200


def reload_file(http: httpx.Client, server: load.ServiceProcess, text: str) -> httpx.Response:
    """``POST /reload`` with the admin token and the sha256 of the complete file ``text``
    (issue 16: a reload names the file it means, so a half-written one is refused)."""
    return http.post("/reload", json=load.sha256_body(text), headers=server.admin_headers)


def write_with_sidecar(path: Path, text: str) -> None:
    """The weights file and its ``.sha256`` sidecar, which a SIGHUP reload checks it by."""
    path.write_text(text, encoding="utf-8")
    path.with_name(path.name + ".sha256").write_text(
        f"{hashlib.sha256(text.encode()).hexdigest()}  {path.name}\n", encoding="utf-8")


def served(ranker: Ranker, query: str, **kwargs: object) -> list[dict[str, object]]:
    """What the library returns for ``query``, in the service's JSON shape."""
    fields = ("rank", "product_id", "title", "score", "pinned", "arm", "contributions",
              "from_prior")
    return [{f: getattr(r, f) for f in fields} for r in ranker.search(query, **kwargs)]


def version_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_search_returns_what_the_library_ranks(http: httpx.Client, library: Ranker,
                                               config: Path) -> None:
    response = http.get("/search", params={"q": "cordless drill", "k": 7})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "cordless drill" and body["k"] == 7
    assert 1 <= len(body["results"]) <= 7
    assert all(hit["contributions"] is None and hit["arm"] is None for hit in body["results"])
    library.reload_config(config)
    assert body["results"] == served(library, "cordless drill", k=7)
    assert response.headers["x-request-id"]


def test_explain_gives_contributions_that_add_up(http: httpx.Client) -> None:
    body = http.get("/search", params={"q": "drill", "k": 5, "explain": "true"}).json()
    assert body["results"]
    for hit in body["results"]:
        assert set(hit["contributions"]) == {"relevance", *TERM_NAMES}
        assert sum(hit["contributions"].values()) == pytest.approx(hit["score"], abs=1e-9)


def test_unknown_customer_gets_the_default_segment(http: httpx.Client) -> None:
    anonymous = http.get("/search", params={"q": "paint brush"}).json()["results"]
    unknown = http.get("/search", params={"q": "paint brush", "customer_id": "nobody-42"})
    assert unknown.status_code == 200 and unknown.json()["results"] == anonymous
    assert anonymous  # the comparison above is not between two empty lists


@pytest.mark.parametrize(("params", "field"), [
    ({"q": "x" * 513}, "q"),
    ({"q": "   "}, "q"),
    ({}, "q"),
    ({"q": "drill", "k": 0}, "k"),
    ({"q": "drill", "k": 201}, "k"),
    ({"q": "drill", "k": "ten"}, "k"),
    ({"q": "drill", "customer_id": "c" * 129}, "customer_id"),
])
def test_requests_outside_the_limits_get_422_naming_the_field(
        http: httpx.Client, params: dict[str, object], field: str) -> None:
    response = http.get("/search", params=params)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [e["loc"] for e in errors] == [["query", field]]
    assert errors[0]["msg"].startswith(f"{field}: ")


def test_requests_at_the_limits_are_served(http: httpx.Client) -> None:
    assert http.get("/search", params={"q": "drill " + "x" * 506, "k": 200}).status_code == 200
    assert http.get("/search", params={"q": "drill", "k": 1}).json()["results"]
    assert http.get("/search", params={"q": "zzqqx"}).json()["results"] == []


@pytest.mark.usefixtures("restore")
def test_reload_swaps_a_good_file_and_refuses_a_bad_one(http: httpx.Client, config: Path,
                                                        library: Ranker,
                                                        server: load.ServiceProcess) -> None:
    before = http.get("/readyz").json()
    good = load.stronger_variant(config.read_text(encoding="utf-8"))
    config.write_text(good, encoding="utf-8")
    response = reload_file(http, server, good)
    assert response.status_code == 200
    reloaded = response.json()
    assert reloaded["config_version"] == version_of(good) != before["config_version"]
    assert reloaded["config_generation"] == before["config_generation"] + 1
    library.reload_config(config)
    expected = served(library, "drill", k=10, explain=True)
    params = {"q": "drill", "k": 10, "explain": "true"}
    assert http.get("/search", params=params).json()["results"] == expected

    bad = load.invalid_variant(good)
    config.write_text(bad, encoding="utf-8")
    refused = reload_file(http, server, bad)
    assert refused.status_code == 400
    body = refused.json()
    assert body["config_version"] == version_of(good)
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "marign:" in text)
    assert [(e["file"], e["line"], e["key"]) for e in body["errors"]] == [
        (str(config), line, "weights.marign")]
    assert "did you mean 'margin'" in body["errors"][0]["message"]
    assert http.get("/search", params=params).json()["results"] == expected  # old weights
    assert http.get("/readyz").json()["config_version"] == version_of(good)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def served_versions(url: str, requests: int = 8) -> set[str]:
    """The config versions answering ``requests`` fresh connections (one each, no keep-alive,
    so that every worker can be reached)."""
    return {httpx.get(f"{url}/readyz", timeout=30).json()["config_version"]
            for _ in range(requests)}


def reload_count(http: httpx.Client, result: str) -> float:
    return metric_value(http, "marginrank_config_reloads_total", {"result": result})


@pytest.mark.usefixtures("restore")
def test_sighup_reloads_and_a_bad_file_keeps_the_old_weights(
        http: httpx.Client, server: load.ServiceProcess, config: Path) -> None:
    assert server.process is not None
    good = load.stronger_variant(config.read_text(encoding="utf-8"))
    write_with_sidecar(config, good)
    server.process.send_signal(signal.SIGHUP)
    wait_until(lambda: http.get("/readyz").json()["config_version"] == version_of(good),
               "the SIGHUP reload")
    refused = reload_count(http, "refused")
    write_with_sidecar(config, "version: 1\nweights: {margin: -2}\n")
    server.process.send_signal(signal.SIGHUP)
    wait_until(lambda: reload_count(http, "refused") == refused + 1, "the refused reload")
    assert http.get("/readyz").json()["config_version"] == version_of(good)
    assert http.get("/search", params={"q": "drill"}).status_code == 200


def metric_value(http: httpx.Client, name: str, labels: dict[str, str]) -> float:
    """The value of one sample of the server's /metrics (0 when absent)."""
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return sample.value
    return 0.0


def test_metrics_count_requests_and_show_the_config(http: httpx.Client) -> None:
    ok = {"path": "/search", "method": "GET", "status": "200"}
    bad = {**ok, "status": "422"}
    before_ok = metric_value(http, "marginrank_http_requests_total", ok)
    before_bad = metric_value(http, "marginrank_http_requests_total", bad)
    before_hist = metric_value(http, "marginrank_http_request_duration_seconds_count",
                               {"path": "/search"})
    for _ in range(3):
        http.get("/search", params={"q": "hammer"})
    http.get("/search", params={"q": "hammer", "k": 0})
    assert metric_value(http, "marginrank_http_requests_total", ok) == before_ok + 3
    assert metric_value(http, "marginrank_http_requests_total", bad) == before_bad + 1
    assert metric_value(http, "marginrank_http_request_duration_seconds_count",
                        {"path": "/search"}) == before_hist + 4
    assert metric_value(http, "marginrank_http_request_duration_seconds_bucket",
                        {"path": "/search", "le": "+Inf"}) == before_hist + 4
    ready = http.get("/readyz").json()
    assert metric_value(http, "marginrank_config_info",
                        {"version": ready["config_version"]}) == 1
    assert metric_value(http, "marginrank_config_generation", {}) == ready["config_generation"]
    loaded = metric_value(http, "marginrank_config_loaded_timestamp_seconds", {})
    assert time.time() - 600 < loaded <= time.time()
    assert metric_value(http, "marginrank_ready", {}) == 1


def test_logs_are_json_lines_with_request_id_latency_and_arm(
        http: httpx.Client, server: load.ServiceProcess) -> None:
    http.get("/search", params={"q": "drill zebrafinch", "customer_id": "C-log-1"},
             headers={"X-Request-ID": "test-log-1"})
    wait_until(lambda: "test-log-1" in server.log_path.read_text(), "the request's log line")
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines()
             if line.startswith("{")]
    (entry,) = [e for e in lines if e.get("request_id") == "test-log-1"]
    assert entry["path"] == "/search" and entry["status"] == 200
    assert entry["latency_ms"] > 0 and "arm" in entry and entry["customer_id"] == "C-log-1"
    assert "zebrafinch" not in server.log_path.read_text()  # query text is not logged


def test_openapi_schema_describes_the_api(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    search = spec["paths"]["/search"]["get"]
    params = {p["name"]: p for p in search["parameters"]}
    assert params["q"]["required"] and params["q"]["schema"]["maxLength"] == 512
    assert params["k"]["schema"] | {"minimum": 1, "maximum": 200, "default": 20} == \
        params["k"]["schema"]
    assert not params["customer_id"]["required"] and params["explain"]["schema"]["default"] is False
    ref = search["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    schemas = spec["components"]["schemas"]
    response_schema = schemas[ref.rsplit("/", 1)[-1]]
    hit = schemas[response_schema["properties"]["results"]["items"]["$ref"].rsplit("/", 1)[-1]]
    body = http.get("/search", params={"q": "drill", "explain": "true"}).json()
    assert set(body) == set(response_schema["properties"])
    assert set(body["results"][0]) == set(hit["properties"])
    assert {"422", "503"} <= set(search["responses"])
    reload = spec["paths"]["/reload"]["post"]["responses"]
    assert reload["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ReloadRefused")
    assert {"/healthz", "/readyz"} <= set(spec["paths"])


def test_load_with_reloads_fails_no_search(server: load.ServiceProcess, config: Path,
                                           restore: None) -> None:
    """The benchmark's own measurement, small: searches at concurrency 8 while good and bad
    files are reloaded every 0.05 s. The first invalid file goes in at 0.1 s: 1,500 searches
    last longer than that on any machine (one worker answers at most about a thousand a
    second here), where 200 searches through the light client could end before it."""
    good = config.read_text(encoding="utf-8")
    plan = load.request_plan(["drill", "paint brush", "hammer", "zzqqx"], ["C1"], 1500)
    result = load.measure(server.url, config, [good, load.stronger_variant(good)],
                          load.invalid_variant(good), plan, concurrency=8, every=0.05,
                          admin_token=server.admin_token)
    assert result["failed"] == 0 and result["reload_failures"] == []
    assert result["reloads"]["ok"] >= 1 and result["reloads"]["refused"] >= 1
    assert result["latency_ms"]["p50"] > 0 and result["server_cpu_ms_per_request"] > 0
    assert "| failed searches |" in load.table({**result, "workers": 1})


def test_readiness_waits_for_the_load(bundle_dir: Path, tmp_path: Path) -> None:
    """The config is a named pipe, so loading (bundle, warm-up, then config) cannot finish until
    the test writes it: meanwhile the server is alive but not ready; then it is ready."""
    fifo = tmp_path / "weights.yaml"
    os.mkfifo(fifo)
    with load.ServiceProcess(bundle_dir, fifo, tmp_path / "server.log") as srv:
        assert srv.wait_for("/healthz").json()["status"] == "alive"
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            not_ready = http.get("/readyz")
            assert not_ready.status_code == 503 and not_ready.json()["status"] == "loading"
            search = http.get("/search", params={"q": "drill"})
            assert search.status_code == 503 and search.headers["retry-after"] == "1"
            assert metric_value(http, "marginrank_ready", {}) == 0
            text = (bundle_dir / "weights.yaml").read_text(encoding="utf-8")
            _write_to_pipe(fifo, text)
            ready = srv.wait_for("/readyz", timeout=120).json()
            assert ready["status"] == "ready" and ready["config_version"] == version_of(text)
            assert http.get("/search", params={"q": "drill"}).json()["results"]


def _write_to_pipe(fifo: Path, text: str, timeout: float = 120.0) -> None:
    """Write once the server opens the pipe for reading (never block on a dead server)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:  # ENXIO: no reader yet
            assert time.monotonic() < deadline, "the server never read its config"
            time.sleep(0.05)
    os.set_blocking(fd, True)
    with os.fdopen(fd, "w", encoding="utf-8") as pipe:
        pipe.write(text)


@pytest.mark.parametrize("args", [["--bundle", "no-such-dir"],
                                  ["--bundle", "BUNDLE", "--config", "missing.yaml"],
                                  ["--bundle", "BUNDLE", "--workers", "0"]])
def test_serve_refuses_bad_arguments_before_starting(args: list[str], bundle_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(bundle_dir) if a == "BUNDLE" else a for a in args]
    assert main(["serve", *args]) == 2
    assert "marginrank: error:" in capsys.readouterr().err


def test_app_factory_needs_the_bundle_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_BUNDLE, raising=False)
    with pytest.raises(MarginRankError, match=ENV_BUNDLE):
        app_from_env()


def worker_pids(srv: load.ServiceProcess) -> set[int]:
    """The supervisor's worker processes (its children), from /proc."""
    assert srv.process is not None
    return {int(pid) for pid in Path(f"/proc/{srv.process.pid}/task/{srv.process.pid}/children")
            .read_text().split()}


def test_several_workers_swap_a_config_in_place_without_restarts(bundle_dir: Path,
                                                                tmp_path: Path) -> None:
    """Issue 16 replaced the rolling restart: with --workers 2, SIGHUP to the main process
    (a complete file: its sidecar sha256 matches) and POST /reload (which reaches one worker)
    each get every worker serving the new file, in place, no worker restarted; an invalid
    file is refused and the last good config keeps serving everywhere."""
    config, log = tmp_path / "weights.yaml", tmp_path / "server.log"
    original = (bundle_dir / "weights.yaml").read_text(encoding="utf-8")
    config.write_text(original, encoding="utf-8")
    with load.ServiceProcess(bundle_dir, config, log, workers=2) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as http:
        srv.wait_for("/readyz")
        wait_until(lambda: len(worker_pids(srv)) == 2, "two workers")
        pids = worker_pids(srv)
        assert srv.process is not None
        good = load.stronger_variant(original)
        write_with_sidecar(config, good)
        srv.process.send_signal(signal.SIGHUP)
        wait_until(lambda: served_versions(srv.url) == {version_of(good)},
                   "every worker serving the new file", timeout=30)
        write_with_sidecar(config, load.invalid_variant(good))
        srv.process.send_signal(signal.SIGHUP)
        wait_until(lambda: "config change refused" in log.read_text(), "the refused reload")
        assert served_versions(srv.url) == {version_of(good)}
        assert http.get("/search", params={"q": "drill"}).json()["results"]
        newer = load.stronger_variant(good)
        config.write_text(newer, encoding="utf-8")
        answer = reload_file(http, srv, newer).json()
        assert answer["config_version"] == version_of(newer)
        wait_until(lambda: served_versions(srv.url) == {version_of(newer)},
                   "every worker serving the file POST /reload read", timeout=30)
        assert worker_pids(srv) == pids  # nothing restarted
