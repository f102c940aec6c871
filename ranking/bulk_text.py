"""Many texts analyzed at once, to the token what :class:`ranking.text.Analyzer` gives each.

An index build analyzes every product's fields; calling the analyzer once per text costs a
few microseconds of Python each time, which at a million products is most of the build. Here
a chunk of texts is joined with NUL separators, normalized and lowercased by one C call each,
and cut by a Numba kernel into *segments* at characters no match of the analyzer's regexes can
cross (:func:`ranking._bulk_kernels.split_segments`: a segment is mostly one word, or a
quantity such as "3/4 in." with its spaces). The kernel numbers the distinct segments, Python
analyzes each distinct segment once, with the analyzer's own regexes, for the whole build, and
the kernel spreads the segments' term ids back over the texts. Joining cannot change a text's
tokens: NUL is a starter that composes with nothing under NFKC, is not a cased letter (so a
final sigma stays final), is neither a word character nor whitespace, so every regex boundary
and lookaround sees it as the text's end or start; the same holds at every segment end. A
text that itself holds a NUL is analyzed alone. ``tests/ranking/test_build_parity.py`` holds
the two paths equal (Home Depot digests, adversarial and random texts).

Used only by index builds: pandas is imported inside, not on the serving path.
"""

from __future__ import annotations

import gc
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ranking import _bulk_kernels as kernels
from ranking import text as text_module
from ranking.text import Analyzer
from ranking.vocab import Vocabulary

_SEP = "\x00"
#: The analyzer's regexes as :func:`ranking._bulk_kernels.split_segments` was proven against
#: (its segment rule reads them: which characters a match can consume, and that a space is
#: consumed only after a digit, a space, an x or a hyphen). Should they change, or a unit be
#: spelled with a space, :data:`SEGMENTS_SOUND` is False and every text is analyzed alone
#: (correct, only slow) until the rule is checked again; a test asserts it is True.
_PROVEN_NUMBER = (r"(?:\d+(?:[ -]\d+/\d+)?(?:[./]\d+)*(?:[ \t]*[x\u00d7][ \t]*\d+(?:[./]\d+)*)*"
                  r"|(?<![\w.])\.\d+)")
_PROVEN_QUANTITY = (r"(?P<number>{NUMBER})(?:[ \t]*-?[ \t]*(?P<unit>{UNIT})(?!\w)|(?!\w))"
                    r"|(?P<word>\w+)")
SEGMENTS_SOUND = (
    text_module._NUMBER == _PROVEN_NUMBER
    and text_module._QUANTITY_RE.pattern == _PROVEN_QUANTITY.replace(
        "{NUMBER}", _PROVEN_NUMBER).replace("{UNIT}", text_module._UNIT)
    and text_module._TOKEN_RE.pattern == r"\d+(?:[./x]\d+)+|\w+"
    and all(not c.isspace() and (ord(c) >= 128 or not kernels.NEVER_CONSUMED[ord(c)])
            for spelling in text_module._CANONICAL_UNIT for c in spelling))
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


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector for an index build: the build makes a few hundred
    thousand short-lived lists and tuples (one per new segment and token), and each
    collection they set off walks every tracked object of the process, the catalog
    included (a fifth of the analysis's CPU at 250k products). Reference counting still
    frees them; the build makes no cycles to wait for. The collector's state is restored."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class SegmentCache:
    """The distinct segments of one index build under one analyzer, kept from chunk to
    chunk and field to field, with what each was analyzed to: a segment is looked up by a
    kernel (:func:`ranking._bulk_kernels.distinct_into`) and analyzed in Python only the
    first time the build meets it, so Python's work grows with the catalog's distinct
    segments, not with its chunks. ``payload`` holds, per segment id, its exact and stemmed
    term ids (CSR), or, for :mod:`ranking.bulk_units`, its quantities."""

    def __init__(self) -> None:
        self.table = np.full(1 << 12, -1, dtype=np.int64)
        self.hashes = np.empty(1 << 10, dtype=np.uint64)
        self.chars = np.empty(1 << 14, dtype=np.uint32)
        self.at = np.zeros((1 << 10) + 1, dtype=np.int64)
        self.n = 0
        self.indptr = np.zeros(1, dtype=np.int64)
        self.payload: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int32),
                                                       np.zeros(0, np.int32))

    def ids(self, cps: np.ndarray, starts: np.ndarray, ends: np.ndarray
            ) -> tuple[np.ndarray, list[str]]:
        """Each segment's id, and the text of the segments new to the cache, in id order."""
        known = self.n
        (ids, self.n, self.table, self.hashes, self.chars,
         self.at) = kernels.distinct_into(cps, starts, ends, self.table, self.hashes,
                                          self.chars, self.at, self.n)
        base = int(self.at[known])
        text = self.chars[base:int(self.at[self.n])].tobytes().decode("utf-32-le",
                                                                      "surrogatepass")
        bounds = (self.at[known:self.n + 1] - base).tolist()
        return ids, [text[bounds[k]:bounds[k + 1]] for k in range(len(bounds) - 1)]

    def extend(self, lengths: list[int], *columns: list) -> None:
        """Append the new segments' payload rows (``lengths`` values each, ``columns`` flat)."""
        grown = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=grown[1:])
        self.indptr = np.concatenate([self.indptr, self.indptr[-1] + grown[1:]])
        self.payload = tuple(np.concatenate([old, np.asarray(new, dtype=old.dtype)])
                             for old, new in zip(self.payload, columns, strict=True))


def forward_ids(analyzer: Analyzer, texts: Sequence[str], vocab: Vocabulary,
                stem_vocab: Vocabulary | None = None, chunk: int = CHUNK,
                cache: SegmentCache | None = None
                ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """The forward index of ``texts`` ((int32 term ids, int64 offsets) per text) over
    ``vocab`` under ``analyzer``, and, with ``stem_vocab``, over ``stem_vocab`` under the same
    analyzer with stemming: what ``vocab.add_docs([analyzer(t) for t in texts])`` gives.

    A chunk of texts is cut into segments (:func:`joined_code_points`,
    :func:`ranking._bulk_kernels.cut_segments`); each distinct segment is analyzed once and
    its tokens given ids (new tokens in first-seen order: a token first occurs in the first
    occurrence of some segment, and new segments are numbered in the order they first
    occur), then the ids are spread over the texts by a kernel. ``cache`` carries the
    analyzed segments from one call to the next: it belongs to one (``analyzer``, ``vocab``,
    ``stem_vocab``)."""
    forward, stems, _ = _forward(analyzer, texts, vocab, stem_vocab, chunk, cache, False)
    return forward, stems


def title_forward_ids(analyzer: Analyzer, titles: Sequence[str], vocab: Vocabulary,
                      stem_vocab: Vocabulary, cache: SegmentCache, chunk: int = CHUNK
                      ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray],
                                 np.ndarray]:
    """:func:`forward_ids` of the titles, and each title's head length in tokens
    (:func:`ranking.title_text.head_lengths` before its last clipping) from the same
    segments: the tokens of the segments that end before the title's
    :data:`ranking.title_text.HEAD_CUT` (:func:`ranking._bulk_kernels.head_token_counts`).
    Where that cannot be read off the segments (a title outside ASCII, a segment across the
    cut, a NUL), the head is cut by the regex and analyzed as
    :func:`ranking.title_text.head_lengths` does."""
    return _forward(analyzer, titles, vocab, stem_vocab, chunk, cache, True)


def _forward(analyzer: Analyzer, texts: Sequence[str], vocab: Vocabulary,
             stem_vocab: Vocabulary | None, chunk: int, cache: SegmentCache | None,
             heads: bool) -> tuple:
    cache = SegmentCache() if cache is None else cache
    plain = _plain(analyzer)
    stemmer = text_module._stemmer()
    ids, stem_ids, lengths, head_counts = [], [], [], []
    for i in range(0, len(texts), chunk):
        part = texts[i:i + chunk]
        cps = (joined_code_points(part, analyzer.lowercase, normalize=True) if SEGMENTS_SOUND
               else None)
        if cps is None:  # a text holds a NUL (or the rule is unproven): one text at a time
            exact, stems, counts = _forward_one_by_one(plain, analyzer, part, vocab, stem_vocab,
                                                       stemmer)
            head_counts.append(np.full(len(part), -1, dtype=np.int64))
        else:
            starts, ends, owner, _ = kernels.cut_segments(
                cps, kernels.NEVER_CONSUMED, kernels.ANALYZER_RULE, *UNIT_CODES)
            seg_ids, new = cache.ids(cps, starts, ends)
            sizes, flat, flat_stem = _new_segment_ids(plain, analyzer, new, vocab, stem_vocab,
                                                      stemmer)
            cache.extend(sizes, flat, flat_stem)
            exact, stems, counts = kernels.gather_ids(seg_ids, owner, len(part), cache.indptr,
                                                      *cache.payload)
            if heads:
                text_starts, cuts = kernels.head_cuts(cps, len(part))
                if not "".join(part).isascii():  # the regex reads the raw text outside ASCII
                    cuts[~np.fromiter(map(str.isascii, part), bool, len(part))] = -2
                head_counts.append(kernels.head_token_counts(
                    starts, ends, owner, seg_ids, cache.indptr, text_starts, cuts))
        ids.append(exact)
        stem_ids.append(stems)
        lengths.append(counts)
    indptr = _indptr(lengths, len(texts))
    out = (_concat(ids), indptr)
    stem_out = (_concat(stem_ids), indptr.copy()) if stem_vocab is not None else None
    if not heads:
        return out, stem_out, None
    return out, stem_out, _heads_by_regex(
        analyzer, texts, np.concatenate(head_counts) if head_counts else np.zeros(0, np.int64))


def _heads_by_regex(analyzer: Analyzer, titles: Sequence[str], counts: np.ndarray
                    ) -> np.ndarray:
    """``counts`` with each -1 replaced by the token count of the title's head cut by
    :data:`ranking.title_text.HEAD_CUT` (-1 for a title without a cut: all of it)."""
    from ranking.title_text import HEAD_CUT

    rows = np.flatnonzero(counts < 0)
    heads = [HEAD_CUT.split(titles[r], maxsplit=1)[0] for r in rows.tolist()]
    cut = [len(head) < len(titles[r]) for head, r in zip(heads, rows.tolist(), strict=True)]
    counts = counts.copy()
    counts[rows] = -1
    if any(cut):
        at = rows[np.array(cut, dtype=bool)]
        counts[at] = token_counts(analyzer, [h for h, c in zip(heads, cut, strict=True) if c])
    return counts


def _new_segment_ids(plain: Analyzer, analyzer: Analyzer, segments: list[str],
                     vocab: Vocabulary, stem_vocab: Vocabulary | None, stemmer: object
                     ) -> tuple[list[int], list[int], list[int]]:
    """Token count, exact ids and stemmed ids (flat) of ``segments`` in order, new tokens
    added to the vocabularies segment by segment, token by token. A segment of letters only
    is one word (or a stopword, none); the others are read by the analyzer's regex in one
    pass over them all, NUL-joined (:func:`_joined_tokens`), and every word is stemmed in
    one call."""
    stop = text_module.ENGLISH_STOPWORDS if analyzer.stopwords else frozenset()
    others = [k for k, segment in enumerate(segments) if not segment.isalpha()]
    found = dict(zip(others, _joined_tokens(plain, [segments[k] for k in others]),
                     strict=True))
    tokens: list[str] = []
    words: list[bool] = []
    sizes: list[int] = []
    for k, segment in enumerate(segments):
        if k in found:
            toks, flags = found[k]
            tokens += toks
            words += flags
            sizes.append(len(toks))
        elif segment in stop:
            sizes.append(0)
        else:
            tokens.append(segment)
            words.append(True)
            sizes.append(1)
    stems = tokens
    if analyzer.stem or stem_vocab is not None:
        stemmed = iter(stemmer.stemWords([t for t, w in zip(tokens, words, strict=True) if w]))
        stems = [next(stemmed) if w else t for t, w in zip(tokens, words, strict=True)]
    add = vocab.add
    exact = [add(t) for t in (stems if analyzer.stem else tokens)]
    if stem_vocab is None:
        return sizes, exact, exact
    add = stem_vocab.add
    return sizes, exact, [add(t) for t in stems]


