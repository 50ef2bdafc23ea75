"""CumSum and CumProd: running sums and products along an axis, optionally exclusive and/or
reversed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ferry.runtime.kernels._numeric import narrow, widen
from ferry.runtime.registry import kernel


def _scalar_axis(axis, rank: int, op: str) -> int:
    axis = np.asarray(axis)
    if axis.dtype.kind not in "iu" or axis.size != 1 or axis.ndim > 1:
        raise ValueError(f"{op} expects a single integer axis, got {axis!r}")
    value = int(axis.reshape(()))
    if not -rank <= value < rank:
        raise ValueError(f"{op} axis {value} is out of range for a rank-{rank} input")
    return value + rank if value < 0 else value


def _cumulate(op: str, x, axis, exclusive: int, reverse: int, fn: Callable, identity: int):
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{op} expects an input of rank >= 1")
    axis = _scalar_axis(axis, x.ndim, op)
    wide = widen(x)
    if reverse:
        wide = np.flip(wide, axis)
    with np.errstate(all="ignore"):
        result = fn(wide, axis=axis, dtype=wide.dtype)
    if exclusive:
        result = np.roll(result, 1, axis=axis)
        first = [slice(None)] * x.ndim
        first[axis] = slice(0, 1)
        result[tuple(first)] = identity
    if reverse:
        result = np.flip(result, axis)
    return narrow(np.ascontiguousarray(result), x.dtype)


@kernel("CumSum", since=(11, 14))
def cumsum(x, axis, *, exclusive, reverse):
    """Running sum along ``axis``; exclusive leaves out the current element, reverse runs
    from the end."""
    return _cumulate("CumSum", x, axis, exclusive, reverse, np.cumsum, 0)


@kernel("CumProd", since=26)
def cumprod(x, axis, *, exclusive, reverse):
    """Running product along ``axis``; exclusive leaves out the current element, reverse
    runs from the end."""
    return _cumulate("CumProd", x, axis, exclusive, reverse, np.cumprod, 1)
