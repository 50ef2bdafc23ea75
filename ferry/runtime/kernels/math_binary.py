"""Element-wise binary and variadic arithmetic kernels: Add, Sub, Mul, Div, Pow, Mod, Max,
Min, Mean, Sum, including the opset 1-6 ``broadcast``/``axis`` semantics."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial, reduce

import numpy as np

from ferry.runtime.kernels._numeric import is_float, narrow, widen
from ferry.runtime.registry import kernel

__all__ = ["legacy_broadcast", "arithmetic"]


def legacy_broadcast(a: np.ndarray, b: np.ndarray, broadcast: int | None, axis: int | None):
    """Align ``b`` to ``a`` with the pre-opset-7 rules: no broadcasting unless ``broadcast=1``;
    then ``b`` matches a contiguous run of ``a``'s dimensions starting at ``axis`` (default:
    the trailing ones), or has a single element."""
    a, b = np.asarray(a), np.asarray(b)
    if not broadcast:
        if a.shape != b.shape:
            raise ValueError(
                f"shapes {a.shape} and {b.shape} differ and broadcast=0; "
                "set broadcast=1 to broadcast the second input"
            )
        return a, b
    if b.ndim > a.ndim:
        raise ValueError(f"with broadcast=1 the second input {b.shape} may not outrank {a.shape}")
    if b.size == 1:
        return a, b.reshape(())
    start = a.ndim - b.ndim if axis is None else axis + a.ndim if axis < 0 else axis
    window = a.shape[start : start + b.ndim]
    if (
        start < 0
        or len(window) != b.ndim
        or any(d not in (w, 1) for d, w in zip(b.shape, window, strict=True))
    ):
        raise ValueError(
            f"second input shape {b.shape} does not match the dimensions of {a.shape} "
            f"starting at axis {start}"
        )
    return a, b.reshape(b.shape + (1,) * (a.ndim - start - b.ndim))


def arithmetic(fn: Callable, a, b, dtype: np.dtype | None = None) -> np.ndarray:
    """``fn(a, b)`` with numpy broadcasting, in the compute dtype, cast to ``a``'s type."""
    a, b = np.asarray(a), np.asarray(b)
    dtype = a.dtype if dtype is None else dtype
    with np.errstate(all="ignore"):
        return narrow(fn(widen(a), widen(b)), dtype)


def _int_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division truncating toward zero (C semantics); division by zero gives 0."""
    with np.errstate(all="ignore"):
        quotient = np.floor_divide(a, b)
        if a.dtype.kind == "i":
            inexact = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
            quotient = quotient + inexact.astype(quotient.dtype)
    return np.asarray(quotient)


def _divide(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "iu":
        return _int_divide(a, b.astype(a.dtype))
    return arithmetic(np.divide, a, b)


_BINARY: dict[str, tuple[Callable, str]] = {
    "Add": (partial(arithmetic, np.add), "Element-wise A + B"),
    "Sub": (partial(arithmetic, np.subtract), "Element-wise A - B"),
    "Mul": (partial(arithmetic, np.multiply), "Element-wise A * B"),
    "Div": (_divide, "Element-wise A / B (integers truncate toward zero)"),
}


def _make_binary_kernels(op: str) -> None:
    compute, text = _BINARY[op]

    def legacy(a, b, *, axis, broadcast, consumed_inputs=None):
        return compute(*legacy_broadcast(a, b, broadcast, axis))

    def modern(a, b):
        return compute(a, b)

    legacy.__doc__ = f"{text}, where B may broadcast onto A only with broadcast=1 (opset < 7)."
    modern.__doc__ = f"{text}, with numpy-style broadcasting."
    legacy.__name__ = legacy.__qualname__ = f"{op.lower()}_legacy"
    modern.__name__ = modern.__qualname__ = op.lower()
    kernel(op, since=(1, 6))(legacy)
    kernel(op, since=(7, 13, 14))(modern)


for _op in _BINARY:
    _make_binary_kernels(_op)


def _power(x, y) -> np.ndarray:
    x, y = np.asarray(x), np.asarray(y)
    if is_float(x.dtype):
        base = widen(x)
        return arithmetic(np.power, base, widen(y).astype(base.dtype), dtype=x.dtype)
    if is_float(y.dtype):
        return arithmetic(np.power, x.astype(np.float64), y.astype(np.float64), dtype=x.dtype)
    return _int_power(x, y)


def _int_power(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Integer power with wrap-around; a negative exponent gives trunc(1 / x**-y)."""
    signed = x.dtype.kind == "i"
    base = x.astype(np.int64 if signed else np.uint64)
    exponent = y.astype(np.int64)
    with np.errstate(all="ignore"):
        result = np.power(base, np.maximum(exponent, 0).astype(base.dtype))
        negative = exponent < 0
        if negative.any():
            inverse = (base == 1).astype(base.dtype)
            if signed:
                inverse = np.where(base == -1, 1 - 2 * (exponent % 2), inverse)
            result = np.where(negative, inverse, result)
    return narrow(result, x.dtype)


