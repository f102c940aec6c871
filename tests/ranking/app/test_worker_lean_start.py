"""The service's workers start lean (``ranking.kernel_cache.LEAN_ENV``): the supervisor sets
``MARGINRANK_LEAN_NUMBA=1`` for them, so a worker loads its kernels without mapping
scipy.linalg's LAPACK library (the 0.3 s Numba's BLAS check would cost), and still answers; the
operator's own setting wins."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.service_fixtures import RICH_WEIGHTS, children, load, service_bundle, wait_until
from tests.service_fixtures import write_with_sidecar as write_config

__all__ = ["service_bundle"]  # fixture used by name
LEAN = "MARGINRANK_LEAN_NUMBA"


def _worker_state(bundle: Path, tmp_path: Path) -> tuple[dict[str, str], str, int]:
    """(environment, memory maps, hits of one search) of the worker of a one-worker service."""
    config = tmp_path / "weights.yaml"
    write_config(config, RICH_WEIGHTS)
    with load.ServiceProcess(bundle, config, tmp_path / "server.log") as srv:
        srv.wait_for("/readyz")
        assert srv.process is not None
        wait_until(lambda: len(children(srv.process.pid)) == 1, "the worker")
        (worker,) = children(srv.process.pid)
        response = httpx.get(srv.url + "/search", params={"q": "drill", "k": 5}, timeout=30)
        assert response.status_code == 200, response.text
        raw = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
        environ = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
        maps = Path(f"/proc/{worker}/maps").read_text()
        return environ, maps, len(response.json()["results"])


@pytest.mark.parametrize("operator", [None, "0"], ids=["default", "operator-off"])
def test_workers_start_lean_unless_the_operator_says_otherwise(
        service_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        operator: str | None) -> None:
    if operator is None:
        monkeypatch.delenv(LEAN, raising=False)
    else:
        monkeypatch.setenv(LEAN, operator)
    environ, maps, hits = _worker_state(service_bundle, tmp_path)
    assert hits > 0
    assert environ.get(LEAN) == ("1" if operator is None else operator)
    # scipy.linalg's Fortran LAPACK extension is mapped only when Numba's BLAS check ran
    assert ("_flapack" in maps) == (operator is not None), os.getpid()
