"""Elementwise math: unary functions, powers, clamps, min/max, remainders, products.

Operands follow torch's type promotion: each is cast to the real result's dtype before
the ONNX op (``exp`` of an int tensor is float, ``clamp(int, max=0.5)`` is float).
Comparisons and bitwise/logical ops live in :mod:`ferry.trace.symbolics.logic`. The
registration helpers here (``symbolic``, ``variants``, ``unsupported``) serve the sibling
modules (logic, reduce, statistics, activations) too.
"""

from __future__ import annotations

import functools
import inspect
import math

import torch

from ferry.errors import UnsupportedOperatorError
from ferry.ir import Value
from ferry.trace import registry
from ferry.trace.symbolics._helpers import as_value, out_dtype, promote
from ferry.trace.symbolics.arithmetic import _trunc
from ferry.trace.tracer import Var

T = torch.Tensor


_NUMPY_KEYWORDS = {"axis": "dim", "keepdims": "keepdim"}


def symbolic(*funcs, opset: int = 1):
    """:func:`ferry.trace.registry.symbolic`, also accepting the leading operands by torch's
    keywords (``input=``, ``other=``) and numpy's ``axis=`` / ``keepdims=`` (torch takes both)."""

    def decorate(fn):
        has_other = "other" in inspect.signature(fn).parameters

        @functools.wraps(fn)
        def normalized(g, *args, **kwargs):
            if "input" in kwargs:
                args = (kwargs.pop("input"), *args)
            if "other" in kwargs and not has_other and len(args) == 1:
                args = (*args, kwargs.pop("other"))
            for alias, name in _NUMPY_KEYWORDS.items():
                if alias in kwargs:
                    kwargs[name] = kwargs.pop(alias)
            return fn(g, *args, **kwargs)

        registry.symbolic(*funcs, opset=opset)(normalized)
        return fn

    return decorate


def variants(*names: str, inplace: bool = True) -> list:
    """``torch.<name>``, ``Tensor.<name>``, ``torch.special.<name>`` and (with ``inplace``)
    the ``<name>_`` forms, for each name, as far as torch has them."""
    found: list = []
    for name in names:
        owners = (T,) if name.startswith("__") else (torch, T, torch.special)
        for suffix in ("", "_") if inplace else ("",):
            for owner in owners:
                fn = getattr(owner, name + suffix, None)
                if fn is not None and not any(fn is f for f in found):
                    found.append(fn)
    return found


def unsupported(g, message: str) -> UnsupportedOperatorError:
    """The error to raise for an argument form the symbolic cannot export."""
    return UnsupportedOperatorError(f"{g.tracer._where()}: {message}")


def is_float(dtype: torch.dtype) -> bool:
    return dtype.is_floating_point or dtype.is_complex


# -- unary functions --------------------------------------------------------------------
_UNARY = {
    "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "reciprocal": "Reciprocal", "erf": "Erf",
    "sin": "Sin", "cos": "Cos", "tan": "Tan", "asin": "Asin", "acos": "Acos", "atan": "Atan",
    "arcsin": "Asin", "arccos": "Acos", "arctan": "Atan", "sinh": "Sinh", "cosh": "Cosh",
    "asinh": "Asinh", "acosh": "Acosh", "atanh": "Atanh", "arcsinh": "Asinh",
    "arccosh": "Acosh", "arctanh": "Atanh", "tanh": "Tanh", "sigmoid": "Sigmoid",
    "expit": "Sigmoid", "abs": "Abs", "absolute": "Abs", "__abs__": "Abs",
}


def _unary(onnx_op: str):
    def unary(g, x, *, out=None):
        return g.op(onnx_op, as_value(g, x, out_dtype(g)))

    unary.__doc__ = f"torch's elementwise function as ONNX {onnx_op} (in the result's dtype)."
    return unary


for _name, _op in _UNARY.items():
    symbolic(*variants(_name))(_unary(_op))


@symbolic(*variants("sign", "sgn"))
def sign(g, x, *, out=None):
    """-1, 0 or 1; torch gives 0 for NaN where ONNX Sign gives NaN."""
    if x.dtype == torch.bool:
        return g.op("Identity", x)
    if not is_float(x.dtype):
        return g.op("Sign", x)
    return g.op("Where", g.op("IsNaN", x), as_value(g, 0, x.dtype), g.op("Sign", x))


def _rounding(onnx_op: str | None):
    def rounding(g, x, *, out=None):
        """Integer tensors are already whole: a copy, as in torch."""
        if not is_float(x.dtype):
            return g.op("Identity", x)
        return g.op(onnx_op, x) if onnx_op else _trunc(g, x.value)

    return rounding


