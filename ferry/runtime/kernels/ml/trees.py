"""ai.onnx.ml tree ensembles: TreeEnsemble (5), TreeEnsembleRegressor and TreeEnsembleClassifier.

Scores are the aggregated leaf weights plus ``base_values``, post-transformed. Two-class
classifiers whose leaves all vote for a single class id (whichever) carry one score ``s``
for the positive class (the usual binary export; ``s`` includes the base value); following onnxruntime, ``s`` is read as a
probability when every weight is non-negative (label 1 iff s > 0.5, scores
``[1 - s, s]``) and as a margin otherwise (label 1 iff s > 0, scores ``[-s, s]``), and a
LOGISTIC post-transform gives ``[1 - sigmoid(s), sigmoid(s)]`` in both readings.
Otherwise the label is the top raw score among the classes that received a vote or a
base value.
"""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels.ml._common import (
    ML,
    as_matrix,
    class_labels,
    floats,
    pick,
    post_transform_code,
)
from ferry.runtime.kernels.ml._common import post_transform as apply_transform
from ferry.runtime.kernels.ml._forest import (
    AGGREGATES,
    Forest,
    from_legacy_encoding,
    from_split_encoding,
)
from ferry.runtime.registry import kernel

_FLOAT_TYPES = (np.float16, np.float32, np.float64)


def _with_base(scores: np.ndarray, base: np.ndarray, op: str) -> np.ndarray:
    if base.size == 0:
        return scores
    if base.size not in (1, scores.shape[1]):
        raise ValueError(f"{op}: base_values must have 1 or {scores.shape[1]} entries, got {base.size}")
    return scores + base


# ------------------------------------------------------------------------- TreeEnsemble


@kernel("TreeEnsemble", since=5, domain=ML)
def tree_ensemble(
    x,
    *,
    aggregate_function,
    leaf_targetids,
    leaf_weights,
    membership_values,
    n_targets,
    nodes_falseleafs,
    nodes_falsenodeids,
    nodes_featureids,
    nodes_hitrates,
    nodes_missing_value_tracks_true,
    nodes_modes,
    nodes_splits,
    nodes_trueleafs,
    nodes_truenodeids,
    post_transform,
    tree_roots,
):
    """Leaf weights of every tree aggregated per target (AVERAGE/SUM/MIN/MAX), post-transformed, in X's type."""
    x = np.asarray(x)
    if x.ndim != 2 or x.dtype.type not in _FLOAT_TYPES:
        raise TypeError(f"TreeEnsemble expects a 2-D float tensor, got {x.dtype} of shape {x.shape}")
    forest = from_split_encoding(
        tree_roots=tree_roots,
        nodes_modes=nodes_modes,
        nodes_featureids=nodes_featureids,
        nodes_splits=nodes_splits,
        nodes_truenodeids=nodes_truenodeids,
        nodes_trueleafs=nodes_trueleafs,
        nodes_falsenodeids=nodes_falsenodeids,
        nodes_falseleafs=nodes_falseleafs,
        nodes_missing_value_tracks_true=nodes_missing_value_tracks_true,
        membership_values=membership_values,
        leaf_targetids=leaf_targetids,
        leaf_weights=leaf_weights,
    )
    targets = _target_count(n_targets, forest, "TreeEnsemble")
    if not 0 <= aggregate_function < len(AGGREGATES):
        raise ValueError(f"TreeEnsemble aggregate_function must be in [0, 3], got {aggregate_function}")
    scores, _ = forest.scores(x.astype(np.float64), targets, AGGREGATES[aggregate_function])
    return apply_transform(scores, post_transform_code(post_transform)).astype(x.dtype)


def _target_count(n_targets: int | None, forest: Forest, op: str) -> int:
    needed = int(forest.votes_target.max(initial=-1)) + 1
    if n_targets is None:
        return needed
    if (forest.votes_target < 0).any() or needed > n_targets:
        raise ValueError(f"{op}: leaf target ids must be in [0, {n_targets}), got up to {needed - 1}")
    return int(n_targets)


# ----------------------------------------------------------------- TreeEnsembleRegressor


