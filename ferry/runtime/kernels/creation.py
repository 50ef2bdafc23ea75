"""Tensor creation kernels: Constant, ConstantOfShape, EyeLike, Range."""

from __future__ import annotations

import math

import numpy as np

from ferry.ir.attribute import constant_attribute_array
from ferry.ir.dtypes import DataType, from_numpy_dtype
from ferry.ir.minifloat import from_float32, to_float32
from ferry.runtime.kernels._axes import int_list
from ferry.runtime.registry import kernel

_BF16 = DataType.BFLOAT16.numpy


# ---------------------------------------------------------------------------- Constant


@kernel("Constant", since=(1, 9, 11, 12, 13, 19, 21, 23, 24, 25))
def constant(
    *,
    value,
    sparse_value=None,
    value_float=None,
    value_floats=None,
    value_int=None,
    value_ints=None,
    value_string=None,
    value_strings=None,
):
    """The tensor held by whichever one of the value attributes is set (value_* make scalars or 1-D tensors)."""
    given = {
        name: v
        for name, v in {
            "value": value,
            "sparse_value": sparse_value,
            "value_float": value_float,
            "value_floats": value_floats,
            "value_int": value_int,
            "value_ints": value_ints,
            "value_string": value_string,
            "value_strings": value_strings,
        }.items()
        if v is not None
    }
    if len(given) != 1:
        raise ValueError(f"Constant needs exactly one value attribute, got {sorted(given) or 'none'}")
    (name, data), = given.items()
    return constant_attribute_array(name, data)


@kernel("ConstantOfShape", since=(9, 20, 21, 23, 24, 25))
def constant_of_shape(input, *, value):
    """A tensor of shape ``input`` filled with the one-element ``value`` (float32 0 by default)."""
    dims = int_list(input)
    if any(d < 0 for d in dims):
        raise ValueError(f"ConstantOfShape dimensions must be >= 0, got {dims}")
    fill = np.zeros((), dtype=np.float32) if value is None else np.asarray(value)
    if fill.size != 1:
        raise ValueError(f"ConstantOfShape value must hold one element, got shape {fill.shape}")
    out = np.empty(dims, dtype=fill.dtype)
    out[...] = fill.reshape(())
    return out


@kernel("EyeLike", since=(9, 22))
def eye_like(input, *, dtype, k):
    """A 2-D tensor shaped like ``input`` with ones on diagonal ``k`` (type ``dtype`` or the input's)."""
    x = np.asarray(input)
    if x.ndim != 2:
        raise ValueError(f"EyeLike needs a 2-D input, got shape {x.shape}")
    out_dtype = x.dtype if dtype is None else DataType(dtype).numpy
    if out_dtype.kind == "O":
        raise TypeError("EyeLike cannot produce strings")
    if out_dtype.names:
        one = from_float32(np.ones((), np.float32), from_numpy_dtype(out_dtype))
    else:
        one = np.ones((), dtype=out_dtype)
    out = np.zeros(x.shape, dtype=out_dtype)
    out[np.eye(*x.shape, k=int(k), dtype=bool)] = one
    return out


# ---------------------------------------------------------------------------- Range


def _range_count(start, limit, delta) -> int:
    if delta == 0:
        raise ValueError("Range delta must not be 0")
    if isinstance(start, int):
        return max(-((start - limit) // delta), 0)
    return max(math.ceil((limit - start) / delta), 0)


@kernel("Range", since=(11, 27))
def range_(start, limit, delta, *, stash_type=None):
    """start, start + delta, ... up to ``limit`` exclusive; float16/bfloat16 compute in float32 when stash_type is 1."""
    bounds = [np.asarray(v).reshape(()) for v in (start, limit, delta)]
    dtype = bounds[0].dtype
    if any(b.dtype != dtype for b in bounds):
        raise TypeError(f"Range inputs must share one type, got {[str(b.dtype) for b in bounds]}")
    if dtype == _BF16:
        first, limit_, step = (to_float32(b) for b in bounds)
        count = _range_count(float(first), float(limit_), float(step))
        return from_float32(first + np.arange(count, dtype=np.float32) * step, DataType.BFLOAT16)
    if np.issubdtype(dtype, np.integer):
        first, limit_, step = (int(b) for b in bounds)
        return (first + np.arange(_range_count(first, limit_, step), dtype=np.int64) * step).astype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"Range does not support element type {dtype}")
    count = _range_count(*(float(b) for b in bounds))
    work = np.float32 if dtype == np.float16 and stash_type == 1 else dtype
    first, _, step = (b.astype(work) for b in bounds)
    return (first + np.arange(count).astype(work) * step).astype(dtype)
