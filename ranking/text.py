"""Text analysis shared by indexing and querying.

The analyzer's settings are saved in the bundle (``Analyzer.to_dict``) and restored at load, so
an index and the queries run against it can never be tokenized differently.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import asdict, dataclass

import Stemmer

# Word characters, plus fractions and dimension/decimal tokens kept whole: "3/4", "2x4", "1.5".
_TOKEN_RE = re.compile(r"\d+(?:[./x]\d+)+|\w+", re.UNICODE)

#: A short English stopword list: words that carry no product intent.
ENGLISH_STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it of on or the to with without".split()
)


@dataclass(frozen=True)
class Analyzer:
    """NFKC-normalize, lowercase and split text into tokens.

    Numbers and units stay useful: ``"2x4"`` and ``"3/4"`` are kept as single tokens and
    ``"60-watt"`` splits into ``"60"`` and ``"watt"``.
    """

    lowercase: bool = True
    stopwords: bool = False
    #: English Snowball stemming (PyStemmer): "drills" and "drilling" both become "drill".
    stem: bool = False

    def __call__(self, text: str) -> list[str]:
        """Tokens of ``text`` in order; empty for empty or whitespace-only text."""
        if not text:
            return []
        text = unicodedata.normalize("NFKC", text)
        if self.lowercase:
            text = text.lower()
        tokens = _TOKEN_RE.findall(text)
        if self.stopwords:
            tokens = [t for t in tokens if t not in ENGLISH_STOPWORDS]
        if self.stem:
            tokens = _stemmer().stemWords(tokens)
        return tokens

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Analyzer:
        return cls(**data)  # type: ignore[arg-type]


_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    """This thread's English stemmer: a PyStemmer object keeps a word cache and is not
    safe to share between threads, and a search service analyzes queries on many."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer
