"""Indexing kernels: Gather, GatherElements, GatherND, Scatter, ScatterElements, ScatterND,
TensorScatter, Compress, NonZero, OneHot, Trilu.

Indices may be negative (counting from the end of their axis); out-of-range indices are
an error. Gathers and scatters without reduction only move data, so they work on
strings and exotic (structured) dtypes too.
"""

from __future__ import annotations

import math

import numpy as np

from ferry.ir.minifloat import to_float32
from ferry.runtime.kernels._axes import int_list, int_scalar, normalize_axis, zero_scalar
from ferry.runtime.registry import kernel

_I64 = np.int64

_REDUCTIONS = {
    "add": np.add,
    "mul": np.multiply,
    "max": np.maximum,
    "min": np.minimum,
}


def _wrap_indices(indices, size, *, op: str) -> np.ndarray:
    """Indices as int64 with negatives counted from ``size`` (which may broadcast per column)."""
    idx = np.asarray(indices).astype(_I64)
    size = np.asarray(size, dtype=_I64)
    bad = (idx < -size) | (idx >= size)
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        limit = np.broadcast_to(size, idx.shape)[where]
        raise ValueError(f"{op}: index {int(idx[where])} at {where} is out of range for a dimension of size {limit}")
    return np.where(idx < 0, idx + size, idx)


def _scatter_into(out: np.ndarray, index: tuple, updates: np.ndarray, reduction: str | None) -> None:
    if reduction in (None, "none"):
        out[index] = updates
        return
    ufunc = _REDUCTIONS.get(reduction)
    if ufunc is None:
        raise ValueError(f"reduction must be one of none, {', '.join(_REDUCTIONS)}; got {reduction!r}")
    ufunc.at(out, index, updates)


def _element_index(indices: np.ndarray, axis: int) -> tuple:
    """The full index tuple addressing data[..., indices[...], ...] at ``axis``, element-wise."""
    grid = list(np.indices(indices.shape, sparse=True))
    grid[axis] = indices
    return tuple(grid)


# ---------------------------------------------------------------------------- gathers


@kernel("Gather", since=(1, 11, 13))
def gather(data, indices, *, axis):
    """Pick entries of ``data`` along ``axis`` at ``indices``; output rank is q + r - 1."""
    data = np.asarray(data)
    axis = normalize_axis(axis, data.ndim)
    if np.ndim(indices) == 0 and np.asarray(indices).dtype.kind in "iu":  # e.g. shape[i]
        index, size = int(indices), data.shape[axis]
        if not -size <= index < size:
            raise ValueError(f"Gather: index {index} is out of range for a dimension of size {size}")
        return np.asarray(np.take(data, index % size, axis=axis))
    return np.take(data, _wrap_indices(indices, data.shape[axis], op="Gather"), axis=axis)


@kernel("GatherElements", since=(11, 13))
def gather_elements(data, indices, *, axis):
    """output[i][j][k] = data[i][indices[i][j][k]][k] (for axis 1); output takes the indices' shape."""
    data = np.asarray(data)
    idx = np.asarray(indices)
    if idx.ndim != data.ndim:
        raise ValueError(f"GatherElements indices rank {idx.ndim} must equal data rank {data.ndim}")
    axis = normalize_axis(axis, data.ndim)
    idx = _wrap_indices(idx, data.shape[axis], op="GatherElements")
    return data[_element_index(idx, axis)]


@kernel("GatherND", since=(11, 12, 13))
def gather_nd(data, indices, *, batch_dims=None):
    """Gather slices of ``data`` addressed by the last axis of ``indices``, after ``batch_dims`` shared batch axes."""
    data = np.asarray(data)
    idx = np.asarray(indices).astype(_I64)
    b = int(batch_dims or 0)
    if idx.ndim < 1 or idx.shape[:b] != data.shape[:b]:
        raise ValueError(f"GatherND: indices {idx.shape} and data {data.shape} must share {b} batch dims")
    depth = idx.shape[-1]
    if b + depth > data.ndim:
        raise ValueError(f"GatherND: index tuples of length {depth} exceed data rank {data.ndim} - {b}")
    batch = math.prod(data.shape[:b])
    per_batch = math.prod(idx.shape[b:-1])
    flat_data = data.reshape(batch, *data.shape[b:])
    flat_idx = _wrap_indices(idx.reshape(batch, per_batch, depth), data.shape[b : b + depth], op="GatherND")
    rows = np.arange(batch).reshape(batch, 1)
    gathered = flat_data[(rows, *np.moveaxis(flat_idx, -1, 0))]
    return gathered.reshape(*idx.shape[:-1], *data.shape[b + depth :])


# ---------------------------------------------------------------------------- scatters


@kernel("ScatterElements", since=(11, 13, 16, 18))
def scatter_elements(data, indices, updates, *, axis, reduction=None):
    """Copy of ``data`` with ``updates`` written (or reduced) at ``indices`` along ``axis``, element-wise."""
    out = np.array(data, copy=True)
    idx = np.asarray(indices)
    upd = np.asarray(updates)
    if idx.shape != upd.shape or idx.ndim != out.ndim:
        raise ValueError(f"ScatterElements: indices {idx.shape} and updates {upd.shape} must match, with data's rank {out.ndim}")
    axis = normalize_axis(axis, out.ndim)
    idx = _wrap_indices(idx, out.shape[axis], op="ScatterElements")
    _scatter_into(out, _element_index(idx, axis), upd, reduction)
    return out


@kernel("Scatter", since=(9, 11))
def scatter(data, indices, updates, *, axis):
    """The deprecated name of ScatterElements without reduction."""
    return scatter_elements(data, indices, updates, axis=axis)


