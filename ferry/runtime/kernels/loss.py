"""Loss kernels: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss."""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels._numeric import narrow, widen
from ferry.runtime.registry import kernel


def _nll(log_prob: np.ndarray, target: np.ndarray, weight, ignore_index, reduction: str):
    """Weighted negative log likelihood of ``target`` classes along axis 1, reduced.

    Computes in the (widened) dtype of ``log_prob``; ignored targets weigh 0, and "mean"
    divides by the total weight of the targets taken into account.
    """
    if log_prob.ndim < 2 or target.shape != log_prob.shape[:1] + log_prob.shape[2:]:
        raise ValueError(
            f"expected input of shape (N, C, d1..dk) and target (N, d1..dk), "
            f"got {log_prob.shape} and {target.shape}"
        )
    classes = log_prob.shape[1]
    target = target.astype(np.int64)
    ignored = target == ignore_index if ignore_index is not None else np.zeros(target.shape, bool)
    safe = np.where(ignored, 0, target)
    if safe.size and (safe.min() < 0 or safe.max() >= classes):
        raise ValueError(f"target values must lie in [0, {classes}) or equal ignore_index")
    picked = np.take_along_axis(log_prob, np.expand_dims(safe, 1), axis=1)[:, 0]
    weights = np.ones_like(picked) if weight is None else widen(weight).astype(picked.dtype)[safe]
    weights = np.where(ignored, 0, weights).astype(picked.dtype)
    loss = -picked * weights
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.sum(loss)
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sum(loss) / np.sum(weights)
    raise ValueError(f"reduction must be 'none', 'sum' or 'mean', got {reduction!r}")


def _compute_dtype(x: np.ndarray) -> np.ndarray:
    values = widen(x)
    return values.astype(np.float32) if values.dtype == np.float16 else values


@kernel("NegativeLogLikelihoodLoss", since=(12, 13, 22))
def negative_log_likelihood_loss(input, target, weight=None, *, ignore_index, reduction):
    """loss = -input[n, target[n, ...], ...] * weight[target], then none/sum/weighted-mean."""
    loss = _nll(_compute_dtype(input), target, weight, ignore_index, reduction)
    return narrow(loss, input.dtype)


@kernel("SoftmaxCrossEntropyLoss", since=(12, 13))
def softmax_cross_entropy_loss(scores, labels, weights=None, *, ignore_index, reduction):
    """NLL of log_softmax(scores, axis=1); returns the loss and the log probabilities."""
    values = _compute_dtype(scores)
    if values.ndim < 2:
        raise ValueError(f"scores must have shape (N, C, ...), got {scores.shape}")
    shifted = values - np.max(values, axis=1, keepdims=True)
    log_prob = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    loss = _nll(log_prob, labels, weights, ignore_index, reduction)
    return narrow(loss, scores.dtype), narrow(log_prob, scores.dtype)
