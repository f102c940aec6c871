"""Events in the real service: ``marginrank serve --events DIR`` as a subprocess on a free
loopback port, talked to over HTTP. Every search is logged under the request id the client
sees; ``POST /events`` validates, writes each event id once (across a restart too) and says
what was refused and where."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from ranking.app.events_api import ENV_EVENTS, MAX_BODY_BYTES, MAX_ECHO, MAX_EVENTS
from ranking.experiments.events import event_files, load_events
from tests.events_support import Server, experiment_config, metric, shared_bundle, wait_until


@pytest.fixture(scope="module")
def bundle(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_bundle(small_world, tmp_path_factory)


@pytest.fixture(scope="module")
def config(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return experiment_config(bundle, tmp_path_factory.mktemp("config") / "weights.yaml")


@pytest.fixture(scope="module")
def events_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("events")


@pytest.fixture(scope="module")
def server(bundle: Path, config: Path, events_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(bundle, config, events_dir, tmp_path_factory.mktemp("log") / "server.log") as s:
        yield s


@pytest.fixture()
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def now() -> str:
    return datetime.now(UTC).isoformat()


def outcome_ids_on_disk(events_dir: Path) -> list[str]:
    return [i for f in event_files(events_dir, "outcomes")
            for i in pq.read_table(f, columns=["event_id"]).column(0).to_pylist()]


def logged(events_dir: Path, request_ids: set[str]) -> list[dict] | None:
    """The impression rows of these requests once every one of them is in a complete file."""
    if not event_files(events_dir, "impressions"):
        return None
    rows = [r for r in load_events(events_dir).impressions.to_pylist()
            if r["request_id"] in request_ids]
    return rows if {r["request_id"] for r in rows} == request_ids else None


def test_every_search_is_logged_under_the_id_the_client_sees(http: httpx.Client,
                                                             events_dir: Path) -> None:
    answers = {}
    for i, customer in enumerate(["C00001", "C00002", "C00003", None, "unknown-7"] * 4):
        params = {"q": ["cordless drill", "paint brush", "zzqqx"][i % 3], "k": 5}
        if customer:
            params["customer_id"] = customer
        headers = {"X-Request-ID": f"client-{i}"} if i % 2 else {}
        response = http.get("/search", params=params, headers=headers)
        assert response.status_code == 200
        rid = response.headers["x-request-id"]
        assert rid == f"client-{i}" or not i % 2
        answers[rid] = (customer, response.json()["results"])
    rows = wait_until(lambda: logged(events_dir, set(answers)), "the searches in complete files")
    for rid, (customer, results) in answers.items():
        mine = sorted((r for r in rows if r["request_id"] == rid), key=lambda r: r["position"])
        assert all(r["customer_id"] == customer for r in mine)
        if not results:  # the query with no known word: one row, nothing shown
            assert [(r["position"], r["product_id"]) for r in mine] == [(-1, None)]
            continue
        assert [(r["position"], r["product_id"], r["score"]) for r in mine] == [
            (h["rank"], h["product_id"], h["score"]) for h in results]
        assert {r["arm"] for r in mine} == {results[0]["arm"]}
        # Item-position propensity: null, the served config does not explore.
        assert all(r["propensity"] is None and r["randomized"] is None for r in mine)
    assert metric(http, "marginrank_impressions_logged_total") >= len(answers)
    assert metric(http, "marginrank_impressions_dropped_total") == 0


def test_outcomes_are_written_once_per_event_id(http: httpx.Client, events_dir: Path) -> None:
    rid = http.get("/search", params={"q": "drill", "customer_id": "C00004"}).headers[
        "x-request-id"]
    batch = [{"event_id": f"once-{t}", "request_id": rid, "product_id": "P00001", "type": t,
              "timestamp": now(), **({"quantity": 2, "unit_price": 10.0, "unit_margin": 3.5}
                                     if t == "purchase" else {})}
             for t in ("click", "add_to_cart", "purchase")]
    before = metric(http, "marginrank_outcome_events_total", {"result": "accepted"})
    assert http.post("/events", json={"events": batch}).json() == {"accepted": 3,
                                                                   "duplicates": 0}
    retry = [*batch, {**batch[0], "event_id": "once-new"}, batch[1]]  # a retried batch, grown
    assert http.post("/events", json={"events": retry}).json() == {"accepted": 1,
                                                                   "duplicates": 4}
    ids = outcome_ids_on_disk(events_dir)
    assert sorted(i for i in ids if i.startswith("once-")) == [
        "once-add_to_cart", "once-click", "once-new", "once-purchase"]
    assert metric(http, "marginrank_outcome_events_total", {"result": "accepted"}) == before + 4
    assert http.post("/events", json={"events": []}).json() == {"accepted": 0, "duplicates": 0}
    assert metric(http, "marginrank_outcome_events_total", {"result": "duplicate"}) >= 4


GOOD = {"event_id": "e", "request_id": "r", "product_id": "P1", "type": "click",
        "timestamp": "2026-12-07T10:00:00Z"}


@pytest.mark.parametrize(("bad", "field", "words"), [
    ({"type": "clack"}, "type", "must be one of"),
    ({"type": "purchase", "quantity": 1}, "unit_price", "required for a purchase"),
    ({"type": "purchase", "unit_price": 5.0}, "quantity", "required for a purchase"),
    ({"event_id": 123}, "event_id", "must be text"),
    ({"timestamp": "yesterday"}, "timestamp", "not an ISO 8601"),
    ({"type": "purchase", "quantity": 1, "unit_price": -5.0}, "unit_price", ">= 0"),
])
def test_a_bad_event_refuses_the_whole_batch_naming_its_index_and_field(
        http: httpx.Client, events_dir: Path, bad: dict, field: str, words: str) -> None:
    batch = [{**GOOD, "event_id": f"fine-{field}-{i}"} for i in range(3)]
    batch.insert(2, {**GOOD, "event_id": f"bad-{field}", **bad})
    files = event_files(events_dir, "outcomes")
    response = http.post("/events", json={"events": batch})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "events", 2, field]
    assert error["msg"].startswith(f"events[2].{field}: ") and words in error["msg"]
    assert event_files(events_dir, "outcomes") == files  # nothing of the batch written


def test_errors_never_echo_a_huge_input(http: httpx.Client) -> None:
    huge = "x" * 3_000_000
    batch = [{**GOOD, "event_id": f"h{i}"} for i in range(5)]
    batch[4] = {**GOOD, "event_id": "h4", "type": huge}
    response = http.post("/events", json={"events": batch})
    assert response.status_code == 422 and len(response.content) < 2_000
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "events", 4, "type"]
    assert len(error["input"]) <= MAX_ECHO + 3


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"{not json", 422, "not valid JSON"),
    (b'[{"event_id": "a"}]', 422, '{"events": [ ... ]}'),
    (b'{"events": {"event_id": "a"}}', 422, '{"events": [ ... ]}'),
    (json.dumps({"events": [GOOD] * (MAX_EVENTS + 1)}).encode(), 422, "at most"),
    (b" " * (MAX_BODY_BYTES + 1), 413, "larger than"),
])
def test_requests_outside_the_limits_are_refused(http: httpx.Client, body: bytes, status: int,
                                                 words: str) -> None:
    response = http.post("/events", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert words in response.json()["detail"][0]["msg"]


def test_a_restart_keeps_every_id_and_drains_the_log(bundle: Path, config: Path,
                                                     tmp_path: Path) -> None:
    """Stopped with SIGTERM, the service drains its queue into a complete file; started again
    on the same directory, it answers the ids accepted before as duplicates."""
    events = tmp_path / "events"
    batch = [{**GOOD, "event_id": f"restart-{i}"} for i in range(4)]
    with Server(bundle, config, events, tmp_path / "a.log", rotate_seconds=3600) as first, \
            httpx.Client(base_url=first.url, timeout=60) as http:
        rids = {http.get("/search", params={"q": "drill", "customer_id": f"C0000{i}"})
                .headers["x-request-id"] for i in range(1, 6)}
        assert http.post("/events", json={"events": batch}).json()["accepted"] == 4
        assert not event_files(events, "impressions")  # an hour from rotating: still open
    assert logged(events, rids) is not None  # drained at shutdown, complete
    assert not list((events / "impressions").glob(".*"))
    with Server(bundle, config, events, tmp_path / "b.log") as second, \
            httpx.Client(base_url=second.url, timeout=60) as http:
        again = [*batch, {**GOOD, "event_id": "restart-new"}]
        assert http.post("/events", json={"events": again}).json() == {"accepted": 1,
                                                                        "duplicates": 4}
    assert sorted(outcome_ids_on_disk(events)) == sorted(
        [f"restart-{i}" for i in range(4)] + ["restart-new"])


def test_events_are_off_unless_asked_for(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ranking.app.service import create_app

    with warnings.catch_warnings():  # starlette's notice about its httpx dependency
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    monkeypatch.delenv(ENV_EVENTS, raising=False)
    with TestClient(create_app(bundle)) as client:
        response = client.post("/events", json={"events": [GOOD]})
        assert response.status_code == 404 and "--events" in response.json()["detail"][0]["msg"]
        assert "marginrank_impressions_logged" not in client.get("/metrics").text
