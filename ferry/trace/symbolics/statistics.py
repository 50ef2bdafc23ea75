"""Statistics and norms: var, std, var_mean, std_mean; torch.norm, Tensor.norm,
torch.linalg.vector_norm / matrix_norm / norm.

The element count dividing a variance comes from the (possibly dynamic) sizes of the
reduced axes, so a variance over a dynamic axis stays correct at other sizes.
"""

from __future__ import annotations

import functools
import math
import operator

import torch

from ferry.ir import Value
from ferry.trace.symbolics._helpers import as_value, dtype_code, out_dtype
from ferry.trace.symbolics.math import symbolic, unsupported, variants
from ferry.trace.symbolics.reduce import dims_of, reduce, squeeze

T = torch.Tensor


# -- variance and standard deviation -------------------------------------------------------------
def _var_arguments(args, dim, unbiased, keepdim, correction):
    """torch's overloads: (x, unbiased), (x, dim, unbiased, keepdim), (x, dim, *, correction, keepdim)."""
    args = list(args)
    if args and isinstance(args[0], bool):
        unbiased = args.pop(0)
    else:
        dim = args.pop(0) if args else dim
        unbiased = args.pop(0) if args else unbiased
        keepdim = args.pop(0) if args else keepdim
    if correction is None:
        correction = 0 if unbiased is False else 1
    return dim, keepdim, correction


def _moments(g, x, dims, keepdim: bool, correction, dtype) -> tuple[Value, Value]:
    """(variance, mean) of ``x`` over ``dims`` with ``correction`` (Bessel's for 1)."""
    value = as_value(g, x, dtype)
    mean = reduce(g, "ReduceMean", value, dims, True)
    diff = g.op("Sub", value, mean)
    squares = reduce(g, "ReduceSum", g.op("Mul", diff, diff), dims, keepdim)
    sizes = [x.shape[axis] for axis in (dims if dims is not None else range(x.rank))]
    count = functools.reduce(operator.mul, sizes) if sizes else 1
    if isinstance(count, int):
        denominator = as_value(g, max(count - correction, 0), dtype)
    else:
        n = g.op("Cast", g.int_value(count), to=dtype_code(dtype))
        denominator = g.op("Max", g.op("Sub", n, as_value(g, correction, dtype)), as_value(g, 0, dtype))
    if not keepdim:
        mean = squeeze(g, mean, dims if dims is not None else list(range(x.rank)))
    return g.op("Div", squares, denominator), mean


def _variance(root: bool, with_mean: bool):
    def variance(g, x, *args, dim=None, unbiased=None, keepdim=False, correction=None, out=None):
        dim, keepdim, correction = _var_arguments(args, dim, unbiased, keepdim, correction)
        var, mean = _moments(g, x, dims_of(dim, x.rank), keepdim, correction, out_dtype(g))
        result = g.op("Sqrt", var) if root else var
        return (result, mean) if with_mean else result

    variance.__doc__ = (f"{'Standard deviation' if root else 'Variance'} with torch's "
                        f"``correction`` / ``unbiased``{' and the mean' if with_mean else ''}.")
    return variance


symbolic(*variants("var", inplace=False))(_variance(False, False))
symbolic(*variants("std", inplace=False))(_variance(True, False))
symbolic(*variants("var_mean", inplace=False))(_variance(False, True))
symbolic(*variants("std_mean", inplace=False))(_variance(True, True))


# -- norms ---------------------------------------------------------------------------------------
def vector_norm(g, x, ord, dims, keepdim: bool) -> Value:
    """The ``ord``-norm of ``x`` (in the result's dtype) over ``dims`` (None: all)."""
    dtype = out_dtype(g)
    value = as_value(g, x, dtype)
    if ord == 2:
        return reduce(g, "ReduceL2", value, dims, keepdim)
    if ord == 1:
        return reduce(g, "ReduceL1", value, dims, keepdim)
    if ord == math.inf:
        return reduce(g, "ReduceMax", g.op("Abs", value), dims, keepdim)
    if ord == -math.inf:
        return reduce(g, "ReduceMin", g.op("Abs", value), dims, keepdim)
    if ord == 0:
        nonzero = g.op("Cast", g.op("Cast", value, to=dtype_code(torch.bool)), to=dtype_code(dtype))
        return reduce(g, "ReduceSum", nonzero, dims, keepdim)
    powered = g.op("Pow", g.op("Abs", value), as_value(g, ord, dtype))
    total = reduce(g, "ReduceSum", powered, dims, keepdim)
    return g.op("Pow", total, as_value(g, 1.0 / ord, dtype))


def matrix_norm(g, x, ord, dims, keepdim: bool) -> Value:
    """Frobenius, or the max/min absolute column (ord=+-1) or row (ord=+-inf) sum."""
    axes = [d % x.rank for d in dims]
    if len(axes) != 2 or axes[0] == axes[1]:
        raise unsupported(g, f"a matrix norm needs two different dims, got {dims}")
    rows, cols = axes
    if ord == "fro":
        return reduce(g, "ReduceL2", as_value(g, x, out_dtype(g)), [rows, cols], keepdim)
    if ord not in (1, -1, math.inf, -math.inf):
        raise unsupported(g, f"the matrix norm ord={ord!r} (singular values) is not supported")
    summed, other = (rows, cols) if abs(ord) == 1 else (cols, rows)
    value = g.op("Abs", as_value(g, x, out_dtype(g)))
    sums = reduce(g, "ReduceSum", value, [summed], True)
    result = reduce(g, "ReduceMax" if ord > 0 else "ReduceMin", sums, [other], True)
    return result if keepdim else squeeze(g, result, sorted([rows, cols]))


@symbolic(torch.norm, T.norm)
def norm(g, x, p="fro", dim=None, keepdim=False, out=None, dtype=None):
    """torch.norm: 'fro' is the 2-norm over ``dim`` (all axes by default); numbers are vector norms."""
    if p == "nuc":
        raise unsupported(g, "torch.norm(p='nuc') (nuclear norm) is not supported")
    if p is None or p == "fro":
        p = 2
    return vector_norm(g, x, p, dims_of(dim, x.rank), keepdim)


@symbolic(torch.linalg.vector_norm)
def linalg_vector_norm(g, x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
    return vector_norm(g, x, ord, dims_of(dim, x.rank), keepdim)


@symbolic(torch.linalg.matrix_norm)
def linalg_matrix_norm(g, x, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None, out=None):
    return matrix_norm(g, x, ord, list(dim), keepdim)


@symbolic(torch.linalg.norm)
def linalg_norm(g, x, ord=None, dim=None, keepdim=False, *, dtype=None, out=None):
    """Vector norm for one dim (or a flattened input with ord=None), matrix norm for two."""
    if isinstance(dim, int):
        dim = [dim]
    if ord is None:
        return vector_norm(g, x, 2, dims_of(dim, x.rank), keepdim)
    if dim is None:
        dim = list(range(x.rank))
    if len(dim) == 2:
        return matrix_norm(g, x, ord, list(dim), keepdim)
    return vector_norm(g, x, ord, dims_of(dim, x.rank), keepdim)