@kernel("Pow", since=1)
def pow_legacy(x, y, *, axis, broadcast):
    """Element-wise X ** Y, where Y may broadcast onto X only with broadcast=1 (opset < 7)."""
    x, y = legacy_broadcast(x, y, broadcast, axis)
    return _power(x, y)


@kernel("Pow", since=(7, 12, 13, 15))
def pow_(x, y):
    """Element-wise X ** Y with numpy-style broadcasting; the result keeps X's type."""
    return _power(x, y)


@kernel("Mod", since=(10, 13, 28))
def mod(a, b, *, fmod):
    """Element-wise remainder: sign of B (floor division) when fmod=0, of A (C fmod) when 1."""
    a, b = np.asarray(a), np.asarray(b)
    if fmod not in (0, 1):
        raise ValueError(f"Mod expects fmod 0 or 1, got {fmod}")
    if not fmod and is_float(a.dtype):
        return arithmetic(_float_floor_mod, a, b)
    return arithmetic(np.fmod if fmod else np.remainder, a, b)


def _float_floor_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Python-style float modulo, NaN when A is infinite or B is zero."""
    result = np.remainder(a, b)
    return np.where(np.isinf(a) | (b == 0), np.nan, result)


def _variadic(op: str, data: tuple, fn: Callable) -> tuple[np.ndarray, np.dtype]:
    """Fold ``fn`` over the inputs in their compute dtype; returns (result, output dtype)."""
    if not data:
        raise ValueError(f"{op} expects at least one input")
    arrays = [np.asarray(d) for d in data]
    with np.errstate(all="ignore"):
        result = reduce(fn, [widen(a) for a in arrays])
    result = np.array(result) if len(arrays) == 1 else np.asarray(result)
    return result, arrays[0].dtype


@kernel("Max", since=(1, 6, 8, 12, 13))
def max_(*data, consumed_inputs=None):
    """Element-wise maximum over all inputs (broadcast together); NaN propagates."""
    return narrow(*_variadic("Max", data, np.maximum))


@kernel("Min", since=(1, 6, 8, 12, 13))
def min_(*data, consumed_inputs=None):
    """Element-wise minimum over all inputs (broadcast together); NaN propagates."""
    return narrow(*_variadic("Min", data, np.minimum))


@kernel("Sum", since=(1, 6, 8, 13))
def sum_(*data, consumed_inputs=None):
    """Element-wise sum of all inputs (broadcast together)."""
    return narrow(*_variadic("Sum", data, np.add))


@kernel("Mean", since=(1, 6, 8, 13))
def mean(*data, consumed_inputs=None):
    """Element-wise arithmetic mean of all inputs (broadcast together)."""
    total, dtype = _variadic("Mean", data, np.add)
    return narrow(total / len(data), dtype)
