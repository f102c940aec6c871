"""Load on the reference search service over loopback, with hot reloads under way.

Starts ``marginrank serve`` as a child process on a free 127.0.0.1 port (default bundle: the
demo's, ``marginrank-demo/bundle``; run ``marginrank demo`` first), waits until ``/readyz`` says
ready, then sends a bounded number of ``GET /search`` requests (default 20,000) at a fixed
concurrency (default 32) from the light load client's asyncio connections
(``benchmarks/http_client.py``: raw sockets, keep-alive; httpx's own CPU per request was more
than the server's). The queries are the distinct queries of
a judgments file (default: the demo world's judged queries), shuffled; a third of the requests
name a known customer, a third an unknown one, a third none; every tenth asks for explain.

Meanwhile, every second, the served weights file is rewritten (atomically) and ``POST /reload``
is sent with the admin token and the file's sha256, alternating a valid file (two valid variants
in turn, so each swap changes the weights) and an invalid one (a misspelt key). A valid reload
must answer 200, an invalid one 400 naming the key, with the previous version still serving.
A search fails when it does not answer 200 with JSON
results, or raises. Reports throughput, client-side p50/p99/p99.9 and the failures, as markdown
and JSON (``<out>.md`` and ``<out>.json``, with the command and environment at the top,
:mod:`report_env`). Client and server share the machine's cores.

The service logs impressions (``--events`` into a temporary folder; ``--no-events`` to run
without): the report gives the searches the impression log wrote and dropped (its /metrics
counters, from the worker that answers) and, after the service has drained its log at
shutdown, the searches found in the Parquet files.

    python benchmarks/service_load.py [--bundle DIR] [--judgments FILE] [--requests 20000]
                                      [--concurrency 32] [--reload-every 1.0] [--workers 1]
                                      [--out docs/service_load] [--no-events]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import numpy as np
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from clv.segments import load_customers
from objectives.config import TermWeights, dump_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from http_client import Connection  # noqa: E402
from report_env import (  # noqa: E402
    command,
    environment,
    finish,
    header,
    report_paths,
    write_report,
)

MARGINRANK = Path(sys.executable).with_name("marginrank")  # the venv's console script


def free_port() -> int:
    """A loopback port nobody listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """``marginrank serve`` as a child process on a free loopback port (a context manager);
    its JSON log lines go to ``log_path``; the admin endpoints take :attr:`admin_token`. On
    exit the service gets SIGTERM (it stops its workers itself); if it has not exited in
    15 s, its whole process group is killed, so nothing is left behind either way."""

    def __init__(self, bundle: Path, config: Path, log_path: Path, workers: int = 1,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [str(MARGINRANK), "serve", "--bundle", str(bundle), "--config", str(config),
                     "--port", str(self.port), "--workers", str(workers), *extra_args]
        self.log_path = log_path
        self.admin_token = secrets.token_hex(16)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def __enter__(self) -> ServiceProcess:
        env = {**os.environ, "MARGINRANK_ADMIN_TOKEN": self.admin_token}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                            env=env, start_new_session=True)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        try:  # anything of its session still alive (never expected): gone with it
            os.killpg(self.process.pid, 9)
        except ProcessLookupError:
            pass

    def wait_for(self, path: str = "/readyz", timeout: float = 300.0) -> httpx.Response:
        """Poll ``path`` until it answers 200; fail with the server's log if it never does."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                response = httpx.get(self.url + path, timeout=5)
                if response.status_code == 200:
                    return response
                if response.json().get("status") == "failed":  # it will not get better
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.args} did not answer 200 on {path} "
                           f"(exit code {self.process.poll()}); its log:\n"
                           f"{self.log_path.read_text(errors='replace')[-4000:]}")


class Tally:
    """What the load saw: search latencies and failures, reload outcomes. (A plain class: the
    tests import this script by path, where a dataclass cannot resolve its module.)"""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.reloads = {"ok": 0, "refused": 0}
        self.reload_failures: list[str] = []


def request_plan(queries: list[str], customers: list[str], n: int,
                 seed: int = 0) -> list[dict[str, str]]:
    """``n`` search parameter sets: shuffled queries, customers known/unknown/none, explain on
    every tenth."""
    rng = random.Random(seed)
    plan = []
    for i in range(n):
        params = {"q": queries[rng.randrange(len(queries))], "k": "20"}
        if i % 3 == 0:
            params["customer_id"] = customers[rng.randrange(len(customers))]
        elif i % 3 == 1:
            params["customer_id"] = f"unknown-{i}"
        if i % 10 == 0:
            params["explain"] = "true"
        plan.append(params)
    return plan


async def _searcher(conn: Connection, plan: list[dict[str, str]], next_index: list[int],
                    tally: Tally) -> None:
    while next_index[0] < len(plan):
        params = plan[next_index[0]]
        next_index[0] += 1
        start = time.perf_counter()
        try:
            answer = await asyncio.wait_for(conn.request("GET", "/search?" + urlencode(params)),
                                            30)
            ok = answer.status == 200 and isinstance(json.loads(answer.body).get("results"),
                                                     list)
            problem = "" if ok else f"{answer.status} {answer.body[:200]!r}"
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
            conn.close()
        tally.latencies.append(time.perf_counter() - start)
        if problem:
            tally.failures.append(problem)


def sha256_body(text: str) -> dict[str, str]:
    """The ``POST /reload`` body naming the complete file's sha256."""
    return {"sha256": hashlib.sha256(text.encode()).hexdigest()}


