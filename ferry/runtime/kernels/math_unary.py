"""Element-wise unary math kernels (Abs, Exp, Sin, Round, IsNaN, ...) and the dtype helpers
the whole element-wise family shares.

Arithmetic on float16 and the exotic floats (bfloat16, float8...; ferry's structured
bit-pattern arrays, see ferry/ir/dtypes.py) runs in float32 and rounds once at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ferry.runtime.kernels._numeric import is_float, narrow, require_float, widen
from ferry.runtime.registry import kernel

__all__ = ["float_result"]


def float_result(x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``fn`` to ``x`` in its compute dtype (float64 for integers) and cast back."""
    x = np.asarray(x)
    computed = widen(x) if is_float(x.dtype) else x.astype(np.float64)
    with np.errstate(all="ignore"):
        return narrow(fn(computed), x.dtype)


_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    """Exact (libm) error function, element-wise, in float64."""
    return _erf_scalar(np.asarray(x, dtype=np.float64)).astype(np.float64)


# ---------------------------------------------------------------------------------------
# Plain float functions: one table, one kernel per op and version group.

_FLOAT_FUNCTIONS: dict[str, tuple[Callable, tuple[int, ...], str]] = {
    "Acos": (np.arccos, (7, 22), "Element-wise arc cosine, NaN outside [-1, 1]."),
    "Acosh": (np.arccosh, (9, 22), "Element-wise inverse hyperbolic cosine."),
    "Asin": (np.arcsin, (7, 22), "Element-wise arc sine, NaN outside [-1, 1]."),
    "Asinh": (np.arcsinh, (9, 22), "Element-wise inverse hyperbolic sine."),
    "Atan": (np.arctan, (7, 22), "Element-wise arc tangent."),
    "Atanh": (np.arctanh, (9, 22), "Element-wise inverse hyperbolic tangent."),
    "Cos": (np.cos, (7, 22), "Element-wise cosine."),
    "Cosh": (np.cosh, (9, 22), "Element-wise hyperbolic cosine."),
    "Sin": (np.sin, (7, 22), "Element-wise sine."),
    "Sinh": (np.sinh, (9, 22), "Element-wise hyperbolic sine."),
    "Tan": (np.tan, (7, 22), "Element-wise tangent."),
}

_LEGACY_FLOAT_FUNCTIONS: dict[str, tuple[Callable, str]] = {
    "Ceil": (np.ceil, "Element-wise ceiling (smallest integer not below x)."),
    "Exp": (np.exp, "Element-wise natural exponential."),
    "Floor": (np.floor, "Element-wise floor (largest integer not above x)."),
    "Log": (np.log, "Element-wise natural logarithm; -inf at 0, NaN below 0."),
    "Reciprocal": (np.reciprocal, "Element-wise 1/x."),
    "Sqrt": (np.sqrt, "Element-wise square root; NaN for negative inputs."),
    "Tanh": (np.tanh, "Element-wise hyperbolic tangent."),
}


def _make_float_kernel(op: str, fn: Callable, doc: str, legacy: bool) -> Callable:
    if legacy:

        def run(x, *, consumed_inputs=None):
            require_float(x, op)
            return float_result(x, fn)

    else:

        def run(x):
            require_float(x, op)
            return float_result(x, fn)

    run.__name__ = run.__qualname__ = op.lower()
    run.__doc__ = doc
    return run


for _op, (_fn, _versions, _doc) in _FLOAT_FUNCTIONS.items():
    kernel(_op, since=_versions)(_make_float_kernel(_op, _fn, _doc, legacy=False))
for _op, (_fn, _doc) in _LEGACY_FLOAT_FUNCTIONS.items():
    kernel(_op, since=(1, 6, 13))(_make_float_kernel(_op, _fn, _doc, legacy=True))


# ---------------------------------------------------------------------------------------
# Ops that also take integers, or need care beyond a float function.


@kernel("Abs", since=(1, 6, 13))
def abs_(x, *, consumed_inputs=None):
    """Element-wise absolute value, keeping the input type (integers wrap at the minimum)."""
    x = np.asarray(x)
    if x.dtype.kind in "iu":
        return np.asarray(np.abs(x))
    return float_result(x, np.abs)


@kernel("Neg", since=(1, 6, 13))
def neg(x, *, consumed_inputs=None):
    """Element-wise negation, keeping the input type (integers wrap at the minimum)."""
    x = np.asarray(x)
    if x.dtype.kind == "i":
        return np.asarray(np.negative(x))
    require_float(x, "Neg")
    return float_result(x, np.negative)


@kernel("Sign", since=(9, 13))
def sign(x):
    """Element-wise sign: -1, 0 or 1 in the input type (NaN stays NaN)."""
    x = np.asarray(x)
    if x.dtype.kind in "iu":
        return np.asarray(np.sign(x))
    return float_result(x, np.sign)


@kernel("Round", since=(11, 22))
def round_(x):
    """Element-wise round to the nearest integer, halves to even."""
    require_float(np.asarray(x), "Round")
    return float_result(x, np.rint)


@kernel("Erf", since=(9, 13))
def erf_(x):
    """Element-wise Gauss error function (integer inputs: result truncated to the type)."""
    return float_result(x, erf)


# ---------------------------------------------------------------------------------------
# IsNaN / IsInf (these also accept the float8 types).


@kernel("IsNaN", since=(9, 13, 20))
def isnan(x):
    """Element-wise test for NaN, returning bool."""
    return np.asarray(np.isnan(widen(x)))


@kernel("IsInf", since=(10, 20))
def isinf(x, *, detect_negative, detect_positive):
    """Element-wise test for infinity, returning bool; each sign can be switched off."""
    values = widen(x)
    result = np.zeros(values.shape, dtype=bool)
    if detect_positive:
        result |= np.isposinf(values)
    if detect_negative:
        result |= np.isneginf(values)
    return result
