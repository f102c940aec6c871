"""Crafted bundles: each file altered as an attacker would (who can also rewrite the manifest,
so every checksum passes) must be refused with a BundleError naming the file and the array,
never reach a kernel, never crash the process and never quote a file from outside the bundle.

The crafted bundles are written here, then all loaded (and searched) in one child process,
so that a check that let an array through to a kernel would show as a crash of that child
(reported per case) instead of killing pytest. Issue 16, "Tampering".
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from ranking import bundle, features
from ranking.app.build import BuildInputs, BuildSettings, build
from ranking.bundle import MANIFEST, BundleError, sha256_of
from ranking.ranker import Ranker

KEY = b"operator-key-0123456789abcdef"
OTHER_KEY = b"another-key-0123456789abcdef"

#: Loads each bundle listed in argv[1] (JSON [[case, dir, key-or-null], ...]) and searches it;
#: prints one JSON line per case: the error type and message, or "loaded".
RUNNER = """
import json, sys
from ranking.ranker import Ranker
for case, directory, key in json.load(open(sys.argv[1])):
    try:
        ranker = Ranker.load(directory, key=None if key is None else key.encode())
        ranker.search("drill", k=5, explain=True)
        print(json.dumps([case, "loaded", ""]), flush=True)
    except Exception as exc:
        print(json.dumps([case, type(exc).__name__, str(exc)]), flush=True)
"""


@pytest.fixture(scope="module")
def bundle_dir(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tamper") / "bundle"
    inputs = BuildInputs(small_world / "catalog.csv", small_world / "judgments.csv",
                         small_world / "transactions.csv.gz")
    build(inputs, out, BuildSettings(seed=3))
    return out


# -- ways to craft a bundle ------------------------------------------------------------------
def rehash(directory: Path, *names: str) -> None:
    """Update the manifest's size and sha256 of ``names``, as an attacker would."""
    manifest = json.loads((directory / MANIFEST).read_text())
    for name in names:
        file = directory / name
        manifest["files"][name] = {"sha256": sha256_of(file), "bytes": file.stat().st_size}
    (directory / MANIFEST).write_text(json.dumps(manifest))


def edit_npz(name: str, edit: Callable[[dict[str, np.ndarray]], None]) -> Callable[[Path], None]:
    def craft(directory: Path) -> None:
        with np.load(directory / name, allow_pickle=False) as npz:
            arrays = {k: npz[k].copy() for k in npz.files}
        edit(arrays)
        np.savez(directory / name, **arrays)
        rehash(directory, name)
    return craft


def edit_json(name: str, edit: Callable[[object], object]) -> Callable[[Path], None]:
    def craft(directory: Path) -> None:
        document = json.loads((directory / name).read_text())
        (directory / name).write_text(json.dumps(edit(document)))
        rehash(directory, name)
    return craft


def edit_manifest(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def craft(directory: Path) -> None:
        manifest = json.loads((directory / MANIFEST).read_text())
        edit(manifest)
        (directory / MANIFEST).write_text(json.dumps(manifest))
    return craft


def _set(key: str, index: int | slice, value: object) -> Callable[[dict], None]:
    def edit(arrays: dict[str, np.ndarray]) -> None:
        arrays[key][index] = value
    return edit


def _replace(key: str, make: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict], None]:
    def edit(arrays: dict[str, np.ndarray]) -> None:
        arrays[key] = make(arrays[key])
    return edit


def _decrease(key: str) -> Callable[[dict], None]:
    def edit(arrays: dict[str, np.ndarray]) -> None:
        indptr = arrays[key]
        indptr[1] = indptr[2] + 1  # row 1 then goes back
    return edit


def _unsort_postings(arrays: dict[str, np.ndarray]) -> None:
    indptr, docs = arrays["all.post_indptr"], arrays["all.post_docs"]
    term = int(np.argmax(np.diff(indptr)))  # a term with several postings
    start = int(indptr[term])
    docs[start], docs[start + 1] = docs[start + 1], docs[start]


def _huge_header(directory: Path) -> None:
    """``all.doc_indptr`` whose header claims 10**12 entries, its data unchanged."""
    path = directory / "bm25.npz"
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<i8", "fortran_order": False,
                                                  "shape": (10**12,)})
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in arrays.items():
            member = io.BytesIO()
            np.save(member, array)
            data = member.getvalue()
            if key == "all.doc_indptr":
                data = buffer.getvalue() + array.tobytes()
            archive.writestr(f"{key}.npy", data)
    rehash(directory, "bm25.npz")


