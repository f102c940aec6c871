"""Duplicate checks of the audit: repeated product ids, exact duplicate products, near-duplicate
titles within a category (character shingles + MinHash/LSH, verified by exact Jaccard) and
customer ids that differ only by case, width, whitespace or Unicode form."""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd

from objectives import _audit_kernels as kernels
from objectives.audit_findings import Finding, finding

#: Shingle width in bytes of the normalized title (casefolded, whitespace collapsed).
SHINGLE_WIDTH = 4
#: MinHash signature length = bands x rows. With 20 bands of 5 rows a pair of Jaccard 0.8 is a
#: candidate with probability 1 - (1 - 0.8^5)^20 = 0.9996 (0.99999 at 0.85); at 0.5 with 0.47,
#: so few dissimilar pairs reach the exact check (16 x 4 gave 5x more candidates on the 1M
#: benchmark catalog).
BANDS, ROWS = 20, 5
#: Buckets larger than this contribute a chain of neighbour pairs instead of all pairs.
MAX_BUCKET = 64
N_EXAMPLES = 5


def duplicate_ids(catalog: pd.DataFrame) -> Finding | None:
    """Product ids on more than one row (the catalog loader refuses them)."""
    ids = catalog["product_id"]
    dup = ids[ids.duplicated(keep=False)]
    examples = [{"product_id": p, "rows": int(n)} for p, n in
                dup.value_counts().head(N_EXAMPLES).items()]
    return finding("duplicate_product_id", dup.unique(), examples)


def exact_duplicates(catalog: pd.DataFrame) -> tuple[Finding | None, np.ndarray]:
    """Products identical to an earlier one on every field but the id; also returns the
    duplicate-group number of every row (-1 when unique), to keep them out of the near checks."""
    fields = [c for c in catalog.columns if c != "product_id"]
    group = catalog.groupby(fields, dropna=False, sort=False).ngroup().to_numpy()
    sizes = np.bincount(group)
    repeated = sizes[group] > 1
    later = repeated & pd.Series(group).duplicated().to_numpy()
    first_of = pd.Series(np.arange(len(group))).groupby(group).transform("first").to_numpy()
    ids = catalog["product_id"].to_numpy()
    flagged = np.flatnonzero(later)
    examples = [{"product_id": ids[i], "same_as": ids[first_of[i]],
                 "title": catalog["title"].iat[i]} for i in flagged[:N_EXAMPLES]]
    groups = np.where(repeated, group, -1)
    return finding("exact_duplicate_product", ids[flagged], examples,
                   f"{len(flagged):,} rows repeat another product"), groups


def normalize_title(title: str) -> str:
    """The form titles are compared in: NFKC, casefolded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", title).casefold().split())


def near_duplicate_pairs(titles: list[str], groups: np.ndarray, threshold: float,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left, right, jaccard) of title pairs in the same group (category code) whose exact
    character-shingle Jaccard similarity is at least ``threshold``, left < right, sorted.

    Candidates come from MinHash LSH (:data:`BANDS` x :data:`ROWS`); each is verified on the
    exact shingle sets, so no pair below the threshold is reported. A pair with Jaccard 0.8 is
    missed with probability 4e-4 (see :data:`BANDS`).
    """
    encoded = [normalize_title(t).encode("utf-8") for t in titles]
    lengths = np.fromiter((len(b) for b in encoded), np.int64, len(encoded))
    start = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    buf = np.frombuffer(b"".join(encoded), np.uint8) if lengths.sum() else np.zeros(0, np.uint8)
    ptr = np.r_[0, np.cumsum(kernels.shingle_counts(start, SHINGLE_WIDTH))].astype(np.int64)
    hashes = kernels.shingle_hashes(buf, start, ptr, SHINGLE_WIDTH)
    seeds = np.random.default_rng(seed).integers(0, 2**63, BANDS * ROWS, dtype=np.uint64)
    sig = kernels.minhash(ptr, hashes, seeds)
    keys = kernels.band_keys(sig, groups.astype(np.int64), BANDS, ROWS)
    lefts, rights = [], []
    for b in range(BANDS):
        order = np.argsort(keys[b], kind="stable")
        sorted_keys = keys[b][order]
        bounds = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1], True])
        left, right = kernels.bucket_pairs(order, bounds.astype(np.int64), MAX_BUCKET)
        lefts.append(left)
        rights.append(right)
    left, right = np.concatenate(lefts), np.concatenate(rights)
    if left.size:
        pair = np.unique(left * len(titles) + right)
        left, right = pair // len(titles), pair % len(titles)
    sim = kernels.jaccard(ptr, hashes, left, right)
    keep = sim >= threshold
    return left[keep], right[keep], sim[keep]


def near_duplicates(catalog: pd.DataFrame, exact_groups: np.ndarray,
                    threshold: float) -> tuple[Finding | None, np.ndarray]:
    """Near-duplicate titles within a category, pairs of exact duplicates left out; also a
    mask of the rows that near-duplicate an earlier row (the later member of a pair)."""
    category = pd.factorize(catalog["category"].fillna(""))[0]
    left, right, sim = near_duplicate_pairs(catalog["title"].fillna("").astype(str).tolist(),
                                            category, threshold)
    same = (exact_groups[left] == exact_groups[right]) & (exact_groups[left] >= 0)
    left, right, sim = left[~same], right[~same], sim[~same]
    ids = catalog["product_id"].to_numpy()
    order = np.argsort(-sim, kind="stable")[:N_EXAMPLES]
    examples = [{"product_id": ids[left[i]], "other": ids[right[i]],
                 "title": catalog["title"].iat[left[i]],
                 "other_title": catalog["title"].iat[right[i]],
                 "category": catalog["category"].iat[left[i]],
                 "jaccard": round(float(sim[i]), 3)} for i in order]
    n_products = len(np.union1d(left, right))
    repeats = np.zeros(len(catalog), bool)
    repeats[right] = True
    return finding("near_duplicate_title", zip(ids[left], ids[right], strict=True), examples,
                   f"Jaccard >= {threshold} on {SHINGLE_WIDTH}-character shingles of the "
                   f"normalized title, within a category; {n_products:,} products involved"
                   ), repeats


def customer_key(customer_id: str) -> str:
    """What a customer id is compared by: NFKC (width, Unicode form), casefolded, with every
    whitespace character removed."""
    return "".join(unicodedata.normalize("NFKC", customer_id).casefold().split())


def duplicate_customers(customer_ids: pd.Series) -> Finding | None:
    """Distinct customer ids that become equal under :func:`customer_key`."""
    distinct = pd.Series(customer_ids.dropna().astype(str).unique())
    keys = distinct.map(customer_key)
    clash = keys.duplicated(keep=False).to_numpy()
    groups = distinct[clash].groupby(keys[clash].to_numpy()).agg(list)
    examples = [{"customer_ids": ids} for ids in groups.head(N_EXAMPLES)]
    return finding("duplicate_customer_id", distinct[clash], examples,
                   f"{len(groups):,} customers written {int(clash.sum()):,} ways")
