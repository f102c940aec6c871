"""Quantities in product text and queries, normalized so that equal measures compare equal.

``"3/4 in."``, ``"0.75 inch"`` and ``3/4"`` all read as 0.75 inches; ``"1-1/2 ft"`` as 18
inches; ``"2x4"`` as the two numbers 2 and 4; ``"5 gal."`` as 5 gallons. Every quantity is a
(value, unit) pair with the value in the unit's base (lengths in inches, volumes in gallons) and
the unit an index into :data:`UNITS`, where 0 (``num``) is a bare number. The feature kernels
compare these arrays: a query's "20v" matches a title's "20-Volt", and a query's "3/4 in"
against a title that only has "1/2 in." is a conflict (same unit, another value).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ranking import bundle, bundle_checks

#: Canonical units; index 0 is a bare number, which matches any unit with the same value.
UNITS = ("num", "in", "gal", "oz", "lb", "volt", "watt", "amp", "sqft", "cuft", "btu", "psi",
         "gpm", "hp", "gauge", "count", "mah", "ah", "lumen", "kelvin", "cm", "degree")
#: Spelling -> (canonical unit, factor to the unit's base).
_ALIASES: dict[str, tuple[str, float]] = {
    **dict.fromkeys(('in', 'inch', 'inches', '"', "''", 'in.'), ("in", 1.0)),
    **dict.fromkeys(("ft", "ft.", "foot", "feet", "'"), ("in", 12.0)),
    **dict.fromkeys(("yd", "yard", "yards"), ("in", 36.0)),
    **dict.fromkeys(("mm", "millimeter", "millimeters"), ("cm", 0.1)),
    **dict.fromkeys(("cm", "centimeter", "centimeters"), ("cm", 1.0)),
    **dict.fromkeys(("m", "meter", "meters"), ("cm", 100.0)),
    **dict.fromkeys(("gal", "gal.", "gallon", "gallons"), ("gal", 1.0)),
    **dict.fromkeys(("qt", "qt.", "quart", "quarts"), ("gal", 0.25)),
    **dict.fromkeys(("pt", "pint", "pints"), ("gal", 0.125)),
    **dict.fromkeys(("oz", "oz.", "ounce", "ounces", "fl oz", "fl. oz."), ("oz", 1.0)),
    **dict.fromkeys(("lb", "lb.", "lbs", "lbs.", "pound", "pounds"), ("lb", 1.0)),
    **dict.fromkeys(("v", "volt", "volts", "vac", "vdc"), ("volt", 1.0)),
    **dict.fromkeys(("w", "watt", "watts"), ("watt", 1.0)),
    **dict.fromkeys(("a", "amp", "amps", "ampere", "amperes"), ("amp", 1.0)),
    **dict.fromkeys(("sq ft", "sq. ft.", "sqft", "square feet", "square foot"), ("sqft", 1.0)),
    **dict.fromkeys(("cu ft", "cu. ft.", "cuft", "cubic feet", "cubic foot"), ("cuft", 1.0)),
    **dict.fromkeys(("btu", "btus"), ("btu", 1.0)),
    **dict.fromkeys(("psi",), ("psi", 1.0)),
    **dict.fromkeys(("gpm",), ("gpm", 1.0)),
    **dict.fromkeys(("hp", "horsepower"), ("hp", 1.0)),
    **dict.fromkeys(("gauge", "ga", "ga."), ("gauge", 1.0)),
    **dict.fromkeys(("pack", "pk", "pc", "pcs", "piece", "pieces", "count", "ct"), ("count", 1.0)),
    **dict.fromkeys(("mah",), ("mah", 1.0)),
    **dict.fromkeys(("ah", "amp hour", "amp-hour"), ("ah", 1.0)),
    **dict.fromkeys(("lumen", "lumens", "lm"), ("lumen", 1.0)),
    **dict.fromkeys(("k", "kelvin"), ("kelvin", 1.0)),
    **dict.fromkeys(("degree", "degrees", "deg", "°"), ("degree", 1.0)),
}
# Longest spellings first, so "sq ft" wins over "ft" and "lbs" over "lb".
_UNIT_PATTERN = "|".join(re.escape(a) for a in sorted(_ALIASES, key=len, reverse=True))
# A number (not inside a word, but "2x4" is two numbers): mixed fraction (1-1/2, 1 1/2),
# fraction, decimal or integer; then an optional unit (after an optional space or hyphen)
# that does not run on into a longer word.
_QUANTITY_RE = re.compile(
    r"(?:(?<![\w.])|(?<=\dx))(\d+[- ]\d+/\d+|\d+/\d+|\d*\.\d+|\d+)"
    rf"(?:\s?-?\s?({_UNIT_PATTERN})(?![a-z0-9]))?"
)
#: Values are compared after rounding to this many significant digits.
SIGNIFICANT_DIGITS = 4


def parse_number(text: str) -> float:
    """``"1-1/2"``, ``"1 1/2"``, ``"3/4"``, ``".75"`` or ``"12"`` as a float."""
    whole, _, fraction = text.replace("-", " ").rpartition(" ")
    if "/" in fraction:
        num, den = fraction.split("/")
        value = float(num) / float(den) if float(den) else float("nan")
        return value + (float(whole) if whole else 0.0)
    return float(text)


def quantities(text: str) -> list[tuple[float, int]]:
    """(value in the unit's base, unit index) of every quantity in ``text``, in order."""
    out = []
    for match in _QUANTITY_RE.finditer(text.lower()):
        value = parse_number(match.group(1))
        unit, factor = _ALIASES.get(match.group(2) or "", ("num", 1.0))
        if np.isfinite(value):
            out.append((_round(value * factor), UNITS.index(unit)))
    return out


def _round(value: float) -> float:
    """Round to :data:`SIGNIFICANT_DIGITS` so 0.75 and 3/4 (or 18 and 1-1/2 ft) are equal."""
    if value == 0:
        return 0.0
    return float(np.round(value, SIGNIFICANT_DIGITS - 1 - int(np.floor(np.log10(abs(value))))))


@dataclass(frozen=True)
class QuantityTable:
    """The quantities of every product, in CSR form: product i owns
    ``values[indptr[i]:indptr[i+1]]`` and ``units`` of the same slice."""

    indptr: np.ndarray  # int64[n_products + 1]
    values: np.ndarray  # float64
    units: np.ndarray  # int64

    @classmethod
    def from_texts(cls, texts: Sequence[str], chunk: int = 50_000) -> QuantityTable:
        """The quantities of every text, as :func:`quantities` reads each: a chunk of texts
        is lowercased and matched as one NUL-separated string (NUL is no word character, no
        space and no digit, so each text's matches are its own) and each distinct (number,
        unit) is converted once."""
        parts = [_bulk_quantities(texts[i:i + chunk]) for i in range(0, len(texts), chunk)]
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        if parts:
            np.cumsum(np.concatenate([p[0] for p in parts]), out=indptr[1:])
        return cls(indptr,
                   np.concatenate([np.zeros(0)] + [p[1] for p in parts]).astype(np.float64),
                   np.concatenate([np.zeros(0, np.int64)] + [p[2] for p in parts]))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"indptr": self.indptr, "values": self.values, "units": self.units,
                "unit_names": np.array(UNITS)}

    @classmethod
    def from_arrays(cls, data: dict[str, np.ndarray], n_products: int,
                    source: str) -> QuantityTable:
        """Rebuild from :meth:`arrays` of the bundle file ``source``; unit indexes are only
        valid with the same unit list, and the CSR arrays must fit ``n_products`` (the feature
        kernel follows ``indptr`` without bounds checks); a file that breaks either is refused
        with a :class:`ranking.bundle.BundleError`."""
        arrays = bundle.required_arrays(data, ("indptr", "values", "units", "unit_names"), source)
        if tuple(str(u) for u in np.atleast_1d(arrays["unit_names"])) != UNITS:
            raise bundle.BundleError(f"{source}: unit_names {arrays['unit_names'].tolist()} "
                                     f"differ from this version's {list(UNITS)}; rebuild the "
                                     "bundle")
        indptr = arrays["indptr"]
        usable = indptr.ndim == 1 and indptr.size > 0 and indptr.dtype.kind in "iu"
        n_values = int(indptr[-1]) if usable else 0
        bundle.check_layout(arrays, {"indptr": ((n_products + 1,), "integer"),
                                     "values": ((n_values,), "float"),
                                     "units": ((n_values,), "integer")}, source)
        if indptr[0] != 0 or np.any(indptr[1:] < indptr[:-1]):
            raise bundle.BundleError(f"{source}: indptr must start at 0 and never decrease; "
                                     "rebuild the bundle")
        bundle_checks.check_finite(source, "values", arrays["values"])
        return cls(indptr, arrays["values"], arrays["units"])


