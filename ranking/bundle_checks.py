"""Checks of every file and array a bundle hands to the query path, run at load time.

The Numba kernels index their arrays without bounds checks (that is part of what makes them
fast), and the manifest's checksums only prove that the files are the ones the manifest
lists: whoever can write the bundle can rewrite the manifest too. So a crafted array that
reached a kernel would read or write outside its memory (a segmentation fault, or garbage in
the results). Every loader calls these checks before building the objects the kernels read;
each refuses with a :class:`ranking.bundle.BundleError` naming the file and the array.
``docs/bundles.md`` lists what is checked.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import struct
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from clv.errors import BundleError, MarginRankError

#: The dtypes the builder writes for a BM25 field's arrays (``np.savez`` of
#: :meth:`ranking.bm25.FieldIndex.arrays`); ``post_tf`` is uint16 or, for a document that
#: repeats a term 65,536+ times, int32.
FIELD_DTYPES: dict[str, tuple[str, ...]] = {
    "doc_indptr": ("int64",), "doc_terms": ("int32",), "post_indptr": ("int64",),
    "post_docs": ("int32",), "post_tf": ("uint16", "int32"), "idf": ("float64",),
    "avgdl": ("float64",),
}
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def refuse(source: str | Path, message: str) -> BundleError:
    """The error for a bundle file ``source`` that fails a check (raise it)."""
    return BundleError(f"{source}: {message}; rebuild the bundle")


# -- files ----------------------------------------------------------------------------------
def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, each member's header checked against its size
    before the array is allocated: members must be stored uncompressed (as ``np.savez``
    writes them) and hold exactly the bytes their declared shape and dtype need, so a header
    claiming a huge shape cannot make numpy allocate it, and a small compressed member cannot
    expand. One pass: each header is parsed once (``np.load`` would parse it again)."""
    return _members(path, read=True)


def check_npz(path: Path) -> None:
    """The member checks of :func:`load_npz`, for a loader that reads the file itself."""
    _members(path, read=False)


def _members(path: Path, *, read: bool) -> dict[str, np.ndarray]:
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive, path.open("rb", buffering=0) as raw:
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                arrays[name] = _member(path, archive, info, name, raw if read else None)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise refuse(path, f"passed its checksum but cannot be read as .npz "
                           f"({type(exc).__name__}: {exc})") from exc
    return arrays


def _member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str,
            raw: Any) -> np.ndarray:
    """One member's array (of shape 0 without ``raw``, the open file to read it from)."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise refuse(path, f"array {name} is compressed; bundles store arrays uncompressed "
                           "(np.savez), so that an array is never larger than its file")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise refuse(path, f"array {name} has .npy format version {version}")
        header = member.tell()
        if dtype.hasobject:
            raise refuse(path, f"array {name} holds Python objects ({dtype}); bundles hold none")
        need = math.prod(shape) * dtype.itemsize
        if header + need != info.file_size:
            raise refuse(path, f"array {name} declares shape {shape} of {dtype} ({need:,} "
                               f"bytes) but its member holds {info.file_size - header:,} bytes")
    array = np.empty(shape if raw is not None else 0, dtype=dtype,
                     order="F" if fortran else "C")
    if raw is not None and need:
        # the data straight from the file, as stored members lie in it: one read, without
        # zipfile's chunked copies and CRC (the manifest's sha256 has covered the file)
        raw.seek(_data_offset(path, raw, info) + header)
        if _read_into(raw, memoryview(array.reshape(-1, order="A")).cast("B")) != need:
            raise refuse(path, f"array {name} is shorter than its header says")
    return array


def _read_into(raw: Any, view: memoryview) -> int:
    """Fill ``view`` from the unbuffered file ``raw`` (one read returns at most ~2 GB);
    the bytes read, fewer at the end of the file."""
    done = 0
    while done < len(view):
        got = raw.readinto(view[done:])
        if not got:
            break
        done += got
    return done


def _data_offset(path: Path, raw: Any, info: zipfile.ZipInfo) -> int:
    """Where the stored member ``info``'s data starts in the file: after its local header
    (fixed fields, then its name and extra field, whose lengths the header gives)."""
    raw.seek(info.header_offset)
    local = raw.read(zipfile.sizeFileHeader)
    if len(local) != zipfile.sizeFileHeader or local[:4] != zipfile.stringFileHeader:
        raise refuse(path, f"member {info.filename} has no local header")
    *_, name_length, extra_length = struct.unpack(zipfile.structFileHeader, local)
    return info.header_offset + zipfile.sizeFileHeader + name_length + extra_length


def read_json(path: Path, *, max_bytes: int | None = None, max_depth: int | None = None) -> Any:
    """The JSON document at ``path``. With ``max_bytes``/``max_depth``, the size and the
    nesting are bounded before parsing (the manifest is read before anything is trusted);
    in any case too deep a document is a :class:`BundleError`, never a ``RecursionError``."""
    return parse_json(path, read_bytes(path, max_bytes), max_depth)


def parse_json(path: Path, data: bytes, max_depth: int | None = None) -> Any:
    """The JSON document ``data`` read from ``path`` (see :func:`read_json`)."""
    if max_depth is not None:
        depth = json_depth(data)
        if depth > max_depth:
            raise refuse(path, f"nests {depth:,} levels deep; at most {max_depth} are allowed")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise refuse(path, f"line {_line_at(data, exc.start)}: not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise refuse(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: "
                           f"{exc.msg})") from exc
    except RecursionError as exc:
        raise refuse(path, "nests too deeply to be read") from exc


def read_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of ``path``, refusing a file larger than ``max_bytes`` before reading it."""
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise refuse(path, f"is {size:,} bytes; at most {max_bytes:,} are allowed")
        return path.read_bytes()
    except OSError as exc:
        raise refuse(path, f"cannot be read ({type(exc).__name__})") from exc


