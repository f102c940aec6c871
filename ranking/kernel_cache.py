"""Whether the Numba kernels came from their on-disk cache or had to be compiled.

Every kernel is ``cache=True``: a process loads its machine code from Numba's cache (the
``__pycache__`` directory beside each kernel module, or ``NUMBA_CACHE_DIR``) in milliseconds.
Without a usable cache (first run after an install or a kernel change, a read-only
directory, an empty ``NUMBA_CACHE_DIR``) every kernel is compiled again, which takes tens of
seconds: the process still answers correctly, but its first start is slow, and
:meth:`ranking.ranker.Ranker.warm` says so with :func:`report_compiles`.

Loading the first kernel from the cache also makes Numba load all its registries, the largest
fixed cost of a cold start after the imports; :func:`load_registries` does it up front, and
in the service's workers (:data:`LEAN_ENV`) without Numba's optional scipy and cffi parts.
"""

from __future__ import annotations

import importlib.abc
import logging
import os
import sys
import threading

log = logging.getLogger("marginrank.kernels")
#: Packages whose private (``_``-prefixed) modules hold the Numba kernels.
KERNEL_PACKAGES = ("ranking.", "objectives.")
#: Set to ``1`` in a serving process (the service's workers) so that :func:`load_registries`
#: loads Numba's registries without their optional scipy.linalg and cffi parts (0.2-0.4 s of
#: a cold start). Off by default: a library must not change what Numba can do in its user's
#: process.
LEAN_ENV = "MARGINRANK_LEAN_NUMBA"
#: What :data:`LEAN_ENV` keeps out while the registries load: Numba's BLAS check imports
#: ``scipy.linalg`` (0.3 s), its cffi support ``cffi`` and ``pycparser`` (0.03 s).
LEAN_SKIPS = ("scipy.linalg", "cffi")


def compiled_kernels() -> int:
    """How many kernel signatures this process has compiled instead of loading from the
    cache so far (Numba counts a cache miss per signature it compiles)."""
    misses = 0
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(KERNEL_PACKAGES):
            continue
        if not name.rsplit(".", 1)[-1].startswith("_"):
            continue
        for value in list(vars(module).values()):
            counter = getattr(value, "_cache_misses", None)
            if isinstance(counter, dict):
                misses += sum(counter.values())
    return misses


def cache_location() -> str:
    """Where Numba reads and writes its cache: ``NUMBA_CACHE_DIR`` if set, else the
    ``__pycache__`` directories beside the kernel modules."""
    return os.environ.get("NUMBA_CACHE_DIR") or "__pycache__ beside the kernel modules"


def report_compiles(before: int, seconds: float) -> int:
    """Log one warning if kernels were compiled since ``before`` (a
    :func:`compiled_kernels` count), naming the cause and the fix; return how many."""
    compiled = compiled_kernels() - before
    if compiled > 0:
        log.warning("slow first start: %d Numba kernels were compiled (%.1f s) because their "
                    "cache was missing or stale in %s; give the service a persistent, writable "
                    "Numba cache (NUMBA_CACHE_DIR) so that the next start loads them", compiled,
                    seconds, cache_location())
    return compiled


def load_registries() -> bool:
    """Load Numba's CPU-target registries now, before the first kernel comes from the cache;
    return whether the optional parts were kept out (:data:`LEAN_ENV`).

    The first cached kernel a process loads makes Numba import every implementation it has.
    Two of them import large optional libraries that no kernel of this project uses:
    ``numba.np.arraymath`` checks for a BLAS by importing ``scipy.linalg`` (0.3 s of a 1.2 s
    cold start) and ``numba.core.typing.cffi_utils`` imports ``cffi``. With :data:`LEAN_ENV`
    set to ``1`` those imports fail, for the length of this call only: an import hook refuses
    :data:`LEAN_SKIPS` (not already imported) while the registries load, under Numba's
    compiler lock, and is removed after; nothing is left in ``sys.modules`` and both stay
    importable. Numba then records, for this process, that it has no BLAS, which changes
    only how a kernel compiled later computes ``np.correlate``/``np.convolve`` (a loop
    instead of BLAS's dot; ``np.dot`` and ``np.linalg`` still import scipy when a kernel
    using them is compiled), and that it cannot call cffi functions. None of our kernels
    does either. The service's workers set the variable; a library user's process is
    untouched unless its owner sets it. Nothing happens once Numba has loaded its
    registries."""
    if "numba.np.arraymath" in sys.modules:
        return False
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.registry import cpu_target

    hook = _Refuse(LEAN_SKIPS) if os.environ.get(LEAN_ENV) == "1" else None
    with global_compiler_lock:
        if hook is not None:
            sys.meta_path.insert(0, hook)
        try:
            cpu_target.target_context.refresh()
        finally:
            if hook is not None:
                sys.meta_path.remove(hook)
    return hook is not None


class Registries:
    """:func:`load_registries` running in a thread of its own, so that a bundle's files are
    read and checked (hashing, reading and numpy release the GIL) while Numba imports its
    implementations; :meth:`wait` before the first kernel runs."""

    def __init__(self) -> None:
        self._error: BaseException | None = None
        self.lean = False
        self._thread: threading.Thread | None = None
        if "numba.np.arraymath" not in sys.modules:  # else nothing to load
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="marginrank-numba-registries")
            self._thread.start()

    def _run(self) -> None:
        try:
            self.lean = load_registries()
        except BaseException as exc:  # re-raised by wait(), in the caller's thread
            self._error = exc

    def wait(self) -> bool:
        """Block until the registries are loaded; whether lean (:data:`LEAN_ENV`)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self._error is not None:
                raise self._error
        return self.lean


class _Refuse(importlib.abc.MetaPathFinder):
    """An import hook that makes importing the packages ``names`` (or their submodules) fail;
    a finder is only asked for modules not yet imported."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201
        if any(fullname == n or fullname.startswith(n + ".") for n in self.names):
            raise ModuleNotFoundError(f"{fullname} is not loaded while Numba's registries load "
                                      f"({LEAN_ENV}=1)", name=fullname)
        return None