symbolic(*variants("floor"))(_rounding("Floor"))
symbolic(*variants("ceil"))(_rounding("Ceil"))
symbolic(*variants("trunc", "fix"))(_rounding(None))


@symbolic(*variants("round"))
def round_(g, x, *, decimals=0, out=None):
    """Round half to even (ONNX Round); ``decimals`` scales by 10**decimals around it."""
    if not is_float(x.dtype):
        return g.op("Identity", x)
    if decimals == 0:
        return g.op("Round", x)
    scale = as_value(g, 10.0 ** abs(decimals), x.dtype)
    if decimals > 0:
        return g.op("Div", g.op("Round", g.op("Mul", x, scale)), scale)
    return g.op("Mul", g.op("Round", g.op("Div", x, scale)), scale)


@symbolic(*variants("frac"))
def frac(g, x, *, out=None):
    """x - trunc(x)."""
    return g.op("Sub", x, _trunc(g, x.value))


def _log_base(base: float):
    def log_base(g, x, *, out=None):
        v = as_value(g, x, out_dtype(g))
        return g.op("Div", g.op("Log", v), as_value(g, math.log(base), out_dtype(g)))

    log_base.__doc__ = f"log{base:g}(x) = log(x) / log({base:g})."
    return log_base


symbolic(*variants("log2"))(_log_base(2.0))
symbolic(*variants("log10"))(_log_base(10.0))


@symbolic(*variants("log1p"))
def log1p(g, x, *, out=None):
    dtype = out_dtype(g)
    return g.op("Log", g.op("Add", as_value(g, x, dtype), as_value(g, 1, dtype)))


@symbolic(*variants("expm1"))
def expm1(g, x, *, out=None):
    dtype = out_dtype(g)
    return g.op("Sub", g.op("Exp", as_value(g, x, dtype)), as_value(g, 1, dtype))


@symbolic(*variants("exp2"))
def exp2(g, x, *, out=None):
    dtype = out_dtype(g)
    return g.op("Pow", as_value(g, 2, dtype), as_value(g, x, dtype))


@symbolic(*variants("rsqrt"))
def rsqrt(g, x, *, out=None):
    return g.op("Reciprocal", g.op("Sqrt", as_value(g, x, out_dtype(g))))


@symbolic(*variants("square"))
def square(g, x, *, out=None):
    v = as_value(g, x, out_dtype(g))
    return g.op("Mul", v, v)


@symbolic(*variants("nan_to_num"))
def nan_to_num(g, x, nan=0.0, posinf=None, neginf=None, *, out=None):
    """NaN -> ``nan``, +-inf -> ``posinf``/``neginf`` (default: the dtype's largest values)."""
    if not is_float(x.dtype):
        return g.op("Identity", x)
    info = torch.finfo(x.dtype)
    y = g.op("Where", g.op("IsNaN", x), as_value(g, nan, x.dtype), x)
    high = info.max if posinf is None else posinf
    low = info.min if neginf is None else neginf
    y = g.op("Where", g.op("IsInf", x, detect_negative=0), as_value(g, high, x.dtype), y)
    return g.op("Where", g.op("IsInf", x, detect_positive=0), as_value(g, low, x.dtype), y)


def _sign_bit(g, v: Value, zero: Value) -> Value:
    """Whether ``v`` is negative, -0.0 included (1 / -0.0 is -inf)."""
    return g.op("Or", g.op("Less", v, zero), g.op("Less", g.op("Reciprocal", v), zero))


@symbolic(*variants("atan2", "arctan2"))
def atan2(g, y, x, *, out=None):
    """The angle of (x, y), signed zeros included: atan(y / x), +-pi where x is negative."""
    dtype = out_dtype(g)
    a, b = promote(g, y, x)
    pi, zero = as_value(g, math.pi, dtype), as_value(g, 0, dtype)
    half_turn = g.op("Where", _sign_bit(g, a, zero), g.op("Neg", pi), pi)
    x_negative = _sign_bit(g, b, zero)
    angle = g.op("Atan", g.op("Div", a, b))
    angle = g.op("Where", x_negative, g.op("Add", angle, half_turn), angle)
    origin = g.op("And", g.op("Equal", a, zero), g.op("Equal", b, zero))
    return g.op("Where", origin, g.op("Where", x_negative, half_turn, a), angle)


