"""Tune the blend weights with cvxpy so business value rises while relevance does not fall.

The convex program (:mod:`objectives.tuner_program`, solved by Clarabel) maximizes a linear
surrogate of business value moved up the ranking, subject to a pairwise relevance hinge on
judged pairs of different grades that may exceed its relevance-only value by a relative slack
epsilon. This module is the verification loop around it.

The guarantee (:mod:`objectives.guardrail`): ``max_ndcg_drop: delta`` means that, with 95%
confidence, mean NDCG@k on new queries is at most ``delta`` (relative) below relevance alone.
Each setting of a path of rising strength (:data:`STRENGTH_PATH`) is measured out of fold: for
each of K folds of the tuning queries the program is solved on the other folds and the weights
score the held fold, so every query gives one honest paired NDCG difference. A setting is
accepted when the one-sided 95% upper bound of its drop is at most delta; settings are tested
from the weakest up and the first refusal stops the walk (a fixed-sequence test: no curve is
fitted and no strongest setting picked among many, so there is no winner's curse and no
multiplicity correction is needed). The final weights are solved on all tuning queries at the
strongest accepted setting and held to its certified strength (:func:`capped`). Sweeping
epsilon instead of stopping traces the NDCG-vs-business Pareto frontier (:func:`frontier`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from objectives.config import TERM_NAMES
from objectives.groups import QueryGroups
from objectives.guardrail import (
    DEFAULT_MAX_NDCG_DROP,
    VERDICT_CUTOFFS,
    fixed_sequence,
    informative_terms,
    too_few_queries,
)
from objectives.metrics import NonInferiority, finite_mean, non_inferiority
from objectives.tuner_program import MAX_PAIRS, WeightProgram, judged_pairs


@dataclass
class TuneResult:
    """Chosen weights and the evidence for them."""

    weights: np.ndarray
    epsilon: float
    message: str
    cv_ndcg_base: float = float("nan")  # cross-validated NDCG@k, relevance only
    cv_ndcg_tuned: float = float("nan")  # the same with the chosen weights
    trace: list[dict[str, float]] = field(default_factory=list)
    #: Notes a report must show: terms set to 0 for lack of information, too few queries.
    notes: list[str] = field(default_factory=list)
    max_ndcg_drop: float = 0.0
    n_queries: int = 0
    #: The out-of-fold certificate of the chosen setting (None: relevance only, nothing
    #: certified), and the same setting's out-of-fold certificate at every reported cut-off.
    certificate: NonInferiority | None = None
    scale: float = 0.0
    by_k: dict[int, NonInferiority] = field(default_factory=dict)

    @property
    def strength(self) -> float:
        """Sum of the chosen weights."""
        return float(np.sum(self.weights))

    def certifiable(self) -> str:
        """What the data could certify, in the words of the guarantee: "with N tuning queries,
        the smallest drop certifiable at strength s is x%", for the chosen setting and the first
        refused one (strength: the mean sum of the fold solutions the bound was measured on)."""
        parts = [f"at strength {t['strength']:.3f} is {100 * t['drop_bound']:.2f}% ({name})"
                 for name, t in (("chosen", self._accepted_row()),
                                 ("the next setting, refused" if self._accepted_row()
                                  else "the weakest setting, refused", self._refused_row()))
                 if t is not None]
        if not parts:
            return ""
        served = (f"; served strength {self.strength:.3f}" if self.certificate is not None
                  else "")
        return (f"with {self.n_queries} tuning queries, the smallest drop certifiable "
                + " and ".join(parts) + f" (allowed: {100 * self.max_ndcg_drop:.2f}%){served}")

    def _accepted_row(self) -> dict[str, float] | None:
        accepted = [t for t in self.trace if t["accepted"]]
        return accepted[-1] if accepted else None

    def _refused_row(self) -> dict[str, float] | None:
        return next((t for t in self.trace if not t["accepted"]), None)

    def to_dict(self) -> dict[str, object]:
        return {"weights": self.weights.tolist(), "epsilon": self.epsilon, "scale": self.scale,
                "message": self.message, "notes": self.notes,
                "max_ndcg_drop": self.max_ndcg_drop, "n_queries": self.n_queries,
                "cv_ndcg_base": self.cv_ndcg_base, "cv_ndcg_tuned": self.cv_ndcg_tuned,
                "certified_drop": None if self.certificate is None
                else self.certificate.drop_bound,
                "certifiable": self.certifiable(),
                "by_k": {str(c): {"drop": v.drop, "drop_bound": v.drop_bound,
                                  "certified": v.certified} for c, v in self.by_k.items()},
                "trace": self.trace}


#: The search path, weakest to strongest: (relative slack epsilon, scale of the weights). The
#: solve at epsilon = 0 is first scaled down, because a linear objective puts the solution on a
#: vertex and even the tightest surrogate can move NDCG on new queries; scaling toward 0 is a
#: continuous way back to the relevance-only ranking. Then the slack grows. The fixed-sequence
#: test walks it in this order, so the path is fixed before any data is seen and fine enough
#: that stopping at the first refusal loses little strength.
STRENGTH_PATH: tuple[tuple[float, float], ...] = (
    (0.0, 0.0625), (0.0, 0.125), (0.0, 0.1875), (0.0, 0.25), (0.0, 0.375), (0.0, 0.5),
    (0.0, 0.75), (0.0, 1.0),
    (0.00025, 1.0), (0.0005, 1.0), (0.001, 1.0), (0.0025, 1.0), (0.005, 1.0), (0.0075, 1.0),
    (0.01, 1.0), (0.015, 1.0),
    (0.02, 1.0), (0.03, 1.0), (0.05, 1.0), (0.075, 1.0), (0.1, 1.0), (0.15, 1.0), (0.2, 1.0),
    (0.3, 1.0), (0.5, 1.0), (0.75, 1.0), (1.0, 1.0), (1.5, 1.0), (2.0, 1.0),
)


#: Weights are rounded before they are checked, so the YAML a merchandiser reads holds exactly
#: the weights that were checked and are served.
WEIGHT_DECIMALS = 4


def fold_of_queries(n_queries: int, n_folds: int, seed: int) -> np.ndarray:
    """A seeded fold number for each query, folds as equal in size as possible."""
    return np.random.default_rng(seed).permutation(np.arange(n_queries) % n_folds)


@dataclass
class _CrossValidated:
    """One program per fold (and one on all queries, fold -1), solutions cached by epsilon,
    and the out-of-fold NDCG of any (epsilon, scale)."""

    groups: QueryGroups
    importance: np.ndarray
    folds: np.ndarray
    k: int
    max_weight: float
    seed: int
    programs: dict[int, WeightProgram] = field(default_factory=dict)
    solved: dict[tuple[int, float], np.ndarray] = field(default_factory=dict)

    def program(self, fold: int) -> WeightProgram:
        """The program on every query outside ``fold``, built once."""
        if fold not in self.programs:
            fit = self.groups.subset(np.flatnonzero(self.folds != fold))
            pairs = judged_pairs(fit, self.k).sample(MAX_PAIRS, self.seed)
            upper = np.where(self.importance > 0, self.max_weight, 0.0)
            self.programs[fold] = WeightProgram(fit, pairs, self.importance, upper)
        return self.programs[fold]

    def weights(self, fold: int, eps: float, scale: float) -> np.ndarray:
        """Weights solved without ``fold`` (-1: on all queries), scaled and rounded."""
        if (fold, eps) not in self.solved:
            self.solved[fold, eps] = self.program(fold).solve(eps)
        return np.round(scale * self.solved[fold, eps], WEIGHT_DECIMALS)

    def strength(self, eps: float, scale: float) -> float:
        """Sum of the weights at (eps, scale), averaged over the folds' solutions."""
        return float(np.mean([self.weights(f, eps, scale).sum() for f in np.unique(self.folds)]))

    def out_of_fold_ndcg(self, eps: float, scale: float, k: int | None = None) -> np.ndarray:
        """Per-query NDCG@k (default: the k tuned at), each query ranked with weights fitted
        without its fold."""
        out = np.empty(self.groups.n_queries)
        for fold in np.unique(self.folds):
            held = np.flatnonzero(self.folds == fold)
            part = self.groups.subset(held)
            out[held] = part.ndcg(part.blend(self.weights(fold, eps, scale)), k or self.k)
        return out