@kernel("ScatterND", since=(11, 13, 16, 18))
def scatter_nd(data, indices, updates, *, reduction=None):
    """Copy of ``data`` with slices addressed by the last axis of ``indices`` set (or reduced) from ``updates``."""
    out = np.array(data, copy=True)
    idx = np.asarray(indices).astype(_I64)
    upd = np.asarray(updates)
    depth = idx.shape[-1]
    expected = idx.shape[:-1] + out.shape[depth:]
    if depth > out.ndim or upd.shape != expected:
        raise ValueError(f"ScatterND: updates shape {upd.shape} must be {expected} for indices {idx.shape}")
    idx = _wrap_indices(idx, out.shape[:depth], op="ScatterND")
    _scatter_into(out, tuple(np.moveaxis(idx, -1, 0)), upd, reduction)
    return out


@kernel("TensorScatter", since=24)
def tensor_scatter(past_cache, update, write_indices=None, *, axis, mode):
    """Write ``update`` into a copy of the cache along ``axis`` from each batch entry's write index (linear or circular)."""
    out = np.array(past_cache, copy=True)
    upd = np.asarray(update)
    axis = normalize_axis(axis, out.ndim)
    if axis == 0:
        raise ValueError("TensorScatter axis must not be the batch axis 0")
    if upd.ndim != out.ndim or upd.shape[:axis] + upd.shape[axis + 1 :] != out.shape[:axis] + out.shape[axis + 1 :]:
        raise ValueError(f"TensorScatter: update {upd.shape} must match past_cache {out.shape} except along axis {axis}")
    if mode not in ("linear", "circular"):
        raise ValueError(f"TensorScatter mode must be 'linear' or 'circular', got {mode!r}")
    capacity, length = out.shape[axis], upd.shape[axis]
    starts = [0] * out.shape[0] if write_indices is None else int_list(write_indices)
    if len(starts) != out.shape[0]:
        raise ValueError(f"TensorScatter: {len(starts)} write_indices for a batch of {out.shape[0]}")
    for b, start in enumerate(starts):
        positions = start + np.arange(length)
        if mode == "circular":
            positions %= capacity
        elif start < 0 or start + length > capacity:
            raise ValueError(f"TensorScatter: writing {length} steps at {start} overflows the cache of {capacity}")
        np.moveaxis(out[b], axis - 1, 0)[positions] = np.moveaxis(upd[b], axis - 1, 0)
    return out


# ---------------------------------------------------------------------------- selection


@kernel("Compress", since=(9, 11, 28))
def compress(input, condition, *, axis):
    """Keep the slices along ``axis`` (of the flattened input if absent) where ``condition`` is true."""
    data = np.asarray(input)
    cond = np.asarray(condition).astype(bool).reshape(-1)
    if axis is None:
        data, axis = data.reshape(-1), 0
    else:
        axis = normalize_axis(axis, data.ndim)
    size = data.shape[axis]
    if cond.size > size:
        if cond[size:].any():
            raise ValueError(f"Compress condition selects past the {size} entries of axis {axis}")
        cond = cond[:size]
    return np.compress(cond, data, axis=axis)


def _truth(x: np.ndarray) -> np.ndarray:
    """Element-wise "is non-zero" for any element type (exotic types: by decoded value)."""
    if x.dtype.kind == "O":
        return np.vectorize(bool, otypes=[bool])(x) if x.size else np.zeros(x.shape, bool)
    if x.dtype.names:
        return to_float32(x) != 0  # -0 is zero, NaN is not; float8e8m0 has no zero
    return x != 0


@kernel("NonZero", since=(9, 13))
def non_zero(X):
    """Indices of the non-zero elements as an int64 [rank, count] matrix (a scalar counts as rank 1)."""
    mask = np.atleast_1d(_truth(np.asarray(X)))
    return np.array(np.nonzero(mask), dtype=_I64).reshape(mask.ndim, -1)


def _one_hot(indices, depth, values, axis: int, allow_negative: bool) -> np.ndarray:
    idx = np.asarray(indices).astype(_I64)
    size = int(np.asarray(depth).reshape(-1)[0]) if np.size(depth) == 1 else -1
    if size < 1:
        raise ValueError(f"OneHot depth must be one positive number, got {depth!r}")
    vals = np.asarray(values).reshape(-1)
    if vals.size != 2:
        raise ValueError(f"OneHot values must be [off_value, on_value], got {vals.size} values")
    if allow_negative:
        idx = np.where(idx < 0, idx + size, idx)
    axis = normalize_axis(axis, idx.ndim + 1)
    hot = np.moveaxis(idx[..., None] == np.arange(size), -1, axis)
    return vals[hot.astype(np.intp)]


@kernel("OneHot", since=9)
def one_hot_v9(indices, depth, values, *, axis):
    """One-hot encode ``indices`` with [off, on] ``values``; indices outside [0, depth) are all off."""
    return _one_hot(indices, depth, values, axis, allow_negative=False)


@kernel("OneHot", since=(11, 28))
def one_hot(indices, depth, values, *, axis):
    """One-hot encode ``indices`` with [off, on] ``values``; negative indices count from depth."""
    return _one_hot(indices, depth, values, axis, allow_negative=True)


@kernel("Trilu", since=14)
def trilu(input, k=None, *, upper):
    """Keep the upper (or lower) triangle of the last two axes from diagonal ``k``; zero the rest."""
    x = np.asarray(input)
    if x.ndim < 2:
        raise ValueError(f"Trilu needs a rank >= 2 input, got shape {x.shape}")
    offset = 0 if k is None else int_scalar(k, name="k")
    rows, cols = x.shape[-2:]
    diagonal = np.arange(cols)[None, :] - np.arange(rows)[:, None]
    drop = diagonal < offset if upper else diagonal > offset
    out = x.copy()
    out[..., drop] = zero_scalar(x.dtype)
    return out