_BULK_QUANTITY_RE = re.compile(_QUANTITY_RE.pattern + "|(\x00)")


def _bulk_quantities(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count per text, values, units) of :func:`quantities` of each text (see
    :meth:`QuantityTable.from_texts`); texts holding a NUL are read one at a time."""
    import pandas as pd  # index builds only

    joined = "\x00".join(texts) + "\x00"
    if joined.count("\x00") != len(texts):
        parsed = [quantities(t) for t in texts]
        flat = [q for p in parsed for q in p]
        return (np.array([len(p) for p in parsed], dtype=np.int64),
                np.array([v for v, _ in flat], dtype=np.float64),
                np.array([u for _, u in flat], dtype=np.int64))
    matches = _BULK_QUANTITY_RE.findall(joined.lower())
    number, unit, sep = (np.array(c, dtype=object) for c in zip(*matches, strict=True))
    is_sep = sep != ""
    doc = (np.cumsum(is_sep) - is_sep)[~is_sep]
    codes, uniques = pd.factorize(number[~is_sep] + "\x01" + unit[~is_sep])
    parsed = [_parsed(*key.split("\x01")) for key in uniques]
    values = np.array([v for v, _ in parsed] + [np.nan], dtype=np.float64)[codes]
    units = np.array([u for _, u in parsed] + [-1], dtype=np.int64)[codes]
    kept = units >= 0  # a value that is not finite (1/0) is no quantity
    return np.bincount(doc[kept], minlength=len(texts)), values[kept], units[kept]


def _parsed(number: str, unit: str) -> tuple[float, int]:
    """(rounded value in the unit's base, unit index) of one match, as :func:`quantities`
    reads it; unit index -1 when the value is not finite."""
    value = parse_number(number)
    name, factor = _ALIASES.get(unit, ("num", 1.0))
    if not np.isfinite(value):
        return float("nan"), -1
    return _round(value * factor), UNITS.index(name)


def query_arrays(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, units) of a query's quantities, as the feature kernel takes them."""
    parsed = quantities(text)
    return (np.array([v for v, _ in parsed], dtype=np.float64),
            np.array([u for _, u in parsed], dtype=np.int64))
