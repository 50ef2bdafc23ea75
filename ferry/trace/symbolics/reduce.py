"""Reductions: sum, mean, prod, max/min, arg-reductions, top-k and sort, scans, logsumexp,
all/any. Statistics and norms are in :mod:`ferry.trace.symbolics.statistics`.

``dim`` takes torch's forms (an int, a sequence, ``None`` or ``()`` for every axis); axes
go to ONNX as an input or an attribute depending on the opset (ReduceSum from 13, the
other Reduce ops from 18). Sizes of reduced axes come from the graph, so dynamic axes stay
dynamic.
"""

from __future__ import annotations

import torch

from ferry.ir import Value
from ferry.trace.symbolics._helpers import as_value, cast_to, dtype_code, out_dtype
from ferry.trace.symbolics.math import is_float, maximum, minimum, symbolic, unsupported, variants
from ferry.trace.tracer import Var

T = torch.Tensor


# -- helpers shared by the reduction families ------------------------------------------------
def dims_of(dim, rank: int) -> list[int] | None:
    """torch's ``dim`` as sorted non-negative axes; ``None`` means every axis."""
    if dim is None:
        return None
    dims = [dim] if isinstance(dim, int) else list(dim)
    if not dims or rank == 0:
        return None
    return sorted({int(d) % rank for d in dims})


def reduce(g, op: str, x: Value, dims: list[int] | None, keepdim: bool) -> Value:
    """ONNX ``op`` (ReduceSum, ReduceMax, ...) over ``dims`` (``None``: all axes)."""
    if dims is None:
        return g.op(op, x, keepdims=int(keepdim))
    if g.opset >= (13 if op == "ReduceSum" else 18):
        return g.op(op, x, g.int64(dims), keepdims=int(keepdim))
    return g.op(op, x, axes=dims, keepdims=int(keepdim))


def squeeze(g, x: Value, axes: list[int]) -> Value:
    """Drop the size-1 ``axes`` of ``x``."""
    if not axes:
        return x
    if g.opset >= 13:
        return g.op("Squeeze", x, g.int64(axes))
    return g.op("Squeeze", x, axes=axes)


def size_along(g, x: Var, dim: int) -> Value:
    """The int64 1-D ``[x.shape[dim]]``, read from the graph."""
    if x.rank == 0:
        return g.int64([1])
    return g.op("Gather", g.op("Shape", x), g.int64([dim % x.rank]))


def _orderable(g, x: Var) -> tuple[Value, bool]:
    """``x`` as a value ONNX can order (bools as int32), and whether it was cast."""
    if x.dtype == torch.bool:
        return g.op("Cast", x, to=dtype_code(torch.int32)), True
    return x.value, False


def _reduce_values(g, op: str, x: Var, dims, keepdim) -> Value:
    value, was_bool = _orderable(g, x)
    out = reduce(g, op, value, dims, keepdim)
    return g.op("Cast", out, to=dtype_code(torch.bool)) if was_bool else out


# -- sum, mean, prod, amax, amin ---------------------------------------------------------------
def _reduction(op: str):
    def reduction(g, x, dim=None, keepdim=False, *, dtype=None, out=None):
        value = as_value(g, x, out_dtype(g))
        return reduce(g, op, value, dims_of(dim, x.rank), keepdim)

    reduction.__doc__ = f"ONNX {op} over ``dim`` in the result's dtype (``dtype`` argument)."
    return reduction


symbolic(*variants("sum", inplace=False))(_reduction("ReduceSum"))
symbolic(*variants("mean", inplace=False))(_reduction("ReduceMean"))
symbolic(*variants("prod", inplace=False))(_reduction("ReduceProd"))


