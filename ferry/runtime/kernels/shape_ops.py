"""Shape and layout kernels: Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
Concat, Split, Slice, Expand, Tile, Identity.

They only move data, so they work on every element type: strings (object arrays) and
the structured dtypes of exotic types alike. Padding and spatial rearrangements live
in :mod:`ferry.runtime.kernels.shape_spatial`.
"""

from __future__ import annotations

import math

import numpy as np

from ferry.runtime.kernels._axes import int_list, int_scalar, normalize_axes, normalize_axis
from ferry.runtime.registry import kernel

_I64 = np.int64


# ---------------------------------------------------------------------------- Shape, Size


@kernel("Shape", since=(1, 13, 15, 19, 21, 23, 24, 25))
def shape(data, *, start=None, end=None):
    """The dimensions of ``data`` as int64, optionally sliced by clamped ``start``/``end``."""
    dims = np.shape(data)
    rank = len(dims)
    first = 0 if start is None else _clamp_index(int(start), rank)
    last = rank if end is None else _clamp_index(int(end), rank)
    return np.array(dims[first:last], dtype=_I64)


def _clamp_index(index: int, rank: int) -> int:
    if index < 0:
        index += rank
    return min(max(index, 0), rank)


@kernel("Size", since=(1, 13, 19, 21, 23, 24, 25))
def size(data):
    """The number of elements of ``data`` as an int64 scalar."""
    return np.array(np.size(data), dtype=_I64)


# ---------------------------------------------------------------------------- Reshape, Flatten


def _reshape(data: np.ndarray, target: list[int], allowzero: bool) -> np.ndarray:
    dims = []
    for i, dim in enumerate(target):
        if dim == 0 and not allowzero:
            if i >= data.ndim:
                raise ValueError(f"shape {target}: a 0 at position {i} copies no dimension of a rank-{data.ndim} input")
            dim = data.shape[i]
        elif dim < -1:
            raise ValueError(f"shape {target}: dimensions must be >= -1, found {dim}")
        dims.append(dim)
    if dims.count(-1) > 1:
        raise ValueError(f"shape {target}: at most one dimension may be -1")
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        if known == 0 or data.size % known:
            raise ValueError(f"cannot infer the -1 in shape {target} for an input of shape {data.shape}")
        dims[dims.index(-1)] = data.size // known
    if math.prod(dims) != data.size:
        raise ValueError(f"cannot reshape an input of shape {data.shape} to {dims}")
    return data.reshape(dims)


@kernel("Reshape", since=1)
def reshape_v1(data, *, shape, consumed_inputs):
    """Reshape to the ``shape`` attribute: 0 copies the input dimension, -1 is inferred."""
    if shape is None:
        raise ValueError("Reshape-1 needs the 'shape' attribute")
    return _reshape(np.asarray(data), list(shape), allowzero=False)


@kernel("Reshape", since=(5, 13, 14, 19, 21, 23, 24, 25))
def reshape(data, shape, *, allowzero=None):
    """Reshape to the ``shape`` input: -1 is inferred, 0 copies the input dimension unless ``allowzero``."""
    return _reshape(np.asarray(data), int_list(shape), allowzero=bool(allowzero))


@kernel("Flatten", since=(1, 9, 11, 13, 21, 23, 24, 25))
def flatten(input, *, axis):
    """A 2-D view: dimensions before ``axis`` form the rows, the rest the columns."""
    data = np.asarray(input)
    if not -data.ndim <= axis <= data.ndim:
        raise ValueError(f"Flatten axis {axis} is out of range [{-data.ndim}, {data.ndim}]")
    axis = axis + data.ndim if axis < 0 else axis
    return data.reshape(math.prod(data.shape[:axis]), math.prod(data.shape[axis:]))


# ---------------------------------------------------------------------------- Squeeze, Unsqueeze


def _squeeze(data: np.ndarray, axes: list[int] | None) -> np.ndarray:
    if axes is None:
        return data.reshape([d for d in data.shape if d != 1])
    axes = normalize_axes(axes, data.ndim)
    for axis in axes:
        if data.shape[axis] != 1:
            raise ValueError(f"cannot squeeze axis {axis} of shape {data.shape}: its size is not 1")
    return data.reshape([d for i, d in enumerate(data.shape) if i not in axes])