def _compressed(directory: Path) -> None:
    with np.load(directory / "bm25.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez_compressed(directory / "bm25.npz", **arrays)
    rehash(directory, "bm25.npz")


def _symlink(name: str, target: str) -> Callable[[Path], None]:
    def craft(directory: Path) -> None:
        (directory / name).unlink()
        os.symlink(target, directory / name)
        rehash(directory, name)
    return craft


def _nest(depth: int) -> Callable[[dict], None]:
    def edit(manifest: dict) -> None:
        manifest["settings"]["note"] = json.loads("[" * depth + "]" * depth)
    return edit


def _nested_text(directory: Path) -> None:
    manifest = (directory / MANIFEST).read_text()
    depth = 200_000
    nested = manifest[:-1].rstrip() + ', "x": ' + "[" * depth + "]" * depth + "}"
    (directory / MANIFEST).write_text(nested)


def _oversized(directory: Path) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["settings"]["padding"] = "x" * (2 << 20)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def _products_missing_one(document: object) -> object:
    assert isinstance(document, dict)
    return {k: v[:-1] for k, v in document.items()}


def _catalog_one_short(directory: Path) -> None:
    """products.json and products.npz agree on one product fewer than the indexes."""
    edit_json("products.json", _products_missing_one)(directory)
    edit_npz("products.npz", lambda arrays: arrays.update(
        {k: v[:-1] for k, v in arrays.items() if k != "term_names"}))(directory)


def _duplicate_product(document: object) -> object:
    assert isinstance(document, dict)
    ids = list(document["product_id"])
    ids[1] = ids[0]
    return {**document, "product_id": ids}


def _unsorted_customers(arrays: dict[str, np.ndarray]) -> None:
    ids = arrays["customer_ids"]
    ids[0], ids[1] = ids[1], ids[0]


def _deep_analyzer(directory: Path) -> None:
    (directory / "analyzer.json").write_text("[" * 100_000 + "]" * 100_000)
    rehash(directory, "analyzer.json")


def _cyclic_tree(directory: Path) -> None:
    """model.ubj whose first tree's second node points back to the root."""
    booster = xgb.Booster()
    booster.load_model(directory / "model.ubj")
    model = json.loads(booster.save_raw("json"))
    trees = model["learner"]["gradient_booster"]["model"]["trees"]
    tree, inner = next((t, i) for t in trees for i, left in enumerate(t["left_children"])
                       if i and left >= 0)
    tree["left_children"][inner] = tree["left_children"][0]  # the root's child, again
    crafted = xgb.Booster()
    crafted.load_model(bytearray(json.dumps(model).encode()))
    crafted.save_model(directory / "model.ubj")
    rehash(directory, "model.ubj")


def _feature_outside(directory: Path) -> None:
    booster = xgb.Booster()
    booster.load_model(directory / "model.ubj")
    model = json.loads(booster.save_raw("json"))
    tree = model["learner"]["gradient_booster"]["model"]["trees"][0]
    tree["split_indices"][0] = -5
    crafted = xgb.Booster()
    crafted.load_model(bytearray(json.dumps(model).encode()))
    crafted.save_model(directory / "model.ubj")
    rehash(directory, "model.ubj")


def swap_model(directory: Path) -> None:
    """A different, valid model for the same features, its hashes updated in the manifest."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, len(features.FEATURE_NAMES))).astype(np.float32)
    y = rng.integers(0, 3, size=400)
    data = xgb.DMatrix(X, label=y, qid=np.repeat(np.arange(40), 10))
    other = xgb.train({"objective": "rank:ndcg", "max_depth": 3}, data, num_boost_round=5)
    other.save_model(directory / "model.ubj")
    meta = json.loads((directory / "model.json").read_text())
    (directory / "model.json").write_text(json.dumps({**meta, "best_iteration": 4}))
    rehash(directory, "model.ubj", "model.json")


#: (case, craft, file named, what the message names); every case must be a BundleError.
CASES: list[tuple[str, Callable[[Path], None], str, str]] = [
    ("post_docs beyond the catalog", edit_npz("bm25.npz", _set("all.post_docs", 0, 10**6)),
     "bm25.npz", r"all\.post_docs\[0\] is 1,000,000, outside \[0, 900\)"),
    ("post_docs negative", edit_npz("bm25.npz", _set("title.post_docs", 3, -7)),
     "bm25.npz", r"title\.post_docs\[3\] is -7, outside"),
    ("doc_terms beyond the vocabulary",
     edit_npz("bm25_stemmed.npz", _set("all.doc_terms", 5, 2**31 - 1)),
     "bm25_stemmed.npz", r"all\.doc_terms\[5\] is 2,147,483,647, outside"),
    ("huge doc_indptr value", edit_npz("bm25.npz", _set("all.doc_indptr", -1, 2**40)),
     "bm25.npz", r"all\.doc_indptr ends at 1,099,511,627,776, not at the data's length"),
    ("huge doc_indptr shape", _huge_header, "bm25.npz",
     r"all\.doc_indptr declares shape \(1000000000000,\)"),
    ("decreasing doc_indptr", edit_npz("bm25.npz", _decrease("brand.doc_indptr")),
     "bm25.npz", r"brand\.doc_indptr decreases at row 1"),
    ("doc_indptr not from 0", edit_npz("bm25.npz", _set("all.doc_indptr", 0, 3)),
     "bm25.npz", r"all\.doc_indptr must start at 0"),
    ("decreasing post_indptr", edit_npz("bm25.npz", _decrease("all.post_indptr")),
     "bm25.npz", r"all\.post_indptr decreases at row 1"),
    ("post_indptr short", edit_npz("bm25.npz", _replace("all.post_indptr", lambda a: a[:-1])),
     "bm25.npz", r"all\.post_indptr has .* entries, expected"),
    ("post_docs unsorted in a term", edit_npz("bm25.npz", _unsort_postings),
     "bm25.npz", r"all\.post_docs is not ascending within its term"),
    ("post_docs as int64", edit_npz("bm25.npz", _replace("all.post_docs",
                                                         lambda a: a.astype(np.int64))),
     "bm25.npz", r"all\.post_docs is <i8 .* expected int32"),
    ("big-endian doc_terms", edit_npz("bm25.npz", _replace("all.doc_terms",
                                                           lambda a: a.astype(">i4"))),
     "bm25.npz", r"all\.doc_terms is >i4 .* expected int32"),
    ("NaN idf", edit_npz("bm25.npz", _set("all.idf", 2, np.nan)),
     "bm25.npz", r"all\.idf\[2\] is nan, not finite"),
    ("compressed member", _compressed, "bm25.npz", r"is compressed"),
    ("duplicate vocabulary token", edit_json("bm25_vocab.json", lambda v: [*v, v[0]]),
     "bm25_vocab.json", "repeats a token"),
    ("one product short", edit_json("products.json", _products_missing_one),
     "products.npz", r"terms is <f4 of shape \(900, \d+\), expected floats of shape \(899"),
    ("catalog one product short of the indexes", _catalog_one_short, "bm25.npz",
     r"\w+\.doc_indptr covers 900 documents for 899 products"),
    ("duplicate product id", edit_json("products.json", _duplicate_product),
     "products.json", r"product_id '.*' appears twice"),
    ("NaN business term", edit_npz("products.npz", _set("terms", (4, 0), np.nan)),
     "products.npz", r"terms\[4, 0\] is nan, not finite"),
    ("inf business term", edit_npz("products.npz", _set("terms", (7, 2), np.inf)),
     "products.npz", r"terms\[7, 2\] is inf, not finite"),
    ("inf prior", edit_npz("products.npz", _set("priors", (1, 0), -np.inf)),
     "products.npz", r"priors\[1, 0\] is -inf"),
    ("in_stock as floats", edit_npz("products.npz", _replace("in_stock",
                                                             lambda a: a.astype(np.float32))),
     "products.npz", r"in_stock is <f4 .* expected booleans"),
    ("unsorted customer ids", edit_npz("customers.npz", _unsorted_customers),
     "customers.npz", r"customer_ids are not sorted without repeats at row 1"),
    ("NaN customer CLV", edit_npz("customers.npz", _set("clv", 3, np.nan)),
     "customers.npz", r"clv of customer row 3 is not finite"),
    ("unsorted title trigrams", edit_npz("title_text.npz", _replace("keys", lambda a: a[::-1])),
     "title_text.npz", r"keys is not sorted without repeats"),
    ("unsorted token trigram keys", edit_npz("term_chars.npz", _replace("trigram_keys",
                                                                       lambda a: a[::-1])),
     "term_chars.npz", r"trigram_keys is not sorted within its token"),
    ("token trigram keys of other characters", edit_npz("term_chars.npz", _replace(
        "trigram_keys", lambda a: a + (1 << 21))),
     "term_chars.npz", r"trigram_keys of token 0 are not its characters' trigrams"),
    ("token trigram keys one short", edit_npz("term_chars.npz", _replace("trigram_keys",
                                                                        lambda a: a[:-1])),
     "term_chars.npz", r"trigram_keys has [\d,]+ keys for the vocabulary's [\d,]+ characters"),
    ("token trigram keys as int32", edit_npz("term_chars.npz", _replace(
        "trigram_keys", lambda a: a.astype(np.int32))),
     "term_chars.npz", r"trigram_keys is <i4 .* expected int64"),
    ("weights.yaml linked to /etc/passwd", _symlink("weights.yaml", "/etc/passwd"),
     "weights.yaml", "is a symbolic link"),
    ("a file linked inside the bundle", _symlink("analyzer.json", "features.json"),
     "analyzer.json", "is a symbolic link"),
    ("manifest path with ..", edit_manifest(
        lambda m: m["files"].update({"../../etc/passwd": {"sha256": "0" * 64, "bytes": 1}})),
     MANIFEST, "'../../etc/passwd' is not a plain name"),
    ("manifest absolute path", edit_manifest(
        lambda m: m["files"].update({"/etc/passwd": {"sha256": "0" * 64, "bytes": 1}})),
     MANIFEST, "'/etc/passwd' is not a plain name"),
    ("deeply nested manifest", _nested_text, MANIFEST, "nests 200,001 levels deep; at most 16"),
    ("moderately nested manifest", edit_manifest(_nest(40)), MANIFEST,
     "nests 42 levels deep; at most 16"),
    ("oversized manifest", _oversized, MANIFEST, r"bytes; at most 1,048,576 are allowed"),
    ("target_weeks_of_cover abc", edit_manifest(
        lambda m: m["settings"].update({"target_weeks_of_cover": "abc"})),
     MANIFEST, r'settings\.target_weeks_of_cover must be a number above 0, got "abc"'),
    ("n_candidates true", edit_manifest(lambda m: m["settings"].update({"n_candidates": True})),
     "", r"settings\.n_candidates must be an integer"),
    ("deeply nested analyzer.json", _deep_analyzer, "analyzer.json", "nests too deeply"),
    ("cyclic tree", _cyclic_tree, "model.ubj", r"tree \d+ has a node reached twice"),
    ("tree splitting on feature -5", _feature_outside, "model.ubj",
     "splits on a feature outside"),
]


@pytest.fixture(scope="module")
def outcomes(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """Craft every case (and the signing cases), load them all in one child process."""
    root = tmp_path_factory.mktemp("crafted")
    jobs: list[tuple[str, str, str | None]] = []

    def copy(case: str) -> Path:
        target = root / f"case{len(jobs)}"
        shutil.copytree(bundle_dir, target)
        return target

    for case, craft, _, _ in CASES:
        target = copy(case)
        craft(target)
        jobs.append((case, str(target), None))
    signed = copy("signed")
    bundle.sign(signed, KEY)
    jobs.append(("signed, right key", str(signed), KEY.decode()))
    jobs.append(("signed, other key", str(signed), OTHER_KEY.decode()))
    jobs.append(("unsigned under a key", str(bundle_dir), KEY.decode()))
    swapped = copy("swapped")
    bundle.sign(swapped, KEY)
    swap_model(swapped)
    jobs.append(("swapped model, no key", str(swapped), None))
    jobs.append(("swapped model under signing", str(swapped), KEY.decode()))
    resigned = copy("resigned")
    swap_model(resigned)
    bundle.sign(resigned, OTHER_KEY)
    jobs.append(("swapped model signed with another key", str(resigned), KEY.decode()))
    listing = root / "jobs.json"
    listing.write_text(json.dumps(jobs))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARGINRANK_BUNDLE")}
    child = subprocess.run([sys.executable, "-c", RUNNER, str(listing)], capture_output=True,
                           text=True, timeout=900, env=env)
    seen = {case: [kind, message] for case, kind, message in
            (json.loads(line) for line in child.stdout.splitlines() if line.startswith("["))}
    for case, *_ in jobs:  # a case the child never reported is the one that killed it
        seen.setdefault(case, ["crash", f"exit {child.returncode}: {child.stderr[-2000:]}"])
    return seen


@pytest.mark.parametrize(("case", "file", "names"), [(c, f, n) for c, _, f, n in CASES],
                         ids=[c for c, *_ in CASES])
def test_crafted_bundle_is_refused_naming_file_and_array(outcomes: dict, case: str, file: str,
                                                         names: str) -> None:
    kind, message = outcomes[case]
    assert kind == "BundleError", f"{case}: {kind}: {message}"
    assert f"/{file}" in message or file == ""
    assert re.search(names, message), message
    assert "root:" not in message  # nothing of /etc/passwd is quoted


def test_signing_refuses_unsigned_wrong_and_swapped(outcomes: dict) -> None:
    assert outcomes["signed, right key"][0] == "loaded"
    for case in ("signed, other key", "swapped model under signing",
                 "swapped model signed with another key"):
        kind, message = outcomes[case]
        assert kind == "BundleError" and "manifest.sig" in message, (case, message)
        assert "does not match the configured key" in message
    kind, message = outcomes["unsigned under a key"]
    assert kind == "BundleError" and "manifest.sig: missing" in message
    # Without a key the manifest is only a checksum: the swapped model loads. That is the
    # documented limit signing removes.
    assert outcomes["swapped model, no key"][0] == "loaded"


def test_key_from_environment_and_file(bundle_dir: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "b"
    shutil.copytree(bundle_dir, copy)
    key_file = tmp_path / "bundle.key"
    key_file.write_bytes(KEY + b"\n")
    bundle.sign(copy, bundle.read_key_file(key_file))
    monkeypatch.setenv(bundle.KEY_FILE_ENV, str(key_file))
    assert Ranker.load(copy, warm=False).catalog.product_ids
    with pytest.raises(BundleError, match="manifest.sig: missing"):
        Ranker.load(bundle_dir, warm=False)
    monkeypatch.delenv(bundle.KEY_FILE_ENV)
    monkeypatch.setenv(bundle.KEY_ENV, OTHER_KEY.decode())
    with pytest.raises(BundleError, match="does not match the configured key"):
        Ranker.load(copy, warm=False)
    monkeypatch.setenv(bundle.KEY_ENV, "short")
    with pytest.raises(BundleError, match="at least 16 bytes"):
        Ranker.load(copy, warm=False)


def test_saving_with_a_key_signs_and_a_rebuild_without_drops_the_signature(
        bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(bundle.KEY_ENV, raising=False)
    monkeypatch.delenv(bundle.KEY_FILE_ENV, raising=False)
    ranker = Ranker.load(bundle_dir, warm=False)
    out = ranker.save(tmp_path / "signed", key=KEY)
    assert (out / bundle.SIGNATURE).is_file()
    assert Ranker.load(out, key=KEY, warm=False).config_version == ranker.config_version
    ranker.save(out)  # no key now: the old signature must not survive the new manifest
    assert not (out / bundle.SIGNATURE).exists()


def test_a_bundle_without_term_chars_loads_and_answers_the_same(bundle_dir: Path,
                                                                 tmp_path: Path) -> None:
    """Bundles written before ``term_chars.npz`` compute the tokens' trigram keys at load, as
    before; a ``term_chars.npz`` the manifest does not list is never read."""
    assert features.TERM_CHARS in json.loads((bundle_dir / MANIFEST).read_text())["files"]
    old = tmp_path / "old"
    shutil.copytree(bundle_dir, old)
    (old / features.TERM_CHARS).write_bytes(b"not an npz")  # present, unlisted: ignored
    edit_manifest(lambda m: m["files"].pop(features.TERM_CHARS))(old)
    stored, computed = Ranker.load(bundle_dir), Ranker.load(old)
    for a, b in zip(stored.feature_space.term_chars, computed.feature_space.term_chars,
                    strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    for query in ("drill", "cordless drill 20v", "garden hose 50 ft", "drils"):
        assert ([r.to_dict() for r in stored.search(query, k=10, explain=True)]
                == [r.to_dict() for r in computed.search(query, k=10, explain=True)])
