"""One query, analyzed once, in the form every stage of a search reads.

:meth:`ranking.features.FeatureSpace.analyze` builds an :class:`AnalyzedQuery` from the query's
text at the start of a search; retrieval reads its exact term ids, the pin lookup its key, the
features everything else. Nothing downstream analyzes the text again, so the stages cannot
disagree about what the query was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def query_key(tokens: Sequence[str]) -> str:
    """The form a query is matched to a pin in: its analyzer tokens joined by spaces, so a pin
    matches however the query is typed (case, width, punctuation, unit spelling)."""
    return " ".join(tokens)


@dataclass(frozen=True, eq=False)
class AnalyzedQuery:
    """A query's text and everything the search derives from it, computed once.

    The arrays are read-only inputs of the kernels; nothing writes to them.
    """

    text: str  # as given: the quantities are read from it (:func:`ranking.units.quantities`)
    tokens: tuple[str, ...]  # the exact analyzer's tokens, in order
    exact: np.ndarray  # int64 term ids of ``tokens`` in the exact vocabulary (-1: unknown)
    stemmed: np.ndarray  # int64 term ids of the stemmed analyzer's tokens (-1: unknown)
    #: (indptr, int32 code points, int64 sorted trigram keys) of ``tokens``, one CSR row each:
    #: what the typo-tolerant and trigram kernels compare against the titles' tokens.
    chars: tuple[np.ndarray, np.ndarray, np.ndarray]
    quantity_values: np.ndarray  # float64, one per quantity in ``text``
    quantity_units: np.ndarray  # int64 index into :data:`ranking.units.UNITS`

    @property
    def key(self) -> str:
        """:func:`query_key` of the tokens: what pins are looked up by."""
        return query_key(self.tokens)
