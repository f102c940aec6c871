"""benchmarks/service_overhead.py, tiny, and its light load client (benchmarks/http_client.py)
against a real ``marginrank serve`` on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.conftest import load_benchmark
from tests.service_fixtures import service, service_bundle

__all__ = ["service", "service_bundle"]  # fixtures used by name

client = load_benchmark("http_client")
overhead = load_benchmark("service_overhead")


def test_the_light_client_reads_what_httpx_reads(service) -> None:  # noqa: ANN001
    targets = ["/search?q=drill", "/search?q=cordless+drill&explain=true&k=5",
               "/search?q=zzzz", "/search?q=drill&k=0", "/healthz", "/nowhere"]
    requests = [client.encode_request("GET", t) for t in targets] * 3
    result = client.blast(service.port, requests, 2, keep_bodies=True, timeout=60)
    expected = [httpx.get(service.url + t, timeout=30) for t in targets] * 3
    assert result.failed == 0 and result.answered == len(requests)
    assert result.statuses == {200: 12, 422: 3, 404: 3}
    assert result.bodies == [r.content for r in expected]
    assert result.client_cpu_seconds > 0 and len(result.latencies) == len(requests)


def test_connection_close_is_followed_on_a_new_connection(service) -> None:  # noqa: ANN001
    close = client.encode_request("GET", "/healthz", {"Connection": "close"})
    requests = [close, client.encode_request("GET", "/healthz")] * 3
    result = client.blast(service.port, requests, 1, timeout=60)
    assert result.ok == len(requests) and result.failed == 0


def test_tiny_run_writes_the_table_and_verdicts(service_bundle: Path, small_world: Path,
                                                tmp_path: Path) -> None:
    out = tmp_path / "overhead"
    report = overhead.main(["--bundle", str(service_bundle), "--judgments",
                            str(small_world / "judgments.csv"), "--chunk", "60", "--rounds",
                            "2", "--piece", "30", "--concurrency", "4", "--out", str(out)])
    cpu, scaling = report["cpu"], report["scaling"]
    assert cpu["in_process_ms"]["median"] > 0 and cpu["server_ms"]["median"] > 0
    assert cpu["ratio"]["median"] == cpu["ratio"]["median"]  # a number, not NaN
    assert 0 < cpu["client_ms"]["median"]
    assert scaling["one_per_s"]["median"] > 0 and scaling["two_per_s"]["median"] > 0
    rounds = report["rounds"]["scaling"]
    assert len(rounds) == 2 and all(len(r["two_worker_cpu_share"]) == 2 for r in rounds)
    text = out.with_suffix(".md").read_text()
    for line in ("Server CPU per search ≤ 1.3× in process: **",
                 "2 workers ≥ 1.8× one worker's throughput: **", "load client CPU per request",
                 "1-minute load average"):
        assert line in text
    assert json.loads(out.with_suffix(".json").read_text())["command"].startswith("python ")