def read_text(path: Path) -> str:
    """UTF-8 text of a bundle file; a decode error names the line, not the content."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(path, f"line {_line_at(data, exc.start)}: not UTF-8") from exc


def _line_at(data: bytes, offset: int) -> int:
    """1-based line of byte ``offset`` of ``data``."""
    return data.count(b"\n", 0, offset) + 1


def json_depth(data: bytes) -> int:
    """Deepest nesting of arrays and objects in the JSON text ``data`` (strings skipped), in
    one vectorized pass: the check must not itself recurse or loop per character."""
    codes = np.frombuffer(_JSON_STRING.sub(b'""', data), dtype=np.uint8)
    step = (np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
            - np.isin(codes, (ord("]"), ord("}"))))
    return int(np.cumsum(step).max(initial=0))


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn any failure to read the bundle file ``path`` (past its checksum) into a
    :class:`BundleError` naming it; bundle errors pass through unchanged."""
    try:
        yield
    except BundleError:
        raise
    except (MarginRankError, OSError, ValueError, KeyError, TypeError, IndexError,
            zipfile.BadZipFile, RecursionError) as exc:
        raise BundleError(f"{path}: passed its checksum but cannot be read "
                          f"({type(exc).__name__}: {exc})") from exc


# -- arrays ---------------------------------------------------------------------------------
def check_dtype(source: str | Path, name: str, array: np.ndarray, dtypes: tuple[str, ...],
                ndim: int = 1) -> None:
    """``array`` has one of ``dtypes`` (native byte order) and ``ndim`` dimensions."""
    if array.dtype not in [np.dtype(d) for d in dtypes] or array.ndim != ndim:
        raise refuse(source, f"{name} is {array.dtype.str} with {array.ndim} dimension(s), "
                             f"expected {' or '.join(dtypes)} with {ndim}")


def check_indptr(source: str | Path, name: str, indptr: np.ndarray, n_rows: int | None,
                 n_data: int) -> None:
    """A CSR offset array: integer, ``n_rows + 1`` long, from 0 up to ``n_data`` (the data
    array's length) without ever decreasing, so every row's slice lies inside the data."""
    check_dtype(source, name, indptr, ("int64",))
    if n_rows is not None and indptr.shape[0] != n_rows + 1:
        raise refuse(source, f"{name} has {indptr.shape[0]:,} entries, expected "
                             f"{n_rows + 1:,} (one per row, plus one)")
    if indptr.shape[0] == 0 or indptr[0] != 0:
        raise refuse(source, f"{name} must start at 0")
    if indptr[-1] != n_data:
        raise refuse(source, f"{name} ends at {int(indptr[-1]):,}, not at the data's length "
                             f"{n_data:,}")
    down = np.flatnonzero(indptr[1:] < indptr[:-1])
    if down.size:
        raise refuse(source, f"{name} decreases at row {int(down[0]):,}")


