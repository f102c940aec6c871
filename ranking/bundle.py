"""Bundle files on disk: the manifest with a sha256 of every file, written last and checked
first, so a truncated, altered or mismatched bundle is refused before anything is loaded."""

from __future__ import annotations

import hashlib
import json
import time
from importlib import metadata
from pathlib import Path

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


def verify(directory: Path) -> dict[str, object]:
    """Return the manifest after checking every listed file's size and sha256."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise BundleError(f"{directory}: not a bundle (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: manifest is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path}: format {manifest.get('format')!r} version {manifest.get('format_version')!r}"
            f" is not {FORMAT!r} version {FORMAT_VERSION}; rebuild the bundle")
    for name, entry in manifest.get("files", {}).items():
        file = directory / name
        if not file.is_file():
            raise BundleError(f"{file}: listed in the manifest but missing")
        if file.stat().st_size != entry["bytes"]:
            raise BundleError(f"{file}: {file.stat().st_size} bytes, manifest says "
                              f"{entry['bytes']} (truncated or altered)")
        if sha256_of(file) != entry["sha256"]:
            raise BundleError(f"{file}: sha256 does not match the manifest (altered)")
    return manifest


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
