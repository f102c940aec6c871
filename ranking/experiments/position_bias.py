"""Examination propensities by position: how much more often a product is looked at in place 1
than in place k, estimated from logs, with intervals.

Under the position-based click model (PBM), ``P(click | q, d, k) = theta_k * gamma_{q,d}``: a
click needs examination (depends on the position only) and attraction (depends on the query
and product only). Clicks alone cannot separate the two, except where the position of a product
was moved independently of its relevance. Three estimators:

- :func:`from_randomized` reads rows whose placement was randomized uniformly over a set of
  positions (a RandTop-k shuffle of a small share of searches, or a uniform-random logging
  policy such as the Open Bandit ``random`` log). There, relevance is independent of position,
  so ``CTR_k / CTR_ref = theta_k / theta_ref``, with a delta-method interval clustered by
  search (or customer).
- :func:`em_pbm` fits the PBM by expectation-maximization on ordinary, non-randomized logs.
  It is identified by products that were shown at several positions (different arms, days or
  queries moving them); intervals come from a bootstrap over clusters.

- :func:`harvest` is intervention harvesting (Agarwal, Zaitsev, Wang, Li, Najork and
  Joachims, "Estimating Position Bias without Intrusive Interventions", WSDM 2019): where
  experiment arms (randomized between customers) ranked the same (query, product) at different
  positions, the arm assignment is the intervention. Intervals by a bootstrap over queries.

All report ``theta_k / theta_ref`` (the reference is the first position unless given): the
absolute scale of examination is not identified by clicks, only its ratios.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sstats

from clv.errors import DataError
from ranking.experiments.stats import LEVEL

_Z2 = float(sstats.norm.ppf(0.5 + LEVEL / 2))


@dataclass(frozen=True)
class Examination:
    """Relative examination ``theta_k / theta_ref`` per position, with intervals."""

    method: str
    positions: np.ndarray
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    reference: int
    level: float = LEVEL

    def at(self, positions: object) -> np.ndarray:
        """``theta_k / theta_ref`` for each given position; unknown positions are refused."""
        pos = np.asarray(positions)
        idx = np.searchsorted(self.positions, pos)
        idx = np.clip(idx, 0, self.positions.size - 1)
        bad = self.positions[idx] != pos
        if np.any(bad):
            raise DataError(f"no examination estimate for position {int(pos[bad][0])}; "
                            f"estimated for positions {self.positions.tolist()}")
        return self.value[idx]

    def to_dict(self) -> dict[str, object]:
        return {"method": self.method, "reference": int(self.reference), "level": self.level,
                "positions": [
                    {"position": int(p), "examination": float(v), "low": float(lo),
                     "high": float(hi), "impressions": int(n), "clicks": int(c)}
                    for p, v, lo, hi, n, c in zip(self.positions, self.value, self.low,
                                                  self.high, self.impressions, self.clicks,
                                                  strict=True)]}


def _arrays(position: object, click: object, source: str) -> tuple[np.ndarray, np.ndarray]:
    pos = np.asarray(position)
    clk = np.asarray(click, dtype=np.float64)
    if pos.shape != clk.shape or pos.ndim != 1:
        raise DataError("positions and clicks must be 1-d arrays of one length", file=source)
    if pos.size == 0:
        raise DataError("no logged rows to estimate examination from", file=source)
    if not np.issubdtype(pos.dtype, np.integer) or np.any(pos < 1):
        raise DataError("positions must be integers >= 1", file=source)
    if np.any((clk != 0) & (clk != 1)):
        row = int(np.flatnonzero((clk != 0) & (clk != 1))[0])
        raise DataError(f"row {row + 1}: click must be 0 or 1", file=source, column="click",
                            value=clk[row])
    return pos.astype(np.int64), clk


def from_randomized(position: object, click: object, *, cluster: object = None,
                    reference: int | None = None, source: str = "<logs>") -> Examination:
    """Examination ratios from rows whose position was randomized independently of relevance.

    The interval of ``CTR_k / CTR_ref`` is delta-method on the log scale over clusters (each row
    its own cluster when ``cluster`` is None): the influence of cluster ``c`` on
    ``log A_k - log B_k - log A_ref + log B_ref`` summed, ``Var = n/(n-1) sum phi_c^2``.
    A position with no click has ratio 0 and no finite upper bound on the log scale; its upper
    bound is reported from the rule of three on its clicks instead.
    """
    pos, clk = _arrays(position, click, source)
    positions = np.unique(pos)
    ref = int(positions[0] if reference is None else reference)
    if ref not in positions:
        raise DataError(f"reference position {ref} was never logged", file=source)
    if cluster is None:
        inverse = np.arange(pos.size)
    else:
        ids = np.asarray(cluster)
        if ids.shape != pos.shape:
            raise DataError("one cluster id per logged row is needed", file=source)
        _, inverse = np.unique(ids, return_inverse=True)
    k = int(inverse.max()) + 1

    def totals(k_pos: int) -> tuple[np.ndarray, np.ndarray]:
        m = pos == k_pos
        return (np.bincount(inverse, weights=np.where(m, clk, 0.0), minlength=k),
                np.bincount(inverse, weights=m.astype(np.float64), minlength=k))

    a_ref, b_ref = totals(ref)
    if a_ref.sum() == 0:
        raise DataError(f"no click at the reference position {ref}: the ratios are "
                        "not identified; choose another reference or collect more traffic",
                        file=source)
    values, lows, highs, imps, clicks = [], [], [], [], []
    for p in positions:
        a, b = totals(int(p))
        ctr = a.sum() / b.sum()
        ctr_ref = a_ref.sum() / b_ref.sum()
        ratio = ctr / ctr_ref
        if p == ref:
            lo = hi = 1.0
        elif a.sum() == 0:
            lo = 0.0
            hi = (3.0 / b.sum()) / ctr_ref  # rule of three for a zero count
        else:
            phi = a / a.sum() - b / b.sum() - a_ref / a_ref.sum() + b_ref / b_ref.sum()
            var = k / (k - 1) * float(np.sum(phi * phi)) if k > 1 else float("nan")
            half = _Z2 * np.sqrt(var)
            lo, hi = ratio * np.exp(-half), ratio * np.exp(half)
        values.append(ratio)
        lows.append(lo)
        highs.append(hi)
        imps.append(b.sum())
        clicks.append(a.sum())
    return Examination("randomized", positions, np.array(values), np.array(lows),
                       np.array(highs), np.array(imps, dtype=np.int64),
                       np.array(clicks, dtype=np.int64), ref)


def _em(pos_idx: np.ndarray, pair_idx: np.ndarray, clk: np.ndarray, weight: np.ndarray,
        n_pos: int, n_pair: int, iterations: int, tol: float) -> np.ndarray:
    """Weighted PBM EM (Chuklin, Markov and de Rijke, Click Models for Web Search, ch. 4)."""
    theta = np.full(n_pos, 0.5)
    gamma = np.full(n_pair, 0.5)
    n_k = np.bincount(pos_idx, weights=weight, minlength=n_pos)
    n_qd = np.bincount(pair_idx, weights=weight, minlength=n_pair)
    n_k[n_k == 0] = 1.0
    n_qd[n_qd == 0] = 1.0
    for _ in range(iterations):
        t = theta[pos_idx]
        g = gamma[pair_idx]
        denom = np.maximum(1.0 - t * g, 1e-12)
        e_exam = clk + (1 - clk) * t * (1 - g) / denom  # P(examined | observation)
        e_attr = clk + (1 - clk) * (1 - t) * g / denom  # P(attracted | observation)
        new_theta = np.bincount(pos_idx, weights=weight * e_exam, minlength=n_pos) / n_k
        new_gamma = np.bincount(pair_idx, weights=weight * e_attr, minlength=n_pair) / n_qd
        delta = max(np.max(np.abs(new_theta - theta)), np.max(np.abs(new_gamma - gamma)))
        theta, gamma = new_theta, new_gamma
        if delta < tol:
            break
    return theta


def em_pbm(position: object, click: object, item: object, *, cluster: object = None,
           reference: int | None = None, iterations: int = 500, tol: float = 1e-7,
           bootstrap: int = 100, seed: int = 0, source: str = "<logs>") -> Examination:
    """Examination ratios by EM under the position-based model, bootstrap intervals.

    ``item`` identifies what carries the attraction: a (query, product) key for search logs, a
    product (or product x context) for recommendation slots. Rows are resampled by cluster
    (Poisson(1) weights per cluster, seeded), and the interval is the percentile interval of
    the resampled ratios.
    """
    pos, clk = _arrays(position, click, source)
    items = np.asarray(item)
    if items.shape != pos.shape:
        raise DataError("one item key per logged row is needed", file=source)
    positions, pos_idx = np.unique(pos, return_inverse=True)
    ref = int(positions[0] if reference is None else reference)
    if ref not in positions:
        raise DataError(f"reference position {ref} was never logged", file=source)
    r = int(np.flatnonzero(positions == ref)[0])
    _, pair_idx = np.unique(items, return_inverse=True)
    n_pair = int(pair_idx.max()) + 1
    ones = np.ones(pos.size)
    theta = _em(pos_idx, pair_idx, clk, ones, positions.size, n_pair, iterations, tol)
    if theta[r] <= 0:
        raise DataError(f"no click at the reference position {ref}", file=source)
    value = theta / theta[r]
    if cluster is None:
        c_idx = np.arange(pos.size)
    else:
        _, c_idx = np.unique(np.asarray(cluster), return_inverse=True)
    n_c = int(c_idx.max()) + 1
    rng = np.random.default_rng(seed)
    draws = np.empty((bootstrap, positions.size))
    for b in range(bootstrap):
        w = rng.poisson(1.0, n_c).astype(np.float64)[c_idx]
        t = _em(pos_idx, pair_idx, clk, w, positions.size, n_pair, iterations, tol)
        draws[b] = t / t[r] if t[r] > 0 else np.nan
    alpha = (1 - LEVEL) / 2
    low = np.nanquantile(draws, alpha, axis=0) if bootstrap else np.full_like(value, np.nan)
    high = np.nanquantile(draws, 1 - alpha, axis=0) if bootstrap else np.full_like(value, np.nan)
    imps = np.bincount(pos_idx, minlength=positions.size)
    clicks = np.bincount(pos_idx, weights=clk, minlength=positions.size).astype(np.int64)
    return Examination("em", positions, value, low, high, imps, clicks, ref)


def _harvest_ratios(pos_idx: np.ndarray, pair_idx: np.ndarray, clk: np.ndarray,
                    inv_pi: np.ndarray, weight: np.ndarray, n_pos: int, r: int,
                    placed_by: np.ndarray, iterations: int = 5000,
                    tol: float = 1e-10) -> np.ndarray:
    """Pooled ``theta_k / theta_ref`` from every harvested position pair (one bootstrap draw).

    For positions ``k != k'``, the interventional set ``S_{k,k'}`` holds the (context, product)
    pairs one arm showed at ``k`` and another arm at ``k'``; over it, the propensity-weighted
    clicks at each position, ``c_k^{k,k'} = sum 1[clicked] / pi(k | q, d)`` with ``pi`` the
    arms' share-weighted chance of that placement, estimate ``theta_k x`` one relevance sum
    ``R_{k,k'}``, so ``c_k / c_k'`` estimates ``theta_k / theta_k'``. All pairs are pooled by
    maximum likelihood under ``c_k ~ Poisson(theta_k R_{k,k'})``: profiling out ``R`` leaves a
    Bradley-Terry likelihood (a click of pair ``{k, k'}`` falls at ``k`` with probability
    ``theta_k / (theta_k + theta_k')``), fitted by Hunter's MM iteration. One pair gives the
    plain ratio; zero counts need no special case; a chain of pairs reaches positions never
    paired with the reference.
    """
    wc = weight * clk * inv_pi
    C = np.zeros((n_pos, n_pos))  # C[a, b]: weighted clicks at a over S_{a,b}
    for a in range(n_pos):
        for b in range(a + 1, n_pos):
            at_a_by, at_b_by = placed_by[:, :, a], placed_by[:, :, b]  # (arm, pair)
            n_a, n_b = at_a_by.sum(axis=0), at_b_by.sum(axis=0)
            one_arm = (n_a == 1) & (n_b == 1) & np.all(at_a_by == at_b_by, axis=0)
            in_s = ((n_a > 0) & (n_b > 0) & ~one_arm)[pair_idx]  # two arms placed it at a, b
            C[a, b] = float(np.sum(wc[in_s & (pos_idx == a)]))
            C[b, a] = float(np.sum(wc[in_s & (pos_idx == b)]))
    N = C + C.T
    out = np.full(n_pos, np.nan)
    linked = np.zeros(n_pos, bool)
    linked[r] = True
    for _ in range(n_pos):  # positions reached from the reference through harvested pairs
        linked |= (N[linked] > 0).any(axis=0)
    idx = np.flatnonzero(linked)
    if idx.size < 2:
        out[r] = 1.0
        return out
    Cs, Ns = C[np.ix_(idx, idx)], N[np.ix_(idx, idx)]
    wins = Cs.sum(axis=1)
    theta = np.ones(idx.size)
    for _ in range(iterations):
        denom = (Ns / (theta[:, None] + theta[None, :])).sum(axis=1)
        new = np.where(denom > 0, wins / np.maximum(denom, 1e-300), 0.0)
        ref = new[idx == r][0]
        if ref <= 0:
            return out
        new /= ref
        done = np.max(np.abs(new - theta)) < tol
        theta = new
        if done:
            break
    out[idx] = theta
    return out


def harvest(position: object, click: object, item: object, context: object, arm: object, *,
            shares: dict[str, float] | None = None, reference: int | None = None,
            bootstrap: int = 100, seed: int = 0, source: str = "<logs>") -> Examination:
    """Examination ratios by intervention harvesting across arms (module docs).

    ``item`` is the product, ``context`` what must be equal for two placements to be compared
    (the query, with the customer's segment where segments get their own weights), ``arm``
    the randomized policy that served the row (rows of one search share it). A policy's
    placement of a (context, product) is read from the logs: ``P_i(k | q, d)`` = the share of
    arm ``i``'s searches of ``q`` that showed ``d`` at ``k``; ``pi(k | q, d) = sum_i share_i
    P_i(k | q, d)``. ``shares`` are the arms' traffic shares (Agarwal et al.'s ``n_i / N``);
    by default each arm's share of the context's own searches (a search counted by its row at
    the top position), which stays right where the split of a context's searches between arms
    drifted from the nominal shares (few customers, segments with their own splits).

    The interval is the percentile interval of a bootstrap over contexts (Poisson(1) weights
    per context, seeded); placements (``pi``) stay those of the full logs.
    """
    pos, clk = _arrays(position, click, source)
    items, ctx, arms = (np.asarray(item).astype(str), np.asarray(context).astype(str),
                        np.asarray(arm).astype(str))
    if not (items.shape == ctx.shape == arms.shape == pos.shape):
        raise DataError("one item, context and arm per logged row is needed", file=source)
    arm_names, arm_idx = np.unique(arms, return_inverse=True)
    if arm_names.size < 2:
        raise DataError(f"intervention harvesting needs logs of at least two arms (policies "
                        f"randomized between customers); these have {arm_names.size}: "
                        f"{arm_names.tolist()}", file=source)
    positions, pos_idx = np.unique(pos, return_inverse=True)
    ref = int(positions[0] if reference is None else reference)
    if ref not in positions:
        raise DataError(f"reference position {ref} was never logged", file=source)
    r = int(np.flatnonzero(positions == ref)[0])
    n_pos, n_arm = positions.size, arm_names.size
    # Searches per (arm, context): rows at the context's top position count one search each.
    _, ctx_idx = np.unique(ctx, return_inverse=True)
    n_ctx = int(ctx_idx.max()) + 1
    if shares is None:
        share = None
    else:
        missing = [a for a in arm_names if a not in shares]
        if missing:
            raise DataError(f"no share given for arm(s) {missing}", file=source)
        share = np.array([float(shares[a]) for a in arm_names])
        if np.any(share <= 0):
            raise DataError("arm shares must be > 0", file=source)
        share /= share.sum()
    searches = np.zeros((n_arm, n_ctx))
    top = pos == pos.min()
    np.add.at(searches, (arm_idx[top], ctx_idx[top]), 1.0)
    pair_keys = np.char.add(np.char.add(ctx, "\x1f"), items)
    uniq_pairs, pair_idx = np.unique(pair_keys, return_inverse=True)
    n_pair = uniq_pairs.size
    pair_ctx = np.zeros(n_pair, np.int64)
    pair_ctx[pair_idx] = ctx_idx
    # P_i(k | q, d): arm i's placements of (q, d) at k over its searches of q.
    placed = np.zeros((n_arm, n_pair, n_pos))
    np.add.at(placed, (arm_idx, pair_idx, pos_idx), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_i = placed / searches[:, pair_ctx][:, :, None]
    p_i = np.nan_to_num(p_i)
    # Arms that never logged a context say nothing about it: renormalize the shares there.
    if share is None:  # each arm's share of the context's searches
        share_seen = searches[:, pair_ctx] / searches[:, pair_ctx].sum(axis=0, keepdims=True)
    else:  # the arms' traffic shares, over the arms that logged the context
        share_seen = share[:, None] * (searches[:, pair_ctx] > 0)
        share_seen /= np.maximum(share_seen.sum(axis=0, keepdims=True), 1e-300)
    pi = np.einsum("ap,apk->pk", share_seen, p_i)  # (pair, pos)
    placed_by = placed > 0  # (arm, pair, position)
    inv_pi = 1.0 / np.maximum(pi[pair_idx, pos_idx], 1e-12)
    ones = np.ones(pos.size)
    value = _harvest_ratios(pos_idx, pair_idx, clk, inv_pi, ones, n_pos, r, placed_by)
    if np.all(np.isnan(np.delete(value, r))):
        raise DataError("no (query, product) was shown at two positions by the arms: nothing "
                        "to harvest; use randomized exploration or EM", file=source)
    rng = np.random.default_rng(seed)
    draws = np.empty((bootstrap, n_pos))
    for b in range(bootstrap):
        w = rng.poisson(1.0, n_ctx).astype(np.float64)[ctx_idx]
        draws[b] = _harvest_ratios(pos_idx, pair_idx, clk, inv_pi, w, n_pos, r, placed_by)
    alpha = (1 - LEVEL) / 2
    if bootstrap:
        with np.errstate(all="ignore"):
            low = np.nanquantile(draws, alpha, axis=0)
            high = np.nanquantile(draws, 1 - alpha, axis=0)
    else:
        low = high = np.full(n_pos, np.nan)
    keep = ~np.isnan(value)
    imps = np.bincount(pos_idx, minlength=n_pos)
    clicks = np.bincount(pos_idx, weights=clk, minlength=n_pos).astype(np.int64)
    return Examination("harvest", positions[keep], value[keep], low[keep], high[keep],
                       imps[keep], clicks[keep], ref)