async def _reloader(client: httpx.AsyncClient, config: Path, good: list[str], bad: str,
                    every: float, done: asyncio.Event, tally: Tally,
                    headers: dict[str, str]) -> None:
    """Every ``every`` seconds (a fixed rate; a reload slower than that is followed at once by
    the next): write the next file (valid, invalid, valid, ...) and reload."""
    turn, serving, next_at = 0, None, time.monotonic() + every
    while not done.is_set():
        try:
            await asyncio.wait_for(done.wait(), timeout=max(0.0, next_at - time.monotonic()))
            return
        except TimeoutError:
            next_at += every
        valid = turn % 2 == 0
        text = good[(turn // 2) % len(good)] if valid else bad
        _replace(config, text)
        response = await client.post("/reload", json=sha256_body(text), headers=headers)
        body = response.json()
        if valid and response.status_code == 200:
            tally.reloads["ok"] += 1
            serving = body["config_version"]
        elif (not valid and response.status_code == 400 and body["errors"]
              and serving in (None, body["config_version"])):
            tally.reloads["refused"] += 1
        else:
            tally.reload_failures.append(f"{'valid' if valid else 'invalid'} file: "
                                         f"{response.status_code} {response.text[:300]}")
        turn += 1


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


async def _drive(url: str, config: Path, good: list[str], bad: str,
                 plan: list[dict[str, str]], concurrency: int, every: float,
                 headers: dict[str, str]) -> tuple[Tally, float]:
    tally, done, next_index = Tally(), asyncio.Event(), [0]
    # One light keep-alive connection per searcher; the reloads go through httpx.
    conns = [Connection(urlsplit(url).port or 80) for _ in range(concurrency)]
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        reloads = asyncio.create_task(_reloader(client, config, good, bad, every, done, tally,
                                               headers))
        start = time.perf_counter()
        try:
            await asyncio.gather(*(_searcher(conn, plan, next_index, tally) for conn in conns))
        finally:
            for conn in conns:
                conn.close()
        seconds = time.perf_counter() - start
        done.set()
        await reloads
    return tally, seconds


def measure(url: str, config: Path, good: list[str], bad: str, plan: list[dict[str, str]],
            concurrency: int, every: float, admin_token: str = "") -> dict:
    """Run the plan against a ready server whose weights file is ``config``; ``good`` holds
    valid texts for that file, ``bad`` an invalid one; ``admin_token`` is the service's."""
    server_cpu, client_cpu = server_cpu_seconds(url), time.process_time()
    headers = {"Authorization": f"Bearer {admin_token}"}
    tally, seconds = asyncio.run(_drive(url, config, good, bad, plan, concurrency, every,
                                        headers))
    client_cpu = time.process_time() - client_cpu
    server_cpu = server_cpu_seconds(url) - server_cpu
    ms = np.array(tally.latencies) * 1000
    return {
        "requests": len(plan), "concurrency": concurrency, "seconds": seconds,
        "throughput_per_s": len(plan) / seconds,
        "server_cpu_ms_per_request": server_cpu / len(plan) * 1000,
        "client_cpu_ms_per_request": client_cpu / len(plan) * 1000,
        "latency_ms": {p: float(np.percentile(ms, float(p[1:]))) for p in ("p50", "p99", "p99.9")},
        "failed": len(tally.failures), "failure_samples": tally.failures[:5],
        "reload_every_s": every, "reloads": tally.reloads,
        "reload_failures": tally.reload_failures,
    }


def server_cpu_seconds(url: str) -> float:
    """CPU seconds the server process has used (prometheus-client's process collector; with
    several workers, only the worker that answers)."""
    for family in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=30).text):
        if family.name == "process_cpu_seconds":
            return family.samples[0].value
    raise RuntimeError(f"{url}/metrics has no process_cpu_seconds_total")


def table(result: dict) -> str:
    lat, rel = result["latency_ms"], result["reloads"]
    cpu = result["server_cpu_ms_per_request"]
    server_cpu = "n/a with several workers" if cpu is None else f"{cpu:.2f} ms"
    return "\n".join([
        f"{result['requests']:,} searches at concurrency {result['concurrency']}, "
        f"{result['workers']} server worker(s), {os.cpu_count()} cores shared with the client; "
        f"{rel['ok'] + rel['refused']} reloads in {result['seconds']:.0f} s (one every "
        f"{result['reload_every_s']:g} s asked)", "",
        "| throughput (req/s) | p50 ms | p99 ms | p99.9 ms | failed searches | reloads ok | "
        "reloads refused (invalid file) | unexpected reload answers |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {result['throughput_per_s']:,.0f} | {lat['p50']:.2f} | {lat['p99']:.2f} | "
        f"{lat['p99.9']:.2f} | {result['failed']} | {rel['ok']} | {rel['refused']} | "
        f"{len(result['reload_failures'])} |", "",
        f"CPU per request: server {server_cpu}, load client "
        f"{result['client_cpu_ms_per_request']:.2f} ms",
        *_log_lines(result.get("impression_log")),
    ])


