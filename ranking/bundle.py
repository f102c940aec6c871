"""Bundle files on disk: the manifest with a sha256 of every file, written last and checked
first, so a truncated, altered or mismatched bundle is refused before anything is loaded.

The manifest is a checksum, not a signature: whoever can write the bundle can rewrite it.
With an operator key (:func:`configured_key`), the manifest is also signed (HMAC-SHA256 in
:data:`SIGNATURE`) and a bundle whose signature is missing or wrong is refused, so a model or
catalog swapped in with its hash updated is refused. ``docs/bundles.md`` is the operator page.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from clv.errors import BundleError

FORMAT = "marginrank-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: The manifest's HMAC-SHA256 under the operator key, when the bundle is signed.
SIGNATURE = "manifest.sig"
#: Environment variables holding the operator key itself, or the path of a file holding it.
KEY_ENV, KEY_FILE_ENV = "MARGINRANK_BUNDLE_KEY", "MARGINRANK_BUNDLE_KEY_FILE"
#: A key shorter than this is refused: it could be guessed.
MIN_KEY_BYTES = 16
#: Bounds on the manifest, checked before it is parsed (a real one is a few KB, 3 deep).
MAX_MANIFEST_BYTES, MAX_MANIFEST_DEPTH = 1 << 20, 16
_LIBRARIES = ("marginrank", "numpy", "pandas", "xgboost", "numba", "lifetimes", "cvxpy")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_directory(directory: Path) -> Path:
    """Create the bundle directory (and parents) or say clearly why it cannot be."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BundleError(f"{directory}: cannot create the bundle directory: {exc}") from exc
    if any(directory.iterdir()) and not (directory / MANIFEST).is_file():
        raise BundleError(f"{directory}: exists, is not empty and is not a bundle; "
                          "choose another output folder")
    return directory


def write_manifest(directory: Path, files: list[Path], settings: dict[str, object],
                   key: bytes | None = None) -> Path:
    """Record format, library versions, settings and the checksum of each file; with
    ``key``, sign the manifest (:data:`SIGNATURE`)."""
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "libraries": {name: _version(name) for name in _LIBRARIES},
        "settings": settings,
        "files": {p.name: {"sha256": sha256_of(p), "bytes": p.stat().st_size}
                  for p in sorted(files)},
    }
    path = directory / MANIFEST
    (directory / SIGNATURE).unlink(missing_ok=True)
    path.write_text(json.dumps(manifest, indent=2))
    if key is not None:
        sign(directory, key)
    return path


def sign(directory: Path, key: bytes) -> Path:
    """Write the HMAC-SHA256 of the bundle's manifest under ``key`` (:data:`SIGNATURE`)."""
    key = check_key(key, "the signing key")
    mac = hmac.new(key, (Path(directory) / MANIFEST).read_bytes(), hashlib.sha256).hexdigest()
    path = Path(directory) / SIGNATURE
    path.write_text(json.dumps({"algorithm": "hmac-sha256", "mac": mac}) + "\n")
    return path


def check_key(key: bytes, source: str) -> bytes:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise BundleError(f"{source}: a bundle key must be at least {MIN_KEY_BYTES} bytes "
                          "(for example 32 random bytes, hex-encoded)")
    return key


def read_key_file(path: str | Path) -> bytes:
    """The operator key held in the file ``path`` (surrounding whitespace removed)."""
    try:
        key = Path(path).read_bytes().strip()
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the bundle key file ({exc.strerror})") from exc
    return check_key(key, str(path))


def configured_key() -> bytes | None:
    """The operator key from the environment: :data:`KEY_ENV` (the key) or
    :data:`KEY_FILE_ENV` (a file holding it); None when neither is set."""
    if os.environ.get(KEY_ENV):
        return check_key(os.environ[KEY_ENV].strip().encode(), KEY_ENV)
    if os.environ.get(KEY_FILE_ENV):
        return read_key_file(os.environ[KEY_FILE_ENV])
    return None


def _check_signature(directory: Path, manifest_bytes: bytes, key: bytes) -> None:
    """Refuse the bundle unless :data:`SIGNATURE` holds the manifest's HMAC under ``key``."""
    path = directory / SIGNATURE
    if not path.is_file():
        raise BundleError(f"{path}: missing: a bundle key is configured, so only bundles signed "
                          "with it are loaded (build with --sign-key-file or the key set)")
    from ranking import bundle_checks  # the checks import this module

    document = bundle_checks.read_json(path, max_bytes=4096, max_depth=2)
    mac = document.get("mac") if isinstance(document, dict) else None
    expected = hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest()
    if not (isinstance(mac, str) and document.get("algorithm") == "hmac-sha256"
            and hmac.compare_digest(mac.encode(), expected.encode())):
        raise BundleError(f"{path}: the manifest's signature does not match the configured "
                          "key (the bundle was altered, or signed with another key)")


