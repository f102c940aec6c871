"""Hierarchical shrinkage priors: product -> brand -> category -> catalog, strengths from the data.

A product's business quantity (return rate, sales velocity, CLV affinity) is the mean of its own
observations (units or buyers returning, units sold per day, buyers' CLV). With few observations
that mean is noise; with none (a new product) there is nothing. Each product is therefore
shrunk toward its brand's estimate, each brand toward its category's, each category toward the
catalog's, by how much the data say the levels differ (normal-normal empirical Bayes):

    product   x_p = own mean of n_p observations,  sampling variance v_p = sigma^2 / n_p
    estimate  theta_p = (n_p x_p + m mu_brand) / (n_p + m),   m = sigma^2 / tau2_product

and alike one level up, with a node's estimate the precision-weighted mean of its children and
its variance the inverse of their summed precision. ``sigma^2`` is the pooled within-product
variance of the observations; ``tau2`` of each level (the variance of the true child means
around their parent's) is the method-of-moments estimator of DerSimonian and Laird, pooled
over the parents:

    Q = sum_g sum_i w_i (x_i - xbar_g)^2,  w_i = 1 / v_i,  xbar_g = sum w x / sum w in g
    tau2 = max(0, (Q - sum_g (k_g - 1)) / sum_g (W_g - sum_i w_i^2 / W_g))

With ``v_p = sigma^2 / n_p`` this is the nested one-way ANOVA estimator of the product variance
component (E[MSB] = sigma^2 + n0 tau2), the one ``clv.segments.product_clv_affinity`` uses
without the hierarchy. Nothing is set by hand: the pseudo-count ``m`` is estimated, floored at
:data:`MIN_PSEUDO_COUNT` (one observation never outweighs a population). A level whose children
differ no more than noise gets ``tau2 = 0``: its members take the parent's value.

A product with no observations (n = 0) gets its brand's estimate, a brand without data its
category's, a category without data the catalog's; ``from_prior`` marks them. A missing key
(no brand, no category) is a group of its own at that level, named :data:`MISSING`.

Pure numpy/pandas; no state beyond the returned :class:`ShrinkageFit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: The pseudo-count is never below this: one observation never outweighs its brand.
MIN_PSEUDO_COUNT = 1.0
#: The group name of a missing key (a product without brand, a brand without category).
MISSING = "(missing)"
_SEP = "\x1f"


@dataclass(frozen=True)
class ShrinkageFit:
    """Shrunk estimates in product order and what the data said about each level."""

    estimate: np.ndarray  # float64, one per product
    from_prior: np.ndarray  # bool: the product had no observation of its own
    sigma2: float  # pooled within-product variance of one observation
    tau2: dict[str, float]  # per level ("product", then the group levels inner to outer)
    pseudo_count: float  # m = sigma2 / tau2["product"], floored (inf: no product signal)
    catalog_mean: float
    group_estimates: dict[str, dict[str, float]] = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        """The fitted hyperparameters as plain JSON types (no per-product arrays)."""
        return {"sigma2": self.sigma2, "tau2": dict(self.tau2),
                "pseudo_count": None if np.isinf(self.pseudo_count) else self.pseudo_count,
                "catalog_mean": self.catalog_mean,
                "groups": {level: len(v) for level, v in self.group_estimates.items()},
                "products_from_prior": int(self.from_prior.sum())}


def grouped_tau2(x: np.ndarray, v: np.ndarray, parent: np.ndarray) -> float:
    """Between-child variance around the parent means (DerSimonian-Laird, pooled over parents).

    ``x`` child estimates, ``v`` their sampling variances (> 0), ``parent`` integer parent codes.
    0 when no parent has two children or the children vary no more than their noise.
    """
    w = 1.0 / v
    frame = pd.DataFrame({"g": parent, "w": w, "wx": w * x, "w2": w * w, "one": 1.0})
    by = frame.groupby("g", sort=False).sum()
    by = by[by["one"] >= 2]
    if by.empty:
        return 0.0
    mean_of = pd.Series(by["wx"] / by["w"], index=by.index)
    xbar = mean_of.reindex(parent).to_numpy()
    keep = np.isfinite(xbar)
    q = float((w[keep] * (x[keep] - xbar[keep]) ** 2).sum())
    df = float((by["one"] - 1.0).sum())
    c = float((by["w"] - by["w2"] / by["w"]).sum())
    return max(0.0, (q - df) / c) if c > 0 else 0.0


def pooled_within_variance(n: np.ndarray, mean: np.ndarray, var: np.ndarray) -> float:
    """sum (n_p - 1) s_p^2 / sum (n_p - 1) over products with two or more observations; when
    there are none, the variance of the single observations around their mean."""
    ok = (n >= 2) & np.isfinite(var)
    dof = float((n[ok] - 1.0).sum())
    if dof > 0:
        return float(((n[ok] - 1.0) * var[ok]).sum() / dof)
    known = (n >= 1) & np.isfinite(mean)
    return float(np.var(mean[known])) if known.sum() >= 2 else 0.0


def shrink_hierarchical(
    groups: pd.DataFrame | Sequence[Sequence[object]],
    n: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    *,
    levels: Sequence[str] | None = None,
) -> ShrinkageFit:
    """Shrunk estimate of every product (see the module docstring).

    ``groups``: one row per product, columns from the outermost level to the innermost (for
    example ``category`` then ``brand``); a brand is identified by its full path, so one brand
    name in two categories is two groups. ``n``: observations per product (0 = new); ``mean``:
    their mean (ignored where n = 0); ``var``: their sample variance (ddof=1; NaN where n < 2).
    """
    frame = pd.DataFrame(groups).reset_index(drop=True)
    names = list(levels) if levels is not None else [str(c) for c in frame.columns]
    n = np.asarray(n, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    if not (len(frame) == len(n) == len(mean) == len(var)):
        raise ValueError(f"lengths differ: {len(frame)} group rows, {len(n)} counts, "
                         f"{len(mean)} means, {len(var)} variances")
    has = (n > 0) & np.isfinite(mean)
    # Node paths: level 0 is the outermost group; paths make inner names unique per parent.
    paths: list[np.ndarray] = []
    path = np.full(len(frame), "", dtype=object)
    for col in frame.columns:
        part = frame[col].astype(object).where(frame[col].notna(), MISSING).astype(str)
        path = path + _SEP + part.to_numpy(dtype=object)
        paths.append(path.copy())

    sigma2 = pooled_within_variance(n, mean, var)
    if not has.any():
        return ShrinkageFit(np.full(len(n), np.nan), np.ones(len(n), bool), sigma2, {},
                            float("inf"), float("nan"), {})
    sigma2_eff = sigma2 if sigma2 > 0 else 1e-12

    # Bottom-up: products (children) into their innermost group, then groups into parents.
    x, v = mean[has], sigma2_eff / n[has]
    child_parent = paths[-1][has] if paths else np.full(int(has.sum()), "", dtype=object)
    tau2: dict[str, float] = {}
    nodes: list[pd.DataFrame] = []  # per group level, inner to outer: x, v, tau2 of its children
    level_names = ["product", *reversed(names)]
    for depth in range(len(paths), -1, -1):
        codes, uniques = pd.factorize(child_parent)
        t2 = grouped_tau2(x, v, codes) if depth > 0 else _root_tau2(x, v)
        tau2[level_names[len(paths) - depth]] = t2
        w = 1.0 / (t2 + v)
        sw = np.bincount(codes, weights=w, minlength=len(uniques))
        node_x = np.bincount(codes, weights=w * x, minlength=len(uniques)) / sw
        node = pd.DataFrame({"x": node_x, "v": 1.0 / sw, "tau2_children": t2},
                            index=pd.Index(uniques, dtype=object))
        nodes.append(node)
        if depth == 0:
            break
        x, v = node["x"].to_numpy(), node["v"].to_numpy()
        child_parent = _parent_of(node.index.to_numpy(dtype=object))

    # Top-down: the root is the precision-weighted mean of the categories; each node's
    # posterior mean shrinks its own data toward its parent's posterior mean.
    root = nodes[-1]
    catalog_mean = float(root["x"].iloc[0])
    estimates: dict[str, dict[str, float]] = {}
    parent_est: dict[str, float] = {"": catalog_mean}
    for level_idx in range(len(paths)):
        node = nodes[len(nodes) - 2 - level_idx]  # this level's nodes (children of the level above)
        t2_here = nodes[len(nodes) - 1 - level_idx]["tau2_children"].iloc[0]
        est = {}
        for key, row in node.iterrows():
            prior = parent_est[_parent_of(np.array([key], dtype=object))[0]]
            est[key] = _posterior(row["x"], row["v"], prior, t2_here)
        for key in pd.unique(paths[level_idx]):
            if key not in est:  # a group without data: its parent's estimate
                est[key] = parent_est[_parent_of(np.array([key], dtype=object))[0]]
        estimates[names[level_idx]] = est
        parent_est = est

    prior_of_product = (pd.Series(parent_est).reindex(paths[-1]).to_numpy(dtype=np.float64)
                        if paths else np.full(len(n), catalog_mean))
    t2p = tau2["product"]
    pseudo = max(sigma2 / t2p, MIN_PSEUDO_COUNT) if t2p > 0 else float("inf")
    own = np.where(has, mean, 0.0)
    if np.isinf(pseudo):
        estimate = prior_of_product.copy()
    else:
        estimate = np.where(has, (n * own + pseudo * prior_of_product) / (n + pseudo),
                            prior_of_product)
    readable = {level: {k.replace(_SEP, "/").lstrip("/"): val for k, val in est.items()}
                for level, est in estimates.items()}
    return ShrinkageFit(estimate, ~has, float(sigma2), tau2, float(pseudo), catalog_mean,
                        readable)


def _root_tau2(x: np.ndarray, v: np.ndarray) -> float:
    return grouped_tau2(x, v, np.zeros(len(x), dtype=np.int64))


def _parent_of(paths: np.ndarray) -> np.ndarray:
    """The parent path of each node path ("" for a top-level group)."""
    return np.array([p.rsplit(_SEP, 1)[0] for p in paths], dtype=object)


def _posterior(x: float, v: float, prior: float, tau2: float) -> float:
    """Normal-normal posterior mean of a node with data mean x (variance v) and prior
    N(prior, tau2); tau2 = 0 means the node cannot be told from its parent."""
    if tau2 <= 0:
        return float(prior)
    return float((x / v + prior / tau2) / (1.0 / v + 1.0 / tau2))


def product_stats(product_ids: Sequence[str], keys: pd.Series | np.ndarray,
                  values: pd.Series | np.ndarray) -> pd.DataFrame:
    """n, mean and sample variance (ddof=1) of the observations of each product, in
    ``product_ids`` order (n = 0, mean and var NaN for products without observations)."""
    obs = pd.DataFrame({"p": np.asarray(keys).astype(str),
                        "y": np.asarray(values, dtype=np.float64)})
    stats = obs.groupby("p")["y"].agg(["size", "mean", "var"])
    out = stats.reindex(pd.Index([str(p) for p in product_ids]))
    return pd.DataFrame({"n": out["size"].fillna(0).to_numpy(dtype=np.float64),
                         "mean": out["mean"].to_numpy(dtype=np.float64),
                         "var": out["var"].to_numpy(dtype=np.float64)},
                        index=out.index)


def catalog_levels(catalog: pd.DataFrame) -> pd.DataFrame:
    """The group levels of a catalog, outermost first: the top category segment, the full
    category path (``a/b/c``), the brand. Absent columns are missing keys (:data:`MISSING`)."""
    n = len(catalog)
    category = (catalog["category"].astype(object) if "category" in catalog.columns
                else pd.Series([None] * n, index=catalog.index, dtype=object))
    top = category.where(category.isna(), category.astype(str).str.split("/").str[0])
    brand = (catalog["brand"].astype(object) if "brand" in catalog.columns
             else pd.Series([None] * n, index=catalog.index, dtype=object))
    return pd.DataFrame({"top": top.to_numpy(), "category": category.to_numpy(),
                         "brand": brand.to_numpy()})


def fill_from_priors(catalog: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray,
                                                                  ShrinkageFit | None]:
    """A catalog column with its missing values replaced by the product's brand prior.

    A catalog gives one value per product and no counts behind it, so a product's own value is
    kept as given; what is estimated is how far a brand's products tell about a new one. The
    units shrunk are brands within their category path (observations: their products' values),
    toward the category path, the top category and the catalog, with :func:`shrink_hierarchical`
    (pseudo-count in products, from the data). A product missing the value gets its brand's
    estimate, its category's when the brand has no value at all. Returns the filled values,
    the mask of values that came from a prior, and the fit (None when nothing was missing or
    no product has a value: then nothing is filled).
    """
    values = (catalog[column].to_numpy(np.float64) if column in catalog.columns
              else np.full(len(catalog), np.nan))
    missing = ~np.isfinite(values)
    if not missing.any() or missing.all():
        return values, np.zeros(len(values), bool), None
    levels = catalog_levels(catalog)
    keys = levels.astype(object).where(levels.notna(), MISSING).astype(str)
    unit = keys["category"] + _SEP + keys["brand"]
    stats = product_stats(pd.unique(unit), unit[~missing].to_numpy(), values[~missing])
    units = stats.index.to_series().str.split(_SEP, expand=True)
    top_of = dict(zip(unit, keys["top"], strict=True))
    groups = pd.DataFrame({"top": [top_of[u] for u in stats.index], "category": units[0]})
    fit = shrink_hierarchical(groups, stats["n"].to_numpy(), stats["mean"].to_numpy(),
                              stats["var"].to_numpy())
    prior = pd.Series(fit.estimate, index=stats.index).reindex(unit).to_numpy()
    return np.where(missing, prior, values), missing, fit


#: Catalog columns filled from priors before the terms are computed, and the term each feeds.
#: Only sales velocity: on UCI Online Retail (docs/cold_start.md) the catalog-value fill of
#: daily_sales beat the catalog mean and today's neutral value for new products, but the fill
#: of return_rate lost to today's neutral value (MAE 0.0167 vs 0.0115, MSE 0.00090 vs 0.00088):
#: per-product return rates from few buyers make noisy brand means. ``return_rate`` -> ``returns``
#: can be added here once a catalog carries the counts behind its rates.
PRIOR_COLUMNS = {"daily_sales": "inventory"}


def catalog_with_priors(catalog: pd.DataFrame, clv_buyers: np.ndarray | None = None, *,
                        columns: dict[str, str] | None = None
                        ) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """A copy of ``catalog`` with the missing values of ``columns`` (column -> term; default
    :data:`PRIOR_COLUMNS`: sales velocity) filled from their brand priors
    (:func:`fill_from_priors`), the (n, len(TERM_NAMES)) bool mask of term values that come
    from a prior, and one line per filled column for the build log.

    ``clv`` is marked where ``clv_buyers`` (from ``clv.segments.product_clv_affinity``) is 0:
    a product without buyers gets the catalog's shrinkage target. ``inventory`` is marked only
    where the stock is known (without stock the term stays neutral). ``margin`` never is.
    """
    from objectives.config import TERM_NAMES

    out = catalog.copy()
    flags = np.zeros((len(catalog), len(TERM_NAMES)), dtype=bool)
    notes = []
    for column, term in (PRIOR_COLUMNS if columns is None else columns).items():
        filled, from_prior, fit = fill_from_priors(catalog, column)
        if fit is None:
            continue
        out[column] = filled
        if term == "inventory" and "stock" in catalog.columns:
            from_prior = from_prior & np.isfinite(catalog["stock"].to_numpy(np.float64))
        flags[:, TERM_NAMES.index(term)] = from_prior
        pc = "inf" if np.isinf(fit.pseudo_count) else f"{fit.pseudo_count:.1f}"
        notes.append(f"{column}: {int(from_prior.sum()):,} missing values from brand/category "
                     f"priors (estimated pseudo-count {pc} products per brand)")
    if clv_buyers is not None:
        flags[:, TERM_NAMES.index("clv")] = np.asarray(clv_buyers) == 0
    return out, flags, notes
