"""Progress for long jobs: shown on a terminal, silent otherwise (CI logs, pipes, tests)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


class Progress:
    """Named stages with timings, and tqdm bars for loops, only when ``enabled``."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.timings: dict[str, float] = {}
        self._line_open = False  # a stage name is printed and waits for its duration

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage; print its name and duration on a terminal."""
        if self.enabled:
            print(f"  {name} ...", end="", file=sys.stderr, flush=True)
            self._line_open = True
        start = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - start
        if self.enabled:
            seconds = f"{self.timings[name]:.1f} s"
            tail = f" {seconds}" if self._line_open else f"    done in {seconds}"
            print(tail, file=sys.stderr, flush=True)
            self._line_open = False

    def bar(self, items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        return tqdm(items, desc=f"    {desc}", total=total, disable=not self.enabled,
                    leave=False, file=sys.stderr)

    def note(self, message: str) -> None:
        """A line of detail inside the current stage."""
        if self.enabled:
            if self._line_open:
                print(file=sys.stderr)
                self._line_open = False
            print(f"    {message}", file=sys.stderr, flush=True)
