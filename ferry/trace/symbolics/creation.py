"""Tensor creation and conversion: arange, zeros/ones/full/empty(_like), eye, rand(n)(_like),
torch.tensor of sizes, and dtype conversions (to, float, long, type_as, ...).

A creation call with only static sizes never reaches these functions: the tracer keeps
its result as a constant. Calls with sizes read from dynamic axes (SymInts) or with a
traced tensor (``*_like``, ``x.new_*``) build the tensor in the graph.
"""

from __future__ import annotations

import numpy as np
import torch

from ferry.errors import UnsupportedOperatorError
from ferry.trace.registry import symbolic
from ferry.trace.symbolics._helpers import as_value, cast_to, dtype_code, numpy_dtype, out_dtype
from ferry.trace.symbolics.shape_ops import dims_value, size_args
from ferry.trace.symint import SymInt
from ferry.trace.tracer import Var

T = torch.Tensor
_RANGE_DTYPES = (torch.float32, torch.float64, torch.int16, torch.int32, torch.int64)
_EYE_DTYPES = (
    torch.float16, torch.float32, torch.float64, torch.bool,
    torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8,
)


def _filled(g, shape, fill, dtype: torch.dtype):
    """A tensor of ``shape`` (an int64 1-D value) holding ``fill`` (number or Var)."""
    if isinstance(fill, (Var, SymInt)):
        return g.op("Expand", as_value(g, fill, dtype), shape)
    return g.op("ConstantOfShape", shape, value=np.asarray([fill], dtype=numpy_dtype(dtype)))


def _shape_of(g, x: Var):
    return g.int64([int(d) for d in x.shape]) if x.is_static() else g.op("Shape", x)


def _sizes(args, kwargs) -> list:
    return size_args(args) if args else size_args((kwargs["size"],))


# -- from sizes -----------------------------------------------------------------------------
@symbolic(torch.zeros, torch.empty)
def zeros(g, *size, **kwargs):
    """zeros(*sizes) with dynamic sizes (empty is zeros: its contents are unspecified)."""
    return _filled(g, dims_value(g, _sizes(size, kwargs)), 0, out_dtype(g))


@symbolic(torch.ones)
def ones(g, *size, **kwargs):
    return _filled(g, dims_value(g, _sizes(size, kwargs)), 1, out_dtype(g))


@symbolic(torch.full)
def full(g, size, fill_value, **kwargs):
    return _filled(g, dims_value(g, size_args((size,))), fill_value, out_dtype(g))


@symbolic(T.new_zeros, T.new_empty)
def new_zeros(g, x, *size, **kwargs):
    """x.new_zeros(sizes): x's dtype unless dtype= is given."""
    return _filled(g, dims_value(g, _sizes(size, kwargs)), 0, out_dtype(g))


@symbolic(T.new_ones)
def new_ones(g, x, *size, **kwargs):
    return _filled(g, dims_value(g, _sizes(size, kwargs)), 1, out_dtype(g))


@symbolic(T.new_full)
def new_full(g, x, size, fill_value, **kwargs):
    return _filled(g, dims_value(g, size_args((size,))), fill_value, out_dtype(g))


# -- like another tensor --------------------------------------------------------------------
@symbolic(torch.zeros_like, torch.empty_like)
def zeros_like(g, x, **kwargs):
    """A tensor of x's shape (and dtype unless dtype= is given) filled with 0."""
    return _filled(g, _shape_of(g, x), 0, out_dtype(g))


@symbolic(torch.ones_like)
def ones_like(g, x, **kwargs):
    return _filled(g, _shape_of(g, x), 1, out_dtype(g))


@symbolic(torch.full_like)
def full_like(g, x, fill_value, **kwargs):
    return _filled(g, _shape_of(g, x), fill_value, out_dtype(g))


@symbolic(T.zero_)
def zero_(g, x):
    return _filled(g, _shape_of(g, x), 0, x.dtype)


@symbolic(T.fill_, torch.fill)
def fill_(g, x, value):
    """x.fill_(v): every element set to v (a number or a 0-d tensor)."""
    return _filled(g, _shape_of(g, x), value, x.dtype)


