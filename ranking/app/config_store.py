"""The service's config as state it owns: the *last good* weights config, on disk, durably.

Every accepted config (``PUT /config``, a checked ``POST /reload`` or SIGHUP, the one given at
start) is written here before anything serves it: the text to ``generations/<n>.yaml`` (temp
file, fsync, rename, fsync of the directory), then ``current.json`` naming it (the same
durable rename), so a reader sees either the old or the new generation, whole, and a power cut
loses nothing acknowledged. Workers never read the operator's file: they start from, and poll
(one ``stat`` every :data:`POLL_SECONDS`), this store; a change is swapped in place, no
process restarts.

Writers in several processes (any worker answering ``PUT /config``, the supervisor answering
SIGHUP) serialize on an ``flock`` so generations are numbered once. The same lock guards the
service-wide counts of accepted and refused changes that ``/metrics`` shows.

Reading the operator's file (:func:`read_complete`) refuses anything that is not the complete
file the caller meant: the caller names its sha256 (``POST /reload`` with ``{"sha256": ...}``,
or a ``sha256sum``-style sidecar ``<file>.sha256`` for SIGHUP). A half-written file, as a
non-atomic editor save leaves it, has another hash and is refused, even when what is there
happens to be valid YAML.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from clv.errors import ConfigError, ConfigIssue
from objectives.config import WeightsConfig, parse_config

#: How often a worker looks for a new generation (one ``stat``); the bound on how stale a
#: worker can be, plus the time to compile the config (docs/service.md has the measurement).
POLL_SECONDS = 0.05
#: Generations kept on disk (older ones are pruned; ``current.json`` names the newest).
KEEP_GENERATIONS = 8
#: A weights file larger than this is refused before it is parsed.
MAX_CONFIG_BYTES = 256 * 1024
CURRENT = "current.json"
SIDECAR_SUFFIX = ".sha256"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Generation:
    """One accepted config: its number, where its text is, and how it arrived."""

    number: int
    version: str  # sha256 prefix of the text, as the ranker reports it
    sha256: str
    source: str  # PUT /config | POST /reload | SIGHUP | start (never a path)
    accepted_at: float
    path: Path

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def version_of(text: str) -> str:
    """The version the ranker gives ``text`` (sha256 prefix of its UTF-8 bytes)."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class ConfigStore:
    """The last good config in ``directory`` (created if needed)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.generations = self.directory / "generations"
        self.generations.mkdir(parents=True, exist_ok=True)
        self._current = self.directory / CURRENT
        self._counts = self.directory / "counts.json"
        self._lock_path = self.directory / "lock"

    # -- reading -------------------------------------------------------------------------
    def stamp(self) -> tuple[int, int, int] | None:
        """A cheap fingerprint of ``current.json`` (inode, mtime, size); None before the first
        config. Any accept changes it (a rename makes a new inode; the number inside is the
        truth, so a reused inode costs at most one extra read)."""
        try:
            st = os.stat(self._current)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def current(self) -> Generation | None:
        """The newest accepted generation, or None before the first."""
        try:
            doc = json.loads(self._current.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return Generation(int(doc["generation"]), doc["version"], doc["sha256"], doc["source"],
                          float(doc["accepted_at"]), self.generations / doc["file"])

    def counts(self) -> dict[str, int]:
        """Accepted and refused changes since the store was created (all processes)."""
        try:
            return {k: int(v) for k, v in json.loads(self._counts.read_text()).items()}
        except FileNotFoundError:
            return {"ok": 0, "refused": 0}

    # -- writing -------------------------------------------------------------------------
    def accept(self, text: str, source: str) -> Generation:
        """Write ``text`` (already validated) durably as the next generation and make it
        current. Returns the generation."""
        data = text.encode("utf-8")
        sha = hashlib.sha256(data).hexdigest()
        with self._locked():
            previous = self.current()
            number = (previous.number if previous else 0) + 1
            name = f"{number:08d}.yaml"
            _write_durably(self.generations / name, data)
            generation = Generation(number, sha[:12], sha, source, time.time(),
                                    self.generations / name)
            _write_durably(self._current, json.dumps({
                "generation": number, "version": generation.version, "sha256": sha,
                "source": source, "accepted_at": generation.accepted_at, "file": name,
            }).encode())
            self._bump("ok")
            self._prune(number)
        return generation

    def refused(self) -> None:
        """Count a refused change (shown by ``/metrics`` of every worker)."""
        with self._locked():
            self._bump("refused")

    def _bump(self, result: str) -> None:
        counts = self.counts()
        counts[result] = counts.get(result, 0) + 1
        _write_durably(self._counts, json.dumps(counts).encode(), sync=False)

    def _prune(self, newest: int) -> None:
        for path in self.generations.glob("*.yaml"):
            if path.stem.isdigit() and int(path.stem) <= newest - KEEP_GENERATIONS:
                path.unlink(missing_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._lock_path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _write_durably(path: Path, data: bytes, sync: bool = True) -> None:
    """Temp file in the same directory, fsync, rename over ``path``, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# -- validating ----------------------------------------------------------------------------
