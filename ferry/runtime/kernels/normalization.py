"""Normalization kernels (batch, instance, layer, group, RMS, LRN, Lp, MVN) and Dropout."""

from __future__ import annotations

import numpy as np

from ferry.ir.dtypes import DataType
from ferry.runtime.kernels import native_rows
from ferry.runtime.kernels._numeric import split
from ferry.runtime.registry import kernel


def _work_dtype(dtype: np.dtype) -> np.dtype:
    """Compute half precision in float32, everything else in its own float type."""
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def _stash_dtype(stash_type: int | None, x_dtype: np.dtype) -> np.dtype:
    """numpy dtype for an ONNX ``stash_type`` code (None: float32)."""
    if stash_type is None:
        return np.dtype(np.float32)
    dtype = DataType(stash_type).numpy
    if dtype.kind != "f":
        raise TypeError(f"stash_type must be a numpy float type, got {DataType(stash_type).name}")
    return dtype


def _channel_param(p: np.ndarray, ndim: int, dtype: np.dtype) -> np.ndarray:
    """A per-channel (C,) parameter shaped to broadcast against (N, C, ...); (C, D...) as is."""
    p = np.asarray(p, dtype=dtype)
    return p.reshape(-1, *([1] * (ndim - 2))) if p.ndim == 1 else p


def _normalize(x, mean, var, epsilon, scale, bias):
    return (x - mean) / np.sqrt(var + epsilon) * scale + bias


@kernel("BatchNormalization", since=(1, 6, 7, 9))
def batch_norm_legacy(x, scale, b, mean, var, *, epsilon, momentum, consumed_inputs=None,
                      is_test=None, spatial=None, _num_outputs):
    """BatchNormalization opsets 1-9: training statistics only when all outputs are requested.

    ``is_test`` (opsets 1/6) forces test mode; otherwise a single output means test mode.
    """
    training = _num_outputs > 1 and not is_test
    per_activation = spatial == 0
    ctype = _work_dtype(x.dtype)
    xs = x.astype(ctype)
    params = [_channel_param(p, x.ndim, ctype) for p in (scale, b, mean, var)]
    if not training:
        return _normalize(xs, params[2], params[3], epsilon, params[0], params[1]).astype(x.dtype)
    axes = (0,) if per_activation else (0, *range(2, x.ndim))
    batch_mean, batch_var = xs.mean(axis=axes), xs.var(axis=axes)
    shape = params[2].shape
    y = _normalize(xs, batch_mean.reshape(shape), batch_var.reshape(shape), epsilon, params[0],
                   params[1])
    running_mean = mean * momentum + batch_mean.reshape(mean.shape) * (1 - momentum)
    running_var = var * momentum + batch_var.reshape(var.shape) * (1 - momentum)
    return (y.astype(x.dtype), running_mean.astype(mean.dtype), running_var.astype(var.dtype),
            batch_mean.reshape(mean.shape).astype(mean.dtype),
            batch_var.reshape(var.shape).astype(var.dtype))


@kernel("BatchNormalization", since=(14, 15))
def batch_norm(x, scale, b, input_mean, input_var, *, epsilon, momentum, training_mode):
    """Per-channel normalization; training_mode uses batch stats and updates the running ones."""
    ctype = _work_dtype(x.dtype)
    xs = x.astype(ctype)
    s, bias = (_channel_param(p, x.ndim, ctype) for p in (scale, b))
    if not training_mode:
        mean, var = (_channel_param(p, x.ndim, ctype) for p in (input_mean, input_var))
        return _normalize(xs, mean, var, epsilon, s, bias).astype(x.dtype)
    axes = (0, *range(2, x.ndim))
    batch_mean, batch_var = xs.mean(axis=axes), xs.var(axis=axes)
    y = _normalize(xs, _channel_param(batch_mean, x.ndim, ctype),
                   _channel_param(batch_var, x.ndim, ctype), epsilon, s, bias)
    running_mean = input_mean * momentum + batch_mean * (1 - momentum)
    running_var = input_var * momentum + batch_var * (1 - momentum)
    return (y.astype(x.dtype), running_mean.astype(input_mean.dtype),
            running_var.astype(input_var.dtype))


@kernel("InstanceNormalization", since=(1, 6, 22))
def instance_norm(x, scale, b, *, epsilon, consumed_inputs=None):
    """Normalize each (n, c) plane over its spatial axes, then per-channel scale and bias."""
    ctype = _work_dtype(x.dtype)
    xs = x.astype(ctype)
    axes = tuple(range(2, x.ndim))
    mean, var = xs.mean(axis=axes, keepdims=True), xs.var(axis=axes, keepdims=True)
    s, bias = (_channel_param(p, x.ndim, ctype) for p in (scale, b))
    return _normalize(xs, mean, var, epsilon, s, bias).astype(x.dtype)