def check_ids(source: str | Path, name: str, ids: np.ndarray, bound: int) -> None:
    """Every id of ``ids`` indexes an array of ``bound`` rows: 0 <= id < bound."""
    if ids.dtype.kind not in "iu":
        raise refuse(source, f"{name} is {ids.dtype.str}, expected integers")
    bad = np.flatnonzero((ids < 0) | (ids >= bound)) if ids.size else ids[:0]
    if bad.size:
        i = int(bad[0])
        raise refuse(source, f"{name}[{i:,}] is {int(ids[i]):,}, outside [0, {bound:,}) "
                             f"({bad.size:,} entries out of range)")


def check_finite(source: str | Path, name: str, values: np.ndarray, *,
                 allow_nan: bool = False) -> None:
    """No inf (and no NaN unless ``allow_nan``: NaN means unknown where the format says so)."""
    if values.dtype.kind not in "f":
        raise refuse(source, f"{name} is {values.dtype.str}, expected floats")
    bad = np.isinf(values) if allow_nan else ~np.isfinite(values)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        where = at[0] if len(at) == 1 else at
        raise refuse(source, f"{name}{list(where) if isinstance(where, tuple) else [where]} is "
                             f"{values[at]}, not finite ({int(bad.sum()):,} such values)")


def check_increasing(source: str | Path, name: str, values: np.ndarray) -> None:
    """Strictly increasing: the query path binary-searches ``values``."""
    down = np.flatnonzero(values[1:] <= values[:-1])
    if down.size:
        i = int(down[0])
        raise refuse(source, f"{name} is not sorted without repeats at position {i + 1:,} "
                             "(it is binary-searched)")


# -- BM25 -----------------------------------------------------------------------------------
def check_index_arrays(source: str | Path, data: Mapping[str, np.ndarray],
                       n_terms: int) -> tuple[list[str], tuple[str, float | None, float, float]]:
    """The fields and BM25 parameters of an index file (``bm25.npz``), after checking every
    field's arrays against each other and the vocabulary of ``n_terms`` tokens (see
    :func:`check_field`). Returns (fields, (variant, k1, b, epsilon))."""
    for key in ("__fields__", "__params__"):
        if key not in data:
            raise refuse(source, f"missing array {key}")
    fields = [str(f) for f in np.atleast_1d(data["__fields__"])]
    if data["__fields__"].dtype.kind != "U" or len(set(fields)) != len(fields):
        raise refuse(source, "__fields__ must be distinct field names")
    params = [str(p) for p in np.atleast_1d(data["__params__"])]
    if data["__params__"].dtype.kind != "U" or len(params) != 4:
        raise refuse(source, "__params__ must be [variant, k1, b, epsilon]")
    variant, k1_text, b_text, eps_text = params
    if variant not in ("okapi", "lucene"):
        raise refuse(source, f"__params__ variant {variant!r} is not okapi or lucene")
    try:
        k1 = None if k1_text == "None" else float(k1_text)
        b, eps = float(b_text), float(eps_text)
    except ValueError as exc:
        raise refuse(source, f"__params__ {params[1:]} are not numbers") from exc
    if not all(math.isfinite(v) for v in (b, eps, 0.0 if k1 is None else k1)):
        raise refuse(source, f"__params__ {params[1:]} are not finite")
    for field in fields:
        check_field(source, field, data, n_terms)
    return fields, (variant, k1, b, eps)