def has_judged_pairs(groups: QueryGroups, k: int) -> bool:
    """Whether :func:`judged_pairs` of ``groups`` is non-empty, without building every query's
    pairs (about a second on Home Depot). A query yields pairs only if two of its candidates
    differ in grade, and what it yields depends on that query alone (its own relevance
    z-scores, order and ideal DCG), so :func:`judged_pairs` of such queries one at a time,
    stopping at the first that yields any, gives the same answer by the same rule."""
    row_query = np.repeat(np.arange(groups.n_queries), np.diff(groups.qptr))
    differs = groups.grades != groups.grades[groups.qptr[row_query]]  # NaN differs: checked
    return any(len(judged_pairs(groups.subset(np.array([q])), k)) > 0
               for q in np.unique(row_query[differs]))


def degenerate_reason(groups: QueryGroups, importance: np.ndarray, k: int,
                      n_folds: int) -> str | None:
    """Why the problem cannot be tuned (the weights stay relevance only), or None."""
    if importance.sum() <= 0:
        return "no business term has a positive weight: relevance only"
    if not has_judged_pairs(groups, k):
        return ("no judged pairs of different grades (every query has one candidate or all "
                "its grades equal): relevance only")
    if groups.n_queries < 2 * n_folds:
        return (f"{groups.n_queries} queries are too few to check weights by {n_folds}-fold "
                "cross-validation: relevance only")
    return None


