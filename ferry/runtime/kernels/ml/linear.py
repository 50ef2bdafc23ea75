"""ai.onnx.ml linear models: LinearClassifier and LinearRegressor."""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels.ml._common import ML, as_matrix, class_labels, floats
from ferry.runtime.kernels.ml._common import post_transform as apply_transform
from ferry.runtime.registry import kernel


def linear_scores(x, coefficients, intercepts, rows: int | None, op: str) -> np.ndarray:
    """X @ W.T + b with W the coefficients as [rows, F] (rows inferred when None)."""
    x = as_matrix(x, op)
    weights = floats(coefficients, op, "coefficients", required=True)
    features = x.shape[1]
    if rows is None:
        if features == 0 or weights.size % features:
            raise ValueError(f"{op}: {weights.size} coefficients do not split into rows of {features} features")
        rows = weights.size // features
    if weights.size != rows * features:
        raise ValueError(f"{op}: expected {rows} x {features} = {rows * features} coefficients, got {weights.size}")
    scores = x @ weights.reshape(rows, features).T
    bias = floats(intercepts, op, "intercepts")
    if bias.size:
        if bias.size != rows:
            raise ValueError(f"{op}: expected {rows} intercepts, got {bias.size}")
        scores = scores + bias
    return scores


def binary_scores(score: np.ndarray, transform: str) -> np.ndarray:
    """Two columns [1 - t, t] from one positive-class score, onnxruntime's binary convention
    (t is the LOGISTIC or PROBIT transform of the score; the softmaxes leave it as is)."""
    if transform in ("LOGISTIC", "PROBIT"):
        score = apply_transform(score, transform)
    return np.stack([1.0 - score, score], axis=-1)


@kernel("LinearClassifier", since=1, domain=ML)
def linear_classifier(
    x, *, classlabels_ints, classlabels_strings, coefficients, intercepts, multi_class, post_transform
):
    """Per-class scores X @ W.T + b, post-transformed; the label is the top raw score's class
    (one row of coefficients with two labels: binary, label 1 when the score is > 0)."""
    labels = class_labels(classlabels_ints, classlabels_strings, "LinearClassifier")
    scores = linear_scores(x, coefficients, intercepts, None, "LinearClassifier")
    if scores.shape[1] == 1 and labels.size == 2:
        z = binary_scores(scores[:, 0], post_transform)
        chosen = (scores[:, 0] > 0).astype(np.intp)
    else:
        if scores.shape[1] != labels.size:
            raise ValueError(
                f"LinearClassifier: {scores.shape[1]} rows of coefficients but {labels.size} class labels"
            )
        z = apply_transform(scores, post_transform)
        chosen = np.argmax(scores, axis=1) if scores.shape[0] else np.zeros(0, dtype=np.intp)
    return labels[chosen], z.astype(np.float32)


@kernel("LinearRegressor", since=1, domain=ML)
def linear_regressor(x, *, coefficients, intercepts, post_transform, targets):
    """``targets`` outputs per row: X @ W.T + b with W the coefficients as [targets, F], post-transformed."""
    scores = linear_scores(x, coefficients, intercepts, targets, "LinearRegressor")
    return apply_transform(scores, post_transform).astype(np.float32)