# -- random -----------------------------------------------------------------------------------
def _random(g, like, normal: bool):
    dtype = out_dtype(g)
    if not dtype.is_floating_point:
        raise UnsupportedOperatorError(f"random tensors of dtype {dtype} are not supported by the tracer")
    if normal:
        return g.op("RandomNormalLike", like, dtype=dtype_code(dtype), mean=0.0, scale=1.0)
    return g.op("RandomUniformLike", like, dtype=dtype_code(dtype), low=0.0, high=1.0)


@symbolic(torch.rand_like)
def rand_like(g, x, **kwargs):
    """Uniform samples in [0, 1) shaped like x: RandomUniformLike (not torch's stream)."""
    return _random(g, x, normal=False)


@symbolic(torch.randn_like)
def randn_like(g, x, **kwargs):
    """Standard normal samples shaped like x: RandomNormalLike (not torch's stream)."""
    return _random(g, x, normal=True)


@symbolic(torch.rand)
def rand(g, *size, **kwargs):
    """rand(*sizes) with dynamic sizes: RandomUniformLike of a zeros tensor of that shape."""
    return _random(g, _filled(g, dims_value(g, _sizes(size, kwargs)), 0, torch.float32), normal=False)


@symbolic(torch.randn)
def randn(g, *size, **kwargs):
    return _random(g, _filled(g, dims_value(g, _sizes(size, kwargs)), 0, torch.float32), normal=True)


# -- ranges -----------------------------------------------------------------------------------
def _scalar(g, x, dtype):
    value = as_value(g, x, dtype)
    return g.op("Reshape", value, g.int64([])) if isinstance(x, Var) and x.rank else value


@symbolic(torch.arange)
def arange(g, *args, start=None, end=None, step=None, **kwargs):
    """arange(end) / arange(start, end[, step]) with dynamic bounds: ONNX Range."""
    if len(args) == 1 and end is None:
        args = (0 if start is None else start, args[0])
    bounds = dict(zip(("start", "end", "step"), args))
    bounds.update({k: v for k, v in (("start", start), ("end", end), ("step", step)) if v is not None})
    first, last, stride = bounds.get("start", 0), bounds["end"], bounds.get("step", 1)
    dtype = out_dtype(g)
    compute = dtype if dtype in _RANGE_DTYPES else (torch.float64 if dtype.is_floating_point else torch.int64)
    out = g.op("Range", *(_scalar(g, v, compute) for v in (first, last, stride)))
    return cast_to(g, out, compute, dtype)


@symbolic(torch.eye)
def eye(g, n, m=None, **kwargs):
    """eye(n[, m]) with dynamic sizes: EyeLike of an n x m zeros tensor."""
    dtype = out_dtype(g)
    compute = dtype if dtype in _EYE_DTYPES else torch.float32
    zeros_nm = _filled(g, dims_value(g, [n, n if m is None else m]), 0, compute)
    return cast_to(g, g.op("EyeLike", zeros_nm), compute, dtype)


# -- tensors from Python data holding dynamic sizes ------------------------------------------
def _flat(data) -> list:
    if isinstance(data, (list, tuple)):
        return [leaf for item in data for leaf in _flat(item)]
    return [data]


@symbolic(torch.tensor, torch.as_tensor, torch.asarray, torch.scalar_tensor, T.new_tensor)
def tensor(g, *args, **kwargs):
    """torch.tensor([B, 4]) (sizes, numbers, 0-d tensors): their values concatenated."""
    data = args[1] if args and isinstance(args[0], Var) and len(args) > 1 else args[0]
    if isinstance(data, Var):
        return cast_to(g, data.value, data.dtype, out_dtype(g))
    dtype = out_dtype(g)
    leaves = _flat(data)
    parts = [g.op("Reshape", as_value(g, v, dtype), g.int64([1])) for v in leaves]
    flat = parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=0)
    return g.op("Reshape", flat, g.int64(list(g.out.shape)))


# -- conversions ------------------------------------------------------------------------------
@symbolic(
    T.to, T.type, T.type_as, T.float, T.double, T.half, T.bfloat16, T.long, T.int, T.short,
    T.char, T.byte, T.bool, T.cpu,
)
def convert(g, x, *args, **kwargs):
    """Conversions to the result's dtype (Cast when it changes); devices are no-ops."""
    return cast_to(g, x.value, x.dtype, out_dtype(g))