class Validator:
    """What a weights text must satisfy for this bundle: the ranker's own rules (known
    product ids in pins and buries, the bundle's inventory target, pins keyed by its analyzer)."""

    def __init__(self, product_ids: Collection[str], target_weeks_of_cover: float,
                 pin_rule: Callable[[str], str] | None = None) -> None:
        self.product_ids = frozenset(product_ids)
        self.target_weeks_of_cover = target_weeks_of_cover
        self.pin_rule = pin_rule

    @classmethod
    def for_bundle(cls, bundle_dir: Path) -> Validator:
        """The same rules ``Ranker.load`` applies, from the bundle's catalog and manifest only
        (the supervisor validates SIGHUP reloads without loading the index or the model)."""
        from ranking import bundle
        from ranking.ranker import WEIGHTS_FILE, Catalog, bundle_pin_rule

        manifest = json.loads((bundle_dir / bundle.MANIFEST).read_text(encoding="utf-8"))
        ids = Catalog.load(bundle_dir).product_ids
        target = manifest.get("settings", {}).get("target_weeks_of_cover", 8.0)
        rule = bundle_pin_rule(bundle_dir)
        own = parse_config((bundle_dir / WEIGHTS_FILE).read_text(encoding="utf-8"),
                           source=str(bundle_dir / WEIGHTS_FILE), product_ids=set(ids),
                           target_weeks_of_cover=target, pin_rule=rule)
        return cls(ids, own.inventory.target_weeks_of_cover, pin_rule=rule)

    def validate(self, text: str, source: str) -> WeightsConfig:
        """The parsed config, or :class:`ConfigError` naming ``source``, line and key."""
        if len(text.encode("utf-8")) > MAX_CONFIG_BYTES:
            raise ConfigError([ConfigIssue(source, None, "", f"larger than {MAX_CONFIG_BYTES} "
                                                             "bytes; not a weights file")])
        return parse_config(text, source=source, product_ids=self.product_ids,
                            target_weeks_of_cover=self.target_weeks_of_cover,
                            pin_rule=self.pin_rule)


# -- reading the operator's file -----------------------------------------------------------
def sidecar_of(path: Path) -> Path:
    """``weights.yaml`` -> ``weights.yaml.sha256`` (what ``sha256sum weights.yaml`` prints)."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_complete(path: Path, expected_sha256: str | None = None) -> str:
    """The text of ``path`` if, and only if, it is the complete file the caller meant.

    ``expected_sha256`` comes from the caller (``POST /reload``); without it, the sidecar
    ``<path>.sha256`` must hold it. A file whose bytes hash to anything else (half written,
    changed since, or the sidecar stale) is refused with :class:`ConfigError`.
    """
    source = str(path)

    def refuse(message: str) -> ConfigError:
        return ConfigError([ConfigIssue(source, None, "", message)])

    if expected_sha256 is None:
        sidecar = sidecar_of(path)
        try:
            raw = sidecar.read_bytes()[:4096].decode("ascii", errors="replace")
        except FileNotFoundError:
            raise refuse(f"no expected sha256: send it (POST /reload with {{\"sha256\": ...}}) "
                         f"or write it to {sidecar.name} (sha256sum {path.name} > "
                         f"{sidecar.name}); a file is only read once it is known complete"
                         ) from None
        expected_sha256 = raw.split()[0] if raw.split() else ""
        if not raw.endswith("\n"):
            raise refuse(f"{sidecar.name} is incomplete (no final newline)")
    expected_sha256 = expected_sha256.strip().lower()
    if not _SHA256.fullmatch(expected_sha256):
        raise refuse("the expected sha256 must be 64 hex digits")
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise refuse("not a regular file")
        if st.st_size > MAX_CONFIG_BYTES:
            raise refuse(f"larger than {MAX_CONFIG_BYTES} bytes; not a weights file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise refuse("no such file") from None
    except IsADirectoryError:
        raise refuse("not a regular file") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise refuse(f"sha256 is {actual[:12]}…, expected {expected_sha256[:12]}…: the file "
                     "is incomplete or not the one meant (nothing was swapped)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError([ConfigIssue(source, line, "", "not UTF-8 text")]) from None


def read_stable(path: Path, settle: float = 0.2) -> str:
    """The text of ``path`` at start: for a regular file, two reads ``settle`` seconds apart
    that agree (a file being written is refused); a pipe is read once."""
    source = str(path)
    try:
        first = path.read_bytes()
        if path.is_file():
            time.sleep(settle)
            if path.read_bytes() != first:
                raise ConfigError([ConfigIssue(source, None, "", "changed while being read "
                                               "(still being written?); start again")])
        return first.decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(source, None, "", "no such file")]) from None
    except UnicodeDecodeError as exc:
        line = first[:exc.start].count(b"\n") + 1
        raise ConfigError([ConfigIssue(source, line, "", "not UTF-8 text")]) from None


# -- one change, whichever path it came by -------------------------------------------------
def accept_text(store: ConfigStore, validator: Validator, text: str, source: str,
                file: str) -> Generation:
    """Validate ``text`` and make it the last good config. A text equal to the current one
    was validated when it was accepted: it is neither validated nor written again (a storm of
    reloads of one file costs a read and a hash each). A refusal is counted and raised as
    :class:`ConfigError`."""
    current = store.current()
    if current is not None and current.sha256 == hashlib.sha256(text.encode()).hexdigest():
        return current
    try:
        validator.validate(text, file)
    except ConfigError:
        store.refused()
        raise
    return store.accept(text, source)


def accept_file(store: ConfigStore, validator: Validator, path: Path,
                expected_sha256: str | None, source: str) -> Generation:
    """:func:`accept_text` with the file ``path``, read only if complete
    (:func:`read_complete`): ``POST /reload`` and SIGHUP."""
    try:
        text = read_complete(path, expected_sha256)
    except ConfigError:
        store.refused()
        raise
    return accept_text(store, validator, text, source, str(path))