def check_entries_are_files(directory: Path) -> None:
    """Refuse a bundle holding a symbolic link or anything but regular files: a link could
    make the loader read (and quote in an error) a file from outside the bundle. The
    directory itself may be a link (``current -> bundle-v3``); what it holds may not."""
    try:
        entries = list(os.scandir(directory))
    except OSError as exc:
        raise BundleError(f"{directory}: cannot list the bundle ({exc.strerror})") from exc
    for entry in entries:
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            raise BundleError(f"{entry.path}: is a symbolic link; a bundle holds only its own "
                              "regular files (the link was not followed)")
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise BundleError(f"{entry.path}: is not a regular file")


def verify(directory: Path, required: Iterable[str], *,
           key: bytes | None = None) -> dict[str, Any]:
    """Return the manifest after checking that the bundle holds no links, the manifest's
    size and depth (before parsing it), its signature when a key is given or configured
    (:func:`configured_key`), its shape, that it lists every ``required`` file, and every
    listed file's size and sha256."""
    from ranking import bundle_checks  # the checks import this module

    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise BundleError(f"{directory}: not a bundle (not a directory)")
    check_entries_are_files(directory)
    if not path.is_file():
        raise BundleError(f"{directory}: not a bundle (no {MANIFEST})")
    manifest_bytes = bundle_checks.read_bytes(path, MAX_MANIFEST_BYTES)
    key = key if key is not None else configured_key()
    if key is not None:
        _check_signature(directory, manifest_bytes, check_key(key, "the bundle key"))
    manifest = bundle_checks.parse_json(path, manifest_bytes, MAX_MANIFEST_DEPTH)
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: manifest must be a JSON object")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path}: format {manifest.get('format')!r} version {manifest.get('format_version')!r}"
            f" is not {FORMAT!r} version {FORMAT_VERSION}; rebuild the bundle")
    files = _checked_entries(path, manifest.get("files"))
    missing = sorted(set(required) - set(files))
    if missing:
        raise BundleError(f"{path}: does not list required file(s) {missing}")
    if not isinstance(manifest.get("settings"), dict):
        raise BundleError(f"{path}: 'settings' must be a JSON object")
    for name, entry in files.items():
        file = directory / name
        if not file.is_file():
            raise BundleError(f"{file}: listed in the manifest but missing")
        if file.stat().st_size != entry["bytes"]:
            raise BundleError(f"{file}: {file.stat().st_size} bytes, manifest says "
                              f"{entry['bytes']} (truncated or altered)")
        if sha256_of(file) != entry["sha256"]:
            raise BundleError(f"{file}: sha256 does not match the manifest (altered)")
    return manifest


def required_arrays(data: dict[str, np.ndarray], names: Iterable[str],
                    source: str) -> dict[str, np.ndarray]:
    """The arrays ``names`` of one bundle file ``source``, refusing the file if any is missing
    (a KeyError would not say which file)."""
    missing = sorted(set(names) - set(data))
    if missing:
        raise BundleError(f"{source}: missing array(s) {missing}; rebuild the bundle")
    return {name: data[name] for name in names}


#: Kinds of array a bundle file holds, as :func:`check_layout` names them: numpy dtype kinds.
_KINDS = {"integer": "iu", "float": "f"}


def check_layout(arrays: dict[str, np.ndarray], expected: dict[str, tuple[tuple[int, ...], str]],
                 source: str) -> None:
    """Refuse the bundle file ``source`` unless each array has its expected (shape, kind), a
    kind being ``"integer"`` or ``"float"``: the kernels index these arrays without bounds
    checks, so a damaged file must stop here, naming the array, not crash or read garbage in
    a search."""
    wrong = [f"{name} is {arrays[name].dtype} of shape {arrays[name].shape}, expected {kind} "
             f"of shape {shape}" for name, (shape, kind) in expected.items()
             if arrays[name].shape != shape or arrays[name].dtype.kind not in _KINDS[kind]]
    if wrong:
        raise BundleError(f"{source}: {'; '.join(wrong)}; rebuild the bundle")


def _checked_entries(path: Path, files: object) -> dict[str, dict[str, Any]]:
    """The manifest's file table, refusing odd shapes and names that leave the bundle."""
    if not isinstance(files, dict):
        raise BundleError(f"{path}: 'files' must be a JSON object")
    for name, entry in files.items():
        if (name in ("", ".", "..", MANIFEST, SIGNATURE) or "/" in name or "\\" in name
                or "\0" in name or Path(name).is_absolute()):
            raise BundleError(f"{path}: file name {name!r} is not a plain name in the bundle")
        if not (isinstance(entry, dict) and isinstance(entry.get("bytes"), int)
                and isinstance(entry.get("sha256"), str)):
            raise BundleError(f"{path}: entry {name!r} needs 'bytes' (int) and 'sha256' (str)")
    return files


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
