"""Many texts analyzed at once, to the token what :class:`ranking.text.Analyzer` gives each.

An index build analyzes every product's fields; calling the analyzer once per text costs a
few microseconds of Python each time, which at a million products is most of the build. Here
a chunk of texts is joined with NUL separators and normalized, lowercased and split by one
call of each (C) routine; the matches become tokens by numpy and pandas operations over whole
arrays, and each distinct quantity is spelled once. Joining cannot change a text's tokens:
NUL is a starter that composes with nothing under NFKC, is not a cased letter (so a final
sigma stays final), is neither a word character nor whitespace, so every regex boundary and
lookaround sees it as the text's end or start. A text that itself holds a NUL is analyzed
alone (exactly as before). ``tests/ranking/test_build_parity.py`` holds the two paths equal.

Used only by index builds: pandas is imported inside, not on the serving path.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ranking import text as text_module
from ranking.text import Analyzer
from ranking.vocab import Vocabulary

_SEP = "\x00"
#: The analyzer's regexes with the separator as one more alternative (its own group last).
_BULK_QUANTITY_RE = re.compile(text_module._QUANTITY_RE.pattern + "|(?P<sep>\x00)",
                               text_module._QUANTITY_RE.flags)
_BULK_TOKEN_RE = re.compile("(" + text_module._TOKEN_RE.pattern + ")|(\x00)",
                            text_module._TOKEN_RE.flags)
#: Texts per chunk: bounds the temporary match tuples to some hundred MB at most.
CHUNK = 50_000


@dataclass(frozen=True)
class Analyzed:
    """The tokens of many texts as flat arrays (CSR by text)."""

    tokens: np.ndarray  # object: every text's tokens, concatenated
    is_word: np.ndarray  # bool: the token is a plain word (the stemmer's and stopwords' input)
    indptr: np.ndarray  # int64[n_texts + 1]

    def lists(self) -> list[list[str]]:
        """One token list per text, as the analyzer returns them."""
        tokens = self.tokens.tolist()
        bounds = self.indptr.tolist()
        return [tokens[bounds[i]:bounds[i + 1]] for i in range(len(bounds) - 1)]


def analyze_many(analyzer: Analyzer, texts: Sequence[str], chunk: int = CHUNK) -> Analyzed:
    """Each text's tokens under ``analyzer`` with its stemming left out (``is_word`` marks the
    tokens a stemmer would stem: :func:`stem_tokens`), stopwords already dropped."""
    parts = [_chunk(analyzer, texts[i:i + chunk]) for i in range(0, len(texts), chunk)]
    if not parts:
        return Analyzed(np.zeros(0, dtype=object), np.zeros(0, dtype=bool),
                        np.zeros(1, dtype=np.int64))
    lengths = np.concatenate([np.diff(p.indptr) for p in parts])
    indptr = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return Analyzed(np.concatenate([p.tokens for p in parts]),
                    np.concatenate([p.is_word for p in parts]), indptr)


def forward_ids(analyzer: Analyzer, texts: Sequence[str], vocab: Vocabulary,
                stem_vocab: Vocabulary | None = None, chunk: int = CHUNK
                ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """The forward index of ``texts`` ((int32 term ids, int64 offsets) per text) over
    ``vocab`` under ``analyzer``, and, with ``stem_vocab``, over ``stem_vocab`` under the same
    analyzer with stemming: what ``vocab.add_docs([analyzer(t) for t in texts])`` gives, one
    chunk at a time, so that no more than a chunk's tokens exist as Python strings."""
    ids, stem_ids, lengths = [], [], []
    for i in range(0, len(texts), chunk):
        part = analyze_many(analyzer, texts[i:i + chunk], chunk)
        stemmed = stem_tokens(part) if (analyzer.stem or stem_vocab is not None) else None
        ids.append(vocab.add_array(stemmed if analyzer.stem else part.tokens))
        if stem_vocab is not None:
            stem_ids.append(stem_vocab.add_array(stemmed))
        lengths.append(np.diff(part.indptr))
    indptr = _indptr(lengths, len(texts))
    exact = (_concat(ids), indptr)
    return exact, ((_concat(stem_ids), indptr.copy()) if stem_vocab is not None else None)


