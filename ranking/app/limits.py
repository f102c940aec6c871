"""Limits that bound every client, at the HTTP protocol level (uvicorn's h11 protocol, extended).

uvicorn closes an idle keep-alive connection, but a client that sends a header one byte at a
time resets that timer forever, and a request line longer than h11's buffer gets a bare 400
and a reset connection. This protocol adds:

- a deadline for the request head (:data:`HEADER_SECONDS`, from its first byte, or from the
  connection's start) and for the body (:data:`BODY_SECONDS`): a slow client gets 408 and
  the connection closes;
- 414 for a request line over :data:`MAX_REQUEST_LINE` bytes, 431 for a head over
  :data:`MAX_HEAD_BYTES`, answered with a lingering close (the rest of what the client sends
  is read and dropped for a moment), so the client reads the answer instead of a reset;
- a cap on open connections per worker (:data:`MAX_CONNECTIONS`): one more is answered 503
  and closed. (uvicorn's ``limit_concurrency`` also answers 503 to requests beyond it.)

The deadlines and the cap can be set with ``MARGINRANK_HEADER_SECONDS``,
``MARGINRANK_BODY_SECONDS`` and ``MARGINRANK_MAX_CONNECTIONS`` (read when a worker starts).
Both of uvicorn's HTTP/1.1 parsers get them: httptools' (C; the default when installed) and
h11's (pure Python; ``MARGINRANK_HTTP_PARSER=h11``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_SECONDS = float(os.environ.get("MARGINRANK_HEADER_SECONDS", "10"))
BODY_SECONDS = float(os.environ.get("MARGINRANK_BODY_SECONDS", "30"))
MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD_BYTES = 32 * 1024
MAX_CONNECTIONS = int(os.environ.get("MARGINRANK_MAX_CONNECTIONS", "512"))
#: How long a refused connection keeps reading (and dropping) what the client still sends.
LINGER_SECONDS = 2.0
#: h11's own buffer limit sits above ours, so the precise answer above wins.
H11_MAX_INCOMPLETE = MAX_HEAD_BYTES + 4096


def _plain(status: int, reason: str, text: str) -> bytes:
    body = text.encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class _Guard:
    """The limits, for either of uvicorn's HTTP/1.1 protocols (mixed in before it)."""

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    connections: set
    cycle: object

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._head = bytearray()
        self._refused = False
        self._timer: asyncio.TimerHandle | None = None
        self._phase = ""
        super().connection_made(transport)  # type: ignore[misc]  # the protocol's, next in line
        if len(self.connections) > MAX_CONNECTIONS:
            self._refuse(503, "Service Unavailable", "too many connections; retry later")
            return
        self._arm("head", HEADER_SECONDS)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _head_refused(self, data: bytes) -> bool:
        """Bytes of a request head: start its deadline at its first byte, unless the head is
        complete in them (no timer to arm and cancel for most requests); 414 for an over-long
        request line, 431 for an over-large head (True: refused, do not parse)."""
        self._head += data[:MAX_HEAD_BYTES + 1 - len(self._head)]
        if self._timer is None and b"\r\n\r\n" not in self._head:
            self._arm("head", HEADER_SECONDS)  # the first byte of a keep-alive request
        line_end = self._head.find(b"\r\n")
        if (line_end < 0 and len(self._head) > MAX_REQUEST_LINE) or \
                line_end > MAX_REQUEST_LINE:
            self._refuse(414, "URI Too Long", f"request line over {MAX_REQUEST_LINE} bytes")
            return True
        if len(self._head) > MAX_HEAD_BYTES and b"\r\n\r\n" not in self._head:
            self._refuse(431, "Request Header Fields Too Large",
                         f"request head over {MAX_HEAD_BYTES} bytes")
            return True
        return False

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._phase = phase
        self._timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._phase = None, ""

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        what = "request head" if self._phase == "head" else "request body"
        if self.cycle is None or not self.cycle.response_started:  # type: ignore[attr-defined]
            self.transport.write(_plain(408, "Request Timeout", f"{what} too slow"))
        self.transport.close()

    def _refuse(self, status: int, reason: str, text: str) -> None:
        self._disarm()
        self._refused = True
        self.transport.write(_plain(status, reason, text))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