@symbolic(*variants("hypot"))
def hypot(g, a, b, *, out=None):
    x, y = promote(g, a, b)
    return g.op("Sqrt", g.op("Add", g.op("Mul", x, x), g.op("Mul", y, y)))


@symbolic(*variants("logit"))
def logit(g, x, eps=None, *, out=None):
    """log(x / (1 - x)), with x clamped to [eps, 1 - eps] when ``eps`` is given."""
    dtype = out_dtype(g)
    v = as_value(g, x, dtype)
    if eps is not None:
        v = g.op("Clip", v, as_value(g, eps, dtype), as_value(g, 1 - eps, dtype))
    return g.op("Log", g.op("Div", v, g.op("Sub", as_value(g, 1, dtype), v)))


@symbolic(*variants("xlogy"))
def xlogy(g, a, b, *, out=None):
    """x * log(y), 0 where x == 0 (unless y is NaN)."""
    x, y = promote(g, a, b)
    zero = as_value(g, 0, out_dtype(g))
    product = g.op("Mul", x, g.op("Log", y))
    keep = g.op("Or", g.op("Not", g.op("Equal", x, zero)), g.op("IsNaN", y))
    return g.op("Where", keep, product, zero)


# -- powers -------------------------------------------------------------------------------
@symbolic(torch.pow, T.pow, T.__pow__, T.pow_, T.__ipow__, *variants("float_power"))
def pow_(g, base, exponent, *, out=None):
    """base ** exponent in the result's dtype (tensor or scalar on either side)."""
    x, y = promote(g, base, exponent)
    return g.op("Pow", x, y)


@symbolic(T.__rpow__)
def rpow(g, x, other):
    """other ** x."""
    return pow_(g, other, x)


# -- clamps, minimum / maximum --------------------------------------------------------------
@symbolic(*variants("clamp", "clip"))
def clamp(g, x, min=None, max=None, *, out=None):
    """min(max(x, min), max): ONNX Clip for scalar bounds, Max/Min for tensor bounds."""
    dtype = out_dtype(g)
    y = as_value(g, x, dtype)
    if isinstance(min, Var) or isinstance(max, Var):
        if min is not None:
            y = g.op("Max", y, as_value(g, min, dtype))
        if max is not None:
            y = g.op("Min", y, as_value(g, max, dtype))
        return y
    lo = None if min is None else as_value(g, min, dtype)
    hi = None if max is None else as_value(g, max, dtype)
    return g.op("Clip", y, lo, hi)


@symbolic(*variants("clamp_min"))
def clamp_min(g, x, min):
    return clamp(g, x, min=min)


@symbolic(*variants("clamp_max"))
def clamp_max(g, x, max):
    return clamp(g, x, max=max)


def _extremum(onnx_op: str, bool_op: str):
    def extremum(g, a, b, *, out=None):
        x, y = promote(g, a, b)
        return g.op(bool_op if out_dtype(g) == torch.bool else onnx_op, x, y)

    extremum.__doc__ = f"Elementwise {onnx_op} after type promotion ({bool_op} for bools)."
    return extremum


maximum = symbolic(*variants("maximum", "fmax"))(_extremum("Max", "Or"))
minimum = symbolic(*variants("minimum", "fmin"))(_extremum("Min", "And"))


# -- remainders ---------------------------------------------------------------------------
@symbolic(*variants("fmod"))
def fmod(g, a, b, *, out=None):
    """C's fmod: the remainder has the sign of the dividend (ONNX Mod with fmod=1)."""
    x, y = promote(g, a, b)
    return g.op("Mod", x, y, fmod=1)


@symbolic(*variants("remainder"), T.__mod__, T.__imod__)
def remainder(g, a, b, *, out=None):
    """Python's %: the remainder has the sign of the divisor."""
    x, y = promote(g, a, b)
    if not is_float(out_dtype(g)):
        return g.op("Mod", x, y, fmod=0)
    r = g.op("Mod", x, y, fmod=1)
    zero = as_value(g, 0, out_dtype(g))
    signs_differ = g.op("Xor", g.op("Less", r, zero), g.op("Less", y, zero))
    fix = g.op("And", g.op("Not", g.op("Equal", r, zero)), signs_differ)
    return g.op("Where", fix, g.op("Add", r, y), r)


@symbolic(T.__rmod__)
def rmod(g, x, other):
    """other % x."""
    return remainder(g, other, x)