def _joined_tokens(plain: Analyzer, segments: list[str]) -> list[tuple[list[str], list[bool]]]:
    """:func:`_segment_tokens` of each segment, by one pass of the regex over the segments
    joined by NUL (a NUL is no character a match consumes or a lookaround tells from a
    text's end, as in the texts themselves)."""
    if not segments:
        return []
    joined = _SEP.join(segments)
    ends = np.cumsum([len(s) + 1 for s in segments]).tolist()
    out: list[tuple[list[str], list[bool]]] = [([], []) for _ in segments]
    k = 0
    if not plain.units:
        for match in text_module._TOKEN_RE.finditer(joined):
            while match.start() >= ends[k]:
                k += 1
            out[k][0].append(match.group())
        for toks, flags in out:
            toks[:] = plain._words(toks)
            flags += [True] * len(toks)
        return out
    words: list[str] = []
    for match in text_module._QUANTITY_RE.finditer(joined):
        if match.start() >= ends[k]:
            _close(plain, out[k], words)
            words = []
            while match.start() >= ends[k]:
                k += 1
        word = match["word"]
        if word is not None:
            words.append(word)
            continue
        _close(plain, out[k], words)
        words = []
        spelled = _spelled(match["number"], match["unit"])
        out[k][0].extend(spelled)
        out[k][1].extend([False] * len(spelled))
    _close(plain, out[k], words)
    return out


def _close(plain: Analyzer, into: tuple[list[str], list[bool]], words: list[str]) -> None:
    """Append a run of plain words (stopwords dropped by ``plain``) to a segment's tokens."""
    if words:
        kept = plain._words(words)
        into[0].extend(kept)
        into[1].extend([True] * len(kept))


def _plain(analyzer: Analyzer) -> Analyzer:
    """``analyzer`` without its stemming: segments are stemmed word by word afterwards."""
    return Analyzer(lowercase=analyzer.lowercase, stopwords=analyzer.stopwords, stem=False,
                    units=analyzer.units)