def impression_counts(url: str) -> dict[str, float]:
    """The impression log's counters in /metrics (the worker that answers)."""
    wanted = {"marginrank_impressions_logged": "logged",
              "marginrank_impressions_dropped": "dropped",
              "marginrank_impression_write_errors": "write_errors",
              "marginrank_impression_writer_cpu_seconds": "writer_cpu_seconds"}
    counts = {}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=30).text):
        if family.name in wanted:
            counts[wanted[family.name]] = family.samples[0].value
    return counts


def searches_in_files(events: Path) -> int:
    """Distinct searches in the impression files of ``events`` (complete files only)."""
    import pyarrow.parquet as pq

    ids: set[str] = set()
    for path in sorted((events / "impressions").glob("*.parquet")):
        ids.update(pq.read_table(path, columns=["request_id"]).column(0).to_pylist())
    return len(ids)


def _log_lines(log: dict | None) -> list[str]:
    if not log:  # run with --no-events
        return []
    return ["", f"Impression log: {log['logged']:,.0f} searches written, {log['dropped']:,.0f} "
            f"dropped, {log['write_errors']:,.0f} write errors (/metrics at the end of the "
            f"load); {log['searches_in_files']:,} searches in the files after shutdown; "
            f"writer thread CPU {1e6 * log['writer_cpu_seconds'] / max(log['logged'], 1):.0f} "
            "us per search"]


def invalid_variant(text: str) -> str:
    """``text`` with the ``margin`` weight misspelt: refused with file, line and key."""
    return text.replace("margin:", "marign:", 1)


def stronger_variant(text: str) -> str:
    """A valid variant of ``text`` with a stronger margin weight (so each swap changes the
    weights and the version)."""
    config = parse_config(text)
    weights = TermWeights(**{**config.weights.model_dump(),
                             "margin": config.weights.margin * 2 + 0.1})
    return dump_config(config.model_copy(update={"weights": weights}))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path("marginrank-demo/bundle"),
                        help="bundle to serve")
    parser.add_argument("--judgments", type=Path,
                        default=ROOT / "data" / "demo" / "judgments.csv",
                        help="judgments file whose queries are sent")
    parser.add_argument("--requests", type=int, default=20_000, help="searches to send")
    parser.add_argument("--concurrency", type=int, default=32, help="searches in flight")
    parser.add_argument("--reload-every", type=float, default=1.0,
                        help="seconds between config reloads")
    parser.add_argument("--workers", type=int, default=1, help="server workers")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "service_load",
                        help="report path prefix (.md, .json)")
    parser.add_argument("--no-events", action="store_true",
                        help="run the service without its impression log")
    args = parser.parse_args(argv)
    cmd, env = command(__file__, argv), environment("fastapi", "uvicorn", "httpx")
    queries = pd.read_csv(args.judgments, dtype=str)["query"].drop_duplicates().tolist()
    customers = load_customers(args.bundle / "customers.npz").customer_ids.tolist()
    good = (args.bundle / "weights.yaml").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "weights.yaml"
        config.write_text(good, encoding="utf-8")
        events = Path(tmp) / "events"
        extra = () if args.no_events else ("--events", str(events))
        with ServiceProcess(args.bundle, config, Path(tmp) / "server.log", args.workers,
                            extra) as srv:
            srv.wait_for("/readyz")
            result = measure(srv.url, config, [good, stronger_variant(good)],
                             invalid_variant(good), request_plan(queries, customers,
                                                                 args.requests),
                             args.concurrency, args.reload_every, srv.admin_token)
            log = None if args.no_events else impression_counts(srv.url)
        if log is not None:  # the service has stopped: its log is drained into the files
            result["impression_log"] = {**log, "searches_in_files": searches_in_files(events)}
    result.update(workers=args.workers, bundle=str(args.bundle), queries=len(queries))
    if args.workers > 1:  # the figure came from one worker of several
        result["server_cpu_ms_per_request"] = None
    env = finish(env)
    lines = header("The search service under load, with hot reloads", cmd, env) + [
        f"Bundle `{args.bundle}`, the {len(queries):,} distinct queries of `{args.judgments}`. "
        "Latencies are seen by the client, which shares the cores with the server: with many "
        "searches in flight against few workers, p50 is mostly queueing. Method: the script's "
        "docstring.", "", table(result)]
    print("\n".join(lines))
    result = write_report(args.out, lines, result, cmd, env)
    print("\nwritten: " + ", ".join(map(str, report_paths(args.out))))
    return result


if __name__ == "__main__":
    main()
