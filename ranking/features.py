"""The named feature vector of one (query, candidate) pair, for LambdaMART.

Every feature is computed for all candidates of one query at once, in Numba kernels
(:mod:`ranking._bm25_kernels`, :mod:`ranking._feature_kernels`); Python only loops over the
fixed list of fields. ``FEATURES`` documents each column; a test holds the README's feature
table to it, so the two cannot drift.
"""

from __future__ import annotations

import numpy as np

from ranking import _feature_kernels as kernels
from ranking.bm25 import MultiFieldIndex

#: Text fields of the catalog that get their own index; ``all`` concatenates them.
TEXT_FIELDS = ("title", "description", "category", "brand", "attributes")

#: (name, meaning) of every feature column, in column order.
FEATURES: tuple[tuple[str, str], ...] = (
    *((f"bm25_{f}", f"BM25 (okapi) of the query against the {f} field") for f in
      ("all", *TEXT_FIELDS)),
    ("cover_title", "share of query tokens found in the title"),
    ("cover_all", "share of query tokens found in any field"),
    ("phrase_title", "1 if the whole query (2+ tokens) appears contiguously in the title"),
    ("bigram_title", "share of the query's adjacent token pairs found adjacent in the title"),
    ("first_pos_title", "position of the first matching title token / title length (1 = none)"),
    ("brand_in_query", "share of the product's brand tokens that the query contains"),
    ("title_len", "title length in tokens"),
    ("query_len", "query length in tokens"),
    ("query_idf_mean", "mean IDF (all field) of the query's known tokens"),
    ("query_unknown", "share of query tokens absent from the vocabulary"),
    ("rating", "product rating (missing if the catalog has none)"),
    ("log_reviews", "log(1 + review count) (missing if the catalog has none)"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _ in FEATURES)


def extract(
    index: MultiFieldIndex, query: np.ndarray, docs: np.ndarray, priors: np.ndarray
) -> np.ndarray:
    """Feature matrix (len(docs), len(FEATURES)) as float32 for term ids ``query``.

    ``priors`` is (n_products, 2): rating and log reviews, NaN where unknown (XGBoost treats
    NaN as missing and learns a default branch for it).
    """
    docs = np.asarray(docs, dtype=np.int64)
    out = np.empty((docs.shape[0], len(FEATURE_NAMES)), dtype=np.float32)
    col = 0
    for name in ("all", *TEXT_FIELDS):
        out[:, col] = index.fields[name].score(query, docs)
        col += 1
    title, all_ = index.fields["title"], index.fields["all"]
    title_match = kernels.match_features(query, title.doc_indptr, title.doc_terms, docs)
    out[:, col] = title_match[:, 0]
    out[:, col + 1] = kernels.match_features(query, all_.doc_indptr, all_.doc_terms, docs)[:, 0]
    out[:, col + 2 : col + 5] = title_match[:, 1:4]
    brand = index.fields["brand"]
    out[:, col + 5] = kernels.field_in_query(query, brand.doc_indptr, brand.doc_terms, docs)
    out[:, col + 6] = np.diff(title.doc_indptr)[docs]
    out[:, col + 7] = query.shape[0]
    known = query[query >= 0]
    out[:, col + 8] = all_.idf[known].mean() if known.size else 0.0
    out[:, col + 9] = 1.0 - known.size / query.shape[0] if query.shape[0] else 1.0
    out[:, col + 10 : col + 12] = priors[docs]
    return out
