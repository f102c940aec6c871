"""A missing Numba cache still answers, and the ranker reports it as a slow first start.

A new process loads a built bundle with ``NUMBA_CACHE_DIR`` pointing at an empty directory:
every kernel is compiled, the search answers, and ``Ranker.warm`` logs one warning naming the
cause (kernels compiled, the cache location) and the fix. A second process with the same,
now filled, directory loads the kernels from it and logs nothing (or, if a kernel module was
edited in between, compiles fewer).
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
