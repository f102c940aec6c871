"""Text analysis shared by indexing and querying.

The analyzer's settings are saved in the bundle (``Analyzer.to_dict``) and restored at load, so
an index and the queries run against it can never be tokenized differently.

Product search lives on quantities, and shoppers spell them every way: "3/4 in.", '3/4"',
"3/4-inch", "60-watt", "60W". With ``units`` on, a number followed by a unit (attached, after a
space or after a hyphen) gives three tokens: the number, the unit in one canonical spelling, and
the two joined, so "60-Watt" and "60w" both give ``60 w 60w`` and '3/4"' and "3/4 inches" both
give ``3/4 in 3/4in``. The joined token is what makes "60 watt" rank a 60-watt bulb above a
40-watt bulb that merely mentions 60 somewhere; the separate tokens keep partial queries ("60",
"watt") matching. Numbers keep their written form ("3/4" and "0.75" stay different tokens:
equating values is the job of :mod:`ranking.units`, not of the tokenizer); only the spelling of
the number is made uniform: "1 1/2" -> "1-1/2", "2 x 4" -> "2x4", ".5" -> "0.5". A word is a unit
only right after a number, so "in" in "drill in case" stays a plain word (and a stopword).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import asdict, dataclass, fields

import Stemmer

from clv.errors import AnalyzerError
from ranking.units import token_spellings

# Word characters, plus fractions and dimension/decimal tokens kept whole: "3/4", "2x4", "1.5".
_TOKEN_RE = re.compile(r"\d+(?:[./x]\d+)+|\w+", re.UNICODE)

#: Canonical unit token -> the spellings that mean it after a number, from the one unit table
#: (:data:`ranking.units.UNIT_TABLE`, which also holds each unit's quantity conversion).
UNIT_SPELLINGS: dict[str, tuple[str, ...]] = token_spellings()
_CANONICAL_UNIT = {s: unit for unit, spellings in UNIT_SPELLINGS.items() for s in spellings}

_HAS_DIGIT = re.compile(r"\d")
# A number: integer, decimal or fraction ("3/4", "1.5"), mixed number ("1-1/2", "1 1/2"),
# dimensions ("2x4", "2 x 4 x 8"), or a bare decimal (".75").
_NUMBER = (r"(?:\d+(?:[ -]\d+/\d+)?(?:[./]\d+)*(?:[ \t]*[x\u00d7][ \t]*\d+(?:[./]\d+)*)*"
           r"|(?<![\w.])\.\d+)")
_UNIT = "|".join(re.escape(s) for s in sorted(_CANONICAL_UNIT, key=len, reverse=True))
# A quantity is a number, then optionally a unit; either must end the word, so "20vmax" and
# "1t5" stay single words as before.
_QUANTITY_RE = re.compile(
    rf"(?P<number>{_NUMBER})(?:[ \t]*-?[ \t]*(?P<unit>{_UNIT})(?!\w)|(?!\w))|(?P<word>\w+)",
    re.UNICODE | re.IGNORECASE,
)

#: A short English stopword list: words that carry no product intent.
ENGLISH_STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it of on or the to with without".split()
)


@dataclass(frozen=True)
class Analyzer:
    """NFKC-normalize, lowercase and split text into tokens.

    ``"2x4"`` and ``"3/4"`` are kept as single tokens; with ``units`` (see the module
    docstring) quantities also give a canonical unit and a joined number-unit token.
    """

    lowercase: bool = True
    stopwords: bool = False
    #: English Snowball stemming (PyStemmer): "drills" and "drilling" both become "drill".
    stem: bool = False
    #: Quantities as number, canonical unit and joined tokens ("60-watt" -> 60 w 60w).
    units: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            if not isinstance(getattr(self, f.name), bool):
                raise AnalyzerError(f"analyzer setting '{f.name}' must be true or false, "
                                    f"got {getattr(self, f.name)!r}")

    def __call__(self, text: str) -> list[str]:
        """Tokens of ``text`` in order; empty for empty or whitespace-only text."""
        tokens: list[str] = []
        for words, quantity in self._runs(text):
            tokens += self._words(words)
            tokens += quantity
        return tokens

    def with_stems(self, text: str) -> tuple[list[str], list[str]]:
        """(``self(text)``, what this analyzer with ``stem`` on gives) in one pass over the
        text: the stemmed tokens are the same tokens with each plain word stemmed (a search
        needs both, and the pass costs more than the stemming)."""
        tokens: list[str] = []
        stemmed: list[str] = []
        for words, quantity in self._runs(text):
            words = self._words(words)
            tokens += words
            stemmed += words if self.stem or not words else _stemmer().stemWords(words)
            tokens += quantity
            stemmed += quantity
        return tokens, stemmed

    def _runs(self, text: str) -> list[tuple[list[str], list[str]]]:
        """``text`` as (run of plain words, the tokens of the quantity after it) pairs, in
        order: the words are filtered and stemmed together (:meth:`_words`), the quantities
        never."""
        if not text:
            return []
        text = unicodedata.normalize("NFKC", text)
        if self.lowercase:
            text = text.lower()
        if not self.units or not _HAS_DIGIT.search(text):  # no digit: no quantity either
            return [(_TOKEN_RE.findall(text), [])]
        runs: list[tuple[list[str], list[str]]] = []
        words: list[str] = []
        for match in _QUANTITY_RE.finditer(text):
            if match["word"] is not None:
                words.append(match["word"])
                continue
            runs.append((words, _quantity(match["number"], match["unit"])))
            words = []
        runs.append((words, []))
        return runs

    def _words(self, words: list[str]) -> list[str]:
        """Plain words after the optional stopword filter and stemmer (quantities skip both:
        the "in" of "3/4 in" is a unit, not a stopword)."""
        if self.stopwords:
            words = [t for t in words if t not in ENGLISH_STOPWORDS]
        if self.stem and words:
            words = _stemmer().stemWords(words)
        return words

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Analyzer:
        """Settings saved by :meth:`to_dict`. A setting the data lacks takes the behaviour from
        before it existed (``units`` off), so an older bundle keeps tokenizing as it was built."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AnalyzerError(f"unknown analyzer settings {unknown}; known: {sorted(known)}")
        return cls(**{"units": False, **data})  # type: ignore[arg-type]


def _quantity(number: str, unit: str | None) -> list[str]:
    """Tokens of one quantity: the number in a uniform spelling, then, with a unit, the
    canonical unit and the two joined."""
    number = re.sub(r"[ \t]*[x\u00d7][ \t]*", "x", number)
    number = re.sub(r"(\d)[ ](\d+/)", r"\1-\2", number)
    if number.startswith("."):
        number = "0" + number
    if unit is None:
        return [number]
    canonical = _CANONICAL_UNIT[unit.lower()]
    return [number, canonical, number + canonical]


_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    """This thread's English stemmer: a PyStemmer object keeps a word cache and is not
    safe to share between threads, and a search service analyzes queries on many."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer
