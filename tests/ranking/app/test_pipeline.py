"""End to end on a reduced demo world: build -> bundle -> load -> search, plus the CLI."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clv.errors import DataError
from objectives.config import TERM_NAMES, ConfigError, load_config
from ranking.app.build import BuildInputs, BuildSettings, build
from ranking.app.cli import DEMO_DATA, main
from ranking.bundle import BundleError, sha256_of
from ranking.ranker import QueryError, Ranker
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def built(small_world: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    inputs = BuildInputs(small_world / "catalog.csv", small_world / "judgments.csv",
                         small_world / "transactions.csv.gz")
    return build(inputs, out, BuildSettings(seed=3)), out


def test_pipeline_evaluates_all_rankers_on_held_out_queries(built) -> None:  # noqa: ANN001
    result, _ = built
    ev = result.evaluation
    assert [r.name for r in ev.rows] == ["BM25", "LambdaMART", "tuned blend"]
    assert ev.n_queries == 15  # 60 queries, a quarter held out
    for row in ev.rows:
        assert 0.0 < row.ndcg <= 1.0 and np.isfinite(row.margin)
        assert len(row.per_query_ndcg) == ev.n_queries
    assert np.all(result.tune.weights >= 0) and result.tune.trace
    assert "| tuned blend |" in ev.markdown()


def test_bundle_search_explain_and_segments(built) -> None:  # noqa: ANN001
    _, out = built
    ranker = Ranker.load(out)
    results = ranker.search("drill", k=5, explain=True)
    assert 1 <= len(results) <= 5
    assert [r.rank for r in results] == list(range(1, len(results) + 1))
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True) or any(
        not ranker.catalog.in_stock[ranker.catalog.row_of[r.product_id]] for r in results)
    for r in results:
        assert set(r.contributions) == {"relevance", *TERM_NAMES}
        assert sum(r.contributions.values()) == pytest.approx(r.score, abs=1e-9)
    assert ranker.search("", k=5) == []
    assert ranker.search("zzzqqq unknownword", k=5) == []
    assert ranker.search("ドリル", k=3) == []
    customer = str(ranker.customers.ids[0])
    assert ranker.search("drill", customer_id=customer, k=3)
    assert ranker.search("drill", customer_id="no-such-customer", k=3)


def test_bad_requests_get_clear_errors(built) -> None:  # noqa: ANN001
    ranker = Ranker.load(built[1], warm=False)
    with pytest.raises(QueryError, match="limit is 4,096"):
        ranker.search("drill " * 1000)
    with pytest.raises(QueryError, match="k must be"):
        ranker.search("drill", k=0)
    with pytest.raises(QueryError, match="must be a string"):
        ranker.search(None)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="customer_id must be a string"):
        ranker.search("drill", customer_id=["C1"])  # type: ignore[arg-type]
    assert ranker.search("drill", k=np.int64(2))


def test_reload_config_atomic_and_bad_file_keeps_old(built, tmp_path: Path) -> None:  # noqa: ANN001
    ranker = Ranker.load(built[1], warm=False)
    product = ranker.catalog.product_ids[0]
    good = tmp_path / "good.yaml"
    good.write_text(f"version: 1\nweights: {{margin: 1.0}}\npins: {{\"drill\": [{product}]}}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nweights:\n  marign: 1.0\n")
    ranker.reload_config(good)
    first = ranker.search("drill", k=3)[0]
    assert first.product_id == product and first.pinned
    version = ranker.config_version
    with pytest.raises(ConfigError, match=r"bad.yaml:3: weights.marign"):
        ranker.reload_config(bad)
    assert ranker.config_version == version
    assert ranker.search("drill", k=3)[0].product_id == product


def test_concurrent_searches_during_reloads(built, tmp_path: Path) -> None:  # noqa: ANN001
    ranker = Ranker.load(built[1])
    files = []
    for i, margin in enumerate((0.0, 2.0)):
        path = tmp_path / f"w{i}.yaml"
        path.write_text(f"version: 1\nweights: {{margin: {margin}}}\n")
        files.append(path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nweights: {margin: -1}\n")
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher() -> None:
        try:
            while not stop.is_set():
                for r in ranker.search("drill", k=5, explain=True):
                    assert sum(r.contributions.values()) == pytest.approx(r.score, abs=1e-9)
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(40):
        ranker.reload_config(files[i % 2])
        with pytest.raises(ConfigError):
            ranker.reload_config(bad)
    stop.set()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.parametrize("damage", ["truncate", "alter", "delete", "version", "no_manifest"])
def test_damaged_bundle_is_refused(built, tmp_path: Path, damage: str) -> None:  # noqa: ANN001
    copy = tmp_path / "b"
    shutil.copytree(built[1], copy)
    target = copy / "bm25.npz"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "alter":
        data = bytearray(target.read_bytes())
        data[-10] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "delete":
        target.unlink()
    elif damage == "version":
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["format_version"] = 99
        (copy / "manifest.json").write_text(json.dumps(manifest))
    else:
        (copy / "manifest.json").unlink()
    with pytest.raises(BundleError):
        Ranker.load(copy)


def _edit_manifest(directory: Path, edit) -> None:  # noqa: ANN001
    manifest = json.loads((directory / "manifest.json").read_text())
    (directory / "manifest.json").write_text(json.dumps(edit(manifest)))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: [m], "must be a JSON object"),
    (lambda m: {**m, "files": {}}, "does not list required file"),
    (lambda m: {k: v for k, v in m.items() if k != "settings"}, "'settings' must be"),
    (lambda m: {**m, "settings": {"n_candidates": 0}}, "n_candidates must be"),
    (lambda m: {**m, "files": {**m["files"], "bm25.npz": {"sha256": "x"}}}, "needs 'bytes'"),
    (lambda m: {**m, "files": {**m["files"], "../../etc/hostname": {"sha256": "x", "bytes": 1}}},
     "not a plain name"),
])
def test_malformed_manifest_is_refused(built, tmp_path: Path, edit, message: str) -> None:  # noqa: ANN001
    copy = tmp_path / "b"
    shutil.copytree(built[1], copy)
    _edit_manifest(copy, edit)
    with pytest.raises(BundleError, match=message):
        Ranker.load(copy)


def test_garbage_behind_a_matching_checksum_is_a_bundle_error(built, tmp_path: Path) -> None:  # noqa: ANN001
    copy = tmp_path / "b"
    shutil.copytree(built[1], copy)
    target = copy / "products.npz"
    target.write_bytes(b"garbage")

    def rehash(manifest: dict) -> dict:
        manifest["files"]["products.npz"] = {"sha256": sha256_of(target), "bytes": 7}
        return manifest

    _edit_manifest(copy, rehash)
    with pytest.raises(BundleError, match="passed its checksum but cannot be read"):
        Ranker.load(copy)


def _drop(name: str):  # noqa: ANN202
    return lambda arrays: {k: v for k, v in arrays.items() if k != name}


def _decreasing_indptr(arrays: dict) -> dict:
    indptr = arrays["indptr"].copy()
    indptr[1] = indptr[-1] + 1  # past the end, so the next entry goes back
    return {**arrays, "indptr": indptr}


@pytest.mark.parametrize(("file", "edit", "message"), [
    ("title_text.npz", _drop("idf"), r"missing array\(s\) \['idf'\]"),
    ("title_text.npz", lambda a: {**a, "head_len": a["head_len"][:-1]},
     "head_len is int64 of shape"),
    ("title_text.npz", lambda a: {**a, "keys": a["keys"].astype(str)},
     "keys is <U.* expected integer"),
    ("title_text.npz", lambda a: {**a, "head_len": a["head_len"] + 1000},
     "head_len of product row 0 is .*, outside its title"),
    ("title_text.npz", lambda a: {**a, "head_len": a["head_len"] * 0},
     "head_len of product row 0 is 0, outside its title"),
    ("quantities.npz", _drop("unit_names"), r"missing array\(s\) \['unit_names'\]"),
    ("quantities.npz", lambda a: {**a, "unit_names": a["unit_names"][:2]}, "unit_names .* differ"),
    ("quantities.npz", lambda a: {**a, "values": a["values"][:-1]}, "values is float64 of shape"),
    ("quantities.npz", _decreasing_indptr, "indptr must start at 0 and never decrease"),
])
def test_damaged_arrays_behind_a_matching_checksum_name_the_file(  # noqa: ANN001
        built, tmp_path: Path, file: str, edit, message: str) -> None:
    """A feature file altered and re-hashed (so the manifest check passes) is still refused
    with a BundleError naming the file and the array, not a KeyError or a kernel crash."""
    copy = tmp_path / "b"
    shutil.copytree(built[1], copy)
    target = copy / file
    with np.load(target, allow_pickle=False) as npz:
        arrays = edit({k: npz[k] for k in npz.files})
    np.savez(target, **arrays)

    def rehash(manifest: dict) -> dict:
        manifest["files"][file] = {"sha256": sha256_of(target), "bytes": target.stat().st_size}
        return manifest

    _edit_manifest(copy, rehash)
    with pytest.raises(BundleError, match=f"{file}: {message}.*rebuild the bundle"):
        Ranker.load(copy, warm=False)


def test_cli_search_validate_and_errors(built, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    _, out = built
    assert main(["search", "--bundle", str(out), "--k", "3", "--explain", "drill"]) == 0
    printed = capsys.readouterr().out
    assert "relevance" in printed and "margin" in printed
    bad = tmp_path / "w.yaml"
    bad.write_text("version: 1\nweights: {margin: .nan}\n")
    assert main(["validate-config", str(bad)]) == 2
    assert "w.yaml:2" in capsys.readouterr().err
    assert main(["search", "--bundle", str(tmp_path), "drill"]) == 2
    assert "not a bundle" in capsys.readouterr().err
    pins = tmp_path / "pins.yaml"
    pins.write_text('version: 1\npins: {"drill": [NOPE]}\n')
    assert main(["validate-config", str(pins)]) == 0
    assert "were not checked" in capsys.readouterr().out
    assert main(["validate-config", str(pins), "--bundle", str(out)]) == 2
    assert "pins.yaml:2" in capsys.readouterr().err


def test_cli_demo_on_small_world(small_world: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["demo", "--data", str(small_world), "--out", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    assert "| tuned blend |" in printed and "NDCG@10" in printed
    assert "Sample search on the bundle" in printed and "contributions" in printed
    assert (tmp_path / "demo" / "report.md").read_text().startswith("# marginrank demo")
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert set(report["tuned_weights"]) == set(TERM_NAMES)
    assert "As served: the same test queries" in printed
    served = report["served_evaluation"]
    for table in ("judged_only", "condensed"):
        assert served[table]["n_queries"] == report["evaluation"]["n_queries"]
        assert [r["name"] for r in served[table]["rows"]] == ["LambdaMART", "tuned blend"]
    assert all(0.0 < v <= 1.0 for v in served["judged_share"].values())
    assert "Condensed NDCG@10" in printed
    assert (tmp_path / "demo" / "bundle" / "manifest.json").is_file()


def test_too_few_queries_is_a_clear_error(small_world: Path, tmp_path: Path) -> None:
    judgments = pd.read_csv(small_world / "judgments.csv", dtype=str)
    few = judgments[judgments["query_id"].isin(judgments["query_id"].unique()[:5])]
    path = tmp_path / "few.csv"
    few.to_csv(path, index=False)
    inputs = BuildInputs(small_world / "catalog.csv", path, small_world / "transactions.csv.gz")
    with pytest.raises(DataError, match=r"few.csv: 5 judged queries; the job needs at least 8"):
        build(inputs, tmp_path / "bundle")


def test_demo_weights_file_is_valid_and_used_by_the_demo() -> None:
    config = load_config(DEMO_DATA / "weights.yaml")
    assert "top_decile" in config.segments and "Outdoors/Patio" in config.categories


def test_search_latency_benchmark_runs_on_a_bundle(built) -> None:  # noqa: ANN001
    bench = load_benchmark("search_latency")
    queries = ["drill", "paint brush", "zzzqqq"]  # the last stops after retrieval
    result = bench.measure(Ranker.load(built[1]), queries, k=5, repeat=2)
    assert result["searches"] == 6
    assert list(result["stages_ms"]) == ["analysis", "retrieval", "features", "relevance",
                                         "blend", "results"]
    assert "search, end to end" in bench.table(result)