def _trailing_axes(ndim: int, axis: int) -> tuple[int, ...]:
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for a tensor of rank {ndim}")
    return tuple(range(axis % ndim, ndim))


@kernel("LayerNormalization", since=17)
def layer_norm(x, scale, b=None, *, axis, epsilon, stash_type):
    """Normalize over axes [axis, rank) in stash_type precision; also returns Mean, InvStdDev."""
    axes = _trailing_axes(x.ndim, axis)
    stash = _stash_dtype(stash_type, x.dtype)
    stats_shape = x.shape[: axes[0]] + (1,) * len(axes)
    native = _native_layer_norm(x, scale, b, axes[0], epsilon, stash)
    if native is not None:
        y, mean, inv_std = native
        return y.reshape(x.shape), mean.reshape(stats_shape), inv_std.reshape(stats_shape)
    # The normalized axes are trailing: view them as one contiguous row per statistic.
    count = int(np.prod(x.shape[axes[0]:], dtype=np.int64))
    rows = x.astype(stash, copy=False).reshape(int(np.prod(stats_shape, dtype=np.int64)), count)
    out = np.empty(rows.shape, dtype=stash)
    mean = np.empty((rows.shape[0], 1), dtype=stash)
    inv_std = np.empty_like(mean)
    blocks = split(rows.shape[0], count)

    for part in blocks:  # cache-sized blocks of rows
        _normalize_rows(rows[part], epsilon, out[part], mean[part], inv_std[part])
    y = out.reshape(x.shape).astype(x.dtype, copy=False)
    y *= scale
    if b is not None:
        y += b
    return y, mean.reshape(stats_shape), inv_std.reshape(stats_shape)


def _native_layer_norm(x, scale, b, axis: int, epsilon: float, stash: np.dtype):
    """The compiled kernel's (y, mean, inv_std) as rows, for float32 x, statistics, scale and
    bias that are each one row of the normalized shape; None where the numpy code runs."""
    if not (native_rows.available() and x.dtype == stash == np.float32 and x.size):
        return None
    params = [_row_parameter(p, x.shape, axis) for p in (scale, b) if p is not None]
    if any(p is None for p in params):
        return None
    rows = np.ascontiguousarray(x).reshape(-1, params[0].size)
    return native_rows.layer_norm_rows(rows, params[0], params[1] if len(params) > 1 else None, epsilon)


