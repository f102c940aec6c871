"""Issue 17, HTTP overhead: ``GET /search``'s fast path answers exactly as the framework does.

The fast path (:class:`ranking.app.service._FastSearch`) skips FastAPI's routing, dependency
injection and pydantic models for a search whose parameters surely validate. These tests hold
it to the framework's answers: the same status, body bytes and headers for valid searches
(explain, pins, known and unknown customers) and for every kind of invalid one, which it must
hand to the framework (422) rather than answer; and the hand-encoded body equal, byte for byte,
to the pydantic models' dump that the OpenAPI schema documents.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ranking.app import service as service_module
from ranking.app.service import (
    Hit,
    SearchResponse,
    create_app,
    encode_search_response,
    search_args,
)
from ranking.ranker import Ranker
from tests.service_fixtures import RICH_WEIGHTS, service_bundle, wait_until

__all__ = ["service_bundle"]  # fixture used by name

with warnings.catch_warnings():  # starlette's notice about its httpx dependency
    warnings.simplefilter("ignore")
    from fastapi.responses import JSONResponse
    from fastapi.testclient import TestClient

#: The headers both paths must agree on (x-request-id is sent; the worker id is unset here).
COMPARED = ("content-type", "content-length", "x-config-version", "x-request-id")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fast") / "weights.yaml"
    path.write_text(RICH_WEIGHTS, encoding="utf-8")  # pins, buries, a segment
    return path


@pytest.fixture(scope="module")
def client(service_bundle: Path, config: Path) -> Iterator[TestClient]:
    with TestClient(create_app(service_bundle, config)) as http:
        wait_until(lambda: http.get("/readyz").status_code == 200, "the app to be ready", 300)
        yield http


@pytest.fixture(scope="module")
def customers(service_bundle: Path) -> list[str]:
    from clv.segments import load_customers

    return load_customers(service_bundle / "customers.npz").customer_ids.tolist()[:3]


def both(client: TestClient, target: str) -> tuple[object, object]:
    """The answer to ``GET target`` by the fast path and by the framework alone."""
    headers = {"X-Request-ID": "fast-path-parity"}  # the same exploration draw on both
    fast = client.get(target, headers=headers)
    original = service_module.search_args
    service_module.search_args = lambda query_string: None  # every search to the framework
    try:
        framework = client.get(target, headers=headers)
    finally:
        service_module.search_args = original
    return fast, framework


def assert_same(client: TestClient, target: str) -> int:
    fast, framework = both(client, target)
    assert fast.status_code == framework.status_code, target
    assert fast.content == framework.content, target
    for name in COMPARED:
        assert fast.headers.get(name) == framework.headers.get(name), (target, name)
    return fast.status_code


def test_valid_searches_are_answered_alike(client: TestClient, customers: list[str]) -> None:
    statuses = []
    for q in ("cordless drill", "drill", "60 watt smart bulb", "zzzz unknownword", "Drill 2"):
        for customer in (None, *customers, "unknown-7"):
            for extra in ({}, {"explain": "true"}, {"k": "3", "explain": "1"}, {"k": "200"}):
                params = {"q": q, **({"customer_id": customer} if customer else {}), **extra}
                statuses.append(assert_same(client, "/search?" + urlencode(params)))
    assert set(statuses) == {200}
    pinned = client.get("/search?q=cordless+drill&explain=true").json()["results"]
    assert pinned[0]["product_id"] == "P00308" and pinned[0]["pinned"] is True


@pytest.mark.parametrize("query", [
    "", "q=", "q=%20%20", "k=5", "q=drill&k=0", "q=drill&k=201", "q=drill&k=abc",
    "q=drill&k=020", "q=drill&k=%205", "q=drill&k=5.0", "q=drill&k=-1", "q=drill&q=saw",
    "q=drill&explain=maybe", "q=drill&explain=TRUE", "q=drill&explain=", "q=drill&explain=yes",
    "q=drill&customer_id=", "q=drill&customer_id=" + "c" * 129, "q=" + "a" * 513,
    "q=" + "a" * 512, "q=" + quote("perceuse sans fil é"), "q=drill%00", "q=%ff%fe",
    "q=drill&unknown=1", "q=drill&k=1",
])
def test_edge_cases_are_answered_alike(client: TestClient, query: str) -> None:
    assert_same(client, "/search?" + query)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(
    st.sampled_from(["q", "k", "customer_id", "explain", "other"]),
    st.one_of(st.sampled_from(["drill", "", " ", "1", "0", "200", "201", "true", "no", "07",
                               "cordless drill", "P00308"]),
              st.text(max_size=12))), max_size=5))
def test_any_query_string_is_answered_alike(client: TestClient,
                                            pairs: list[tuple[str, str]]) -> None:
    assert_same(client, "/search?" + urlencode(pairs))


def test_search_args_accepts_only_what_surely_validates() -> None:
    assert search_args(b"q=drill") == ("drill", None, 20, False)
    assert search_args(b"q=a+b&k=7&explain=on&customer_id=C1") == ("a b", "C1", 7, True)
    for refused in (b"", b"q=", b"q=+", b"q=x&k=0", b"q=x&k=1e1", b"q=x&q=y",
                    b"q=x&customer_id=", b"q=x&explain=True"):
        assert search_args(refused) is None, refused


def test_the_body_is_the_response_models_dump(service_bundle: Path, config: Path,
                                              customers: list[str]) -> None:
    ranker = Ranker.load(service_bundle).variant(config)
    version = ranker.serving.version
    checked = 0
    for q in ("cordless drill", "drill", "smart bulb", "hammer", "zzzz"):
        for customer in (None, customers[0], "unknown-1"):
            for explain in (False, True):
                results = ranker.search(q, customer_id=customer, k=20, explain=explain)
                dumped = SearchResponse(query=q, k=20, config_version=version,
                                        results=[Hit.model_validate(r) for r in results])
                assert encode_search_response(q, 20, version, results) == \
                    JSONResponse(dumped.model_dump()).body
                checked += len(results)
    assert checked > 100  # real hits were compared, pinned and explained ones among them


@settings(max_examples=500, deadline=None)
@given(st.floats(min_value=0, max_value=4e9, allow_nan=False)
       | st.integers(0, 4_000_000_000).map(lambda s: s + 0.9999995))
def test_the_log_time_is_isoformat_to_the_millisecond(created: float) -> None:
    from datetime import UTC, datetime

    from ranking.app.service import JsonFormatter

    formatter = JsonFormatter()
    for _ in range(2):  # formatted, then from the cached second
        assert formatter._ts(created) == \
            datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
