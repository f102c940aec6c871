"""A missing Numba cache still answers, and the ranker reports it as a slow first start.

A new process loads a built bundle with ``NUMBA_CACHE_DIR`` pointing at an empty directory:
every kernel is compiled, the search answers, and ``Ranker.warm`` logs one warning naming the
cause (kernels compiled, the cache location) and the fix. A second process with the same,
now filled, directory loads the kernels from it and logs nothing (or, if a kernel module was
edited in between, compiles fewer).

With ``MARGINRANK_LEAN_NUMBA=1`` (the service workers' setting) a process loads the bundle and
answers the same results without importing ``scipy.linalg`` or ``cffi``, which stay importable.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = """
import json, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
from ranking.ranker import Ranker
hits = Ranker.load(sys.argv[1]).search("drill", k=5)
print(json.dumps({"n": len(hits)}))
"""


def _start(bundle: Path, cache: Path) -> tuple[int, list[str]]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(bundle)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=1800, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    warnings = [line for line in done.stderr.splitlines()
                if line.startswith("marginrank.kernels:")]
    return json.loads(done.stdout.strip().splitlines()[-1])["n"], warnings


def test_an_empty_numba_cache_answers_and_is_reported_as_a_slow_first_start(
        small_world: Path, tmp_path: Path) -> None:
    from ranking.app.build import BuildInputs, BuildSettings, build

    bundle = tmp_path / "bundle"
    build(BuildInputs(small_world / "catalog.csv", small_world / "judgments.csv",
                      small_world / "transactions.csv.gz"), bundle, BuildSettings(seed=3))
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    found, warnings = _start(bundle, cache)
    assert found > 0
    assert len(warnings) == 1, warnings
    assert "slow first start" in warnings[0] and "Numba kernels were compiled" in warnings[0]
    assert str(cache) in warnings[0] and "NUMBA_CACHE_DIR" in warnings[0]
    assert any(cache.rglob("*.nbi"))  # the compiled kernels were written to the cache
    again, second = _start(bundle, cache)
    assert again == found
    # a filled cache loads its kernels; only a kernel module edited in between (a shared
    # working tree) can make the second start compile again, and then fewer of them
    assert second == [] or _compiled(second[0]) < _compiled(warnings[0])


def _compiled(warning: str) -> int:
    return int(re.search(r"(\d+) Numba kernels were compiled", warning).group(1))


LEAN = "MARGINRANK_LEAN_NUMBA"
PROBE = """
import json, sys
from ranking.ranker import Ranker
hits = Ranker.load(sys.argv[1]).search("drill", k=10, explain=True)
import numba.np.arraymath
from numba.core.typing import cffi_utils
out = {"hits": [h.to_dict() for h in hits], "blas": numba.np.arraymath._HAVE_BLAS,
       "skipped": [m for m in ("scipy.linalg", "cffi") if m not in sys.modules],
       "cffi_support": cffi_utils.SUPPORTED}
import cffi, scipy.linalg  # still importable: the hook was there while the registries loaded
out["norm"], out["ffi"] = float(scipy.linalg.norm([3.0, 4.0])), cffi.FFI().sizeof("int")
print(json.dumps(out))
"""


def _probe(bundle: Path, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != LEAN}
    done = subprocess.run([sys.executable, "-c", PROBE, str(bundle)], capture_output=True,
                          text=True, cwd=ROOT, env={**environment, **env}, timeout=1800,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_lean_worker_loads_without_scipy_linalg_or_cffi_and_answers_the_same(
        small_world: Path, tmp_path: Path) -> None:
    from ranking.app.build import BuildInputs, BuildSettings, build
    from ranking.kernel_cache import LEAN_ENV, LEAN_SKIPS

    assert (LEAN_ENV, LEAN_SKIPS) == (LEAN, ("scipy.linalg", "cffi"))
    bundle = tmp_path / "bundle"
    build(BuildInputs(small_world / "catalog.csv", small_world / "judgments.csv",
                      small_world / "transactions.csv.gz"), bundle, BuildSettings(seed=3))
    default = _probe(bundle)
    worker = _probe(bundle, **{LEAN: "1"})
    assert default["hits"] and worker["hits"] == default["hits"]  # same products and scores
    # by default Numba imports both, as before: a library user's process keeps that behaviour
    assert default["skipped"] == [] and default["blas"] and default["cffi_support"]
    assert worker["skipped"] == ["scipy.linalg", "cffi"]
    assert not worker["blas"] and not worker["cffi_support"]
    assert worker["norm"] == default["norm"] == 5.0 and worker["ffi"] == default["ffi"] == 4
