"""Numba kernels: the margin of a forest of binary trees stored as flat arrays.

Pure functions over arrays; :mod:`ranking.trees` builds the arrays from an XGBoost model and
documents both layouts. :func:`complete_forest_margin` serves trees of bounded depth, each laid
out as a complete binary tree; :func:`forest_margin` serves any tree as a list of nodes.

Both are XGBoost's rule at a node: left when x < threshold (float32 against float32), and a
missing value (NaN) follows the node's default direction. Both add one leaf per tree to the
base score in float32, tree by tree, as XGBoost's CPU predictor does, so the result is
XGBoost's to the bit (checked with xgboost 3.2); returned as float64.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def missing_as_infinities(x):  # noqa: ANN001, ANN201
    """Each row twice, side by side: NaN as -inf in the first half, as +inf in the second.

    A node whose missing values go left reads the first half (-inf < any threshold goes left),
    one whose missing values go right reads the second (+inf < threshold is false), so a step
    is a single comparison. Real infinities are unchanged and compare as XGBoost compares them.
    """
    n, n_features = x.shape
    doubled = np.empty((n, 2 * n_features), dtype=np.float32)
    for r in range(n):
        for f in range(n_features):
            value = x[r, f]
            missing = np.isnan(value)
            doubled[r, f] = -np.inf if missing else value
            doubled[r, n_features + f] = np.inf if missing else value
    return doubled


@njit(inline="always")
def _step(doubled, row, feature, threshold, node):  # noqa: ANN001, ANN202
    """One level down a complete tree: children of ``node`` are 2 node + 1 and 2 node + 2.

    Indices are cast to unsigned (and ``feature`` is unsigned): Numba checks every signed
    index for a negative value to wrap around, which made the kernel 1.5x slower.
    """
    at = np.uint32(node)
    return 2 * node + 2 - (doubled[np.uint32(row), feature[at]] < threshold[at])


@njit(inline="always")
def _eight_rows(doubled, row, feature, threshold, leaf_value, depth, margin):  # noqa: ANN001, ANN202
    """Rows ``row`` .. ``row + 7`` down one tree, as eight independent chains of steps.

    Eight walks in flight let the CPU overlap their loads instead of waiting on one row's
    chain of dependent loads (faster, when it was written, than one row at a time and than
    moving all rows one level at a time through an array of nodes; 16 chains gained nothing
    more).
    """
    a = b = c = d = e = f = g = h = 0
    for _ in range(depth):
        a = _step(doubled, row, feature, threshold, a)
        b = _step(doubled, row + 1, feature, threshold, b)
        c = _step(doubled, row + 2, feature, threshold, c)
        d = _step(doubled, row + 3, feature, threshold, d)
        e = _step(doubled, row + 4, feature, threshold, e)
        f = _step(doubled, row + 5, feature, threshold, f)
        g = _step(doubled, row + 6, feature, threshold, g)
        h = _step(doubled, row + 7, feature, threshold, h)
    first_leaf = (1 << depth) - 1
    margin[row] += leaf_value[np.uint32(a - first_leaf)]
    margin[row + 1] += leaf_value[np.uint32(b - first_leaf)]
    margin[row + 2] += leaf_value[np.uint32(c - first_leaf)]
    margin[row + 3] += leaf_value[np.uint32(d - first_leaf)]
    margin[row + 4] += leaf_value[np.uint32(e - first_leaf)]
    margin[row + 5] += leaf_value[np.uint32(f - first_leaf)]
    margin[row + 6] += leaf_value[np.uint32(g - first_leaf)]
    margin[row + 7] += leaf_value[np.uint32(h - first_leaf)]


@njit(cache=True)
def complete_forest_margin(x, feature, threshold, leaf_value, depth, base_score):  # noqa: ANN001, ANN201
    """Margin per row of ``x`` (float32, rows x features) from complete trees of ``depth``.

    ``feature`` and ``threshold`` are (trees, 2**depth - 1), ``leaf_value`` is
    (trees, 2**depth); ``feature`` indexes the rows of :func:`missing_as_infinities`. Every
    row takes exactly ``depth`` branch-free steps per tree. One tree at a time over all rows,
    so a tree's arrays and the rows stay in the L1 cache.
    """
    doubled = missing_as_infinities(x)
    n = x.shape[0]
    margin = np.full(n, base_score, dtype=np.float32)
    blocked = n - n % 8
    first_leaf = (1 << depth) - 1
    for t in range(feature.shape[0]):
        tree_feature, tree_threshold, tree_leaf = feature[t], threshold[t], leaf_value[t]
        for row in range(0, blocked, 8):
            _eight_rows(doubled, row, tree_feature, tree_threshold, tree_leaf, depth, margin)
        for row in range(blocked, n):
            node = 0
            for _ in range(depth):
                node = _step(doubled, row, tree_feature, tree_threshold, node)
            margin[row] += tree_leaf[np.uint32(node - first_leaf)]
    return margin.astype(np.float64)


@njit(cache=True)
def forest_margin(x, left, right, split_feature, threshold, default_left, leaf_value,  # noqa: ANN001, ANN201
                  roots, depths, base_score):
    """Margin per row of ``x`` (float32, rows x features) from trees stored as node lists.

    The fallback for trees too deep for the complete layout. Trees are evaluated one at a time
    over all rows, one level at a time: each step moves every row's current node one level
    down, so the rows' independent steps overlap. Leaves are their own children, so a row that
    reaches a leaf early stays there for the tree's remaining levels. The NaN rule is written
    as bitwise operations, inline in both loops: a branch on NaN, or the step in a helper
    function, measured 2.5x slower or worse. The root's step is taken apart, with its split
    read once per tree (about 15% faster). Indices are unsigned, as in :func:`_step` (1.7x).
    """
    n = x.shape[0]
    margin = np.full(n, base_score, dtype=np.float32)
    nodes = np.empty(n, dtype=np.uint32)
    for t in range(roots.shape[0]):
        root = np.uint32(roots[t])
        feature, cut = np.uint32(split_feature[root]), threshold[root]
        missing_left = default_left[root]
        for r in range(n):
            value = x[r, feature]
            go_left = (value < cut) | (np.isnan(value) & missing_left)
            nodes[r] = left[root] if go_left else right[root]
        for _ in range(depths[t] - 1):
            for r in range(n):
                node = nodes[r]
                value = x[r, np.uint32(split_feature[node])]
                go_left = (value < threshold[node]) | (np.isnan(value) & default_left[node])
                nodes[r] = left[node] if go_left else right[node]
        for r in range(n):
            margin[r] += leaf_value[nodes[r]]
    return margin.astype(np.float64)
