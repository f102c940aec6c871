"""XGBoost trees compiled into flat arrays and evaluated in Numba, for serving latency.

``Booster.inplace_predict`` has a fixed cost per call, even for a few rows, that is a large part
of a whole query at serving batch sizes (the ranker scores at most 200 candidates).
:class:`CompiledTrees` holds the same trees as plain arrays and evaluates them in
:mod:`ranking._tree_kernels`; ``benchmarks/tree_inference.py`` measures both (figures in
docs/tree_inference.md).

Two layouts. Trees up to :data:`MAX_COMPLETE_DEPTH` deep are also laid out as complete binary
trees (:class:`CompleteTrees`), where a row takes a fixed number of branch-free steps; that is
the layout served. Deeper trees would need 2**depth leaves each, so they are served from the
node lists, which every :class:`CompiledTrees` keeps (the general form, and the one the
complete layout is built from).

The comparison rule is XGBoost's: features are compared as float32 against float32 thresholds,
a row goes left when ``x < threshold`` (so a value equal to the threshold goes right), and a
missing value (NaN) follows the node's default direction. Leaf values are added to the base
score in float32, tree by tree, as XGBoost's CPU predictor does, so the margins equal
``Booster.predict(DMatrix(X), output_margin=True)`` (to the bit with xgboost 3.2; the tests
allow 1e-5).

:class:`ModelError` is defined here, in the lower module, and re-exported by :mod:`ranking.ltr`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clv.errors import ModelError
from ranking import _tree_kernels, ubjson

if TYPE_CHECKING:  # serving reads the trees from the model file, without xgboost
    import xgboost as xgb
from ranking.bundle_checks import tree_problem

#: Objectives whose base score is stored in margin space (identity link), checked by parity.
#: Others (``binary:logistic`` stores a probability) would need their link applied.
IDENTITY_LINK_OBJECTIVES = frozenset({"rank:ndcg", "rank:pairwise", "rank:map"})
#: Deepest forest served by the complete layout: 2**10 leaves, 12 KB per tree. Deeper forests
#: are served from the node lists (each extra level doubles the complete layout's size).
MAX_COMPLETE_DEPTH = 10


@dataclass(frozen=True)
class CompleteTrees:
    """Every tree as a complete binary tree of the forest's ``depth``, one row of each array.

    Positions are in breadth-first order: the root is 0, and the children of position ``p``
    are ``2p + 1`` (left) and ``2p + 2`` (right). Per inner position, ``feature`` is a column
    of the row as :func:`ranking._tree_kernels.missing_as_infinities` doubles it (the split
    feature, plus the feature count when a missing value goes right; unsigned, which the kernel
    indexes faster) and ``threshold`` is float32. ``leaf_value`` holds the 2**depth leaves,
    left to right. A leaf shallower than ``depth`` is padded: the positions below it split on
    column 0 at 0, and every leaf beneath holds its value, so whichever way a row goes, it gets
    that value.
    """

    feature: np.ndarray
    threshold: np.ndarray
    leaf_value: np.ndarray
    depth: int


@dataclass(frozen=True)
class CompiledTrees:
    """A single-output forest of numeric splits as read-only flat arrays.

    Per node (all trees concatenated; child indices are global): ``left`` and ``right``
    children, ``split_feature``, ``threshold`` (float32), ``default_left`` (where NaN goes),
    ``leaf_value`` (float32, 0 at inner nodes). A leaf is its own left and right child, so a
    traversal may take more steps than the leaf's depth and stay put. Per tree: ``roots`` (its
    first node) and ``depths`` (its deepest leaf's depth, the number of steps to take).
    ``complete`` is the same forest in the complete layout, served when present.
    """

    left: np.ndarray
    right: np.ndarray
    split_feature: np.ndarray
    threshold: np.ndarray
    default_left: np.ndarray
    leaf_value: np.ndarray
    roots: np.ndarray
    depths: np.ndarray
    base_score: np.float32
    n_features: int
    complete: CompleteTrees | None = None

    @property
    def n_trees(self) -> int:
        return int(self.roots.shape[0])

    @classmethod
    def from_booster(cls, booster: xgb.Booster,
                     max_complete_depth: int = MAX_COMPLETE_DEPTH) -> CompiledTrees:
        """Compile the trees of ``booster`` from its JSON model.

        xgboost 3.2 stores ``learner_model_param.base_score`` as a string holding a one-element
        list (``"[5E-1]"``); for the ranking objectives it is already a margin and is added as
        it is (checked against XGBoost's predictions). Raises :class:`ModelError` for what the
        kernel does not evaluate: boosters other than gbtree, objectives whose base score needs
        a link, several outputs, categorical splits. The complete layout is built when the
        deepest tree is at most ``max_complete_depth`` deep and no threshold is -inf (a missing
        value read as -inf must go left of every threshold).
        """
        return cls.from_learner(json.loads(booster.save_raw("json"))["learner"],
                                max_complete_depth)

    @classmethod
    def from_model_file(cls, path: Path,
                        max_complete_depth: int = MAX_COMPLETE_DEPTH) -> CompiledTrees:
        """Compile the trees of an XGBoost ``model.ubj`` read as UBJSON (:mod:`ranking.ubjson`)
        without importing xgboost: the same model as :meth:`from_booster` of the booster that
        file loads into (a test holds the arrays equal)."""
        try:
            return cls.from_learner(ubjson.load(path)["learner"], max_complete_depth)
        except ModelError:
            raise
        except (ubjson.UBJSONError, OSError) as exc:
            raise ModelError(f"{path}: cannot load model: {exc}") from exc
        except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
            raise ModelError(f"{path}: cannot load model: not an XGBoost tree model "
                             f"({type(exc).__name__}: {exc})") from exc

    @classmethod
    def from_learner(cls, learner: dict,
                     max_complete_depth: int = MAX_COMPLETE_DEPTH) -> CompiledTrees:
        """Compile the ``learner`` object of an XGBoost JSON (or UBJSON) model."""
        _check_supported(learner)
        params = learner["learner_model_param"]
        trees = [_tree_arrays(tree) for tree in learner["gradient_booster"]["model"]["trees"]]
        sizes = np.array([len(arrays["left"]) for arrays in trees], dtype=np.int32)
        roots = (np.cumsum(sizes) - sizes).astype(np.int32)
        nodes = {name: _concat([arrays[name] for arrays in trees], dtype)
                 for name, dtype in _NODE_DTYPES.items()}
        for child in ("left", "right"):
            nodes[child] = _frozen(nodes[child] + np.repeat(roots, sizes))
        compiled = cls(**nodes, roots=_frozen(roots),
                       depths=_frozen(np.array([a["depth"] for a in trees], dtype=np.int32)),
                       base_score=np.float32(_base_score(params["base_score"])),
                       n_features=int(params["num_feature"]))
        if compiled.split_feature.size and (compiled.split_feature.max() >= compiled.n_features
                                            or compiled.split_feature.min() < 0):
            raise ModelError("a tree splits on a feature outside the model's feature count")
        if not (np.isfinite(compiled.leaf_value).all() and not np.isnan(compiled.threshold).any()):
            raise ModelError("a tree has a non-finite leaf value or a NaN threshold")
        depth = int(compiled.depths.max(initial=0))
        if depth > max_complete_depth or (compiled.threshold == -np.inf).any():
            return compiled
        return replace(compiled, complete=_complete_layout(compiled, depth))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Margins (float64) for the rows of ``X``, rows x ``n_features``; NaN = missing."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ModelError(f"features have shape {X.shape}; the model expects "
                             f"(rows, {self.n_features})")
        if self.complete is not None:
            return _tree_kernels.complete_forest_margin(
                X, self.complete.feature, self.complete.threshold, self.complete.leaf_value,
                self.complete.depth, self.base_score)
        return _tree_kernels.forest_margin(
            X, self.left, self.right, self.split_feature, self.threshold, self.default_left,
            self.leaf_value, self.roots, self.depths, self.base_score)


def _base_score(text: str) -> float:
    """xgboost 3.2 writes ``"[5E-1]"`` (a one-element list), older versions ``"5E-1"``."""
    value = json.loads(text)
    return float(value[0] if isinstance(value, list) else value)


_NODE_DTYPES = {"left": np.int32, "right": np.int32, "split_feature": np.int32,
                "threshold": np.float32, "default_left": np.bool_, "leaf_value": np.float32}


def _check_supported(learner: dict) -> None:
    params = learner["learner_model_param"]
    booster = learner["gradient_booster"]
    objective = learner["objective"]["name"]
    if booster["name"] != "gbtree":
        raise ModelError(f"cannot compile a {booster['name']} booster; only gbtree")
    if objective not in IDENTITY_LINK_OBJECTIVES:
        raise ModelError(f"cannot compile objective {objective}: its base score is not a margin")
    if int(params["num_target"]) != 1 or int(params["num_class"]) > 1:
        raise ModelError("cannot compile a model with several outputs")
    for tree in booster["model"]["trees"]:
        if np.any(tree["split_type"]) or len(tree["categories_nodes"]):
            raise ModelError(f"tree {tree['id']} has categorical splits, which are not supported "
                             "(train on numeric features)")


def _tree_arrays(tree: dict) -> dict[str, np.ndarray | int]:
    """One tree's node arrays with local child indices, leaves pointing at themselves."""
    left = np.asarray(tree["left_children"], dtype=np.int64)
    right = np.asarray(tree["right_children"], dtype=np.int64)
    problem = tree_problem(left, right)  # a loaded model's nodes are walked unchecked
    if problem is not None:
        raise ModelError(f"tree {tree.get('id')} has {problem}")
    conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
    leaf = left < 0
    own = np.arange(left.size)
    return {
        "left": np.where(leaf, own, left), "right": np.where(leaf, own, right),
        "split_feature": np.where(leaf, 0, tree["split_indices"]),
        "threshold": np.where(leaf, np.float32(0), conditions),
        "default_left": np.asarray(tree["default_left"], dtype=bool),
        "leaf_value": np.where(leaf, conditions, np.float32(0)),
        "depth": _depth(left, right),
    }


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Depth of the deepest leaf (0 for a tree that is a single leaf)."""
    deepest, level, frontier = 0, 0, [0]
    while frontier:
        deepest = level
        frontier = [c for n in frontier if left[n] >= 0 for c in (left[n], right[n])]
        level += 1
    return deepest


def _complete_layout(trees: CompiledTrees, depth: int) -> CompleteTrees:
    """Walk all trees down together, one level at a time, recording each position's split.

    A leaf is its own left and right child in the node lists, so the walk pads shallow leaves
    by itself: below a leaf, every position is that leaf again.
    """
    nodes = trees.roots[:, None]  # (trees, positions of this level)
    features = [np.zeros((trees.n_trees, 0), np.int64)]
    thresholds = [np.zeros((trees.n_trees, 0), np.float32)]
    for _ in range(depth):
        inner = trees.left[nodes] != nodes
        missing_right = ~trees.default_left[nodes]
        features.append(np.where(inner, trees.split_feature[nodes]
                                 + trees.n_features * missing_right, 0))
        thresholds.append(np.where(inner, trees.threshold[nodes], np.float32(0)))
        nodes = np.stack([trees.left[nodes], trees.right[nodes]], axis=2).reshape(len(nodes), -1)
    return CompleteTrees(
        feature=_frozen(np.concatenate(features, axis=1).astype(np.uint32)),
        threshold=_frozen(np.concatenate(thresholds, axis=1).astype(np.float32)),
        leaf_value=_frozen(trees.leaf_value[nodes]), depth=depth)


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return _frozen(np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype))


def _frozen(array: np.ndarray) -> np.ndarray:
    """C-contiguous and read-only: the dataclass is frozen, and so are its arrays."""
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array
