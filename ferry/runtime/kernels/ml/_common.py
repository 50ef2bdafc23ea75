"""Helpers shared by the ai.onnx.ml kernels: score post-transforms, class labels, batching."""

from __future__ import annotations

import math

import numpy as np

ML = "ai.onnx.ml"

POST_TRANSFORMS = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")

_erf = np.frompyfunc(math.erf, 1, 1)


def erfinv(y: np.ndarray) -> np.ndarray:
    """Inverse error function on (-1, 1): Winitzki's closed form refined by Newton steps."""
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = 0.147
        log_term = np.log1p(-(y * y))
        first = 2.0 / (math.pi * a) + log_term / 2.0
        x = np.sign(y) * np.sqrt(np.sqrt(first * first - log_term / a) - first)
        for _ in range(3):
            step = (_erf(x).astype(np.float64) - y) / (2.0 / math.sqrt(math.pi) * np.exp(-x * x))
            x = np.where(np.isfinite(x) & np.isfinite(step), x - step, x)
    return x


def post_transform(scores: np.ndarray, name: str) -> np.ndarray:
    """Apply an ML post_transform (NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO, PROBIT) row-wise."""
    scores = np.asarray(scores, dtype=np.float64)
    if name == "NONE":
        return scores
    if name == "LOGISTIC":
        return 1.0 / (1.0 + np.exp(-scores))
    if name == "PROBIT":
        return math.sqrt(2.0) * erfinv(2.0 * scores - 1.0)
    if name in ("SOFTMAX", "SOFTMAX_ZERO"):
        if scores.shape[-1] == 0:
            return scores
        keep = scores != 0 if name == "SOFTMAX_ZERO" else np.ones(scores.shape, dtype=bool)
        exps = np.where(keep, np.exp(scores - scores.max(axis=-1, keepdims=True)), 0.0)
        totals = exps.sum(axis=-1, keepdims=True)
        return np.divide(exps, totals, out=np.zeros_like(exps), where=totals > 0)
    raise ValueError(f"post_transform must be one of {POST_TRANSFORMS}, got {name!r}")


def post_transform_code(code: int) -> str:
    """The name of an integer post_transform (TreeEnsemble's enumeration)."""
    if not 0 <= code < len(POST_TRANSFORMS):
        raise ValueError(f"post_transform must be in [0, {len(POST_TRANSFORMS)}), got {code}")
    return POST_TRANSFORMS[code]


def class_labels(ints: list[int] | None, strings: list[str] | None, op: str) -> np.ndarray:
    """The class labels as an int64 or object array (exactly one attribute must be set)."""
    if strings:
        if ints:
            raise ValueError(f"{op} needs only one of the integer and string class labels, got both")
        labels = np.empty(len(strings), dtype=object)
        labels[:] = list(strings)
        return labels
    if ints is None:
        raise ValueError(f"{op} needs class labels (integer or string)")
    return np.asarray(ints, dtype=np.int64)


def as_matrix(x: np.ndarray, op: str) -> np.ndarray:
    """A [N, F] float64 view of the input: 1-D input is one row, higher ranks flatten to 2-D."""
    x = np.asarray(x)
    if x.dtype == object or x.dtype.kind not in "biuf":
        raise TypeError(f"{op} expects a numeric tensor, got {x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{op} expects a [N, F] or [F] tensor, got a scalar")
    if x.ndim == 1:
        return x.reshape(1, -1).astype(np.float64)
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:]))).astype(np.float64)


def floats(values, op: str, name: str, *, required: bool = False) -> np.ndarray:
    """A float attribute list (or tensor) as float64; empty when unset and not required."""
    if values is None:
        if required:
            raise ValueError(f"{op} needs the {name!r} attribute")
        return np.zeros(0, dtype=np.float64)
    return np.asarray(values, dtype=np.float64).ravel()


def pick(plain, as_tensor):
    """The ``*_as_tensor`` variant of an attribute when given, else the plain one."""
    return as_tensor if as_tensor is not None else plain
