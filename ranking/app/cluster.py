"""``--cluster ADDRESS|local:N``: where a command's Dask work runs, opened and always closed.

``local:N`` starts a ``distributed.LocalCluster`` of N worker processes (one thread each) on
loopback for the command's duration; any other value is a scheduler address
(``tcp://host:8786``) to connect a client to. Workers of a remote cluster import marginrank and
read the same paths as the client (input tables, the scratch and bundle directories), so the
package is installed on them and the paths are on a shared file system (docs/scale_out.md).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from clv.errors import ArgumentError

_LOCAL = re.compile(r"local:(\d+)")

CLUSTER_HELP = ("run the heavy work on Dask: local:N starts N local worker processes, an "
                "address such as tcp://host:8786 connects to a running scheduler (the scale "
                "extra; default: in this process)")


def add_cluster_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", metavar="ADDRESS|local:N", type=parse_cluster,
                        default=None, help=CLUSTER_HELP)


def parse_cluster(value: str) -> str:
    """Check the flag's form early (argparse reports the error); returns it unchanged."""
    text = value.strip()
    match = _LOCAL.fullmatch(text)
    if match:
        if int(match.group(1)) < 1:
            raise argparse.ArgumentTypeError("local:N needs at least one worker")
        return text
    if "://" in text or re.fullmatch(r"[\w.\-]+:\d+", text):
        return text
    raise argparse.ArgumentTypeError(
        f"{value!r} is neither local:N nor a scheduler address such as tcp://host:8786")


@contextmanager
def dask_client(cluster: str | None, *, timeout: float = 30.0) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cluster`` (None: yields None, nothing is started).
    A LocalCluster it started is closed with it, also when the work fails."""
    if cluster is None:
        yield None
        return
    import distributed

    match = _LOCAL.fullmatch(cluster.strip())
    if match:
        n = int(match.group(1))
        if n < 1:
            raise ArgumentError("local:N needs at least one worker")
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as local, \
                distributed.Client(local) as client:
            yield client
        return
    try:
        client = distributed.Client(cluster.strip(), timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ArgumentError(f"cannot reach the Dask scheduler at {cluster}: {exc}") from exc
    with client:
        if not client.scheduler_info()["workers"]:
            client.wait_for_workers(1, timeout=timeout)
        yield client
