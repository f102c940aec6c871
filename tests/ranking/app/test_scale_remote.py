"""The documented remote recipe on loopback: a `dask scheduler` and two `dask worker` processes,
then `marginrank build --cluster tcp://127.0.0.1:PORT` on the demo world, end to end. Every
process started is killed by process group in ``finally`` and the test checks none is left."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from objectives.catalog import load_catalog
from ranking.bm25 import MultiFieldIndex
from ranking.features import FeatureSpace
from ranking.text import Analyzer
from tests.conftest import ROOT

distributed = pytest.importorskip("distributed")
BIN = Path(sys.executable).parent
DEMO = ROOT / "data" / "demo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: list[str], log: Path) -> subprocess.Popen:
    """A process in a session of its own, so its whole group (nanny and worker) can be
    killed."""
    return subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM every group, then SIGKILL what is left after 10 s; reap the leaders."""
    for proc in processes:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(group_alive(p.pid) for p in processes):
        for proc in processes:
            proc.poll()
        time.sleep(0.2)
    for proc in processes:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_build_against_a_scheduler_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes: list[subprocess.Popen] = []
    try:
        processes.append(start([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1",
                                "--port", str(port), "--no-dashboard"],
                               tmp_path / "scheduler.log"))
        for i in range(2):
            processes.append(start([str(BIN / "dask"), "worker", address, "--nthreads", "1",
                                    "--host", "127.0.0.1", "--no-dashboard", "--name",
                                    f"w{i}"], tmp_path / f"worker{i}.log"))
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        out = tmp_path / "out"
        run = subprocess.run(
            [str(BIN / "marginrank"), "build", "--catalog", str(DEMO / "catalog.csv"),
             "--judgments", str(DEMO / "judgments.csv"), "--transactions",
             str(DEMO / "transactions.csv.gz"), "--config", str(DEMO / "weights.yaml"),
             "--out", str(out), "--cluster", address],
            capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "NDCG" in (out / "report.md").read_text()
        # the bundle's index, built in partitions on the two workers, is the one-process index
        catalog, _ = load_catalog(DEMO / "catalog.csv")
        single = FeatureSpace.build(catalog, Analyzer()).index
        served = MultiFieldIndex.load(out / "bundle")
        for name, field in single.fields.items():
            for key, value in field.arrays(name).items():
                np.testing.assert_array_equal(served.fields[name].arrays(name)[key], value,
                                              strict=True)
        # the work ran on the scheduler's workers: it saw the build's tasks
        with distributed.Client(address, timeout=60) as client:
            prefixes = client.run_on_scheduler(
                lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
        for task in ("analyze_partition", "pool_part", "search_hyperparameters",
                     "cross_fit_relevance"):
            assert any(task in prefix for prefix in prefixes), (task, prefixes)
    finally:
        stop(processes)
    assert not any(group_alive(p.pid) for p in processes)
    assert all(p.returncode is not None for p in processes)