def _ids_of(tokens: list[str], is_word: list[bool], analyzer: Analyzer, vocab: Vocabulary,
            stem_vocab: Vocabulary | None, stemmer: object
            ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    stems = tokens
    if analyzer.stem or stem_vocab is not None:
        stems = stemmer.stemWords(tokens)  # type: ignore[attr-defined]
        stems = [s if w else t for s, t, w in zip(stems, tokens, is_word, strict=True)]
    exact = tuple(vocab.add(t) for t in (stems if analyzer.stem else tokens))
    if stem_vocab is None:
        return exact, exact
    return exact, tuple(stem_vocab.add(t) for t in stems)


def _forward_one_by_one(plain: Analyzer, analyzer: Analyzer, texts: Sequence[str],
                        vocab: Vocabulary, stem_vocab: Vocabulary | None, stemmer: object
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`forward_ids` of a chunk in which a text holds a NUL, one text at a time."""
    exact: list[int] = []
    stems: list[int] = []
    counts = []
    for text in texts:
        ids = _ids_of(*_tokens_with_flags(plain, text), analyzer, vocab, stem_vocab, stemmer)
        exact += ids[0]
        stems += ids[1]
        counts.append(len(ids[0]))
    return (np.array(exact, dtype=np.int32), np.array(stems, dtype=np.int32),
            np.array(counts, dtype=np.int64))


def concat_fields(forward: Sequence[tuple[np.ndarray, np.ndarray]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per document, the term ids of every field in turn (the ``all`` field): the forward
    indexes (ids, offsets) of the fields, over the same documents, concatenated doc by doc.
    When one field alone has tokens (a catalog of titles only), its very arrays: the index
    build then indexes them once (:meth:`ranking.bm25.MultiFieldIndex.from_forward`)."""
    filled = [f for f in forward if f[0].shape[0]]
    if len(filled) == 1 and all(f[1].shape == filled[0][1].shape for f in forward):
        return filled[0]
    lengths = [np.diff(indptr) for _, indptr in forward]
    total = np.sum(lengths, axis=0) if lengths else np.zeros(0, dtype=np.int64)
    indptr = np.zeros(total.shape[0] + 1, dtype=np.int64)
    np.cumsum(total, out=indptr[1:])
    out = np.empty(int(indptr[-1]), dtype=np.int32)
    before = indptr[:-1].copy()  # where each doc's next field starts
    for ids, field_indptr in forward:
        if ids.shape[0]:
            kernels.place_field(out, before, ids, field_indptr)
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
    """How many tokens ``analyzer`` gives each text (int64), each distinct segment analyzed
    once (nothing is added to a vocabulary)."""
    plain = _plain(analyzer)
    counted: dict[str, int] = {}
    out = []
    for i in range(0, len(texts), CHUNK):
        part = texts[i:i + CHUNK]
        found = _segments(analyzer, part)
        if found is None:
            out.append(np.diff(_one_by_one(analyzer, part).indptr))
            continue
        joined, starts, ends, owner, seg_ids, first, _ = found
        lengths = np.empty(first.shape[0], dtype=np.int64)
        for d, (s, e) in enumerate(zip(starts[first].tolist(), ends[first].tolist(),
                                       strict=True)):
            segment = joined[s:e]
            n = counted.get(segment)
            if n is None:
                n = counted[segment] = len(_segment_tokens(plain, segment)[0])
            lengths[d] = n
        out.append(np.bincount(owner, weights=lengths[seg_ids], minlength=len(part)
                               ).astype(np.int64))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


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


def _segments(analyzer: Analyzer, texts: Sequence[str]) -> tuple | None:
    """The texts NUL-joined, normalized and lowercased as the analyzer does each (one C call
    each), cut into segments by :func:`ranking._bulk_kernels.split_segments` (the
    analyzer's rule): (joined, starts, ends, text of each segment, distinct id of each,
    first occurrence of each distinct segment, digit flags). None if a text holds a NUL (or
    the rule is not :data:`SEGMENTS_SOUND`)."""
    joined = _SEP.join(texts) + _SEP
    if joined.count(_SEP) != len(texts) or not SEGMENTS_SOUND:
        return None
    if not joined.isascii() and not unicodedata.is_normalized("NFKC", joined):
        normalized = unicodedata.is_normalized
        joined = _SEP.join([t if normalized("NFKC", t) else unicodedata.normalize("NFKC", t)
                            for t in texts]) + _SEP
    if analyzer.lowercase:
        joined = joined.lower()
    return (joined, *_split(joined, kernels.ANALYZER_RULE))


def _split(joined: str, lookback: int) -> tuple:
    """:func:`ranking._bulk_kernels.split_segments` of a string (code point offsets)."""
    return kernels.split_segments(code_points(joined), kernels.NEVER_CONSUMED, lookback,
                                  *UNIT_CODES)


def _unit_codes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The analyzer's ASCII unit spellings as a (spellings, longest) array of lowercase code
    points in sorted order, their lengths, and where those of each first character start
    (spellings outside ASCII only match text outside ASCII, which
    the segment rule already treats as able to continue a match)."""
    spellings = sorted(s.lower() for s in text_module._CANONICAL_UNIT if s.isascii())
    codes = np.zeros((len(spellings), max(map(len, spellings), default=1)), dtype=np.uint32)
    for k, s in enumerate(spellings):
        codes[k, :len(s)] = [ord(c) for c in s]
    first = np.searchsorted(codes[:, 0], np.arange(129)).astype(np.int64)
    return codes, np.array([len(s) for s in spellings], dtype=np.int64), first


#: :func:`_unit_codes`, for :func:`ranking._bulk_kernels.split_segments`.
UNIT_CODES = _unit_codes()


def code_points(text: str) -> np.ndarray:
    """The code points of ``text`` (uint32, a writable array), index for index with the
    string."""
    try:
        return np.frombuffer(text.encode("latin-1"), dtype=np.uint8).astype(np.uint32)
    except UnicodeEncodeError:
        return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).copy()


def joined_code_points(texts: Sequence[str], lowercase: bool, normalize: bool
                       ) -> np.ndarray | None:
    """The texts NUL-joined (a NUL after each), NFKC-normalized text by text if
    ``normalize``, lowercased as ``str.lower`` does if ``lowercase``, as code points; None if
    a text holds a NUL. Lowercasing is a
    kernel's (:func:`ranking._bulk_kernels.lower_code_points`) when every character outside
    ASCII lowercases to one character by itself (not a capital sigma, whose lowercase
    depends on what follows), else ``str.lower``'s."""
    joined = _SEP.join(texts) + _SEP
    if joined.count(_SEP) != len(texts):
        return None
    if normalize and not joined.isascii() and not unicodedata.is_normalized("NFKC", joined):
        normalized = unicodedata.is_normalized
        joined = _SEP.join([t if normalized("NFKC", t) else unicodedata.normalize("NFKC", t)
                            for t in texts]) + _SEP
    cps = code_points(joined)
    if lowercase and not _lower(cps):
        cps = code_points(joined.lower())
    return cps


def _lower(cps: np.ndarray) -> bool:
    """Lowercase code points in place as ``str.lower`` would, if a kernel can (see
    :func:`joined_code_points`); False, ``cps`` untouched, if not."""
    high = np.unique(cps[cps >= 128])
    lowered = [chr(c).lower() for c in high.tolist()]
    if _CAPITAL_SIGMA in high or any(len(low) != 1 for low in lowered):
        return False
    kernels.lower_code_points(cps, high, np.array([ord(low) for low in lowered],
                                                  dtype=np.uint32))
    return True


_CAPITAL_SIGMA = 0x3A3


def _segment_tokens(plain: Analyzer, segment: str) -> tuple[list[str], list[bool]]:
    """Tokens of one segment of normalized, lowercased text and whether each is a plain word,
    by the analyzer's own regexes (``plain``: stopwords dropped, no stemming)."""
    if not plain.units or not text_module._HAS_DIGIT.search(segment):
        words = plain._words(text_module._TOKEN_RE.findall(segment))
        return words, [True] * len(words)
    tokens: list[str] = []
    flags: list[bool] = []
    words = []
    for match in text_module._QUANTITY_RE.finditer(segment):
        if match["word"] is not None:
            words.append(match["word"])
            continue
        kept = plain._words(words)
        tokens += kept
        flags += [True] * len(kept)
        words = []
        spelled = _spelled(match["number"], match["unit"])
        tokens += spelled
        flags += [False] * len(spelled)
    kept = plain._words(words)
    return tokens + kept, flags + [True] * len(kept)


@lru_cache(maxsize=1 << 16)
def _spelled(number: str, unit: str | None) -> tuple[str, ...]:
    """:func:`ranking.text._quantity`, once per distinct (number, unit) of a build."""
    return tuple(text_module._quantity(number, unit))


def _chunk(analyzer: Analyzer, texts: Sequence[str]) -> Analyzed:
    """:func:`analyze_many` of one chunk: each distinct segment analyzed once."""
    plain = _plain(analyzer)
    found = _segments(analyzer, texts)
    if found is None:  # a text holds a NUL: analyze one at a time
        return _one_by_one(analyzer, texts)
    joined, starts, ends, owner, seg_ids, first, _ = found
    tokens: list[str] = []
    flags: list[bool] = []
    lengths = np.empty(first.shape[0], dtype=np.int64)
    for d, (s, e) in enumerate(zip(starts[first].tolist(), ends[first].tolist(), strict=True)):
        toks, words = _segment_tokens(plain, joined[s:e])
        tokens += toks
        flags += words
        lengths[d] = len(toks)
    indptr = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    positions = np.arange(len(tokens), dtype=np.int32)
    at, _, counts = kernels.gather_ids(seg_ids, owner, len(texts), indptr, positions, positions)
    flat = np.empty(len(tokens), dtype=object)
    flat[:] = tokens
    text_indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(counts, out=text_indptr[1:])
    return Analyzed(flat[at], np.array(flags, dtype=bool)[at], text_indptr)


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
    return _segment_tokens(analyzer, text)