def check_field(source: str | Path, field: str, data: Mapping[str, np.ndarray],
                n_terms: int) -> None:
    """One field's forward index (``doc_indptr``, ``doc_terms``) and postings
    (``post_indptr``, ``post_docs``, ``post_tf``): dtypes, CSR offsets that fit their data,
    term ids in [0, n_terms), doc ids in [0, n_docs) and ascending within each term (the
    search kernels seek in them), ``idf`` one finite value per term, ``avgdl`` finite."""
    name = {part: f"{field}.{part}" for part in FIELD_DTYPES}
    missing = [n for n in name.values() if n not in data]
    if missing:
        raise refuse(source, f"missing array(s) {missing}")
    a = {part: data[key] for part, key in name.items()}
    for part, dtypes in FIELD_DTYPES.items():
        check_dtype(source, name[part], a[part], dtypes, ndim=0 if part == "avgdl" else 1)
    n_docs = a["doc_indptr"].shape[0] - 1
    check_indptr(source, name["doc_indptr"], a["doc_indptr"], None, a["doc_terms"].shape[0])
    check_ids(source, name["doc_terms"], a["doc_terms"], n_terms)
    check_indptr(source, name["post_indptr"], a["post_indptr"], n_terms, a["post_docs"].shape[0])
    check_ids(source, name["post_docs"], a["post_docs"], n_docs)
    if a["post_tf"].shape != a["post_docs"].shape or (a["post_tf"] < 1).any():
        raise refuse(source, f"{name['post_tf']} must hold one count >= 1 per posting")
    starts = np.zeros(a["post_docs"].shape[0], dtype=bool)
    starts[a["post_indptr"][:-1][a["post_indptr"][:-1] < starts.shape[0]]] = True
    down = np.flatnonzero((a["post_docs"][1:] <= a["post_docs"][:-1]) & ~starts[1:])
    if down.size:
        raise refuse(source, f"{name['post_docs']} is not ascending within its term at "
                             f"posting {int(down[0]) + 1:,}")
    if a["idf"].shape[0] != n_terms:
        raise refuse(source, f"{name['idf']} has {a['idf'].shape[0]:,} values for a vocabulary "
                             f"of {n_terms:,} terms")
    check_finite(source, name["idf"], a["idf"])
    avgdl = float(a["avgdl"])
    if not math.isfinite(avgdl) or avgdl < 0 or (a["doc_terms"].size and avgdl <= 0):
        raise refuse(source, f"{name['avgdl']} is {avgdl}, not a positive average length")


def check_vocabulary(source: str | Path, tokens: object) -> list[str]:
    """A vocabulary file: a JSON list of distinct strings (term id = position)."""
    if not isinstance(tokens, list) or not _all_strings(tokens):
        raise refuse(source, "must be a JSON list of strings")
    if len(set(tokens)) != len(tokens):
        raise refuse(source, "repeats a token, so term ids would shift")
    return tokens


def check_trigram_keys(source: str | Path, arrays: Mapping[str, np.ndarray],
                       indptr: np.ndarray, chars: np.ndarray) -> np.ndarray:
    """``term_chars.npz``'s ``trigram_keys``: int64, one key per character of the vocabulary's
    tokens (``indptr``, ``chars``, which the loader derives from the vocabulary itself),
    sorted within each token, each key's middle code point one of the token's (their sums
    agree per token), so that a stored file cannot give a token trigrams it does not have."""
    if "trigram_keys" not in arrays:
        raise refuse(source, "missing array(s) ['trigram_keys']")
    keys = arrays["trigram_keys"]
    check_dtype(source, "trigram_keys", keys, ("int64",))
    if keys.shape != chars.shape:
        raise refuse(source, f"trigram_keys has {keys.shape[0]:,} keys for the vocabulary's "
                             f"{chars.shape[0]:,} characters")
    if keys.size == 0:
        return keys
    if keys.min() < 0:
        raise refuse(source, f"trigram_keys[{int(np.argmax(keys < 0)):,}] is negative")
    first = np.zeros(keys.shape[0], dtype=bool)
    first[indptr[:-1][indptr[:-1] < keys.shape[0]]] = True
    down = np.flatnonzero((keys[1:] < keys[:-1]) & ~first[1:])
    if down.size:
        raise refuse(source, f"trigram_keys is not sorted within its token at key "
                             f"{int(down[0]) + 1:,}")
    n_tokens = indptr.shape[0] - 1
    token = np.repeat(np.arange(n_tokens), np.diff(indptr))
    wrong = np.flatnonzero(np.bincount(token, weights=(keys >> 21) & 0x1FFFFF, minlength=n_tokens)
                           != np.bincount(token, weights=chars, minlength=n_tokens))
    if wrong.size:
        raise refuse(source, f"trigram_keys of token {int(wrong[0]):,} are not its characters' "
                             "trigrams")
    return keys


