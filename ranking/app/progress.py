"""Progress for long jobs, on a terminal and in logs.

On a terminal: each stage's name and duration, and tqdm bars for loops. When stderr is not a
terminal (a pipe, a CI log, a job scheduler), tqdm's redrawn bar would be noise, and silence for
minutes looks like a hang; so the job writes plain log lines instead: when a stage starts and
ends, a line every ``interval`` seconds while it runs (a heartbeat thread), and a line at every
tenth of a loop. Each line carries the elapsed time, the stage, and a loop's done/total:

    marginrank [   12.4 s] training LambdaMART: started
    marginrank [   22.4 s] training LambdaMART: running for 10 s
    marginrank [   31.0 s] computing features: queries 60/300 (20%), 4.1 s in this loop

``Progress(enabled=False)`` is silent (tests, library use).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

#: Seconds between heartbeat lines of a running stage, when stderr is not a terminal.
LOG_INTERVAL = 10.0


class Progress:
    """Named stages with timings; tqdm bars on a terminal, periodic log lines otherwise.

    ``enabled`` None shows progress (a bar on a terminal, log lines elsewhere); False is
    silent; True forces the terminal style. ``log`` forces log lines (tests use it).
    """

    def __init__(self, enabled: bool | None = None, *, log: bool | None = None,
                 interval: float = LOG_INTERVAL) -> None:
        tty = sys.stderr.isatty()
        self.enabled = enabled is not False
        self.log = (not tty and enabled is None) if log is None else log
        self.interval = interval
        self.timings: dict[str, float] = {}
        self._line_open = False  # a stage name is printed and waits for its duration
        self._start = time.perf_counter()
        self._stage: tuple[str, float] | None = None  # name, start
        self._loop: list[object] | None = None  # desc, done, total
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage; show its name and duration."""
        start = time.perf_counter()
        heartbeat = None
        if self.enabled and self.log:
            self._stage = (name, start)
            self._line(f"{name}: started")
            self._stop.clear()
            heartbeat = threading.Thread(target=self._beat, name="marginrank-progress",
                                         daemon=True)
            heartbeat.start()
        elif self.enabled:
            print(f"  {name} ...", end="", file=sys.stderr, flush=True)
            self._line_open = True
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - start
            if heartbeat is not None:
                self._stop.set()
                heartbeat.join()
                self._stage = None
        if self.enabled and self.log:
            self._line(f"{name}: done in {self.timings[name]:.1f} s")
        elif self.enabled:
            seconds = f"{self.timings[name]:.1f} s"
            tail = f" {seconds}" if self._line_open else f"    done in {seconds}"
            print(tail, file=sys.stderr, flush=True)
            self._line_open = False

    def bar(self, items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        """``items``, with a tqdm bar on a terminal or a log line at every tenth when logging."""
        if not self.enabled:
            return items
        if self.log:
            return self._logged(items, desc, _total(items, total))
        from tqdm import tqdm  # only a terminal needs it

        return tqdm(items, desc=f"    {desc}", total=total, leave=False, file=sys.stderr)

    def note(self, message: str) -> None:
        """A line of detail inside the current stage."""
        if not self.enabled:
            return
        if self.log:
            self._line(message)
            return
        if self._line_open:
            print(file=sys.stderr)
            self._line_open = False
        print(f"    {message}", file=sys.stderr, flush=True)

    def _logged(self, items: Iterable[T], desc: str, total: int | None) -> Iterator[T]:
        if self._stage is None:  # a loop outside any stage is a stage: heartbeats included
            with self.stage(desc):
                yield from self._logged(items, desc, total)
            return
        loop: list[object] = [desc, 0, total]
        self._loop = loop
        started = time.perf_counter()
        next_tenth = 1
        try:
            for done, item in enumerate(items, start=1):
                yield item
                loop[1] = done
                if total and done * 10 >= next_tenth * total:
                    while done * 10 >= next_tenth * total:
                        next_tenth += 1
                    stage = f"{self._stage[0]}: " if self._stage and self._stage[0] != desc else ""
                    self._line(f"{stage}{_count(desc, done, total)}, "
                               f"{time.perf_counter() - started:.1f} s in this loop")
        finally:
            self._loop = None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            stage = self._stage
            if stage is None:
                return
            name, start = stage
            loop = self._loop
            detail = f"; {_count(*loop)}" if loop else ""
            self._line(f"{name}: running for {time.perf_counter() - start:.0f} s{detail}")

    def _line(self, text: str) -> None:
        with self._lock:
            print(f"marginrank [{time.perf_counter() - self._start:7.1f} s] {text}",
                  file=sys.stderr, flush=True)


def _total(items: Iterable[object], total: int | None) -> int | None:
    if total is not None:
        return total
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None


def _count(desc: object, done: object, total: object) -> str:
    if isinstance(total, int) and isinstance(done, int) and total > 0:
        return f"{desc} {done}/{total} ({100 * done // total}%)"
    return f"{desc} {done} done"
