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

#: Canonical quantity units; index 0 is a bare number, which matches any unit with the same value.
UNITS = ("num", "in", "gal", "oz", "lb", "volt", "watt", "amp", "sqft", "cuft", "btu", "psi",
         "gpm", "hp", "gauge", "count", "mah", "ah", "lumen", "kelvin", "cm", "degree")


@dataclass(frozen=True)
class Unit:
    """One unit, declared once for both readers of quantities: the analyzer
    (:mod:`ranking.text`), which writes a quantity's unit as one canonical token, and
    :func:`quantities`, which converts the value into a :data:`UNITS` base.

    The two read a few spellings differently, on purpose and as they always have: the analyzer
    splits "in." and "sq. ft." at the dot, so those spellings are quantity-only; typographic
    primes and quotes are the analyzer's only. ``spellings`` both read; ``token_only`` and
    ``quantity_only`` one of them.
    """

    token: str | None  # the analyzer's canonical token; None: the analyzer reads no unit here
    quantity: str | None  # the :data:`UNITS` name; None: no quantity unit
    factor: float  # value in ``quantity``'s base per one of this unit ("ft": 12 inches)
    spellings: tuple[str, ...] = ()
    token_only: tuple[str, ...] = ()
    quantity_only: tuple[str, ...] = ()


#: Every unit, once (lowercase spellings; NFKC has already turned the double prime into two
#: primes for the analyzer). "ft" is its own token ("8 ft" -> ``8 ft 8ft``) and 12 inches
#: as a quantity ("1-1/2 ft" = "18 in.").
UNIT_TABLE: tuple[Unit, ...] = (
    Unit("in", "in", 1.0, ("in", "inch", "inches", '"', "''"),
         token_only=("\u201d", "\u2032\u2032"), quantity_only=("in.",)),
    Unit("ft", "in", 12.0, ("ft", "feet", "foot", "'"), token_only=("\u2019", "\u2032"),
         quantity_only=("ft.",)),
    Unit("yd", "in", 36.0, ("yd", "yard", "yards"), token_only=("yds",)),
    Unit("mm", "cm", 0.1, ("mm", "millimeter", "millimeters")),
    Unit("cm", "cm", 1.0, ("cm", "centimeter", "centimeters")),
    Unit("m", "cm", 100.0, ("meter", "meters"), token_only=("metre", "metres"),
         quantity_only=("m",)),
    Unit("gal", "gal", 1.0, ("gal", "gallon", "gallons"), token_only=("gals",),
         quantity_only=("gal.",)),
    Unit("qt", "gal", 0.25, ("qt", "quart", "quarts"), token_only=("qts",),
         quantity_only=("qt.",)),
    Unit(None, "gal", 0.125, quantity_only=("pt", "pint", "pints")),
    Unit("oz", "oz", 1.0, ("oz", "ounce", "ounces"), quantity_only=("oz.", "fl oz", "fl. oz.")),
    Unit("lb", "lb", 1.0, ("lb", "lbs", "pound", "pounds"), quantity_only=("lb.", "lbs.")),
    Unit("w", "watt", 1.0, ("w", "watt", "watts")),
    Unit("kw", None, 1.0, token_only=("kw", "kilowatt", "kilowatts")),
    Unit("v", "volt", 1.0, ("v", "volt", "volts"), quantity_only=("vac", "vdc")),
    Unit("amp", "amp", 1.0, ("amp", "amps", "ampere", "amperes"), quantity_only=("a",)),
    Unit("ah", "ah", 1.0, ("ah",), quantity_only=("amp hour", "amp-hour")),
    Unit(None, "mah", 1.0, quantity_only=("mah",)),
    Unit("btu", "btu", 1.0, ("btu", "btus")),
    Unit("psi", "psi", 1.0, ("psi",)),
    Unit("cfm", None, 1.0, token_only=("cfm",)),
    Unit("gpm", "gpm", 1.0, ("gpm",)),
    Unit("hp", "hp", 1.0, ("hp",), quantity_only=("horsepower",)),
    Unit("lm", "lumen", 1.0, ("lm", "lumen", "lumens")),
    Unit("k", "kelvin", 1.0, ("k", "kelvin")),
    Unit("gauge", "gauge", 1.0, ("gauge", "ga"), quantity_only=("ga.",)),
    Unit("pack", "count", 1.0, ("pack", "pk"), token_only=("packs",),
         quantity_only=("count", "ct")),
    Unit("pc", "count", 1.0, ("pc", "pcs", "piece", "pieces")),
    Unit(None, "sqft", 1.0, quantity_only=("sq ft", "sq. ft.", "sqft", "square feet",
                                           "square foot")),
    Unit(None, "cuft", 1.0, quantity_only=("cu ft", "cu. ft.", "cuft", "cubic feet",
                                           "cubic foot")),
    Unit(None, "degree", 1.0, quantity_only=("degree", "degrees", "deg", "\u00b0")),
)


def token_spellings() -> dict[str, tuple[str, ...]]:
    """Analyzer token -> the spellings that mean it after a number (:mod:`ranking.text`)."""
    return {u.token: (*u.spellings, *u.token_only) for u in UNIT_TABLE if u.token is not None}


#: Spelling -> (quantity unit, factor to the unit's base).
_ALIASES: dict[str, tuple[str, float]] = {
    s: (u.quantity, u.factor) for u in UNIT_TABLE if u.quantity is not None
    for s in (*u.spellings, *u.quantity_only)}
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