@kernel("Squeeze", since=(1, 11))
def squeeze_v1(data, *, axes):
    """Remove the size-1 dimensions listed in the ``axes`` attribute (all of them if absent)."""
    return _squeeze(np.asarray(data), axes)


@kernel("Squeeze", since=(13, 21, 23, 24, 25))
def squeeze(data, axes=None):
    """Remove the size-1 dimensions listed in the ``axes`` input (all of them if absent)."""
    return _squeeze(np.asarray(data), int_list(axes))


def _unsqueeze(data: np.ndarray, axes: list[int] | None) -> np.ndarray:
    if axes is None:
        raise ValueError("Unsqueeze needs axes")
    rank = data.ndim + len(axes)
    axes = set(normalize_axes(axes, rank))
    dims = iter(data.shape)
    return data.reshape([1 if i in axes else next(dims) for i in range(rank)])


@kernel("Unsqueeze", since=(1, 11))
def unsqueeze_v1(data, *, axes):
    """Insert size-1 dimensions at the output positions of the ``axes`` attribute."""
    return _unsqueeze(np.asarray(data), axes)


@kernel("Unsqueeze", since=(13, 21, 23, 24, 25))
def unsqueeze(data, axes):
    """Insert size-1 dimensions at the output positions of the ``axes`` input."""
    return _unsqueeze(np.asarray(data), int_list(axes))


# ---------------------------------------------------------------------------- Transpose, Concat


@kernel("Transpose", since=(1, 13, 21, 23, 24, 25))
def transpose(data, *, perm):
    """Permute the dimensions by ``perm`` (reversed when absent)."""
    data = np.asarray(data)
    if perm is None:
        return data.transpose()
    if sorted(perm) != list(range(data.ndim)):
        raise ValueError(f"perm {list(perm)} is not a permutation of the {data.ndim} axes")
    return data.transpose(perm)


@kernel("Concat", since=(1, 4, 11, 13))
def concat(*inputs, axis):
    """Join the inputs along ``axis`` (opset 1 defaults it to 1)."""
    if not inputs:
        raise ValueError("Concat needs at least one input")
    arrays = [np.asarray(x) for x in inputs]
    axis = normalize_axis(1 if axis is None else axis, arrays[0].ndim)
    return np.concatenate(arrays, axis=axis)


# ---------------------------------------------------------------------------- Split


def _split(data: np.ndarray, axis: int, sizes: list[int]) -> tuple[np.ndarray, ...]:
    axis = normalize_axis(axis, data.ndim)
    if any(s < 0 for s in sizes) or sum(sizes) != data.shape[axis]:
        raise ValueError(f"split sizes {sizes} must be >= 0 and sum to dimension {axis} of shape {data.shape}")
    bounds = np.cumsum(sizes)[:-1]
    return tuple(np.split(data, bounds, axis=axis))


