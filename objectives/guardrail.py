"""The rules that keep "relevance must not fall" a guarantee on data we have never seen.

``max_ndcg_drop: delta`` (relative) means: with 95% confidence, mean NDCG@k on new queries from
the same distribution is at most ``delta`` below relevance alone. Everything that decides
whether business weight may be added lives here, once:

- :func:`fixed_sequence`: settings are tested from the weakest up, each accepted only if the
  one-sided 95% upper bound of its out-of-fold drop is at most delta
  (:func:`objectives.metrics.non_inferiority`), and the first refusal stops the walk. Testing
  in a fixed order and stopping at the first failure keeps the family-wise error at 5% without
  a multiplicity correction; for the same measurements, a wider bound (less data) never stops
  the walk later.
- :func:`informative_terms`: a term that is constant (or missing) on every judged pool
  cannot change any order; it gets weight 0 and a note, so it is not set strong by default
  the day its data arrives.
- :func:`compare_with_bm25`: business weight is never added on top of a relevance model that
  does not beat BM25; the better of the two is served and the weights stay relevance only.
- :data:`MIN_TUNING_QUERIES`: below it the bound means nothing and the weights stay
  relevance only, with a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from objectives.metrics import NonInferiority, PairedCI, finite_mean, paired_bootstrap

#: The default ``max_ndcg_drop``: 0.2% of mean NDCG@k, certified at 95%. Why not 0: a bound
#: of 0 admits only reorderings that cannot change NDCG (ties of equal grade), and any change
#: of which products are shown moves NDCG on some query, so 0 means "no business weight" in
#: practice. Why 0.2%: it is about the resolution of the largest judged set we know, so a drop
#: this small is not one anybody can measure: on Home Depot's 11,795 judged queries a paired
#: NDCG@3 difference has a 95% interval about +-0.1% (relative) wide, and LambdaMART's lead
#: over BM25 there is 1.4%, seven times as much. The README's calibration study shows what it
#: gives on data the tuner never saw.
DEFAULT_MAX_NDCG_DROP = 0.002

#: Fewest tuning queries the bound is computed on. With fewer, a bootstrap over queries says
#: little (7 queries give 35 distinct resamples of any pair) and the tuner keeps relevance
#: alone; build and demo warn.
MIN_TUNING_QUERIES = 30

#: Cut-offs at which every report states the guardrail (besides the one tuned at).
VERDICT_CUTOFFS = (3, 5, 10)

#: A term is informative when, in some judged pool, two candidates' values differ by more
#: than this (terms are robust z-scores, so this is far below any real difference).
TERM_SPREAD = 1e-9


def fixed_sequence(certificates: Sequence[NonInferiority]) -> int:
    """Index of the last accepted setting when settings are tested in the given order (weakest
    first) and the first uncertified one stops the walk; -1 if the first fails."""
    for i, c in enumerate(certificates):
        if not c.certified:
            return i - 1
    return len(certificates) - 1


def informative_terms(qptr: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """Bool per term: whether it varies within at least one query's pool (NaN counts as
    missing). Constant-within-every-pool terms add the same to every candidate of a query,
    so no weight on them changes any order."""
    terms = np.asarray(terms, np.float64)
    out = np.zeros(terms.shape[1], dtype=bool)
    if terms.shape[0] == 0:
        return out
    starts = np.asarray(qptr[:-1], np.int64)
    nonempty = starts < np.asarray(qptr[1:], np.int64)
    starts = starts[nonempty]
    with np.errstate(invalid="ignore"):
        filled_hi = np.where(np.isnan(terms), -np.inf, terms)
        filled_lo = np.where(np.isnan(terms), np.inf, terms)
        hi = np.maximum.reduceat(filled_hi, starts, axis=0)
        lo = np.minimum.reduceat(filled_lo, starts, axis=0)
        spread = hi - lo
    out[:] = (np.isfinite(spread) & (spread > TERM_SPREAD)).any(axis=0)
    return out


@dataclass(frozen=True)
class RelevanceCheck:
    """LambdaMART against BM25 on the same queries (NDCG@k, paired)."""

    k: int
    model_ndcg: float
    bm25_ndcg: float
    diff: PairedCI  # model minus BM25

    @property
    def model_ahead(self) -> bool:
        """Whether LambdaMART's mean NDCG@k is above BM25's (point estimate: a model that
        does not beat BM25 is not worth adding business weight to)."""
        return bool(np.isfinite(self.diff.mean) and self.diff.mean > 0)

    def warning(self, where: str) -> str:
        """The loud message when the model is not ahead."""
        return (f"WARNING: LambdaMART does not beat BM25 on {where}: NDCG@{self.k} "
                f"{self.model_ndcg:.4f} vs {self.bm25_ndcg:.4f} (difference "
                f"{self.diff.mean:+.4f} [{self.diff.low:+.4f}, {self.diff.high:+.4f}], "
                f"{self.diff.n} queries). BM25 is served as the relevance score and the business "
                "weights stay at relevance only: more judged queries, or features that suit "
                "this catalog, are needed before tuning means anything.")

    def to_dict(self) -> dict[str, object]:
        return {"k": self.k, "model_ndcg": self.model_ndcg, "bm25_ndcg": self.bm25_ndcg,
                "diff": self.diff.mean, "ci_low": self.diff.low, "ci_high": self.diff.high,
                "n": self.diff.n, "model_ahead": self.model_ahead}


def compare_with_bm25(model_ndcg: np.ndarray, bm25_ndcg: np.ndarray, k: int,
                      seed: int = 0) -> RelevanceCheck:
    """:class:`RelevanceCheck` from per-query NDCG@k of both rankers on the same queries."""
    return RelevanceCheck(k, finite_mean(model_ndcg), finite_mean(bm25_ndcg),
                          paired_bootstrap(model_ndcg, bm25_ndcg, seed=seed))


def too_few_queries(n_queries: int) -> str | None:
    """The warning when the tuning queries are too few for the bound to mean anything."""
    if n_queries >= MIN_TUNING_QUERIES:
        return None
    return (f"WARNING: {n_queries} tuning queries are too few for the NDCG bound to mean "
            f"anything (at least {MIN_TUNING_QUERIES} are needed): relevance only")