def _nan_reduction(mean: bool):
    def nan_reduction(g, x, dim=None, keepdim=False, *, dtype=None, out=None):
        dtype = out_dtype(g)
        value = as_value(g, x, dtype)
        dims = dims_of(dim, x.rank)
        if not is_float(dtype):
            return reduce(g, "ReduceSum", value, dims, keepdim)
        nan = g.op("IsNaN", value)
        total = reduce(g, "ReduceSum", g.op("Where", nan, as_value(g, 0, dtype), value), dims, keepdim)
        if not mean:
            return total
        count = g.op("Cast", g.op("Not", nan), to=dtype_code(dtype))
        return g.op("Div", total, reduce(g, "ReduceSum", count, dims, keepdim))

    nan_reduction.__doc__ = f"The {'mean' if mean else 'sum'} of the non-NaN elements."
    return nan_reduction


symbolic(*variants("nansum", inplace=False))(_nan_reduction(False))
symbolic(*variants("nanmean", inplace=False))(_nan_reduction(True))


def _minmax_all(op: str):
    def minmax_all(g, x, dim=(), keepdim=False, *, out=None):
        return _reduce_values(g, op, x, dims_of(dim, x.rank), keepdim)

    minmax_all.__doc__ = f"ONNX {op} over ``dim`` (all axes by default)."
    return minmax_all


symbolic(*variants("amax", inplace=False))(_minmax_all("ReduceMax"))
symbolic(*variants("amin", inplace=False))(_minmax_all("ReduceMin"))


@symbolic(*variants("aminmax", inplace=False))
def aminmax(g, x, *, dim=None, keepdim=False, out=None):
    dims = dims_of(dim, x.rank)
    return _reduce_values(g, "ReduceMin", x, dims, keepdim), _reduce_values(g, "ReduceMax", x, dims, keepdim)


# -- max / min: full, along a dim (values, indices), or elementwise ------------------------------
def _max_min(op: str, arg_op: str, binary):
    def max_min(g, x, dim=None, keepdim=False, *, other=None, out=None):
        if isinstance(dim, Var) or other is not None:
            return binary(g, x, dim if other is None else other)
        if dim is None:
            return _reduce_values(g, op, x, None, False)
        values = _reduce_values(g, op, x, dims_of(dim, x.rank), keepdim)
        return values, _arg(g, arg_op, x, dim, keepdim)

    max_min.__doc__ = f"{op} of everything, (values, indices) along ``dim``, or elementwise."
    return max_min


symbolic(torch.max, T.max)(_max_min("ReduceMax", "ArgMax", maximum))
symbolic(torch.min, T.min)(_max_min("ReduceMin", "ArgMin", minimum))


def _arg(g, op: str, x: Var, dim, keepdim: bool) -> Value:
    value, _ = _orderable(g, x)
    if dim is None:  # over the flattened tensor
        flat = g.op("Reshape", value, g.int64([-1]))
        index = g.op(op, flat, axis=0, keepdims=0)
        return g.op("Reshape", index, g.int64([1] * x.rank)) if keepdim else index
    if x.rank == 0:
        return g.int64(0)
    return g.op(op, value, axis=int(dim) % x.rank, keepdims=int(keepdim))


def _argreduce(op: str):
    def argreduce(g, x, dim=None, keepdim=False, *, out=None):
        return _arg(g, op, x, dim, keepdim)

    argreduce.__doc__ = f"ONNX {op} (first occurrence) along ``dim``, or over the flattened tensor."
    return argreduce


symbolic(*variants("argmax", inplace=False))(_argreduce("ArgMax"))
symbolic(*variants("argmin", inplace=False))(_argreduce("ArgMin"))


# -- top-k and sorting ---------------------------------------------------------------------------
def _topk(g, x: Var, k: Value, dim: int, largest: bool) -> tuple[Value, Value]:
    if x.rank == 0:  # a 0-d tensor is its own sort
        return g.op("Identity", x), g.int64(0)
    value, was_bool = _orderable(g, x)
    values, indices = g.op("TopK", value, k, axis=int(dim) % x.rank, largest=int(largest),
                           sorted=1, num_outputs=2)
    if was_bool:
        values = g.op("Cast", values, to=dtype_code(torch.bool))
    return values, indices


