"""Comparison, boolean, bitwise and selection kernels: Equal, Greater, Less (and -OrEqual),
And, Or, Xor, Not, BitShift, Bitwise*, Where."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ferry.runtime.kernels._numeric import widen
from ferry.runtime.kernels.math_binary import legacy_broadcast
from ferry.runtime.registry import kernel


def _compare(fn: Callable, a, b) -> np.ndarray:
    a, b = widen(np.asarray(a)), widen(np.asarray(b))
    with np.errstate(invalid="ignore"):
        return np.asarray(fn(a, b), dtype=bool)


# op -> (numpy function, versions with the opset 1 broadcast/axis attributes, later versions)
_COMPARISONS: dict[str, tuple[Callable, tuple[int, ...], tuple[int, ...], str]] = {
    "Equal": (np.equal, (1,), (7, 11, 13, 19), "A == B"),
    "Greater": (np.greater, (1,), (7, 9, 13), "A > B"),
    "Less": (np.less, (1,), (7, 9, 13), "A < B"),
    "GreaterOrEqual": (np.greater_equal, (), (12, 16), "A >= B"),
    "LessOrEqual": (np.less_equal, (), (12, 16), "A <= B"),
    "And": (np.logical_and, (1,), (7,), "A and B on bool tensors"),
    "Or": (np.logical_or, (1,), (7,), "A or B on bool tensors"),
    "Xor": (np.logical_xor, (1,), (7,), "A xor B on bool tensors"),
}


def _make_comparison_kernels(op: str) -> None:
    fn, legacy_versions, versions, text = _COMPARISONS[op]

    def legacy(a, b, *, axis, broadcast):
        a, b = legacy_broadcast(a, b, broadcast, axis)
        return _compare(fn, a, b)

    def modern(a, b):
        return _compare(fn, a, b)

    legacy.__doc__ = f"Element-wise {text} as bool; B broadcasts onto A only with broadcast=1."
    modern.__doc__ = f"Element-wise {text} as bool, with numpy-style broadcasting."
    legacy.__name__ = legacy.__qualname__ = f"{op.lower()}_legacy"
    modern.__name__ = modern.__qualname__ = op.lower()
    if legacy_versions:
        kernel(op, since=legacy_versions)(legacy)
    kernel(op, since=versions)(modern)


for _op in _COMPARISONS:
    _make_comparison_kernels(_op)


@kernel("Not", since=1)
def not_(x):
    """Element-wise logical negation of a bool tensor."""
    return np.asarray(np.logical_not(x))


def _require_integer(op: str, *arrays: np.ndarray) -> None:
    for array in arrays:
        if np.asarray(array).dtype.kind not in "iu":
            raise TypeError(f"{op} expects integer tensors, got {np.asarray(array).dtype}")


@kernel("BitwiseAnd", since=18)
def bitwise_and(a, b):
    """Element-wise bitwise AND of integer tensors, with numpy-style broadcasting."""
    _require_integer("BitwiseAnd", a, b)
    return np.asarray(np.bitwise_and(a, b))


@kernel("BitwiseOr", since=18)
def bitwise_or(a, b):
    """Element-wise bitwise OR of integer tensors, with numpy-style broadcasting."""
    _require_integer("BitwiseOr", a, b)
    return np.asarray(np.bitwise_or(a, b))


@kernel("BitwiseXor", since=18)
def bitwise_xor(a, b):
    """Element-wise bitwise XOR of integer tensors, with numpy-style broadcasting."""
    _require_integer("BitwiseXor", a, b)
    return np.asarray(np.bitwise_xor(a, b))


@kernel("BitwiseNot", since=18)
def bitwise_not(x):
    """Element-wise bitwise complement of an integer tensor."""
    _require_integer("BitwiseNot", x)
    return np.asarray(np.invert(x))


@kernel("BitShift", since=(11, 28))
def bitshift(x, y, *, direction):
    """Element-wise shift of X by Y bits (right shifts of signed types sign-extend); a shift
    that is negative or at least the bit width leaves only the sign fill (0 or -1)."""
    x, y = np.asarray(x), np.asarray(y)
    _require_integer("BitShift", x, y)
    if direction not in ("LEFT", "RIGHT"):
        raise ValueError(f"BitShift direction must be 'LEFT' or 'RIGHT', got {direction!r}")
    bits = x.dtype.itemsize * 8
    valid = (y >= 0) & (y < bits)
    amount = np.where(valid, y, 0).astype(x.dtype)
    if direction == "LEFT":
        shifted, fill = np.left_shift(x, amount), np.zeros((), dtype=x.dtype)
    else:
        shifted = np.right_shift(x, amount)
        fill = np.where(x < 0, -1, 0).astype(x.dtype) if x.dtype.kind == "i" else 0
    return np.asarray(np.where(valid, shifted, fill).astype(x.dtype, copy=False))


@kernel("Where", since=(9, 16))
def where(condition, x, y):
    """Element-wise choice: X where the bool condition holds, else Y (all three broadcast)."""
    condition, x, y = np.asarray(condition), np.asarray(x), np.asarray(y)
    if condition.dtype != np.bool_:
        raise TypeError(f"Where expects a bool condition, got {condition.dtype}")
    if x.dtype != y.dtype:
        raise TypeError(f"Where expects X and Y of one type, got {x.dtype} and {y.dtype}")
    return np.asarray(np.where(condition, x, y))
