"""The business terms, each declared once: what it reads, how it is computed, where it is neutral.

Everything else is derived from :data:`TERMS`: the weight-vector order (:data:`TERM_NAMES`),
the weights-file schema and its commented defaults (:mod:`objectives.config`), the catalog
loader's optional columns (:mod:`objectives.catalog`), the scaled term table
(:mod:`objectives.terms`) and every report header that names the terms. Adding a term means
adding one :class:`Term` here; new terms go last, so the vectors of older files keep their order.

This module imports only numpy, so the CLI can name the terms without loading pandas or pydantic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: Weeks of cover credited to a product that has stock but no sales (caps the log ratio).
MAX_WEEKS_OF_COVER = 104.0


@dataclass(frozen=True)
class TermInputs:
    """What a term's raw function may read: the validated catalog (every declared column is
    present, missing values NaN), the products' CLV affinity, and the inventory target."""

    catalog: pd.DataFrame
    clv_affinity: np.ndarray | None
    target_weeks: float

    def column(self, name: str) -> np.ndarray:
        """A catalog column as float64; all NaN (neutral) when the catalog lacks it."""
        if name not in self.catalog.columns:
            return np.full(len(self.catalog), np.nan)
        return self.catalog[name].to_numpy(np.float64)


@dataclass(frozen=True)
class Term:
    """One business term.

    ``columns``: the optional catalog columns it reads, with their allowed (inclusive) range.
    ``raw``: the unscaled value per product, oriented so that larger is better ("+weight = care
    more"); NaN where the inputs are missing, which the scaling turns into 0 (neutral).
    ``zero``: the raw value that maps to 0; None centers at the median.
    ``default_weight``: its weight in the commented default weights file.
    ``doc``: one line for people, used as that file's comment.
    """

    name: str
    columns: dict[str, tuple[float, float]]
    raw: Callable[[TermInputs], np.ndarray]
    zero: float | None
    default_weight: float
    doc: str


def weeks_of_cover(stock: np.ndarray, daily_sales: np.ndarray) -> np.ndarray:
    """Stock over weekly sales; capped for products that have stock but do not sell."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = stock / (7.0 * daily_sales)
    cover = np.where((stock > 0) & (daily_sales <= 0), MAX_WEEKS_OF_COVER, cover)
    cover = np.where((stock <= 0) & np.isfinite(stock) & np.isfinite(daily_sales), 0.0, cover)
    return np.minimum(cover, MAX_WEEKS_OF_COVER)


def _margin(x: TermInputs) -> np.ndarray:
    # Signed log: unit margins are as skewed as prices, and a linear z-score would clip every
    # expensive product to the same value.
    unit_margin = x.column("price") - x.column("cost")
    return np.sign(unit_margin) * np.log1p(np.abs(unit_margin))


def _clv(x: TermInputs) -> np.ndarray:
    if x.clv_affinity is None:
        return np.full(len(x.catalog), np.nan)
    return np.asarray(x.clv_affinity, dtype=np.float64)


def _returns(x: TermInputs) -> np.ndarray:
    return -x.column("return_rate")


def _inventory(x: TermInputs) -> np.ndarray:
    # Log weeks of cover over the target; zero=0.0 below makes the target itself neutral.
    cover = weeks_of_cover(x.column("stock"), x.column("daily_sales"))
    return np.log((cover + 0.5) / (x.target_weeks + 0.5))


def _delivery_speed(x: TermInputs) -> np.ndarray:
    # Fewer days is better; log because a day matters more at 2 days than at 30.
    return -np.log1p(x.column("lead_time_days"))


TERMS: tuple[Term, ...] = (
    Term("margin", {"price": (0.0, np.inf), "cost": (0.0, np.inf)}, _margin, None, 0.3,
         "unit margin (price - cost)"),
    Term("clv", {}, _clv, None, 0.1,
         "how valuable a product's buyers are over their lifetime"),
    Term("returns", {"return_rate": (0.0, 1.0)}, _returns, None, 0.2,
         "pushes down products that are often returned"),
    Term("inventory", {"stock": (0.0, np.inf), "daily_sales": (0.0, np.inf)}, _inventory, 0.0,
         0.1, "pushes overstocked products up and scarce ones down"),
    Term("delivery_speed", {"lead_time_days": (0.0, 365.0)}, _delivery_speed, None, 0.0,
         "pushes up products delivered in fewer days"),
)

#: Order of the business terms in every weight vector and term matrix of the project.
TERM_NAMES: tuple[str, ...] = tuple(term.name for term in TERMS)
#: The optional catalog columns the terms read, with their allowed range, in term order.
TERM_COLUMNS: dict[str, tuple[float, float]] = {
    column: bounds for term in TERMS for column, bounds in term.columns.items()}


def term(name: str) -> Term:
    """The declaration of ``name`` (KeyError for an unknown term)."""
    for declared in TERMS:
        if declared.name == name:
            return declared
    raise KeyError(name)


def contributions_header() -> str:
    """The column names of a result's per-term contributions, for report headers."""
    return ", ".join(("relevance", *TERM_NAMES))


def weights_yaml_lines(indent: str = "  ") -> list[str]:
    """The ``weights:`` block of the default weights file: each term, its default, its doc."""
    return [f"{indent}{f'{t.name}: {t.default_weight:g}':<18}# {t.doc}" for t in TERMS]

