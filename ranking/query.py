"""One query, analyzed once, in the form every stage of a search reads.

:meth:`ranking.features.FeatureSpace.analyze` builds an :class:`AnalyzedQuery` from the query's
text at the start of a search; retrieval reads its exact term ids, the pin lookup its key, the
features everything else. Nothing downstream analyzes the text again, so the stages cannot
disagree about what the query was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

import numpy as np


def query_key(tokens: Sequence[str]) -> str:
    """The form a query is matched to a pin in: its analyzer tokens joined by spaces, so a pin
    matches however the query is typed (case, width, punctuation, unit spelling)."""
    return " ".join(tokens)


def query_chars(tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(int64 indptr, int32 code points) of ``tokens``, one CSR row per token; the kernels
    derive the trigram keys (:func:`ranking._feature_kernels.trigram_keys`) themselves."""
    indptr = np.fromiter(accumulate(map(len, tokens), initial=0), dtype=np.int64,
                         count=len(tokens) + 1)
    return indptr, np.frombuffer("".join(tokens).encode("utf-32-le"), dtype=np.int32)


@dataclass(frozen=True, eq=False)
class AnalyzedQuery:
    """A query's text and everything the search derives from it, computed once.

    The arrays are read-only inputs of the kernels; nothing writes to them.
    """

    text: str  # as given: the quantities are read from it (:func:`ranking.units.quantities`)
    tokens: tuple[str, ...]  # the exact analyzer's tokens, in order
    exact: np.ndarray  # int64 term ids of ``tokens`` in the exact vocabulary (-1: unknown)
    stemmed: np.ndarray  # int64 term ids of the stemmed analyzer's tokens (-1: unknown)
    #: (int64 indptr, int32 code points) of ``tokens``, one CSR row each (:func:`query_chars`):
    #: what the typo-tolerant and trigram kernels compare against the titles' tokens.
    chars: tuple[np.ndarray, np.ndarray]
    quantity_values: np.ndarray  # float64, one per quantity in ``text``
    quantity_units: np.ndarray  # int64 index into :data:`ranking.units.UNITS`

    @property
    def key(self) -> str:
        """:func:`query_key` of the tokens: what pins are looked up by."""
        return query_key(self.tokens)
