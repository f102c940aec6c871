"""From customer CLV to what the ranker uses: CLV quantiles (segments) and product CLV affinity.

The ranker only reads arrays at query time, so this module turns per-customer predictions into
plain arrays: a quantile per customer (the segment rules in the weights file are quantile
thresholds such as ``min_clv_quantile: 0.9``) and an affinity per product, saved as ``.npz``
without pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from clv.errors import DataError

if TYPE_CHECKING:  # pandas is imported where tables are built, not by the search process
    import pandas as pd

#: Prior strength (pseudo-buyers) is never below this: one buyer never outweighs the population.
MIN_PRIOR_STRENGTH = 1.0


class CustomerCLV(NamedTuple):
    """Per-customer arrays as saved by :func:`save_customers`, aligned by position."""

    customer_ids: np.ndarray
    clv: np.ndarray
    quantile: np.ndarray


def clv_quantiles(clv: np.ndarray) -> np.ndarray:
    """Empirical CDF rank of each value in [0, 1]: (average rank - 1) / (n - 1).

    The lowest value maps to 0 and the highest to 1, ties share their average rank, and
    exactly the top tenth of distinct customers sits at or above 0.9 (when no ties straddle the
    threshold). A single customer, or all-equal values, get 0.5: the middle, not an extreme.
    """
    import pandas as pd

    from clv.tables import raise_at_first

    values = np.asarray(clv, dtype=np.float64)
    raise_at_first(~np.isfinite(values), pd.Series(values), "clv", "<clv>",
                   "CLV values must be finite")
    n = len(values)
    if n < 2:
        return np.full(n, 0.5)
    # pandas' average rank equals scipy.stats.rankdata's; importing scipy.stats here would add
    # its slow import to every process that imports the ranker (the search service among them).
    ranks = pd.Series(np.asarray(values, dtype=np.float64)).rank(method="average").to_numpy()
    return (ranks - 1.0) / (n - 1.0)


def product_clv_affinity(
    tx: pd.DataFrame, customer_clv: pd.Series, product_ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Shrunk mean CLV of each product's buyers, and the buyer count, in ``product_ids`` order.

    Buyers of a product are the distinct customers whose net quantity of it is positive
    (returns netted out) and who have a CLV in ``customer_clv`` (indexed by customer_id).

    Estimator (empirical Bayes, normal-normal, method of moments). With product p's buyer
    mean ``mean_p`` over ``n_p`` buyers and ``global`` the mean CLV of all distinct buyers:

        affinity_p = (n_p * mean_p + m * global) / (n_p + m),   m = sigma_w^2 / tau^2

    where sigma_w^2 is the pooled within-product variance of buyer CLVs and tau^2 the
    between-product variance of the true means, both by the method of moments of the one-way
    random-effects ANOVA (see ``_prior_strength``). m is floored at 1; when tau^2 <= 0
    (product means differ no more than noise) every product gets ``global``, as do products
    without buyers. So a product with two
    high-CLV buyers moves toward the top only as far as two buyers justify. With no buyer at
    all (no known CLV among them) there is no global mean and every affinity is 0.
    """
    import pandas as pd

    from clv.tables import require_columns

    require_columns(tx, ("customer_id", "product_id", "quantity"), file="<transactions>")
    clv_of = customer_clv.astype(np.float64)
    clv_of.index = clv_of.index.astype(str)
    net = tx.groupby(["product_id", "customer_id"], sort=False)["quantity"].sum()
    pairs = net[net > 0].reset_index()[["product_id", "customer_id"]]
    pairs["clv"] = clv_of.reindex(pairs["customer_id"].astype(str)).to_numpy()
    pairs = pairs[pairs["clv"].notna()]

    wanted = pd.Index([str(p) for p in product_ids])
    if pairs.empty:
        return np.zeros(len(wanted)), np.zeros(len(wanted), dtype=np.int64)
    stats = pairs.groupby("product_id")["clv"].agg(["size", "mean", "var"])
    stats.index = stats.index.astype(str)
    global_mean = float(pairs.drop_duplicates("customer_id")["clv"].mean())
    strength = _prior_strength(pairs, stats)

    return _shrunk_affinity(stats, wanted, strength, global_mean)