def _equal_sizes(dim: int, parts: int, *, allow_uneven: bool) -> list[int]:
    if parts < 1:
        raise ValueError(f"cannot split into {parts} parts")
    if dim % parts and not allow_uneven:
        raise ValueError(f"dimension of size {dim} does not split evenly into {parts} parts")
    chunk = -(-dim // parts)
    return [max(0, min(chunk, dim - i * chunk)) for i in range(parts)]


@kernel("Split", since=1)
def split_v1(input, split_input=None, *, axis, split, _num_outputs):
    """Split along ``axis`` by lengths from the ``split`` input or attribute, else equally."""
    data = np.asarray(input)
    axis = 0 if axis is None else axis
    sizes = int_list(split_input if split_input is not None else split)
    if sizes is None:
        sizes = _equal_sizes(data.shape[normalize_axis(axis, data.ndim)], _num_outputs, allow_uneven=False)
    return _split(data, axis, sizes)


@kernel("Split", since=(2, 11))
def split_v2(input, *, axis, split, _num_outputs):
    """Split along ``axis`` by the ``split`` attribute lengths, else into equal parts."""
    return split_v1(input, None, axis=axis, split=split, _num_outputs=_num_outputs)


@kernel("Split", since=(13, 18))
def split(input, split=None, *, axis, num_outputs=None, _num_outputs):
    """Split along ``axis`` by the ``split`` input, else into ``num_outputs`` parts (last one smaller)."""
    data = np.asarray(input)
    sizes = int_list(split)
    if sizes is not None and num_outputs is not None:
        raise ValueError("Split takes either the 'split' input or 'num_outputs', not both")
    if sizes is None:
        dim = data.shape[normalize_axis(axis, data.ndim)]
        parts = _num_outputs if num_outputs is None else int(num_outputs)
        sizes = _equal_sizes(dim, parts, allow_uneven=num_outputs is not None)
    return _split(data, axis, sizes)


# ---------------------------------------------------------------------------- Slice


def _slice_of(start: int, end: int, step: int, dim: int) -> slice:
    """The python slice selecting ONNX's clamped [start, end) with ``step`` over ``dim``."""
    if step == 0:
        raise ValueError("Slice steps must not be 0")
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        return slice(min(max(start, 0), dim), min(max(end, 0), dim), step)
    start = min(max(start, 0), dim - 1)
    end = min(max(end, -1), dim - 1)
    return slice(start, None if end < 0 else end, step)


def _slice(data: np.ndarray, starts, ends, axes, steps) -> np.ndarray:
    if len(starts) != len(ends):
        raise ValueError(f"Slice starts {starts} and ends {ends} differ in length")
    axes = list(range(len(starts))) if axes is None else normalize_axes(axes, data.ndim)
    steps = [1] * len(starts) if steps is None else steps
    if not len(axes) == len(steps) == len(starts):
        raise ValueError(f"Slice axes {axes} and steps {steps} must match starts {starts} in length")
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        index[axis] = _slice_of(start, end, step, data.shape[axis])
    return data[tuple(index)]


@kernel("Slice", since=1)
def slice_v1(data, *, starts, ends, axes):
    """Slice by the ``starts``/``ends``/``axes`` attributes (step 1, bounds clamped)."""
    return _slice(np.asarray(data), list(starts), list(ends), axes, None)


@kernel("Slice", since=(10, 11, 13))
def slice_(data, starts, ends, axes=None, steps=None):
    """Slice by ``starts``/``ends``/``axes``/``steps`` inputs; negative bounds count from the end."""
    return _slice(np.asarray(data), int_list(starts), int_list(ends), int_list(axes), int_list(steps))


# ---------------------------------------------------------------------------- Expand, Tile, Identity


@kernel("Expand", since=(8, 13))
def expand(input, shape):
    """Broadcast ``input`` against ``shape`` (numpy rules in both directions)."""
    data = np.asarray(input)
    target = np.broadcast_shapes(data.shape, tuple(int_list(shape)))
    return np.broadcast_to(data, target).copy()


@kernel("Tile", since=1)
def tile_v1(input, tiles, axis):
    """Repeat the whole tensor ``tiles`` times along ``axis``."""
    data = np.asarray(input)
    reps = [1] * data.ndim
    reps[normalize_axis(int_scalar(axis, name="axis"), data.ndim)] = int_scalar(tiles, name="tiles")
    return np.tile(data, reps)


@kernel("Tile", since=(6, 13))
def tile(input, repeats):
    """Repeat the tensor ``repeats[i]`` times along each axis i."""
    data = np.asarray(input)
    reps = int_list(repeats)
    if len(reps) != data.ndim or any(r < 0 for r in reps):
        raise ValueError(f"repeats {reps} must be {data.ndim} non-negative counts for shape {data.shape}")
    return np.tile(data, reps)


@kernel("Identity", since=(1, 13, 14, 16, 19, 21, 23, 24, 25))
def identity(input):
    """The input unchanged: a tensor, a sequence (list) or an optional (None)."""
    return (input,)  # a 1-tuple, so a sequence value is not mistaken for several outputs
