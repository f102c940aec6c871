"""A Universal Binary JSON reader, for XGBoost's ``model.ubj`` without importing xgboost.

Serving only needs a model's trees as arrays (:class:`ranking.trees.CompiledTrees`); importing
xgboost for that costs a fifth of a second and a native library per process. XGBoost writes
UBJSON (https://ubjson.org, draft 12, big-endian) with its numeric node arrays as typed,
counted containers, which become numpy arrays here in one read each. Malformed input raises
:class:`UBJSONError` naming the byte offset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from clv.errors import UBJSONError

#: Numeric type markers -> big-endian numpy dtypes.
_NUMBERS = {b"i": ">i1", b"U": ">u1", b"I": ">i2", b"l": ">i4", b"L": ">i8", b"d": ">f4",
            b"D": ">f8"}
#: Deepest nesting read: a crafted file must not exhaust the interpreter's stack.
MAX_DEPTH = 64


def load(path: Path) -> Any:
    """The value ``path`` holds (dicts, lists, str, numbers, numpy arrays for typed arrays)."""
    data = Path(path).read_bytes()
    reader = _Reader(data, str(path))
    value = reader.value(0)
    if reader.at != len(data):
        raise UBJSONError(f"{path}: {len(data) - reader.at} bytes after the value")
    return value


class _Reader:
    def __init__(self, data: bytes, source: str) -> None:
        self.data, self.source, self.at = data, source, 0

    def fail(self, what: str) -> UBJSONError:
        return UBJSONError(f"{self.source}: not a valid UBJSON model at byte {self.at}: {what}")

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise self.fail("truncated")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def marker(self) -> bytes:
        m = self.take(1)
        while m == b"N":  # no-op
            m = self.take(1)
        return m

    def number(self, m: bytes) -> int | float:
        dtype = _NUMBERS[m]
        size = np.dtype(dtype).itemsize
        value = np.frombuffer(self.take(size), dtype=dtype)[0]
        return float(value) if m in (b"d", b"D") else int(value)

    def count(self) -> int:
        m = self.marker()
        if m not in _NUMBERS or m in (b"d", b"D"):
            raise self.fail(f"a length must be an integer, got marker {m!r}")
        n = int(self.number(m))
        if n < 0:
            raise self.fail("negative length")
        return n

    def string(self) -> str:
        try:
            return self.take(self.count()).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"string is not UTF-8 ({exc})") from exc

    def value(self, depth: int, m: bytes | None = None) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH}")
        m = self.marker() if m is None else m
        if m in _NUMBERS:
            return self.number(m)
        if m == b"S" or m == b"H":
            text = self.string()
            return text if m == b"S" else float(text)
        if m == b"C":
            return self.take(1).decode("latin-1")
        if m in (b"T", b"F"):
            return m == b"T"
        if m == b"Z":
            return None
        if m == b"[":
            return self.array(depth)
        if m == b"{":
            return self.object(depth)
        raise self.fail(f"unknown marker {m!r}")

    def container_header(self) -> tuple[bytes | None, int | None]:
        kind, n = None, None
        if self.data[self.at:self.at + 1] == b"$":
            self.at += 1
            kind = self.take(1)
            if self.take(1) != b"#":
                raise self.fail("a typed container needs a count")
        if kind is None and self.data[self.at:self.at + 1] == b"#":
            self.at += 1
        elif kind is None:
            return None, None
        n = self.count()
        return kind, n

    def array(self, depth: int) -> Any:
        kind, n = self.container_header()
        if kind in _NUMBERS and n is not None:
            size = np.dtype(_NUMBERS[kind]).itemsize
            out = np.frombuffer(self.take(n * size), dtype=_NUMBERS[kind])
            return out.astype(out.dtype.newbyteorder("="))
        if n is not None:
            return [self.value(depth + 1, kind) for _ in range(n)]
        items = []
        while True:
            m = self.marker()
            if m == b"]":
                return items
            items.append(self.value(depth + 1, m))

    def object(self, depth: int) -> dict[str, Any]:
        kind, n = self.container_header()
        out: dict[str, Any] = {}
        if n is not None:
            for _ in range(n):
                key = self.string()
                out[key] = self.value(depth + 1, kind)
            return out
        while True:
            if self.data[self.at:self.at + 1] == b"}":
                self.at += 1
                return out
            key = self.string()
            out[key] = self.value(depth + 1)


