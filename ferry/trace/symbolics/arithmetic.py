"""Arithmetic: + - * / and friends, following torch's type promotion."""

from __future__ import annotations

import torch

from ferry.trace.registry import symbolic
from ferry.trace.symbolics._helpers import promote

T = torch.Tensor


@symbolic(torch.add, T.add, T.__add__, T.add_, T.__iadd__, T.__radd__)
def add(g, a, b, *, alpha=1, out=None):
    """a + alpha * b."""
    x, y = promote(g, a, b) if alpha == 1 else _scaled(g, a, b, alpha)
    return g.op("Add", x, y)


def _scaled(g, a, b, alpha):
    x, y, s = promote(g, a, b, alpha)
    return x, g.op("Mul", y, s)


@symbolic(torch.sub, T.sub, T.__sub__, T.sub_, T.__isub__)
def sub(g, a, b, *, alpha=1, out=None):
    x, y = promote(g, a, b) if alpha == 1 else _scaled(g, a, b, alpha)
    return g.op("Sub", x, y)


@symbolic(T.__rsub__, torch.rsub)
def rsub(g, a, b, *, alpha=1):
    x, y = promote(g, a, b) if alpha == 1 else _scaled(g, a, b, alpha)
    return g.op("Sub", y, x)


@symbolic(torch.mul, T.mul, T.__mul__, T.mul_, T.__imul__, T.__rmul__, torch.multiply)
def mul(g, a, b, *, out=None):
    x, y = promote(g, a, b)
    if g.out.dtype == torch.bool:
        return g.op("And", x, y)
    return g.op("Mul", x, y)


@symbolic(torch.div, T.div, T.__truediv__, T.div_, T.__itruediv__, torch.true_divide, torch.divide)
def div(g, a, b, *, rounding_mode=None, out=None):
    dtype = g.out.dtype
    if rounding_mode is None or dtype.is_floating_point:
        x, y = promote(g, a, b)
        q = g.op("Div", x, y)
        if rounding_mode == "floor":
            return g.op("Floor", q)
        if rounding_mode == "trunc":
            return _trunc(g, q)
        return q
    # integer division with rounding: compute in float64 then round, as torch does
    x, y = promote(g, a, b, dtype=torch.float64)
    q = g.op("Div", x, y)
    q = g.op("Floor", q) if rounding_mode == "floor" else _trunc(g, q)
    return g.op("Cast", q, to=int(_code(dtype)))


@symbolic(T.__rtruediv__)
def rdiv(g, a, b):
    x, y = promote(g, a, b)
    return g.op("Div", y, x)


@symbolic(T.__floordiv__, T.floor_divide, torch.floor_divide)
def floor_divide(g, a, b):
    return div(g, a, b, rounding_mode="floor")


def _trunc(g, q):
    return g.op("Mul", g.op("Sign", q), g.op("Floor", g.op("Abs", q)))


def _code(dtype):
    from ferry.trace.symbolics._helpers import dtype_code

    return dtype_code(dtype)


@symbolic(torch.neg, T.neg, T.__neg__, torch.negative)
def neg(g, a):
    return g.op("Neg", a)


@symbolic(torch.matmul, T.matmul, T.__matmul__, torch.mm, T.mm, torch.bmm, T.bmm)
def matmul(g, a, b, *, out=None):
    x, y = promote(g, a, b)
    return g.op("MatMul", x, y)


@symbolic(torch.nn.functional.linear)
def linear(g, x, weight, bias=None):
    """x @ weight.T + bias: Gemm for 2-D inputs, MatMul (+ Add) otherwise."""
    if bias is not None and x.rank == 2:
        return g.op("Gemm", x, weight, bias, transB=1)
    w = g.op("Transpose", weight, perm=[1, 0]) if weight.rank == 2 else weight
    y = g.op("MatMul", x, w)
    return g.op("Add", y, bias) if bias is not None else y


@symbolic(torch.relu, T.relu, torch.nn.functional.relu, T.relu_, torch.relu_)
def relu(g, x, inplace=False):
    return g.op("Relu", x)
