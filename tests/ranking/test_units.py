"""Quantities: the spellings a catalog and a shopper use for one measure compare equal."""

from __future__ import annotations

import pytest

from ranking.bundle import BundleError
from ranking.units import UNITS, QuantityTable, parse_number, quantities


def named(text: str) -> list[tuple[float, str]]:
    return [(value, UNITS[unit]) for value, unit in quantities(text)]


@pytest.mark.parametrize(("text", "value"), [("1-1/2", 1.5), ("1 1/2", 1.5), ("3/4", 0.75),
                                             (".75", 0.75), ("12", 12.0)])
def test_numbers(text: str, value: float) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize("spellings", [
    ("3/4 in.", "0.75 inch", '3/4"', "0.75-in"),
    ("1-1/2 ft", "18 in.", "1.5 feet"),
    ("20V", "20-Volt", "20 volts"),
    ("5 gal.", "5 gallon", "20 qt"),
    ("2.5 sq. ft.", "2.5 sq ft"),
])
def test_spellings_of_one_measure_are_equal(spellings: tuple[str, ...]) -> None:
    parsed = {tuple(named(s)) for s in spellings}
    assert len(parsed) == 1 and len(next(iter(parsed))) == 1, parsed


def test_dimensions_and_words() -> None:
    assert named("2x4 lumber 8 ft") == [(2.0, "num"), (4.0, "num"), (96.0, "in")]
    assert named("24 in. x 36 in.") == [(24.0, "in"), (36.0, "in")]
    assert named("M18 impact driver, model R13") == []  # numbers inside words are not sizes
    assert named("60-watt bulb 4-pack") == [(60.0, "watt"), (4.0, "count")]


def test_table_round_trip() -> None:
    table = QuantityTable.from_texts(["3/4 in. pipe", "", "2x4"])
    assert table.indptr.tolist() == [0, 1, 1, 3]
    again = QuantityTable.from_arrays(table.arrays(), 3, "quantities.npz")
    assert again.values.tolist() == [0.75, 2.0, 4.0] and again.units.tolist() == [1, 0, 0]
    arrays = table.arrays()
    arrays["unit_names"] = arrays["unit_names"][::-1]
    with pytest.raises(BundleError, match="quantities.npz: unit_names"):
        QuantityTable.from_arrays(arrays, 3, "quantities.npz")
    with pytest.raises(BundleError, match=r"quantities.npz: indptr is int64 of shape \(4,\), "
                                          r"expected integer of shape \(5,\)"):
        QuantityTable.from_arrays(table.arrays(), 4, "quantities.npz")
