"""The quantities of many product texts at once, to the value what :func:`ranking.units.quantities`
reads from each.

An index build reads the quantities of every product; most of a catalog's text holds none
and most of what does repeats ("3/4 in.", "20-volt"). A chunk of texts is lowercased as one
NUL-joined string, cut into segments by :func:`ranking._bulk_kernels.cut_segments` at
whitespace that no quantity match can cross (the regex crosses a space only within a few
characters after a digit, :data:`LOOKBACK`), and the quantity regex runs once per distinct
segment of the whole call that is not all letters; each distinct (number, unit) is converted
once. ``tests/ranking/test_build_parity.py`` holds the
result equal to :func:`ranking.units.quantities` text by text.

Used only by index builds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ranking import _bulk_kernels as kernels
from ranking import units
from ranking.bulk_text import SegmentCache, joined_code_points
from ranking.units import QuantityTable

#: The quantity regex as :data:`LOOKBACK` was derived from (a number ending in a digit, at most
#: ``\s?-?\s?``, then a unit); should it change, :data:`SEGMENTS_SOUND` is False and texts are
#: read by :meth:`ranking.units.QuantityTable.from_texts` until the bound is checked again.
_PROVEN = (r"(?:(?<![\w.])|(?<=\dx))(\d+[- ]\d+/\d+|\d+/\d+|\d*\.\d+|\d+)"
           r"(?:\s?-?\s?({UNIT})(?![a-z0-9]))?")
SEGMENTS_SOUND = units._QUANTITY_RE.pattern == _PROVEN.replace("{UNIT}", units._UNIT_PATTERN)
#: How far after a digit a quantity match can still cross a space: the number's own space
#: ("1 1/2") right after a digit, at most three characters of ``\s?-?\s?``, then a unit whose
#: spelling may hold spaces ("square feet"); two more for safety.
LOOKBACK = 4 + max((i for a in units._ALIASES for i, ch in enumerate(a) if ch.isspace()),
                   default=0) + 2
CHUNK = 50_000


def _prefixes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What comes before each space of a unit spelling ("sq" of "sq ft", "fl." of "fl. oz."),
    as (code points, lengths), and a flag per ASCII character that begins a unit spelling
    (lowercase: the text is lowercased first), for :func:`ranking._bulk_kernels.cut_segments`.
    A spelling outside ASCII only matches text outside ASCII, which the kernel already
    treats as able to continue a match."""
    found = sorted({a[:i] for a in units._ALIASES for i, ch in enumerate(a)
                    if ch == " " and a.isascii()})
    codes = np.zeros((len(found), max(map(len, found), default=1)), dtype=np.uint32)
    for k, prefix in enumerate(found):
        codes[k, :len(prefix)] = [ord(c) for c in prefix]
    starts_unit = np.zeros(129, dtype=np.int64)
    for alias in units._ALIASES:
        if alias and ord(alias[0]) < 128:
            starts_unit[ord(alias[0].lower())] = starts_unit[ord(alias[0])] = 1
    return codes, np.array([len(p) for p in found], dtype=np.int64), starts_unit


#: :func:`_prefixes`.
PREFIXES = _prefixes()


def quantity_table(texts: Sequence[str], chunk: int = CHUNK) -> QuantityTable:
    """:class:`ranking.units.QuantityTable` of ``texts`` (each text's quantities in order).
    The distinct segments are kept for the whole call (:class:`ranking.bulk_text.SegmentCache`):
    the regex reads a segment the first time it occurs, in letters only never."""
    if not SEGMENTS_SOUND:
        return QuantityTable.from_texts(texts)
    parsed: dict[tuple[str, str], tuple[float, int]] = {}
    cache = SegmentCache()
    cache.payload = (np.zeros(0, np.float64), np.zeros(0, np.int64))
    counts, values, unit_ids = [], [], []
    for i in range(0, len(texts), chunk):
        part = texts[i:i + chunk]
        cps = joined_code_points(part, lowercase=True, normalize=False)
        if cps is None:  # a text holds a NUL: one text at a time
            table = QuantityTable.from_texts(part)
            counts.append(np.diff(table.indptr))
            values.append(table.values)
            unit_ids.append(table.units)
            continue
        starts, ends, owner, digit = kernels.cut_segments(cps, kernels.NEVER_CONSUMED,
                                                          LOOKBACK, *PREFIXES)
        keep = np.flatnonzero(digit)  # a quantity needs a digit: the other segments have none
        starts, ends, owner = starts[keep], ends[keep], owner[keep]
        seg_ids, new = cache.ids(cps, starts, ends)
        lengths: list[int] = []
        flat_values: list[float] = []
        flat_units: list[int] = []
        for segment in new:
            n = 0
            if not segment.isalpha():
                for key in units._QUANTITY_RE.findall(segment):
                    found = parsed.get(key)
                    if found is None:
                        found = parsed[key] = units._parsed(*key)
                    if found[1] >= 0:  # a value that is not finite (1/0) is no quantity
                        flat_values.append(found[0])
                        flat_units.append(found[1])
                        n += 1
            lengths.append(n)
        cache.extend(lengths, flat_values, flat_units)
        order = np.arange(cache.payload[0].shape[0], dtype=np.int32)
        positions, _, per_text = kernels.gather_ids(seg_ids, owner, len(part), cache.indptr,
                                                    order, order)
        counts.append(per_text)
        values.append(cache.payload[0][positions])
        unit_ids.append(cache.payload[1][positions])
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    if counts:
        np.cumsum(np.concatenate(counts), out=indptr[1:])
    return QuantityTable(indptr, np.concatenate([np.zeros(0), *values]).astype(np.float64),
                         np.concatenate([np.zeros(0, np.int64), *unit_ids]))
