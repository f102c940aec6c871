"""A light HTTP/1.1 load client for the service benchmarks: raw sockets, keep-alive, no library.

Why not httpx: its own CPU (1.8-2.7 ms per request here) is more than a search costs the server,
so on a 2-core machine the client takes the core a second worker would use and no scaling can
show. This client does the least a load client must: requests are encoded once, up front
(:func:`encode_request`); an answer is read as its status line plus ``Content-Length`` bytes
(:func:`parse_head` when the headers are wanted). Two drivers share those rules:

- :func:`blast`: one thread, non-blocking sockets under :mod:`selectors`, one request in flight
  per connection; what the throughput and CPU benchmarks use (a few tens of microseconds of
  client CPU per request, which :class:`BlastResult` reports);
- :class:`Connection`: one asyncio keep-alive connection with the headers parsed, for the chaos
  benchmark, which interleaves searches with kills and config changes on one event loop.

Loopback only: every address is ``127.0.0.1``; every loop is bounded by a request count and a
deadline.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import time
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

HOST = "127.0.0.1"


def encode_request(method: str, target: str, headers: Mapping[str, str] | None = None,
                   body: bytes = b"") -> bytes:
    """The bytes of one HTTP/1.1 request to the loopback service (keep-alive)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("PUT", "POST"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def search_request(params: Mapping[str, str]) -> bytes:
    """``GET /search?<params>``, encoded."""
    return encode_request("GET", "/search?" + urlencode(params))


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status and lower-cased headers of a response head (without the blank line)."""
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            fields[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), fields


def _framing(head: bytes) -> tuple[int, bool]:
    """``Content-Length`` of a response head, and whether the server closes the connection
    after it (``Connection: close``), found without parsing the other headers."""
    lower = head.lower()
    closes = b"\r\nconnection: close" in lower
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        return 0, closes
    end = lower.find(b"\r\n", at + 17)
    return int(lower[at + 17:end if end >= 0 else len(lower)]), closes


# -- the load driver -------------------------------------------------------------------------
class BlastResult:
    """What :func:`blast` saw: answers by status, failures, wall and client CPU seconds,
    latencies (seconds, in completion order) and, if asked, the bodies in request order."""

    def __init__(self, n: int, keep_bodies: bool) -> None:
        self.statuses: dict[int, int] = {}
        self.failed = 0
        self.failures: list[str] = []
        self.latencies: list[float] = []
        self.bodies: list[bytes | None] | None = [None] * n if keep_bodies else None
        self.seconds = 0.0
        self.client_cpu_seconds = 0.0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def client_cpu_per_request_ms(self) -> float:
        return self.client_cpu_seconds / max(1, self.answered + self.failed) * 1000


class _Conn:
    __slots__ = ("sock", "index", "buf", "sent_at", "head_end", "need", "closes")

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.index, self.buf = sock, -1, bytearray()
        self.sent_at, self.head_end, self.need, self.closes = 0.0, -1, -1, False


def blast(port: int, requests: Sequence[bytes], connections: int, *, timeout: float = 120.0,
          keep_bodies: bool = False) -> BlastResult:
    """Send every request in ``requests`` over ``connections`` keep-alive connections, one in
    flight on each, from this thread; returns when all are answered (or failed) or after
    ``timeout`` seconds. After an answer with ``Connection: close`` the next request goes on a
    new connection; a connection the server drops is reopened for the next request, and the
    request it held counts as failed."""
    result = BlastResult(len(requests), keep_bodies)
    selector = selectors.DefaultSelector()
    next_index = 0
    cpu0, start = time.thread_time(), time.perf_counter()
    deadline = start + timeout

    def open_conn() -> _Conn:
        sock = socket.create_connection((HOST, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        conn = _Conn(sock)
        selector.register(sock, selectors.EVENT_READ, conn)
        return conn

    def send_next(conn: _Conn) -> bool:
        nonlocal next_index
        if next_index >= len(requests):
            return False
        conn.index, next_index = next_index, next_index + 1
        conn.head_end, conn.need = -1, -1
        conn.sent_at = time.perf_counter()
        conn.sock.sendall(requests[conn.index])  # small: fits the socket buffer at once
        return True

    def fail(conn: _Conn, why: str) -> _Conn | None:
        result.failed += 1
        if len(result.failures) < 20:
            result.failures.append(why[:200])
        selector.unregister(conn.sock)
        conn.sock.close()
        if next_index >= len(requests):
            return None
        fresh = open_conn()
        return fresh if send_next(fresh) else None

    live = 0
    for _ in range(min(connections, len(requests))):
        if send_next(open_conn()):
            live += 1
    try:
        while live and time.perf_counter() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.perf_counter())):
                conn: _Conn = key.data
                try:
                    chunk = conn.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    live -= fail(conn, f"{type(exc).__name__}: {exc}") is None
                    continue
                if not chunk:
                    live -= fail(conn, "connection closed by the server") is None
                    continue
                conn.buf += chunk
                if conn.head_end < 0:
                    conn.head_end = conn.buf.find(b"\r\n\r\n")
                    if conn.head_end < 0:
                        continue
                    length, conn.closes = _framing(bytes(conn.buf[:conn.head_end]))
                    conn.need = conn.head_end + 4 + length
                if len(conn.buf) < conn.need:
                    continue
                result.latencies.append(time.perf_counter() - conn.sent_at)
                status = int(conn.buf[9:12])
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if result.bodies is not None:
                    result.bodies[conn.index] = bytes(conn.buf[conn.head_end + 4:conn.need])
                del conn.buf[:conn.need]
                if conn.closes:  # the server said so: the next request on a new connection
                    selector.unregister(conn.sock)
                    conn.sock.close()
                    if next_index < len(requests):
                        conn = open_conn()
                if not send_next(conn):
                    live -= 1
    finally:
        result.seconds = time.perf_counter() - start
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()
        result.client_cpu_seconds = time.thread_time() - cpu0
    result.failed += len(requests) - next_index + live  # never sent, or cut by the deadline
    return result


# -- one asyncio connection (the chaos benchmark) -------------------------------------------
class Answer:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class Connection:
    """One keep-alive HTTP/1.1 connection on an asyncio loop; ``worker`` is the id of the
    worker that answered it last (a connection stays with the worker that accepted it)."""

    #: Every worker id that has answered a request (a worker is serving once it is here).
    answered_by: set[str] = set()

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.worker: str | None = None

    async def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                      body: bytes = b"") -> Answer:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
            self.worker = None
        assert self.reader is not None
        self.writer.write(encode_request(method, target, headers, body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, fields = parse_head(head[:-4])
        data = await self.reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            self.close()
        self.worker = fields.get("x-marginrank-worker", self.worker)
        if self.worker:
            Connection.answered_by.add(self.worker)
        return Answer(status, fields, data)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None