# -- interpolation and fused products -----------------------------------------------------------
@symbolic(*variants("lerp"))
def lerp(g, start, end, weight, *, out=None):
    """start + weight * (end - start), as torch computes it: from ``end`` when |weight| >= 0.5."""
    dtype = out_dtype(g)
    s, e, w = promote(g, start, end, weight)
    diff = g.op("Sub", e, s)
    low = g.op("Add", s, g.op("Mul", w, diff))
    high = g.op("Sub", e, g.op("Mul", diff, g.op("Sub", as_value(g, 1, dtype), w)))
    if not isinstance(weight, Var):
        return low if abs(weight) < 0.5 else high
    small = g.op("Less", g.op("Abs", w), as_value(g, 0.5, dtype))
    return g.op("Where", small, low, high)


def _scale(g, value, factor, dtype):
    return value if factor == 1 else g.op("Mul", value, as_value(g, factor, dtype))


def _affine(g, product, bias, beta, alpha):
    """beta * bias + alpha * product (bias ignored when beta == 0, as in torch)."""
    dtype = out_dtype(g)
    product = _scale(g, product, alpha, dtype)
    if beta == 0:
        return product
    return g.op("Add", _scale(g, as_value(g, bias, dtype), beta, dtype), product)


@symbolic(*variants("addmm"))
def addmm(g, bias, mat1, mat2, *, beta=1, alpha=1, out=None):
    """beta * bias + alpha * (mat1 @ mat2): one Gemm for float matrices."""
    dtype = out_dtype(g)
    a, b, c = promote(g, mat1, mat2, bias)
    if dtype in (torch.float32, torch.float64) and beta != 0:
        return g.op("Gemm", a, b, c, alpha=float(alpha), beta=float(beta))
    return _affine(g, g.op("MatMul", a, b), bias, beta, alpha)


@symbolic(*variants("baddbmm", "addmv"))
def baddbmm(g, bias, batch1, batch2, *, beta=1, alpha=1, out=None):
    """beta * bias + alpha * (batch1 @ batch2) (``addmv``: matrix @ vector)."""
    a, b = promote(g, batch1, batch2)
    return _affine(g, g.op("MatMul", a, b), bias, beta, alpha)


@symbolic(*variants("addbmm"))
def addbmm(g, bias, batch1, batch2, *, beta=1, alpha=1, out=None):
    """beta * bias + alpha * sum_b(batch1[b] @ batch2[b])."""
    a, b = promote(g, batch1, batch2)
    product = g.op("MatMul", a, b)
    if g.opset >= 13:
        total = g.op("ReduceSum", product, g.int64([0]), keepdims=0)
    else:
        total = g.op("ReduceSum", product, axes=[0], keepdims=0)
    return _affine(g, total, bias, beta, alpha)


@symbolic(*variants("outer", "ger"))
def outer(g, a, b, *, out=None):
    """a[:, None] * b."""
    x, y = promote(g, a, b)
    return g.op("Mul", g.op("Unsqueeze", x, g.int64([1])), y)


@symbolic(*variants("addr"))
def addr(g, bias, vec1, vec2, *, beta=1, alpha=1, out=None):
    """beta * bias + alpha * outer(vec1, vec2)."""
    return _affine(g, outer(g, vec1, vec2), bias, beta, alpha)


def _addc(onnx_op: str):
    def addc(g, bias, tensor1, tensor2, *, value=1, out=None):
        dtype = out_dtype(g)
        x, a, b = promote(g, bias, tensor1, tensor2)
        return g.op("Add", x, _scale(g, g.op(onnx_op, a, b), value, dtype))

    addc.__doc__ = f"bias + value * ({onnx_op} of t1 and t2)."
    return addc


symbolic(*variants("addcmul"))(_addc("Mul"))
symbolic(*variants("addcdiv"))(_addc("Div"))


# -- einsum -------------------------------------------------------------------------------
@symbolic(torch.einsum)
def einsum(g, equation, *operands):
    """ONNX Einsum; the equation's letters are renamed to lower case, spaces dropped (torch
    turns the sublist format into an equation with upper-case letters before dispatch)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return g.op("Einsum", *promote(g, *operands), equation=_lower_equation(g, equation))


def _lower_equation(g, equation: str) -> str:
    equation = equation.replace(" ", "")
    letters = sorted({c for c in equation if c.isalpha()})
    if all(c.islower() for c in letters):
        return equation
    if len(letters) > 26:
        raise unsupported(g, f"einsum equation {equation!r} uses more than 26 distinct letters")
    # keep the relative (alphabetical) order so implicit outputs stay in the same order
    rename = {c: chr(ord("a") + i) for i, c in enumerate(sorted(letters, key=lambda c: (c.islower(), c)))}
    return "".join(rename.get(c, c) for c in equation)