def _all_strings(values: list) -> bool:
    """Whether every item is a str: the types collected in C first (a bundle's lists hold
    tens of thousands of strings, read at every start), item by item only if that fails."""
    return set(map(type, values)) <= {str} or all(isinstance(v, str) for v in values)


# -- catalog, model, settings --------------------------------------------------------------
def check_products_json(source: str | Path, meta: object) -> int:
    """``products.json``: lists ``product_id`` (distinct), ``title`` and ``category`` of
    strings, of one length, returned."""
    if not isinstance(meta, dict):
        raise refuse(source, "must be a JSON object")
    lengths = {}
    for key in ("product_id", "title", "category"):
        values = meta.get(key)
        if not isinstance(values, list) or not _all_strings(values):
            raise refuse(source, f"{key} must be a list of strings")
        lengths[key] = len(values)
    if len(set(lengths.values())) != 1:
        raise refuse(source, f"lists of different lengths {lengths}")
    ids = meta["product_id"]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        first = next(p for p in ids if p in seen or seen.add(p))  # type: ignore[func-returns-value]
        raise refuse(source, f"product_id {first!r} appears twice")
    return lengths["product_id"]


def check_products_npz(source: str | Path, arrays: Mapping[str, np.ndarray], n: int,
                       n_terms: int, n_priors: int) -> None:
    """``products.npz``: business terms finite floats (n, n_terms); ``in_stock`` bool (n,);
    priors floats (n, n_priors), NaN = unknown but never inf; raw ``unit_margin`` and
    ``return_rate`` likewise; ``from_prior`` bool (n, n_terms)."""
    shapes = {"terms": ((n, n_terms), "f"), "in_stock": ((n,), "b"),
              "priors": ((n, n_priors), "f"), "unit_margin": ((n,), "f"),
              "return_rate": ((n,), "f"), "from_prior": ((n, n_terms), "b")}
    for name, (shape, kind) in shapes.items():
        if name not in arrays:
            if name in ("terms", "in_stock", "priors"):
                raise refuse(source, f"missing array {name}")
            continue
        array = arrays[name]
        if array.shape != shape or array.dtype.kind != kind:
            raise refuse(source, f"{name} is {array.dtype.str} of shape {array.shape}, expected "
                                 f"{'floats' if kind == 'f' else 'booleans'} of shape {shape} "
                                 f"({n:,} products)")
        if kind == "f":
            check_finite(source, name, array, allow_nan=name != "terms")


def tree_problem(left: np.ndarray, right: np.ndarray) -> str | None:
    """What is wrong with one tree's child lists (-1 at a leaf), or None: every child must
    lie inside the tree, no node be reached twice and the root be no child, so that a walk
    from the root is finite and in bounds. (A message, not an error: the caller knows the
    file and the tree.)"""
    n = left.shape[0]
    if n == 0 or right.shape[0] != n:
        return f"{n} left and {right.shape[0]} right children"
    inner = left >= 0
    if ((right >= 0) != inner).any():
        return "a node with only one child"
    children = np.concatenate([left[inner], right[inner]])
    if children.size and (children.min() < 1 or children.max() >= n):
        return f"a child index outside its {n} nodes"
    if children.size and np.bincount(children).max() > 1:  # (np.unique imports numpy.ma)
        return "a node reached twice (a cycle or a shared node)"
    return None


def number_setting(source: str | Path, settings: Mapping[str, Any], key: str,
                   default: float, *, minimum: float = 0.0) -> float:
    """A numeric bundle setting, finite and above ``minimum``; a string or bool is refused
    by name instead of failing later inside a format string."""
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > minimum):
        raise refuse(source, f"settings.{key} must be a number above {minimum:g}, "
                             f"got {json.dumps(value)[:40]}")
    return float(value)