@symbolic(*variants("topk", inplace=False))
def topk(g, x, k, dim=-1, largest=True, sorted=True, *, out=None):
    """ONNX TopK; the result is always sorted (a valid order for ``sorted=False`` too)."""
    return _topk(g, x, g.shape_value([k]), dim, largest)


@symbolic(*variants("sort", inplace=False))
def sort(g, x, dim=-1, descending=False, *, stable=False, out=None):
    """TopK over the whole axis; equal elements keep their order (ONNX TopK's rule)."""
    return _topk(g, x, size_along(g, x, dim), dim, descending)


@symbolic(*variants("argsort", inplace=False))
def argsort(g, x, dim=-1, descending=False, *, stable=False):
    return sort(g, x, dim, descending)[1]


@symbolic(*variants("msort", inplace=False))
def msort(g, x, *, out=None):
    return sort(g, x, 0)[0]


# -- scans, logsumexp ----------------------------------------------------------------------------
@symbolic(*variants("cumsum"))
def cumsum(g, x, dim, *, dtype=None, out=None):
    """ONNX CumSum along ``dim`` in the result's dtype (int64 for integer inputs)."""
    value = as_value(g, x, out_dtype(g))
    if x.rank == 0:
        return g.op("Identity", value)
    return g.op("CumSum", value, g.int64(int(dim) % x.rank))


@symbolic(*variants("cumprod"))
def cumprod(g, x, dim, *, dtype=None, out=None):
    """ONNX CumProd (opset 26 and later) along ``dim``."""
    value = as_value(g, x, out_dtype(g))
    if x.rank == 0:
        return g.op("Identity", value)
    if g.opset < 26:
        raise unsupported(g, f"torch.cumprod needs ONNX CumProd: opset 26 or later (got {g.opset})")
    return g.op("CumProd", value, g.int64(int(dim) % x.rank))


@symbolic(*variants("logsumexp", inplace=False))
def logsumexp(g, x, dim=None, keepdim=False, *, out=None):
    """log(sum(exp(x - m))) + m with m the maximum (0 where it is infinite), as torch does."""
    dtype = out_dtype(g)
    value = as_value(g, x, dtype)
    dims = dims_of(dim, x.rank)
    m = reduce(g, "ReduceMax", value, dims, True)
    m = g.op("Where", g.op("IsInf", m), as_value(g, 0, dtype), m)
    total = reduce(g, "ReduceSum", g.op("Exp", g.op("Sub", value, m)), dims, keepdim)
    if not keepdim:
        m = squeeze(g, m, dims if dims is not None else list(range(x.rank)))
    return g.op("Add", g.op("Log", total), m)


# -- all, any, count_nonzero -----------------------------------------------------------------------
def _any(g, truth: Value, dims, keepdim) -> Value:
    count = reduce(g, "ReduceSum", g.op("Cast", truth, to=dtype_code(torch.int32)), dims, keepdim)
    return g.op("Cast", count, to=dtype_code(torch.bool))


@symbolic(*variants("any", inplace=False))
def any_(g, x, dim=None, keepdim=False, *, out=None):
    """Whether some element is nonzero (uint8 inputs give uint8, as in torch)."""
    result = _any(g, as_value(g, x, torch.bool), dims_of(dim, x.rank), keepdim)
    return cast_to(g, result, torch.bool, out_dtype(g))


@symbolic(*variants("all", inplace=False))
def all_(g, x, dim=None, keepdim=False, *, out=None):
    """not any(not x): True for empty reductions, as in torch."""
    falsy = g.op("Not", as_value(g, x, torch.bool))
    result = g.op("Not", _any(g, falsy, dims_of(dim, x.rank), keepdim))
    return cast_to(g, result, torch.bool, out_dtype(g))


@symbolic(*variants("count_nonzero", inplace=False))
def count_nonzero(g, x, dim=None):
    ones = g.op("Cast", as_value(g, x, torch.bool), to=dtype_code(torch.int64))
    return reduce(g, "ReduceSum", ones, dims_of(dim, x.rank), False)
