"""Fixtures shared by the tests/ranking/app/test_service_*.py modules (imported by name there): one
bundle of the reduced demo world per session, a weights file richer than the bundle's own (pins,
buries, a segment, ``out_of_stock: hide``: what a half-written file silently loses), and a
running ``marginrank serve`` with an admin token."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ranking.app.build import BuildInputs, BuildSettings, build
from tests.conftest import load_benchmark

load = load_benchmark("service_load")

RICH_WEIGHTS = """\
# the weights a merchandiser saves (a non-atomic editor save leaves any prefix of it)
version: 1
weights:
  margin: 0.35
  clv: 0.1
  returns: 0.2
  inventory: 0.15
guardrails:
  max_ndcg_drop: 0.005
  out_of_stock: hide
  relevance_tiers: false
segments:
  top_decile: {min_clv_quantile: 0.9, weights: {margin: 0.1}}
categories: {}
pins: {"cordless drill": ["P00308"]}
buries: ["P00307"]
inventory:
  target_weeks_of_cover: 8.0
"""


@pytest.fixture(scope="session")
def service_bundle(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("service_bundle") / "bundle"
    build(BuildInputs(small_world / "catalog.csv", small_world / "judgments.csv",
                      small_world / "transactions.csv.gz"), out, BuildSettings(seed=3))
    return out


def sha256(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def write_with_sidecar(path: Path, text: str | bytes, intended: str | bytes | None = None) -> None:
    """``path`` holds ``text``; its sidecar the sha256 of ``intended`` (default: ``text``)."""
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(data)
    path.with_name(path.name + ".sha256").write_text(
        f"{sha256(data if intended is None else intended)}  {path.name}\n", encoding="utf-8")


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def children(pid: int) -> set[int]:
    """The child processes of ``pid`` (from /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def raw_request(port: int, data: bytes, shut_write: bool = False, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh loopback connection and return all the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


@pytest.fixture(scope="module")
def service(service_bundle: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[load.ServiceProcess]:
    """``marginrank serve`` (1 worker) on the rich weights file, with its sidecar."""
    tmp = tmp_path_factory.mktemp("service")
    config = tmp / "weights.yaml"
    write_with_sidecar(config, RICH_WEIGHTS)
    with load.ServiceProcess(service_bundle, config, tmp / "server.log") as srv:
        srv.wait_for("/readyz")
        srv.config = config  # type: ignore[attr-defined]
        yield srv