def _row_parameter(p: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    """float32 ``p`` as one contiguous row of the normalized shape ``shape[axis:]`` when it
    broadcasts to it and is 1 on every axis before ``axis``; else None."""
    if p.dtype != np.float32 or p.ndim > len(shape):
        return None
    padded = (1,) * (len(shape) - p.ndim) + p.shape
    if any(n != 1 for n in padded[:axis]):
        return None
    if padded[axis:] == shape[axis:]:
        return np.ascontiguousarray(p).reshape(-1)
    try:
        row = np.broadcast_to(p.reshape(padded[axis:]), shape[axis:])
    except ValueError:
        return None  # the numpy code reports it
    return np.ascontiguousarray(row).reshape(-1)


def _normalize_rows(rows: np.ndarray, epsilon: float, out: np.ndarray, mean: np.ndarray,
                    inv_std: np.ndarray) -> None:
    """out = (rows - mean) * inv_std row by row, filling ``mean`` and ``inv_std`` (R, 1)."""
    np.mean(rows, axis=1, keepdims=True, out=mean)
    np.subtract(rows, mean, out=out)
    inv_std[:, 0] = np.einsum("ij,ij->i", out, out)
    inv_std /= max(rows.shape[1], 1)
    inv_std += epsilon
    np.sqrt(inv_std, out=inv_std)
    np.reciprocal(inv_std, out=inv_std)
    out *= inv_std


@kernel("RMSNormalization", since=23)
def rms_norm(x, scale, *, axis, epsilon, stash_type):
    """Divide by the root mean square over axes [axis, rank) (in stash_type), then scale."""
    axes = _trailing_axes(x.ndim, axis)
    xs = x.astype(_stash_dtype(stash_type, x.dtype))
    rms = np.sqrt((xs * xs).mean(axis=axes, keepdims=True) + epsilon)
    return ((xs / rms).astype(x.dtype) * scale).astype(x.dtype)


def _group_norm(x, scale, bias, epsilon, num_groups, dtype):
    n, c = x.shape[:2]
    if c % num_groups:
        raise ValueError(f"channels ({c}) must be divisible by num_groups ({num_groups})")
    xs = x.astype(dtype).reshape(n, num_groups, -1)
    mean, var = xs.mean(axis=-1, keepdims=True), xs.var(axis=-1, keepdims=True)
    normed = ((xs - mean) / np.sqrt(var + epsilon)).reshape(x.shape)
    s, bias = (_channel_param(p, x.ndim, dtype) for p in (scale, bias))
    return (normed * s + bias).astype(x.dtype)


@kernel("GroupNormalization", since=18)
def group_norm_18(x, scale, bias, *, epsilon, num_groups):
    """GroupNormalization-18: statistics per group, scale and bias given per group."""
    per_group = x.shape[1] // num_groups
    scale, bias = (np.repeat(np.asarray(p), per_group) for p in (scale, bias))
    return _group_norm(x, scale, bias, epsilon, num_groups, _work_dtype(x.dtype))


@kernel("GroupNormalization", since=21)
def group_norm(x, scale, bias, *, epsilon, num_groups, stash_type):
    """GroupNormalization-21: statistics per group (in stash_type), scale and bias per channel."""
    return _group_norm(x, scale, bias, epsilon, num_groups, _stash_dtype(stash_type, x.dtype))


@kernel("LRN", since=(1, 13))
def lrn(x, *, alpha, beta, bias, size):
    """Local response normalization across a window of `size` neighbouring channels."""
    ctype = _work_dtype(x.dtype)
    sq = x.astype(ctype) ** 2
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    padded = np.pad(sq, [(0, 0), (before + 1, after)] + [(0, 0)] * (x.ndim - 2))
    cum = np.cumsum(padded, axis=1)
    square_sum = cum[:, size:] - cum[:, :-size]
    return (x / (bias + alpha / size * square_sum) ** beta).astype(x.dtype)


@kernel("LpNormalization", since=(1, 22))
def lp_normalization(x, *, axis, p):
    """Divide by the L1 or L2 norm along `axis` (zero norms give zero)."""
    if p not in (1, 2):
        raise ValueError(f"LpNormalization supports p=1 or p=2, got {p}")
    norm = np.sum(np.abs(x), axis=axis, keepdims=True) if p == 1 else \
        np.sqrt(np.sum(x * x, axis=axis, keepdims=True))
    safe = np.where(norm == 0, 1, norm).astype(x.dtype)
    return np.where(norm == 0, 0, x / safe).astype(x.dtype)


@kernel("MeanVarianceNormalization", since=(9, 13))
def mean_variance_normalization(x, *, axes):
    """(X - mean) / (std + 1e-9) with moments over `axes` (default [0, 2, 3])."""
    axes = tuple(axes) if axes is not None else (0, 2, 3)
    ctype = _work_dtype(x.dtype)
    xs = x.astype(ctype)
    mean = xs.mean(axis=axes, keepdims=True)
    std = np.sqrt(np.maximum((xs * xs).mean(axis=axes, keepdims=True) - mean * mean, 0))
    return ((xs - mean) / (std + ctype.type(1e-9))).astype(x.dtype)


def _dropout(x, ratio: float, training: bool, seed, mask_dtype) -> tuple[np.ndarray, ...]:
    """Identity with an all-ones mask in inference; seeded random keep-mask in training."""
    if not training or ratio == 0:
        return x, np.ones(x.shape, dtype=mask_dtype)
    if not 0 <= ratio <= 1:
        raise ValueError(f"Dropout ratio must be in [0, 1], got {ratio}")
    rng = np.random.RandomState(seed) if seed is not None else np.random.RandomState()
    keep = rng.random_sample(x.shape) >= ratio
    scale = 0.0 if ratio == 1 else 1 / (1 - ratio)
    return (keep * x * scale).astype(x.dtype), keep.astype(mask_dtype)


@kernel("Dropout", since=(1, 6))
def dropout_legacy(x, *, is_test, ratio, consumed_inputs=None):
    """Dropout opsets 1/6: random dropout unless is_test; mask has the data type."""
    return _dropout(x, ratio, not is_test, None, x.dtype)


@kernel("Dropout", since=(7, 10))
def dropout_inference(x, *, ratio, _opset):
    """Dropout opsets 7/10: inference only, a copy of the input (mask: data type, bool from 10)."""
    return _dropout(x, ratio, False, None, x.dtype if _opset < 10 else np.bool_)


@kernel("Dropout", since=(12, 13, 22))
def dropout(x, ratio=None, training_mode=None, *, seed):
    """Dropout with ratio/training_mode inputs; in training, keeps each element with 1 - ratio."""
    ratio_value = 0.5 if ratio is None else float(np.asarray(ratio))
    training = training_mode is not None and bool(np.asarray(training_mode))
    return _dropout(x, ratio_value, training, seed, np.bool_)
