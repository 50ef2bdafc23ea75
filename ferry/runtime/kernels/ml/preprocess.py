"""ai.onnx.ml numeric preprocessing: ArrayFeatureExtractor, Binarizer, FeatureVectorizer,
Imputer, Normalizer and Scaler."""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels.ml._common import ML, floats
from ferry.runtime.registry import kernel


def _numeric(x, op: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == object or x.dtype.kind not in "iuf":
        raise TypeError(f"{op} expects a numeric tensor, got {x.dtype}")
    return x


def _per_feature(values: np.ndarray, features: int, op: str, name: str) -> np.ndarray:
    """An attribute list of length 1 (broadcast) or one entry per feature (last axis)."""
    if values.size not in (1, features):
        raise ValueError(f"{op}: {name} must have 1 or {features} (features) entries, got {values.size}")
    return values


@kernel("ArrayFeatureExtractor", since=1, domain=ML)
def array_feature_extractor(x, y):
    """Select the entries of X's last axis at the indices Y (a 1-D X gives shape [1, len(Y)])."""
    x = np.asarray(x)
    indices = np.asarray(y, dtype=np.int64).ravel()
    if x.ndim == 0:
        raise ValueError("ArrayFeatureExtractor expects X of rank >= 1, got a scalar")
    size = x.shape[-1]
    if ((indices < 0) | (indices >= size)).any():
        raise ValueError(f"ArrayFeatureExtractor indices must be in [0, {size}), got {indices.tolist()}")
    out = x[..., indices]
    return out.reshape(1, -1) if x.ndim == 1 else out


@kernel("Binarizer", since=1, domain=ML)
def binarizer(x, *, threshold):
    """1 where X > threshold, else 0, in X's type."""
    x = _numeric(x, "Binarizer")
    return (x > threshold).astype(x.dtype)


@kernel("FeatureVectorizer", since=1, domain=ML)
def feature_vectorizer(*inputs, inputdimensions):
    """Concatenate the inputs' columns (each [N, C] or [C], cut or zero-padded to its
    inputdimensions entry) into one float tensor."""
    if not inputs:
        raise ValueError("FeatureVectorizer needs at least one input")
    widths = list(inputdimensions or [])
    if len(widths) != len(inputs):
        raise ValueError(f"FeatureVectorizer: {len(inputs)} inputs but {len(widths)} inputdimensions")
    matrices = []
    for x, width in zip(inputs, widths):
        x = _numeric(x, "FeatureVectorizer")
        rows = x.reshape(1, -1) if x.ndim <= 1 else x.reshape(x.shape[0], -1)
        block = np.zeros((rows.shape[0], width), dtype=np.float32)
        take = min(width, rows.shape[1])
        block[:, :take] = rows[:, :take]
        matrices.append(block)
    batch = {m.shape[0] for m in matrices}
    if len(batch) != 1:
        raise ValueError(f"FeatureVectorizer inputs disagree on the batch size: {sorted(batch)}")
    return np.concatenate(matrices, axis=1)


@kernel("Imputer", since=1, domain=ML)
def imputer(x, *, imputed_value_floats, imputed_value_int64s, replaced_value_float, replaced_value_int64):
    """Replace elements equal to the replaced value (NaN matches NaN) by the imputed value of their feature."""
    x = _numeric(x, "Imputer")
    features = x.shape[-1] if x.ndim else 1
    if x.dtype.kind == "f":
        if not imputed_value_floats:
            raise ValueError("Imputer on a float tensor needs imputed_value_floats")
        values = np.asarray(imputed_value_floats, dtype=np.float64)
        target = replaced_value_float
        hits = np.isnan(x) if np.isnan(target) else x == target
    else:
        if not imputed_value_int64s:
            raise ValueError("Imputer on an integer tensor needs imputed_value_int64s")
        values = np.asarray(imputed_value_int64s, dtype=np.int64)
        hits = x == replaced_value_int64
    values = _per_feature(values, features, "Imputer", "the imputed values")
    filler = np.broadcast_to(values.astype(x.dtype), x.shape) if x.ndim else values.astype(x.dtype)[0]
    return np.where(hits, filler, x).astype(x.dtype)


@kernel("Normalizer", since=1, domain=ML)
def normalizer(x, *, norm):
    """Divide each row (last axis) by its max (MAX), sum of |x| (L1) or Euclidean norm (L2);
    rows whose divisor is 0 are left as they are."""
    x = _numeric(x, "Normalizer").astype(np.float64)
    if x.ndim not in (1, 2):
        raise ValueError(f"Normalizer expects a [N, C] or [C] tensor, got shape {x.shape}")
    if x.shape[-1] == 0:
        return x.astype(np.float32)
    if norm == "MAX":
        divisor = x.max(axis=-1, keepdims=True)
    elif norm == "L1":
        divisor = np.abs(x).sum(axis=-1, keepdims=True)
    elif norm == "L2":
        divisor = np.sqrt((x * x).sum(axis=-1, keepdims=True))
    else:
        raise ValueError(f"Normalizer norm must be MAX, L1 or L2, got {norm!r}")
    safe = np.where(divisor == 0, 1.0, divisor)
    return (x / safe).astype(np.float32)


@kernel("Scaler", since=1, domain=ML)
def scaler(x, *, offset, scale):
    """(X - offset) * scale per feature (last axis), as float."""
    x = _numeric(x, "Scaler").astype(np.float64)
    features = x.shape[-1] if x.ndim else 1
    shift = floats(offset, "Scaler", "offset")
    factor = floats(scale, "Scaler", "scale")
    shift = _per_feature(shift, features, "Scaler", "offset") if shift.size else np.zeros(1)
    factor = _per_feature(factor, features, "Scaler", "scale") if factor.size else np.ones(1)
    return ((x - shift) * factor).astype(np.float32)
