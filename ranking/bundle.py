"""Bundle files on disk: the manifest with a sha256 of every file, written last and checked
first, so a truncated, altered or mismatched bundle is refused before anything is loaded."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from clv.errors import MarginRankError

FORMAT = "marginrank-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_LIBRARIES = ("marginrank", "numpy", "pandas", "xgboost", "numba", "lifetimes", "cvxpy")


class BundleError(MarginRankError):
    """A bundle directory is missing, incomplete, altered or of another format version."""


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


def write_manifest(directory: Path, files: list[Path], settings: dict[str, object]) -> Path:
    """Record format, library versions, settings and the checksum of each file."""
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "libraries": {name: _version(name) for name in _LIBRARIES},
        "settings": settings,
        "files": {p.name: {"sha256": sha256_of(p), "bytes": p.stat().st_size}
                  for p in sorted(files)},
    }
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2))
    return path


def verify(directory: Path, required: Iterable[str]) -> dict[str, Any]:
    """Return the manifest after checking its shape, that it lists every ``required`` file,
    and every listed file's size and sha256."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise BundleError(f"{directory}: not a bundle (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: manifest is not valid JSON: {exc}") from exc
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
        if name in ("", ".", "..") or "/" in name or "\\" in name:
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