def tune_weights(
    groups: QueryGroups, importance: np.ndarray, *,
    k: int = 10, max_ndcg_drop: float = DEFAULT_MAX_NDCG_DROP, n_folds: int = 3,
    max_weight: float = 3.0, seed: int = 0, progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Strongest weights along :data:`STRENGTH_PATH` reached by the fixed-sequence
    non-inferiority test (:func:`objectives.guardrail.fixed_sequence`) on out-of-fold NDCG@k.

    The convex program is a surrogate (uniform weights, no guardrails); the check is exact: it
    ranks with the served formula, category rules, demotions and business slots included.

    ``groups`` are the tuning queries (relevance scored by models that did not train on them).
    ``importance`` says which terms count and how much (the merchandiser's current weights);
    terms with importance 0, and terms constant on every pool (with a note), stay at 0; the
    others are bounded by ``max_weight``. Degenerate problems (:func:`degenerate_reason`) and
    too few queries (:data:`objectives.guardrail.MIN_TUNING_QUERIES`) return zero weights
    (relevance only) with a message saying why. Programs hold at most :data:`MAX_PAIRS`
    judged pairs (a seeded uniform sample), which keeps a Home Depot training fold well under
    a minute.
    """
    importance = np.asarray(importance, dtype=np.float64).copy()
    zeros = np.zeros_like(importance)
    useful = informative_terms(groups.qptr, groups.terms)
    notes = [f"{name} has no information (constant or missing on every judged pool): "
             "weight 0" for name, informative, wanted in
             zip(_term_names(importance.shape[0]), useful, importance > 0, strict=True)
             if wanted and not informative]
    common = {"notes": notes, "max_ndcg_drop": max_ndcg_drop, "n_queries": groups.n_queries}
    reason = degenerate_reason(groups, importance, k, n_folds)
    importance[~useful] = 0.0
    if not reason and importance.sum() <= 0:
        reason = "no business term with a positive weight carries information: relevance only"
    reason = reason or too_few_queries(groups.n_queries)
    if reason:
        return TuneResult(zeros, 0.0, reason, **common)
    cv = _CrossValidated(groups, importance / importance.sum(),
                         fold_of_queries(groups.n_queries, n_folds, seed), k, max_weight, seed)
    # The baseline is relevance alone (LambdaMART), the ranking the guardrail compares with; so
    # what the weights file costs beyond it (category rules included) counts against the check.
    base_ndcg = groups.ndcg(groups.z_relevance(), k)
    base = float(finite_mean(base_ndcg))
    trace: list[dict[str, float]] = []
    certificates: list[NonInferiority] = []
    for eps, scale in STRENGTH_PATH:  # the fixed sequence: stop at the first refusal
        ndcg = cv.out_of_fold_ndcg(eps, scale)
        cert = non_inferiority(ndcg, base_ndcg, max_ndcg_drop, seed=seed)
        certificates.append(cert)
        trace.append({"epsilon": eps, "scale": scale, "ndcg": float(finite_mean(ndcg)),
                      "strength": cv.strength(eps, scale), "diff": cert.diff,
                      "lower": cert.lower, "drop": cert.drop, "drop_bound": cert.drop_bound,
                      "accepted": float(cert.certified)})
        if progress:
            progress(f"epsilon={eps:.4f} scale={scale:.4f}: out-of-fold NDCG@{k} "
                     f"{trace[-1]['ndcg']:.4f} ({cert.diff:+.4f}; drop bound "
                     f"{100 * cert.drop_bound:.2f}% vs {100 * max_ndcg_drop:.2f}%): "
                     f"{'accepted' if cert.certified else 'refused, stop'}")
        if not cert.certified:
            break
    last = fixed_sequence(certificates)
    if last < 0:
        return TuneResult(zeros, 0.0, "even the weakest setting could not be certified within "
                          f"max_ndcg_drop {max_ndcg_drop:g}: relevance only", base, base, trace,
                          **common)
    eps, scale = STRENGTH_PATH[last]
    weights = capped(cv.weights(-1, eps, scale), trace[last]["strength"])
    by_k = {c: certificates[last] if c == k else
            non_inferiority(cv.out_of_fold_ndcg(eps, scale, c),
                            groups.ndcg(groups.z_relevance(), c), max_ndcg_drop, seed=seed)
            for c in sorted({*VERDICT_CUTOFFS, k})}
    return TuneResult(weights, eps,
                      f"tuned at epsilon={eps:.4f}, scale {scale:.4f}: out-of-fold NDCG@{k} "
                      f"drop certified at most {100 * certificates[last].drop_bound:.2f}% "
                      f"(allowed {100 * max_ndcg_drop:.2f}%) by {n_folds}-fold "
                      f"cross-validation on {groups.n_queries} queries; the weights are solved "
                      "again on all of them and held to the certified strength",
                      base, trace[last]["ndcg"], trace, certificate=certificates[last],
                      scale=scale, by_k=by_k, **common)


def capped(weights: np.ndarray, strength: float) -> np.ndarray:
    """``weights`` scaled down, if needed, so their sum is at most ``strength``.

    The certificate is for the fold solutions (each solved without the queries it is measured
    on); the served weights are solved again on all tuning queries at the same setting, and a
    linear program's solution can jump between vertices when the data change. Holding the
    refit to the certified strength (the fold solutions' mean sum) keeps what is served no
    stronger than what was certified. Rounded down, so rounding cannot push it over."""
    total = float(weights.sum())
    if total <= strength or total <= 0:
        return weights
    scale = 10.0 ** WEIGHT_DECIMALS
    return np.floor(weights * (strength / total) * scale) / scale


def _term_names(n: int) -> tuple[str, ...]:
    """Names for notes: the first ``n`` configured terms (terms are only ever appended, so a
    narrower matrix holds the older terms), else term_0, ..."""
    return TERM_NAMES[:n] if n <= len(TERM_NAMES) else tuple(f"term_{i}" for i in range(n))


@dataclass(frozen=True)
class FrontierPoint:
    """Weights solved on all tuning queries at one point of the strength path."""

    epsilon: float
    scale: float
    weights: np.ndarray


def frontier(groups: QueryGroups, importance: np.ndarray, *, k: int = 10,
             max_weight: float = 3.0, seed: int = 0,
             path: tuple[tuple[float, float], ...] = STRENGTH_PATH) -> list[FrontierPoint]:
    """The weights at every point of ``path``, to be scored on held-out queries: the
    NDCG-vs-business Pareto frontier the tuner chooses from. Empty for degenerate problems."""
    importance = np.asarray(importance, dtype=np.float64)
    if degenerate_reason(groups, importance, k, n_folds=1):
        return []
    cv = _CrossValidated(groups, importance / importance.sum(),
                         np.zeros(groups.n_queries, np.int64), k, max_weight, seed)
    return [FrontierPoint(eps, scale, cv.weights(-1, eps, scale)) for eps, scale in path]