def concat_fields(forward: Sequence[tuple[np.ndarray, np.ndarray]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per document, the term ids of every field in turn (the ``all`` field): the forward
    indexes (ids, offsets) of the fields, over the same documents, concatenated doc by doc."""
    lengths = [np.diff(indptr) for _, indptr in forward]
    total = np.sum(lengths, axis=0) if lengths else np.zeros(0, dtype=np.int64)
    indptr = np.zeros(total.shape[0] + 1, dtype=np.int64)
    np.cumsum(total, out=indptr[1:])
    out = np.empty(int(indptr[-1]), dtype=np.int32)
    before = indptr[:-1].copy()  # where each doc's next field starts
    for (ids, field_indptr), n in zip(forward, lengths, strict=True):
        dest = np.repeat(before - field_indptr[:-1], n) + np.arange(ids.shape[0])
        out[dest] = ids
        before += n
    return out, indptr


def _indptr(lengths: list[np.ndarray], n: int) -> np.ndarray:
    indptr = np.zeros(n + 1, dtype=np.int64)
    if lengths:
        np.cumsum(np.concatenate(lengths), out=indptr[1:])
    return indptr


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays).astype(np.int32, copy=False) if arrays else np.zeros(
        0, dtype=np.int32)


def token_counts(analyzer: Analyzer, texts: Sequence[str]) -> np.ndarray:
    """How many tokens ``analyzer`` gives each text (int64)."""
    return np.diff(analyze_many(analyzer, texts).indptr)


def stem_tokens(analyzed: Analyzed) -> np.ndarray:
    """The tokens as the stemming analyzer gives them: plain words stemmed (English
    Snowball), quantity tokens kept. Each distinct word is stemmed once."""
    import pandas as pd

    out = analyzed.tokens.copy()
    words = np.flatnonzero(analyzed.is_word)
    if words.size:
        codes, uniques = pd.factorize(analyzed.tokens[words])
        stems = np.array(text_module._stemmer().stemWords(list(uniques)) + [""], dtype=object)
        out[words] = stems[:-1][codes]
    return out


def _chunk(analyzer: Analyzer, texts: Sequence[str]) -> Analyzed:
    """:func:`analyze_many` of one chunk."""
    n = len(texts)
    joined = _SEP.join(texts) + _SEP
    if joined.count(_SEP) != n:  # a text holds a NUL: analyze one at a time
        return _one_by_one(analyzer, texts)
    joined = unicodedata.normalize("NFKC", joined)
    if analyzer.lowercase:
        joined = joined.lower()
    tokens, is_word, counts = (_quantity_matches if analyzer.units else _word_matches)(joined)
    if analyzer.stopwords:
        doc = np.repeat(np.arange(n), counts)
        stop = np.fromiter((t in text_module.ENGLISH_STOPWORDS for t in tokens), dtype=bool,
                           count=tokens.shape[0])
        keep = ~(is_word & stop)
        tokens, is_word = tokens[keep], is_word[keep]
        counts = np.bincount(doc[keep], minlength=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return Analyzed(tokens, is_word, indptr)


def _word_matches(joined: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens, is_word, tokens per text) of NUL-separated texts by the plain token regex
    (the analyzer's for a text without digits or without ``units``): every token a word."""
    tokens: list[str] = []
    counts: list[int] = []
    n = 0
    for word, sep in _BULK_TOKEN_RE.findall(joined):
        if sep:
            counts.append(n)
            n = 0
        else:
            tokens.append(word)
            n += 1
    return _arrays(tokens, [True] * len(tokens), counts)


def _quantity_matches(joined: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens, is_word, tokens per text) of NUL-separated texts by the quantity regex: a
    word match is one token, a quantity the analyzer's one or three
    (:func:`ranking.text._quantity`, computed once per distinct number and unit). A plain
    loop over the matches: cheaper than array operations on object arrays."""
    tokens: list[str] = []
    flags: list[bool] = []
    counts: list[int] = []
    spelled: dict[tuple[str, str], tuple[list[str], list[bool]]] = {}
    n = 0
    for number, unit, word, sep in _BULK_QUANTITY_RE.findall(joined):
        if word:
            tokens.append(word)
            flags.append(True)
            n += 1
        elif sep:
            counts.append(n)
            n = 0
        else:
            found = spelled.get((number, unit))
            if found is None:
                q = text_module._quantity(number, unit or None)
                found = spelled[(number, unit)] = (q, [False] * len(q))
            tokens += found[0]
            flags += found[1]
            n += len(found[0])
    return _arrays(tokens, flags, counts)


def _arrays(tokens: list[str], flags: list[bool],
            counts: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out = np.empty(len(tokens), dtype=object)
    out[:] = tokens
    return out, np.array(flags, dtype=bool), np.array(counts, dtype=np.int64)


def _one_by_one(analyzer: Analyzer, texts: Sequence[str]) -> Analyzed:
    """The analyzer per text (stemming off, word flags from a second look at each token)."""
    plain = Analyzer(lowercase=analyzer.lowercase, stopwords=analyzer.stopwords, stem=False,
                     units=analyzer.units)
    tokens, is_word, lengths = [], [], []
    for t in texts:
        toks, flags = _tokens_with_flags(plain, t)
        tokens += toks
        is_word += flags
        lengths.append(len(toks))
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return Analyzed(np.array(tokens + [""], dtype=object)[:-1],
                    np.array(is_word, dtype=bool), indptr)


def _tokens_with_flags(analyzer: Analyzer, text: str) -> tuple[list[str], list[bool]]:
    """One text's tokens and whether each is a plain word, by the analyzer's own steps."""
    if not text:
        return [], []
    text = unicodedata.normalize("NFKC", text)
    if analyzer.lowercase:
        text = text.lower()
    if not analyzer.units or not text_module._HAS_DIGIT.search(text):
        words = analyzer._words(text_module._TOKEN_RE.findall(text))
        return words, [True] * len(words)
    tokens: list[str] = []
    flags: list[bool] = []
    words: list[str] = []
    for match in text_module._QUANTITY_RE.finditer(text):
        if match["word"] is not None:
            words.append(match["word"])
            continue
        kept = analyzer._words(words)
        tokens += kept
        flags += [True] * len(kept)
        words = []
        spelled = text_module._quantity(match["number"], match["unit"])
        tokens += spelled
        flags += [False] * len(spelled)
    kept = analyzer._words(words)
    return tokens + kept, flags + [True] * len(kept)
