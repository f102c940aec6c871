"""Serving while configs change: 8 threads search while another reloads good and bad weights
files; no search fails and none sees a half-applied config. Also: experiment arms as served."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from objectives.config import TERM_NAMES, ConfigError
from ranking.app.build import BuildInputs, BuildSettings, build
from ranking.ranker import Ranker, SearchResult

ROOT = Path(__file__).resolve().parents[2]
N_VERSIONS = 4


def tiny_world(factory: pytest.TempPathFactory) -> Path:
    """A tiny demo world (300 products, 24 queries) with its bundle in ``bundle/``, built once
    per session and shared by the serving and preview tests."""
    world = factory.getbasetemp() / "tiny_world"
    if not (world / "bundle" / "manifest.json").is_file():
        subprocess.run([sys.executable, str(ROOT / "data" / "demo" / "generate.py"), "--out",
                        str(world), "--products", "300", "--queries", "24", "--customers",
                        "400", "--seed", "5"], check=True, capture_output=True)
        build(BuildInputs(world / "catalog.csv", world / "judgments.csv",
                          world / "transactions.csv.gz"), world / "bundle", BuildSettings(seed=3))
    return world


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The tiny world's bundle and one of its judged queries."""
    world = tiny_world(tmp_path_factory)
    return world / "bundle", str(pd.read_csv(world / "judgments.csv")["query"].iloc[0])


def version_weights(v: int) -> np.ndarray:
    """A weight pattern no other version shares in any term."""
    steps = np.arange(1, len(TERM_NAMES) + 1)  # [1, 2, 3, 4, ...]: one per term
    return steps / 10 * v + steps / 100


def version_file(tmp_path: Path, v: int, query: str, product: str) -> Path:
    weights = ", ".join(f"{n}: {w:.2f}" for n, w in zip(TERM_NAMES, version_weights(v),
                                                          strict=True))
    path = tmp_path / f"v{v}.yaml"
    path.write_text(f"version: 1\nweights: {{{weights}}}\npins: {{{query!r}: [{product}]}}\n")
    return path


BAD_FILES = {
    "typo": "version: 1\nweights:\n  marign: 0.3\n",
    "negative": "version: 1\nweights:\n  margin: -0.3\n",
    "nan": "version: 1\nweights:\n  clv: .nan\n",
    "syntax": "version: 1\nweights:\n  margin: 0.3\n  clv: : 0.1\n",
    "unknown product": "version: 1\nburies:\n  - NO-SUCH-PRODUCT\n",
    "shares over 1": "version: 1\nexperiments:\n  e:\n    arms:\n      a: {share: 0.8}\n"
                     "      b: {share: 0.3}\n",
    "wrong type": "version: 1\nguardrails:\n  relevance_tiers: maybe\n",
}


def version_seen(results: list[SearchResult], ranker: Ranker, pinned: list[str]) -> int:
    """The one config version every part of this result list agrees with: the pinned product
    and each term's weight (contribution / term value) of every scored result. Fails on a
    torn read, where parts come from different versions."""
    versions = {pinned.index(results[0].product_id) + 1}
    for r in results[1:]:
        row = ranker.catalog.product_ids.index(r.product_id)
        for t, name in enumerate(TERM_NAMES):
            value = float(ranker.catalog.terms[row, t])
            if abs(value) > 1e-3:
                weight = r.contributions[name] / value
                versions |= {v for v in range(1, N_VERSIONS + 1)
                             if abs(weight - version_weights(v)[t]) < 1e-6}
                assert any(abs(weight - version_weights(v)[t]) < 1e-6
                           for v in range(1, N_VERSIONS + 1)), (name, weight)
    assert len(versions) == 1, f"torn read: parts of versions {sorted(versions)}"
    return versions.pop()


def test_searches_during_reloads_never_fail_or_see_a_torn_config(
    tiny_bundle: tuple[Path, str], tmp_path: Path
) -> None:
    bundle, query = tiny_bundle
    ranker = Ranker.load(bundle)
    pinned = ranker.catalog.product_ids[1:N_VERSIONS + 1]
    good = [version_file(tmp_path, v, query, pinned[v - 1]) for v in range(1, N_VERSIONS + 1)]
    bad = []
    for name, text in BAD_FILES.items():
        bad.append(tmp_path / f"bad-{name.replace(' ', '-')}.yaml")
        bad[-1].write_text(text)
    ranker.reload_config(good[0])
    errors: list[BaseException] = []
    seen: list[int] = []
    done = threading.Event()

    def searcher(seed: int) -> None:
        customers = [None, *map(str, ranker.customers.ids[:5])]
        try:
            i = seed
            while not done.is_set():
                results = ranker.search(query, customer_id=customers[i % len(customers)], k=8,
                                        explain=True)
                seen.append(version_seen(results, ranker, pinned))
                i += 1
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    def reloader() -> None:
        try:
            for i in range(100):
                ranker.reload_config(good[i % N_VERSIONS])
                version = ranker.config_version
                with pytest.raises(ConfigError):
                    ranker.reload_config(bad[i % len(bad)])
                assert ranker.config_version == version  # the old config keeps serving
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    threads = [threading.Thread(target=searcher, args=(s,)) for s in range(8)]
    threads.append(threading.Thread(target=reloader))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[0]
    assert len(seen) >= 8 and len(set(seen)) >= 2  # searches ran across several versions


def test_experiment_arm_is_served_and_reported(tiny_bundle: tuple[Path, str],
                                               tmp_path: Path) -> None:
    bundle, query = tiny_bundle
    ranker = Ranker.load(bundle)
    path = tmp_path / "arms.yaml"
    path.write_text("version: 1\nweights: {margin: 0.1}\nexperiments:\n  push:\n    arms:\n"
                    "      control: {share: 0.4}\n      more_margin: {share: 0.4, "
                    "weights: {margin: 2.0}}\n")
    config = ranker.reload_config(path).config
    customers = [str(c) for c in ranker.customers.ids[:60]]
    arms = {config.arm_for(c) for c in customers}
    assert arms == {"control", "more_margin", None}
    for customer in [*customers, None, "unknown-customer"]:
        results = ranker.search(query, customer_id=customer, k=5, explain=True)
        assert {r.arm for r in results} <= {config.arm_for(customer)}
        margin = 2.0 if config.arm_for(customer) == "more_margin" else 0.1
        for r in results:
            row = ranker.catalog.product_ids.index(r.product_id)
            assert r.contributions["margin"] == pytest.approx(
                margin * float(ranker.catalog.terms[row, 0]), abs=1e-9)
    assert ranker.search(query, k=3)[0].arm is None  # anonymous: no arm