class GuardedH11Protocol(_Guard, H11Protocol):
    """uvicorn's h11 protocol with head/body deadlines, 414/431 and a connection cap."""

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: read and drop
        if self.conn.their_state is h11.IDLE and self._head_refused(data):
            return
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def _follow(self) -> None:
        """Move the deadline along with h11's view of the request."""
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._phase == "body" or (self._phase == "head" and not self._head):
                self._disarm()
        else:
            self._head.clear()
            if state is h11.SEND_BODY:
                if self._phase != "body":
                    self._arm("body", BODY_SECONDS)
            elif self._phase:
                self._disarm()


class _HeadWithBody:
    """A response cycle's transport that holds the response head back until the first write
    of the body, and writes both at once: one ``send`` (one system call, one loopback
    segment) per answer instead of two. The bytes and their order are unchanged; a
    ``100 Continue`` (written before the response starts) passes straight through; a close
    sends a held head first. Everything else is the connection's transport."""

    __slots__ = ("_transport", "_cycle", "_head", "_done")

    def __init__(self, transport: asyncio.Transport, cycle: object) -> None:
        self._transport, self._cycle = transport, cycle
        self._head: bytes | None = None
        self._done = False  # the head went out

    @classmethod
    def install(cls, cycle: Any) -> None:
        """Give ``cycle`` a held-head transport, flushed at the latest when its response
        completes: an answer to HEAD (uvicorn writes no body for it) has no body write to
        carry its head, and must not wait for the connection to close."""
        held = cls(cycle.transport, cycle)
        cycle.transport, completed = held, cycle.on_response

        def on_response() -> None:
            held._flush()
            completed()

        cycle.on_response = on_response

    def write(self, data: bytes) -> None:
        if self._done:
            self._transport.write(data)
        elif self._head is not None:
            self._done = True
            self._transport.write(self._head + data)
            self._head = None
        elif self._cycle.response_started:  # type: ignore[attr-defined]  # this is the head
            self._head = bytes(data)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        if self._head is not None and not self._transport.is_closing():
            self._transport.write(self._head)
        self._head, self._done = None, True

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


def _httptools_protocol() -> type | None:
    """The same limits on uvicorn's httptools protocol (llhttp parses in C: a request costs
    the worker less CPU than h11's pure-Python parser and writer), when httptools is
    installed (the service extra has it); None otherwise."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    class GuardedHttpToolsProtocol(_Guard, HttpToolsProtocol):
        """uvicorn's httptools protocol with head/body deadlines, 414/431 and a connection
        cap. The head deadline runs from a request's first byte to its headers; the body
        deadline from the headers to the end of the message."""

        _reading_head = True  # between two messages, or before the first

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # lingering: read and drop
            if self._reading_head and self._head_refused(data):
                return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._reading_head = False
            self._head.clear()
            if any(name == b"transfer-encoding" or (name == b"content-length" and value != b"0")
                   for name, value in self.headers):
                self._arm("body", BODY_SECONDS)
            else:
                self._disarm()
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not None and cycle.transport is self.transport:  # a new cycle
                _HeadWithBody.install(cycle)

        def on_message_complete(self) -> None:
            self._reading_head = True
            self._disarm()
            super().on_message_complete()

    return GuardedHttpToolsProtocol


#: The protocol a worker runs: httptools' when it is installed, else h11's
#: (``MARGINRANK_HTTP_PARSER=h11`` asks for h11's).
GuardedProtocol: type = (GuardedH11Protocol if os.environ.get("MARGINRANK_HTTP_PARSER") == "h11"
                         else _httptools_protocol() or GuardedH11Protocol)