def _prior_strength(pairs: pd.DataFrame, stats: pd.DataFrame) -> float:
    """m = sigma_w^2 / tau^2 from the one-way random-effects ANOVA (inf: no between signal).

    tau^2 = (MSB - MSW) / n0 with MSB = sum n_p (mean_p - grand)^2 / (P - 1), MSW the pooled
    within variance and n0 = (N - sum n_p^2 / N) / (P - 1): the method-of-moments estimator
    for unequal group sizes. Weighting by n_p keeps a product with two extreme buyers from
    inflating the between-product variance that decides how much it is shrunk.
    """
    sizes = stats["size"].to_numpy(dtype=np.float64)
    total = sizes.sum()
    dof_within = total - len(sizes)
    if dof_within > 0:
        within = float(((sizes - 1) * stats["var"].fillna(0.0).to_numpy()).sum() / dof_within)
    else:  # every product has one buyer: the spread of single CLVs is all we can see
        within = float(pairs["clv"].var(ddof=0))
    if len(sizes) < 2:
        return np.inf
    means = stats["mean"].to_numpy()
    grand = float((sizes * means).sum() / total)
    between_mean_square = float((sizes * (means - grand) ** 2).sum() / (len(sizes) - 1))
    n0 = (total - (sizes**2).sum() / total) / (len(sizes) - 1)
    between = (between_mean_square - within) / n0
    if between <= 0:
        return np.inf
    return max(within / between, MIN_PRIOR_STRENGTH)


def save_customers(
    path: str | Path, customer_ids: Sequence[str], clv: np.ndarray, quantile: np.ndarray
) -> None:
    """Save per-customer CLV and quantile as ``.npz`` (ids as fixed-width unicode, no pickle)."""
    ids = np.asarray([str(c) for c in customer_ids], dtype=str)
    clv = np.asarray(clv, dtype=np.float64)
    quantile = np.asarray(quantile, dtype=np.float64)
    if not (len(ids) == len(clv) == len(quantile)):
        raise DataError(f"lengths differ: {len(ids)} ids, {len(clv)} CLVs, "
                        f"{len(quantile)} quantiles", file=path)
    with open(path, "wb") as handle:
        np.savez(handle, customer_ids=ids, clv=clv, quantile=quantile)


def load_customers(path: str | Path) -> CustomerCLV:
    """Read a file written by :func:`save_customers`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            loaded = CustomerCLV(data["customer_ids"], data["clv"], data["quantile"])
    except DataError:
        raise  # a bad value, already located (a DataError is also a ValueError)
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"cannot read customer CLV file: {exc}", file=path) from exc
    if loaded.customer_ids.dtype.kind != "U" or loaded.customer_ids.ndim != 1:
        raise DataError(f"customer_ids must be 1-d unicode, found {loaded.customer_ids.dtype} "
                        f"with {loaded.customer_ids.ndim} dimension(s)", file=path)
    ids = loaded.customer_ids
    for name in ("clv", "quantile"):
        values = getattr(loaded, name)
        if values.shape != ids.shape or values.dtype.kind != "f":
            raise DataError(f"{name} is {values.dtype} of shape {values.shape}; expected floats "
                            f"of shape {ids.shape}", file=path, column=name)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise DataError(f"{name} of customer row {int(bad[0])} is not finite "
                            f"({bad.size:,} rows)", file=path, column=name)
    unsorted = np.flatnonzero(ids[1:] <= ids[:-1])
    if unsorted.size:  # the ranker binary-searches them
        raise DataError(f"customer_ids are not sorted without repeats at row "
                        f"{int(unsorted[0]) + 1}; they are binary-searched", file=path,
                        column="customer_ids")
    return loaded


def _shrunk_affinity(stats: pd.DataFrame, wanted: Sequence[str], strength: float,
                     global_mean: float) -> tuple[np.ndarray, np.ndarray]:
    """Each wanted product's buyers' mean CLV shrunk toward ``global_mean`` with pseudo-count
    ``strength`` (the catalog mean for a product nobody bought, or for all when the strength is
    infinite); also its buyer counts. One rule for the one-process and partitioned paths."""
    n = stats["size"].reindex(wanted, fill_value=0).to_numpy(dtype=np.float64)
    means = stats["mean"].reindex(wanted, fill_value=0.0).to_numpy()
    if np.isinf(strength):
        affinity = np.full(len(wanted), global_mean)
    else:
        affinity = (n * means + strength * global_mean) / (n + strength)
    return affinity.astype(np.float64), n.astype(np.int64)