@kernel("TreeEnsembleRegressor", since=(1, 3, 5), domain=ML)
def tree_ensemble_regressor(
    x,
    *,
    aggregate_function,
    base_values,
    n_targets,
    nodes_falsenodeids,
    nodes_featureids,
    nodes_hitrates,
    nodes_missing_value_tracks_true,
    nodes_modes,
    nodes_nodeids,
    nodes_treeids,
    nodes_truenodeids,
    nodes_values,
    post_transform,
    target_ids,
    target_nodeids,
    target_treeids,
    target_weights,
    base_values_as_tensor=None,
    nodes_hitrates_as_tensor=None,
    nodes_values_as_tensor=None,
    target_weights_as_tensor=None,
):
    """Per-target aggregate (AVERAGE/SUM/MIN/MAX) of the leaf weights reached, plus base_values, post-transformed."""
    op = "TreeEnsembleRegressor"
    forest = from_legacy_encoding(
        op=op,
        nodes_treeids=nodes_treeids,
        nodes_nodeids=nodes_nodeids,
        nodes_modes=nodes_modes,
        nodes_featureids=nodes_featureids,
        nodes_values=pick(nodes_values, nodes_values_as_tensor),
        nodes_truenodeids=nodes_truenodeids,
        nodes_falsenodeids=nodes_falsenodeids,
        nodes_missing_value_tracks_true=nodes_missing_value_tracks_true,
        vote_treeids=target_treeids,
        vote_nodeids=target_nodeids,
        vote_ids=target_ids,
        vote_weights=pick(target_weights, target_weights_as_tensor),
    )
    targets = _target_count(n_targets, forest, op)
    scores, _ = forest.scores(as_matrix(x, op), targets, aggregate_function)
    scores = _with_base(scores, floats(pick(base_values, base_values_as_tensor), op, "base_values"), op)
    return apply_transform(scores, post_transform).astype(np.float32)


# ---------------------------------------------------------------- TreeEnsembleClassifier


def _binary_scores(score: np.ndarray, probability_like: bool, transform: str) -> tuple[np.ndarray, np.ndarray]:
    """(positive?, [N, 2] scores) for a two-class model with one positive-class score."""
    positive = score > (0.5 if probability_like else 0.0)
    if transform in ("LOGISTIC", "PROBIT"):
        score = apply_transform(score, transform)
        negative = 1.0 - score
    else:
        negative = 1.0 - score if probability_like else -score
    return positive, np.stack([negative, score], axis=1)


def _top_class(scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    masked = np.where(candidates, scores, -np.inf)
    return np.where(candidates.any(axis=1), np.argmax(masked, axis=1), 0)


@kernel("TreeEnsembleClassifier", since=(1, 3, 5), domain=ML)
def tree_ensemble_classifier(
    x,
    *,
    base_values,
    class_ids,
    class_nodeids,
    class_treeids,
    class_weights,
    classlabels_int64s,
    classlabels_strings,
    nodes_falsenodeids,
    nodes_featureids,
    nodes_hitrates,
    nodes_missing_value_tracks_true,
    nodes_modes,
    nodes_nodeids,
    nodes_treeids,
    nodes_truenodeids,
    nodes_values,
    post_transform,
    base_values_as_tensor=None,
    class_weights_as_tensor=None,
    nodes_hitrates_as_tensor=None,
    nodes_values_as_tensor=None,
):
    """Per-class sums of the leaf weights reached plus base_values, post-transformed; the label is the top class."""
    op = "TreeEnsembleClassifier"
    labels = class_labels(classlabels_int64s, classlabels_strings, op)
    forest = from_legacy_encoding(
        op=op,
        nodes_treeids=nodes_treeids,
        nodes_nodeids=nodes_nodeids,
        nodes_modes=nodes_modes,
        nodes_featureids=nodes_featureids,
        nodes_values=pick(nodes_values, nodes_values_as_tensor),
        nodes_truenodeids=nodes_truenodeids,
        nodes_falsenodeids=nodes_falsenodeids,
        nodes_missing_value_tracks_true=nodes_missing_value_tracks_true,
        vote_treeids=class_treeids,
        vote_nodeids=class_nodeids,
        vote_ids=class_ids,
        vote_weights=pick(class_weights, class_weights_as_tensor),
    )
    _target_count(labels.size, forest, op)
    scores, voted = forest.scores(as_matrix(x, op), labels.size, "SUM")
    base = floats(pick(base_values, base_values_as_tensor), op, "base_values")
    used = np.unique(forest.votes_target)
    if labels.size == 2 and used.size == 1:
        if base.size > 2:
            raise ValueError(f"{op}: base_values must have at most 2 entries for 2 classes, got {base.size}")
        single = scores[:, used[0]] + (base[used[0]] if base.size == 2 else base.sum())
        positive, z = _binary_scores(single, bool((forest.votes_weight >= 0).all()), post_transform)
        return labels[positive.astype(np.intp)], z.astype(np.float32)
    scores = _with_base(scores, base, op)
    candidates = voted | (base.size > 0)
    chosen = _top_class(scores, candidates)
    return labels[chosen], apply_transform(scores, post_transform).astype(np.float32)
