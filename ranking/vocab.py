"""Token <-> term id mapping shared by every field index of a bundle."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

import numpy as np


class Vocabulary:
    """Dense term ids for tokens, in first-seen order; unknown tokens look up as -1."""

    def __init__(self, tokens: Sequence[str] = ()) -> None:
        listed = list(tokens)
        self._tokens: list[str] = listed
        self._ids: dict[str, int] = dict(zip(listed, range(len(listed)), strict=True))
        if len(self._ids) != len(listed):  # repeats: each keeps its first id, as add() does
            self._ids, self._tokens = {}, []
            for token in listed:
                self.add(token)

    def add(self, token: str) -> int:
        """Id of ``token``, assigning the next id if it is new."""
        tid = self._ids.get(token)
        if tid is None:
            tid = len(self._tokens)
            self._ids[token] = tid
            self._tokens.append(token)
        return tid

    def add_docs(self, docs: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Ids of every token of ``docs``, concatenated (int32), and the int64 offsets of each
        document in them, adding new tokens as they come.

        One flat array instead of an array per document: at a million documents, a million
        small numpy arrays cost more memory than the index itself.
        """
        indptr = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, docs), dtype=np.int64, count=len(docs)), out=indptr[1:])
        known = len(self._ids)
        ids = self._ids
        flat = np.fromiter((ids.setdefault(t, len(ids)) for doc in docs for t in doc),
                           dtype=np.int32, count=int(indptr[-1]))
        self._tokens.extend(islice(ids, known, None))
        return flat, indptr

    def add_array(self, tokens: np.ndarray) -> np.ndarray:
        """int32 ids of an object array of tokens, adding new tokens in first-seen order (as
        :meth:`add_docs` would): each distinct token is hashed by pandas' factorize and added
        once, so the cost per token is C's, not Python's. For index builds only (pandas is
        imported here, not on the serving path)."""
        import pandas as pd

        if tokens.shape[0] == 0:
            return np.zeros(0, dtype=np.int32)
        codes, uniques = pd.factorize(tokens)
        ids = np.fromiter((self.add(t) for t in uniques), dtype=np.int32, count=len(uniques))
        return ids[codes]

    def lookup(self, tokens: Sequence[str]) -> np.ndarray:
        """int64 ids of ``tokens`` in order; -1 for tokens not in the vocabulary."""
        get = self._ids.get
        return np.fromiter((get(t, -1) for t in tokens), dtype=np.int64, count=len(tokens))

    def token(self, tid: int) -> str:
        return self._tokens[tid]

    def __len__(self) -> int:
        return len(self._tokens)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self._tokens, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        return cls(json.loads(path.read_text(encoding="utf-8")))
