"""Element-wise unary math kernels (Abs, Exp, Sin, Round, IsNaN, ...) and the dtype helpers
the whole element-wise family shares.

Arithmetic on float16 and the exotic floats (bfloat16, float8...; ferry's structured
bit-pattern arrays, see ferry/ir/dtypes.py) runs in float32 and rounds once at the end.
"""

from __future__ import annotations

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


# Error function: erf(x) = x * g(x^2) for |x| < 1 and 1 - exp(-x^2) * h(|x|) beyond, with
# g(u) = erf(sqrt u) / sqrt u and h(x) = erfc(x) * exp(x^2) (the scaled complementary
# function), each a polynomial in t in [-1, 1] spanning its interval (highest power first).
# The coefficients are Chebyshev interpolants of g and h computed in 50-digit arithmetic and
# truncated where the tail drops below the target precision; past the last interval erf
# rounds to 1. Float64 pieces are accurate to a few ulp of float64, float32 ones to about
# 1e-10 (they are evaluated in float64 and rounded once).

_ERF64_CORE = (0, 1, (
        1.454817075960679e-14, -3.8078827395263415e-13, 9.167606746069445e-12,
        -2.035228404899467e-10, 4.11580059766496e-09, -7.51156928660089e-08,
        1.223382738352401e-06, -1.7537169441124826e-05, 0.00021751715604160108,
        -0.0022854855611441132, 0.019852496688983708, -0.1405360890227171,
        0.9654687386698673,
))
_ERF64_TAILS = (
    (1, 2, (
            2.0292151163761165e-13, -1.5120450435636143e-12, 1.0198170166276311e-11,
            -7.257022501340536e-11, 5.046602976320114e-10, -3.4059387395134227e-09,
            2.232841288007105e-08, -1.4191186124333523e-07, 8.723044760349276e-07,
            -5.1713286727694885e-06, 2.9470857452438927e-05, -0.00016081117336992078,
            0.0008360838095667822, -0.00411636316244566, 0.019037759963869347,
            -0.08181145886628002, 0.3215854164543175,
        )),
    (2, 3, (
            2.455774010701124e-13, -2.077931977990181e-12, 1.637092236990978e-11,
            -1.331199764337606e-10, 1.059805360415631e-09, -8.231167826009776e-09,
            6.235098053407382e-08, -4.599137370206805e-07, 3.297184756557914e-06,
            -2.2924716796046258e-05, 0.0001541898009810757, -0.0010001961727617323,
            0.006234499271664239, -0.03717367339489736, 0.2108063640611436,
        )),
    (3, 6, (
            2.466660280747364e-10, -9.641762049024028e-10, 2.7370938301551944e-09,
            -1.0588432563392095e-08, 4.205976556215981e-08, -1.5803044531796875e-07,
            5.846244962377949e-07, -2.139184417509849e-06, 7.717565186428418e-06,
            -2.7431487813303825e-05, 9.601432950006586e-05, -0.00033071409382033287,
            0.0011201614265557121, -0.003727944394925779, 0.012179532227858633,
            -0.03902389294639382, 0.12248480427384154,
        )),
)
_ERF32_CORE = (0, 1, (
        4.138779625734516e-09, -7.557492821680298e-08, 1.223362614199572e-06,
        -1.7536824687371807e-05, 0.0002175171632319241, -0.0022854856569544946,
        0.019852496688084684, -0.1405360890155293, 0.9654687386698853,
))
_ERF32_TAILS = (
    (1, 4, (
            -6.37002620075674e-07, 1.8130125777610892e-06, -2.6694194201162294e-06,
            7.473544980204097e-06, -2.40727807707209e-05, 6.367237126412143e-05,
            -0.00016176033042151732, 0.00040855915028200935, -0.0010059081935839245,
            0.0024037838271308938, -0.005570693815282652, 0.012489356649520137,
            -0.027005297556127735, 0.05611049427315793, -0.11152102016598016,
            0.210806364054626,
        )),
)


def _horner(coefficients: tuple[float, ...], t: np.ndarray) -> np.ndarray:
    """Evaluate the polynomial (highest power first) at ``t`` with in-place steps."""
    acc = t * coefficients[0]
    for c in coefficients[1:-1]:
        acc += c
        acc *= t
    acc += coefficients[-1]
    return acc


def _on_interval(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``values`` from [lo, hi] onto [-1, 1] (a fresh array)."""
    t = values * (2.0 / (hi - lo))
    t -= (lo + hi) / (hi - lo)
    return t


def erf(x: np.ndarray, single: bool | None = None) -> np.ndarray:
    """Gauss error function, element-wise, in float64. ``single`` (default: the input is a
    float of at most 32 bits) selects cheaper pieces accurate to well below float32 rounding."""
    x = np.asarray(x)
    if single is None:
        single = x.dtype.kind == "f" and x.dtype.itemsize <= 4
    core, tails = (_ERF32_CORE, _ERF32_TAILS) if single else (_ERF64_CORE, _ERF64_TAILS)
    x = x.astype(np.float64, copy=False)
    flat_x = x.reshape(-1)
    # x * g(x^2) everywhere (x^2 clipped to the core interval), then redo the rest.
    t = np.square(flat_x)
    np.minimum(t, 1.0, out=t)
    t *= 2.0
    t -= 1.0
    out = _horner(core[2], t)
    out *= flat_x
    outer = np.flatnonzero(np.invert(np.abs(flat_x) < 1.0))
    if outer.size:
        xo = flat_x[outer]
        out[outer] = np.copysign(_erf_tail(np.abs(xo), tails), xo)
    return out.reshape(x.shape)


def _erf_tail(ax: np.ndarray, tails) -> np.ndarray:
    """erf of values |x| >= 1 (or NaN): 1 - exp(-x^2) h(x) on each tail piece, 1 beyond."""
    out = np.minimum(ax, 1.0)  # 1 past the last piece, NaN stays NaN
    for lo, hi, coefficients in tails:
        where = np.flatnonzero((ax >= lo) & (ax < hi))
        v = ax[where]
        scaled = _horner(coefficients, _on_interval(v, lo, hi))
        np.square(v, out=v)
        np.negative(v, out=v)
        np.exp(v, out=v)
        scaled *= v
        out[where] = 1.0 - scaled
    return out


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
