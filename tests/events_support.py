"""Support for the event and dashboard tests: one bundle of the reduced demo world (built once
per test session), a weights file running an experiment, ``marginrank serve --events`` as a
subprocess on a free loopback port (its process group always killed), and seeded traffic sent
through it over real HTTP (searches, then outcome events posted to ``/events``)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from ranking.app.build import BuildInputs, BuildSettings, build

MARGINRANK = Path(sys.executable).with_name("marginrank")

EXPERIMENT = """
segments:
  top: {min_clv_quantile: 0.8, weights: {margin: 0.1}}
  middle: {min_clv_quantile: 0.4}
experiments:
  margin_push:
    arms:
      control: {share: 0.5}
      margin_push: {share: 0.3, weights: {margin: 0.8}}
"""


def shared_bundle(small_world: Path, factory: pytest.TempPathFactory) -> Path:
    """The reduced demo world's bundle, built once per session (the event tests share it)."""
    out = factory.getbasetemp() / "events-bundle"
    if not (out / "manifest.json").is_file():
        build(BuildInputs(small_world / "catalog.csv", small_world / "judgments.csv",
                          small_world / "transactions.csv.gz"), out, BuildSettings(seed=3))
    return out


def experiment_config(bundle_dir: Path, path: Path) -> Path:
    """The bundle's weights with two CLV segments and an experiment: control 50%, margin_push
    30%, the rest (20%) in no arm."""
    text = (bundle_dir / "weights.yaml").read_text(encoding="utf-8")
    text = text.replace("experiments: {}\n", "").replace("segments: {}\n", "") + EXPERIMENT
    path.write_text(text, encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``marginrank serve --events DIR`` in its own process group; the context manager waits
    until ready and kills the group on exit, whatever happened."""

    def __init__(self, bundle: Path, config: Path, events: Path | None, log: Path,
                 rotate_seconds: float = 0.3) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [str(MARGINRANK), "serve", "--bundle", str(bundle), "--config", str(config),
                     "--port", str(self.port)]
        if events is not None:
            self.args += ["--events", str(events)]
        self.env = {**os.environ, "MARGINRANK_EVENTS_ROTATE_SECONDS": str(rotate_seconds)}
        self.env.pop("MARGINRANK_EVENTS", None)
        self.log = log
        self.events = events
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                            env=self.env, start_new_session=True)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_ready(self, timeout: float = 240.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.args} never became ready (exit {self.process.poll()}):\n"
                           f"{self.log.read_text(errors='replace')[-4000:]}")

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown: the impression log is drained), then SIGKILL
        to the whole group if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass


def wait_until(check: Any, what: str, timeout: float = 30.0) -> Any:
    """Poll ``check()`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def metric(client: httpx.Client, name: str, labels: dict[str, str] | None = None) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and (labels is None or all(
                    sample.labels.get(k) == v for k, v in labels.items())):
                return sample.value
    raise KeyError(name)


def send_traffic(client: httpx.Client, customers: list[str], queries: list[str],
                 catalog: pd.DataFrame, seed: int = 5,
                 searches_per_customer: int = 2) -> dict[str, Any]:
    """Seeded traffic through the service: every customer searches, then clicks, carts and
    buys with probabilities that fall with the position; the outcomes go to ``POST /events``
    in batches. Returns the request ids, the events and what each POST answered."""
    rng = random.Random(seed)
    price = catalog.set_index("product_id")["price"].to_dict()
    cost = catalog.set_index("product_id")["cost"].to_dict()
    events: list[dict[str, Any]] = []
    requests: list[str] = []
    for customer in customers:
        for _ in range(searches_per_customer):
            response = client.get("/search", params={"q": rng.choice(queries), "k": 10,
                                                     "customer_id": customer})
            assert response.status_code == 200
            rid = response.headers["x-request-id"]
            requests.append(rid)
            stamp = datetime.now(UTC).isoformat()
            for hit in response.json()["results"]:
                if rng.random() < 0.35 / hit["rank"]:
                    base = {"request_id": rid, "product_id": hit["product_id"],
                            "timestamp": stamp}
                    events.append({**base, "event_id": f"{rid}-c{hit['rank']}", "type": "click"})
                    if rng.random() < 0.4:
                        events.append({**base, "event_id": f"{rid}-a{hit['rank']}",
                                       "type": "add_to_cart"})
                        if rng.random() < 0.5:
                            pid = hit["product_id"]
                            events.append({**base, "event_id": f"{rid}-p{hit['rank']}",
                                           "type": "purchase", "quantity": 1,
                                           "unit_price": float(price[pid]),
                                           "unit_margin": round(float(price[pid] - cost[pid]),
                                                                2)})
    answers = [client.post("/events", json={"events": events[i:i + 500]}).json()
               for i in range(0, len(events), 500)]
    return {"requests": requests, "events": events, "answers": answers}
