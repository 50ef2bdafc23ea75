"""Softmax, LogSoftmax and Hardmax. Before opset 13 they act on the input coerced to 2-D at
``axis`` (rows = dimensions before it, columns = the rest); from 13 on along ``axis`` alone."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ferry.ir.dtypes import DataType
from ferry.runtime.kernels import native_rows
from ferry.runtime.kernels._numeric import narrow, require_float, split, widen
from ferry.runtime.registry import kernel

_BFLOAT16 = DataType.BFLOAT16.numpy


def _normalize_axis(axis: int, rank: int, op: str) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"{op} axis {axis} is out of range for a rank-{rank} input")
    return axis + rank if axis < 0 else axis


class _Precision:
    """Arithmetic in the tensor's element type. float32/float64 compute natively; float16
    and bfloat16 compute in float32 but round every intermediate back to the element type,
    with float16 sums accumulated in float32 and bfloat16 sums in bfloat16 from left to right.
    That is the evaluation order behind the official expected results, and 16-bit case
    tolerances leave no room for a more precise one."""

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype
        self.reduced = dtype.itemsize == 2

    def round(self, v: np.ndarray) -> np.ndarray:
        return widen(narrow(v, self.dtype)) if self.reduced else v

    def sum(self, v: np.ndarray, axis: int) -> np.ndarray:
        if self.dtype != _BFLOAT16:
            return self.round(np.sum(v, axis=axis, keepdims=True))
        total = np.zeros_like(np.take(v, [0], axis=axis))
        for i in range(v.shape[axis]):
            total = self.round(total + np.take(v, [i], axis=axis))
        return total


def _apply(op: str, x, axis: int, coerce_2d: bool, fn: Callable) -> np.ndarray:
    """Run ``fn(values, axis, precision)`` along one axis, or on the 2-D coercion when
    ``coerce_2d``."""
    x = np.asarray(x)
    require_float(x, op)
    wide = widen(x)
    if wide.ndim == 0:
        wide = wide.reshape(1)
    axis = _normalize_axis(axis, wide.ndim, op)
    if wide.size == 0:
        return x.copy()
    precision = _Precision(x.dtype)
    with np.errstate(all="ignore"):
        if coerce_2d:
            rows = int(np.prod(wide.shape[:axis], dtype=np.int64))
            result = fn(wide.reshape(rows, -1), 1, precision).reshape(wide.shape)
        else:
            result = fn(wide, axis, precision)
        return narrow(result.reshape(x.shape), x.dtype)


def _softmax(v: np.ndarray, axis: int, p: _Precision) -> np.ndarray:
    if not p.reduced:  # float32/float64: in place on one fresh buffer
        if axis == v.ndim - 1 and v.dtype == np.float32 and native_rows.available():
            return native_rows.softmax_last_axis(v)
        if axis == v.ndim - 1 and v.flags.c_contiguous:  # cache-sized blocks of rows
            rows = v.reshape(-1, v.shape[-1])
            out = np.empty_like(rows)
            for part in split(rows.shape[0], rows.shape[1]):
                _softmax_rows(rows[part], out[part])
            return out.reshape(v.shape)
        e = np.subtract(v, np.max(v, axis=axis, keepdims=True))
        np.exp(e, out=e)
        e /= np.sum(e, axis=axis, keepdims=True)
        return e
    e = p.round(np.exp(p.round(v - np.max(v, axis=axis, keepdims=True))))
    return e / p.sum(e, axis)


def _softmax_rows(rows: np.ndarray, out: np.ndarray) -> None:
    np.subtract(rows, np.max(rows, axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= np.sum(out, axis=1, keepdims=True)


def _log_softmax(v: np.ndarray, axis: int, p: _Precision) -> np.ndarray:
    shifted = p.round(v - np.max(v, axis=axis, keepdims=True))
    return shifted - p.round(np.log(p.sum(p.round(np.exp(shifted)), axis)))


def _hardmax(v: np.ndarray, axis: int, p: _Precision) -> np.ndarray:
    result = np.zeros_like(v)
    if v.size:
        first = np.expand_dims(np.argmax(v, axis=axis), axis)
        np.put_along_axis(result, first, 1, axis=axis)
    return result


@kernel("Softmax", since=(1, 11))
def softmax_2d(x, *, axis):
    """exp(x) / sum(exp(x)) over each row of the input coerced to 2-D at ``axis``."""
    return _apply("Softmax", x, axis, True, _softmax)


@kernel("Softmax", since=13)
def softmax(x, *, axis):
    """exp(x) / sum(exp(x)) along ``axis``."""
    return _apply("Softmax", x, axis, False, _softmax)


@kernel("LogSoftmax", since=(1, 11))
def log_softmax_2d(x, *, axis):
    """log(softmax(x)) over each row of the input coerced to 2-D at ``axis``."""
    return _apply("LogSoftmax", x, axis, True, _log_softmax)


@kernel("LogSoftmax", since=13)
def log_softmax(x, *, axis):
    """log(softmax(x)) along ``axis``."""
    return _apply("LogSoftmax", x, axis, False, _log_softmax)


@kernel("Hardmax", since=(1, 11))
def hardmax_2d(x, *, axis):
    """1 at the first maximum of each row of the input coerced to 2-D at ``axis``, else 0."""
    return _apply("Hardmax", x, axis, True, _hardmax)


@kernel("Hardmax", since=13)
def hardmax(x, *, axis):
    """1 at the first maximum along ``axis``, 0 elsewhere."""
    return _apply("Hardmax", x, axis, False, _hardmax)
