"""Whether the Numba kernels came from their on-disk cache or had to be compiled.

Every kernel is ``cache=True``: a process loads its machine code from Numba's cache (the
``__pycache__`` directory beside each kernel module, or ``NUMBA_CACHE_DIR``) in milliseconds.
Without a usable cache (first run after an install or a kernel change, a read-only
directory, an empty ``NUMBA_CACHE_DIR``) every kernel is compiled again, which takes tens of
seconds: the process still answers correctly, but its first start is slow, and
:meth:`ranking.ranker.Ranker.warm` says so with :func:`report_compiles`.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("marginrank.kernels")
#: Packages whose private (``_``-prefixed) modules hold the Numba kernels.
KERNEL_PACKAGES = ("ranking.", "objectives.")


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
