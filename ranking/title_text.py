"""Catalog statistics of the titles that the trigram and head features read.

Home Depot titles name the product type early and then qualify it: "Cordless Drill with
Battery", "Vanity Top in White", "Faucet, Chrome". :data:`HEAD_CUT` marks where the qualifiers
begin; the tokens before it are the title's *head* and its last token is usually what the
product is, which the query must name for the product to be relevant. The character-trigram
features weigh a trigram by its IDF over all titles, kept here as sorted keys with their IDF,
together with each title's TF-IDF norm, so a search only looks up the query's own trigrams.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ranking import _bulk_kernels as bulk_kernels
from ranking import _title_kernels as kernels
from ranking import bulk_text, bundle, bundle_checks
from ranking.bm25 import FieldIndex
from ranking.text import Analyzer

#: Where a title's head ends: a comma, " - ", "(", or a joining word ("with", "for", "by",
#: "and", "or", and "in" unless it follows a number, where it is the unit inch).
HEAD_CUT = re.compile(r",| - |\(| (?:with|for|by|and|or) | (?<!\d )in ", re.IGNORECASE)


def head_lengths(titles: list[str], analyzer: Analyzer, title_lengths: np.ndarray
                 ) -> np.ndarray:
    """Token count of each title's head: the tokens of the text before :data:`HEAD_CUT`
    (the analyzer reads text left to right, so they are the title's first tokens), at most
    the title's length; a title whose head has no token is all head. ``title_lengths`` are
    the titles' token counts under ``analyzer``: a title without a cut is all head, so only
    the cut ones are analyzed again, all at once (:func:`ranking.bulk_text.token_counts`;
    an index build reads the heads off its own analysis instead:
    :func:`ranking.bulk_text.title_forward_ids`). The cuts
    are found by a kernel over the NUL-joined titles (:func:`ranking._bulk_kernels.head_cuts`;
    titles with a non-ASCII character or a NUL by the regex)."""
    heads = np.asarray(title_lengths, dtype=np.int64).copy()
    rows: list[int] = []
    cut: list[str] = []
    for i in range(0, len(titles), bulk_text.CHUNK):
        part = titles[i:i + bulk_text.CHUNK]
        joined = "\x00".join(part) + "\x00"
        if joined.count("\x00") != len(part):
            found = [(len(head) < len(t), head) for t, head in (
                (t, HEAD_CUT.split(t, maxsplit=1)[0]) for t in part)]
        else:
            starts, cuts = bulk_kernels.head_cuts(bulk_text.code_points(joined), len(part))
            found = []
            for t, s, c in zip(part, starts.tolist(), cuts.tolist(), strict=True):
                if c == -2:
                    head = HEAD_CUT.split(t, maxsplit=1)[0]
                    found.append((len(head) < len(t), head))
                else:
                    found.append((c >= 0, joined[s:s + c]))
        for j, (is_cut, head) in enumerate(found):
            if is_cut:
                rows.append(i + j)
                cut.append(head)
    if cut:
        heads[np.array(rows, dtype=np.int64)] = bulk_text.token_counts(analyzer, cut)
    return clip_heads(heads, title_lengths)


def clip_heads(heads: np.ndarray, title_lengths: np.ndarray) -> np.ndarray:
    """Head token counts at most the title's length; a head without a token (or -1) is the
    whole title."""
    heads = np.minimum(heads, title_lengths)
    return np.where(heads > 0, heads, title_lengths)


def _grams_by_term(index: FieldIndex, term_indptr: np.ndarray, term_chars: np.ndarray
                   ) -> tuple[np.ndarray, tuple] | None:
    """The catalog's candidate trigram keys, sorted (every trigram of a title token padded
    by spaces, and every (last character, space, first character) of two tokens that may be
    adjacent), and what :func:`ranking._title_kernels.gram_frequencies_by_term` reads: each
    title token's trigrams as dense ids (positions in the sorted keys) and the dense id of
    each (last, first) pair. A title's trigrams are then read per token, not per character.
    None if a title token is empty or the pairs would be more than :data:`_MOST_PAIRS`."""
    used = np.zeros(term_indptr.shape[0] - 1, dtype=np.bool_)
    used[index.doc_terms] = True
    if np.any(np.diff(term_indptr)[used] == 0):
        return None
    gram_indptr, keys, first, last = kernels.term_grams(term_indptr, term_chars, used)
    lasts, last_id = np.unique(last[used], return_inverse=True)
    firsts, first_id = np.unique(first[used], return_inverse=True)
    if lasts.shape[0] * firsts.shape[0] > _MOST_PAIRS:
        return None
    pairs = ((lasts[:, None] << 42) | (np.int64(kernels._SPACE) << 21) | firsts[None, :]).ravel()
    universe, ids = np.unique(np.concatenate([keys, pairs]), return_inverse=True)
    term_last = np.zeros(used.shape[0], dtype=np.int64)
    term_first = np.zeros(used.shape[0], dtype=np.int64)
    term_last[used], term_first[used] = last_id, first_id
    pair_ids = ids[keys.shape[0]:].reshape(lasts.shape[0], firsts.shape[0])
    return universe, (gram_indptr, ids[:keys.shape[0]], term_last, term_first, pair_ids)


def _halves(doc_indptr: np.ndarray) -> list[np.ndarray]:
    """``doc_indptr`` as the offsets of two halves of the documents (one if few): each is
    read by a kernel on its own thread (offsets index the whole ``doc_terms``)."""
    n = doc_indptr.shape[0] - 1
    if n < 2 * _HALF_AT_LEAST:
        return [doc_indptr]
    return [doc_indptr[:n // 2 + 1], doc_indptr[n // 2:]]


#: Fewest documents in a half of :func:`_halves` (below, a thread is not worth its start).
_HALF_AT_LEAST = 20_000
#: The most (last character, first character) pairs :func:`_grams_by_term` lays out.
_MOST_PAIRS = 1 << 22


def gram_idf(df: np.ndarray | float, n_docs: int) -> np.ndarray:
    """Smoothed IDF, log((n + 1) / (df + 1)) + 1: positive for every trigram, and the
    largest (df = 0) for a query trigram that no title has."""
    return np.log((n_docs + 1.0) / (df + 1.0)) + 1.0


@dataclass(frozen=True)
class TitleText:
    """Per product: head length and title TF-IDF norm; per catalog trigram: key and IDF."""

    head_len: np.ndarray  # int64 (n_products,)
    title_norm: np.ndarray  # float64 (n_products,), 0 for an empty title
    keys: np.ndarray  # int64, sorted distinct trigram keys of all titles
    idf: np.ndarray  # float64, IDF of each key

    @classmethod
    def build(cls, titles: list[str], analyzer: Analyzer, index: FieldIndex,
              term_indptr: np.ndarray, term_chars: np.ndarray,
              heads: np.ndarray | None = None) -> TitleText:
        """From the raw titles and their plain index (``index``, tokens by ``analyzer``) with
        the characters of every vocabulary token (heads by :func:`head_lengths`), or
        with the heads' token counts already read (``heads``, before :func:`clip_heads`:
        :func:`ranking.bulk_text.title_forward_ids`).

        Two kernel passes over the titles' trigrams in bounded memory: document frequencies,
        then each title's norm from its own trigrams in ascending order, each pass over the
        two halves of the catalog on two threads (the kernels release the GIL; the counts of
        the halves add up exactly and a norm is one title's). The IDF and ``log`` of the
        counts are numpy's, so every value is the one a sort of all (title, trigram) pairs
        gave before."""
        by_term = _grams_by_term(index, term_indptr, term_chars)
        if by_term is None:  # an empty token, or too many (last, first) character pairs
            distinct, df, longest, table, rank = kernels.gram_document_frequencies(
                index.doc_indptr, index.doc_terms, term_indptr, term_chars)
            idf = gram_idf(df, index.n_docs)
            log_counts = np.log(np.arange(1, max(longest, 1) + 1, dtype=np.int64))
            norm = kernels.gram_norms(index.doc_indptr, index.doc_terms, term_indptr,
                                      term_chars, table, rank, idf, log_counts)
        else:
            universe, arrays = by_term
            halves = _halves(index.doc_indptr)
            with ThreadPoolExecutor(max_workers=len(halves)) as pool:
                counted = list(pool.map(lambda part: kernels.gram_frequencies_by_term(
                    part, index.doc_terms, *arrays, universe.shape[0]), halves))
                df_all = np.sum([df_part for df_part, _ in counted], axis=0)
                longest = max(m for _, m in counted)
                present = df_all > 0
                distinct, df = universe[present], df_all[present]
                idf = gram_idf(df, index.n_docs)
                idf_all = np.zeros(universe.shape[0])
                idf_all[present] = idf
                log_counts = np.log(np.arange(1, max(longest, 1) + 1, dtype=np.int64))
                norm = np.concatenate(list(pool.map(lambda part: kernels.gram_norms_by_term(
                    part, index.doc_terms, *arrays, idf_all, log_counts), halves)))
        lengths = np.diff(index.doc_indptr).astype(np.int64)
        heads = (head_lengths(titles, analyzer, lengths) if heads is None
                 else clip_heads(heads, lengths))
        return cls(heads, norm, distinct, idf)

    def kernel_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        """What :func:`ranking._title_kernels.title_columns` reads: head lengths, title norms,
        the catalog's trigram keys and IDF, and the IDF of a trigram no title has."""
        return (self.head_len, self.title_norm, self.keys, self.idf,
                float(gram_idf(0.0, self.head_len.shape[0])))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"head_len": self.head_len, "title_norm": self.title_norm, "keys": self.keys,
                "idf": self.idf}

    @classmethod
    def from_arrays(cls, data: dict[str, np.ndarray], title_lengths: np.ndarray,
                    source: str) -> TitleText:
        """Rebuild from :meth:`arrays` of the bundle file ``source``, refusing arrays that are
        missing, do not fit the catalog (``title_lengths``: each title's token count), or hold
        a head length outside its title: the kernel indexes the title by it unchecked
        (:class:`ranking.bundle.BundleError`)."""
        arrays = bundle.required_arrays(data, ("head_len", "title_norm", "keys", "idf"), source)
        n_products, n_keys = title_lengths.shape[0], arrays["keys"].size
        bundle.check_layout(arrays, {"head_len": ((n_products,), "integer"),
                                     "title_norm": ((n_products,), "float"),
                                     "keys": ((n_keys,), "integer"),
                                     "idf": ((n_keys,), "float")}, source)
        head = arrays["head_len"]
        outside = np.flatnonzero((head < np.minimum(title_lengths, 1)) | (head > title_lengths))
        if outside.size:
            i = int(outside[0])
            raise bundle.BundleError(
                f"{source}: head_len of product row {i} is {int(head[i])}, outside its title of "
                f"{int(title_lengths[i])} tokens ({outside.size:,} rows); rebuild the bundle")
        bundle_checks.check_increasing(source, "keys", arrays["keys"])  # binary-searched
        bundle_checks.check_finite(source, "idf", arrays["idf"])
        bundle_checks.check_finite(source, "title_norm", arrays["title_norm"])
        return cls(**arrays)
