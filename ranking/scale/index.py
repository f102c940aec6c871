"""The serving index built in partitions: analyze per partition on the workers, merge.

Analysis (tokenizing, stemming, quantity parsing, title heads) is where a catalog build spends
its time, and it is independent per product. Each worker runs the one-process
:meth:`ranking.features.FeatureSpace.build` on a slice of the catalog and returns its forward
index over the partition's own vocabulary, its quantities and title head lengths. The client
merges the partition vocabularies in the order one process would have met the tokens (field
by field, partition by partition, each in first-seen order), maps every partition's term ids
onto the merged ids and counts the postings with
:meth:`ranking.bm25.FieldIndex.from_doc_terms`, the counting sort of the one-process build, so
the index is bit-identical to FeatureSpace.build on the whole catalog (a test checks every
array).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ranking.bm25 import BM25Params, FieldIndex, MultiFieldIndex
from ranking.features import FeatureSpace, _vocab_chars
from ranking.text import Analyzer
from ranking.title_text import TitleText
from ranking.units import QuantityTable
from ranking.vocab import Vocabulary


@dataclasses.dataclass(frozen=True)
class PartitionTerms:
    """One partition's analyzed fields: its own vocabulary, per field the forward index over
    it (term ids, doc offsets) and the partition-local ids in first-seen order."""

    tokens: list[str]
    forward: dict[str, tuple[np.ndarray, np.ndarray]]
    first_seen: dict[str, np.ndarray]

    @classmethod
    def of(cls, index: MultiFieldIndex) -> PartitionTerms:
        """The forward side of a partition's own index."""
        forward = {name: (f.doc_terms, f.doc_indptr) for name, f in index.fields.items()}
        first_seen = {}
        for name, (flat, _) in forward.items():
            _, first = np.unique(flat, return_index=True)
            first_seen[name] = flat[np.sort(first)]
        return cls([index.vocab.token(i) for i in range(len(index.vocab))], forward, first_seen)


def merge_terms(parts: Sequence[PartitionTerms], params: BM25Params | None = None
                ) -> MultiFieldIndex:
    """The index of the concatenated partitions (in order), as one process builds it."""
    params = params or BM25Params()
    vocab = Vocabulary()
    fields = list(parts[0].forward) if parts else []
    tokens = [np.array(part.tokens, dtype=object) for part in parts]
    # One process meets tokens field by field, document by document: each partition's
    # first-seen tokens of each field, in that order, added in one pass (pandas' factorize
    # keeps first-seen order; a Python call per distinct token, not per partition token).
    order = [(i, part.first_seen[name]) for name in fields for i, part in enumerate(parts)]
    merged = vocab.add_array(np.concatenate(
        [np.zeros(0, dtype=object), *(tokens[i][local] for i, local in order)]))
    mapping = [np.full(len(t), -1, dtype=np.int32) for t in tokens]
    start = 0
    for i, local in order:  # partition-local id -> merged id
        mapping[i][local] = merged[start:start + local.size]
        start += local.size
    index = {}
    for name in fields:
        terms = [m[p.forward[name][0]] for m, p in zip(mapping, parts, strict=True)]
        lengths = [np.diff(p.forward[name][1]) for p in parts]
        indptr = np.zeros(sum(map(len, lengths)) + 1, dtype=np.int64)
        np.cumsum(np.concatenate([np.zeros(0, np.int64), *lengths]), out=indptr[1:])
        doc_terms = np.concatenate([np.zeros(0, np.int32), *terms]).astype(np.int32)
        index[name] = FieldIndex.from_doc_terms(doc_terms, indptr, len(vocab), params)
    return MultiFieldIndex(vocab=vocab, fields=index, params=params)


@dataclasses.dataclass(frozen=True)
class PartitionText:
    """One partition's analysis for the feature space: exact and stemmed terms, quantities,
    title head lengths."""

    exact: PartitionTerms
    stemmed: PartitionTerms
    quantities: QuantityTable
    head_len: np.ndarray


def analyze_partition(catalog: pd.DataFrame, analyzer: dict[str, Any]) -> PartitionText:
    """Everything :meth:`FeatureSpace.build` derives from the text of these products, by
    FeatureSpace.build itself on the partition (the analyzer travels as its settings dict):
    whatever makes the one-process build fast makes each partition fast too."""
    space = FeatureSpace.build(catalog, Analyzer.from_dict(analyzer))
    return PartitionText(PartitionTerms.of(space.index), PartitionTerms.of(space.stem_index),
                         space.quantities, space.title_text.head_len)


def merge_partitions(parts: Sequence[PartitionText], analyzer: Analyzer) -> FeatureSpace:
    """The feature space of the concatenated partitions, equal to FeatureSpace.build's."""
    index = merge_terms([p.exact for p in parts])
    stem_index = merge_terms([p.stemmed for p in parts])
    term_chars = _vocab_chars(index)
    title_index = index.fields["title"]
    # TitleText.build's trigram statistics come from the merged title index alone; its head
    # lengths need the raw titles, which the partitions analyzed: given empty titles it
    # computes placeholder heads, replaced by the partitions' own head_lengths.
    title_text = dataclasses.replace(
        TitleText.build([""] * title_index.n_docs, analyzer, title_index, *term_chars[:2]),
        head_len=np.concatenate([np.zeros(0, np.int64), *(p.head_len for p in parts)]))
    sizes = [p.quantities.indptr[-1] for p in parts]
    offsets = np.cumsum([0, *sizes])
    indptr = np.concatenate([np.zeros(1, np.int64)] + [
        p.quantities.indptr[1:] + off for p, off in zip(parts, offsets[:-1], strict=True)])
    quantities = QuantityTable(
        indptr.astype(np.int64),
        np.concatenate([np.zeros(0, np.float64), *(p.quantities.values for p in parts)]),
        np.concatenate([np.zeros(0, np.int64), *(p.quantities.units for p in parts)]))
    return FeatureSpace(analyzer, index, dataclasses.replace(analyzer, stem=True), stem_index,
                        quantities, title_text, term_chars)


def split_catalog(catalog: pd.DataFrame, n_partitions: int) -> list[pd.DataFrame]:
    """Contiguous row slices, in order (the merge relies on partition order)."""
    bounds = np.linspace(0, len(catalog), max(1, n_partitions) + 1).astype(int)
    return [catalog.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def build_feature_space(client: Any, catalog: pd.DataFrame | Sequence[Any],
                        analyzer: Analyzer, n_partitions: int | None = None) -> FeatureSpace:
    """:meth:`FeatureSpace.build` on a Dask cluster: ``catalog`` is a validated catalog frame
    (split into ``n_partitions`` slices, default two per worker) or a sequence of partitions
    (frames, futures or ``dask.delayed`` objects) in catalog order."""
    if isinstance(catalog, pd.DataFrame):
        n = n_partitions or 2 * max(1, len(client.scheduler_info()["workers"]))
        catalog = client.scatter(split_catalog(catalog, n))
    settings = analyzer.to_dict()
    futures = [client.submit(analyze_partition, part, settings, pure=False)
               if not hasattr(part, "dask") else client.compute(
                   _delayed_analysis(part, settings))
               for part in catalog]
    return merge_partitions(client.gather(futures), analyzer)


def _delayed_analysis(part: Any, settings: dict[str, Any]) -> Any:
    import dask

    return dask.delayed(analyze_partition)(part, settings)
