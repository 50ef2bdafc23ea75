"""Reduction kernels: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare, ArgMax/ArgMin.

Each Reduce* op exists in two forms: ``axes`` as an attribute (before opset 13 for
ReduceSum, before 18 for the others) and ``axes`` as an optional input together with
``noop_with_empty_axes``. Both forms share one computation per op, which reduces over
a tuple of axes with keepdims and yields the op's identity on empty sets (Sum 0,
Prod 1, Max -inf or the type's minimum, Min +inf or the type's maximum, LogSum -inf).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ferry.runtime.kernels._axes import normalize_axes, normalize_axis
from ferry.runtime.kernels._numeric import narrow, widen
from ferry.runtime.registry import kernel

Axes = tuple[int, ...]


def _accumulator(dtype: np.dtype) -> np.dtype:
    """The dtype to accumulate in: float16 sums in float32, others in their own type."""
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _sum(x: np.ndarray, axes: Axes) -> np.ndarray:
    return np.sum(x, axis=axes, keepdims=True, dtype=_accumulator(x.dtype))


def _extreme(x: np.ndarray, axes: Axes, largest: bool) -> np.ndarray:
    if x.dtype == np.bool_:
        initial = not largest
    elif x.dtype.kind == "f":
        initial = -np.inf if largest else np.inf
    else:
        info = np.iinfo(x.dtype)
        initial = info.min if largest else info.max
    ufunc = np.maximum if largest else np.minimum
    return ufunc.reduce(x, axis=axes, keepdims=True, initial=initial)


def _mean(x: np.ndarray, axes: Axes) -> np.ndarray:
    count = int(np.prod([x.shape[a] for a in axes]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return _sum(x, axes) / count


def _log_sum(x: np.ndarray, axes: Axes) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(_sum(_floating(x), axes))


def _log_sum_exp(x: np.ndarray, axes: Axes) -> np.ndarray:
    x = _floating(x)
    peak = _extreme(x, axes, largest=True)
    shift = np.where(np.isfinite(peak), peak, 0).astype(x.dtype)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return np.log(_sum(np.exp(x - shift), axes)) + shift


def _floating(x: np.ndarray) -> np.ndarray:
    """Integer data promoted to float64 for ops that are inherently floating point."""
    return x if x.dtype.kind in "fc" else x.astype(np.float64)


_REDUCTIONS: dict[str, Callable[[np.ndarray, Axes], np.ndarray]] = {
    "ReduceSum": _sum,
    "ReduceMean": _mean,
    "ReduceMax": lambda x, axes: _extreme(x, axes, largest=True),
    "ReduceMin": lambda x, axes: _extreme(x, axes, largest=False),
    "ReduceProd": lambda x, axes: np.prod(x, axis=axes, keepdims=True, dtype=_accumulator(x.dtype)),
    "ReduceL1": lambda x, axes: _sum(np.abs(x), axes),
    "ReduceL2": lambda x, axes: np.sqrt(_floating(_sum(x * x, axes))),
    "ReduceSumSquare": lambda x, axes: _sum(x * x, axes),
    "ReduceLogSum": _log_sum,
    "ReduceLogSumExp": _log_sum_exp,
}

_DOCS = {
    "ReduceSum": "sum",
    "ReduceMean": "arithmetic mean",
    "ReduceMax": "maximum (-inf or the type's minimum on an empty set)",
    "ReduceMin": "minimum (+inf or the type's maximum on an empty set)",
    "ReduceProd": "product",
    "ReduceL1": "sum of absolute values",
    "ReduceL2": "square root of the sum of squares",
    "ReduceSumSquare": "sum of squares",
    "ReduceLogSum": "log of the sum",
    "ReduceLogSumExp": "log of the sum of exponentials (computed stably)",
}


def reduce(op_type: str, data: np.ndarray, axes, keepdims: int, noop: int) -> np.ndarray:
    """Apply ``op_type``'s reduction over ``axes`` (None or empty: all axes, or none if noop)."""
    values = widen(data)
    if axes is None or len(axes) == 0:
        axes = () if noop else tuple(range(values.ndim))
    else:
        axes = tuple(normalize_axes(axes, values.ndim))
    result = _REDUCTIONS[op_type](values, axes)
    if not keepdims:
        result = np.squeeze(result, axis=axes)
    return narrow(result, data.dtype)


def _register(op_type: str, attribute_versions: tuple[int, ...], input_versions: tuple[int, ...]):
    """Register ``op_type`` with axes as an attribute, then with axes as an input."""

    def with_axes_attribute(data, *, axes, keepdims):
        return reduce(op_type, data, axes, keepdims, noop=0)

    def with_axes_input(data, axes=None, *, keepdims, noop_with_empty_axes):
        axes = None if axes is None else np.asarray(axes).reshape(-1).tolist()
        return reduce(op_type, data, axes, keepdims, noop_with_empty_axes)

    what = _DOCS[op_type]
    for function, where, versions in (
        (with_axes_attribute, "the `axes` attribute (all axes if absent)", attribute_versions),
        (with_axes_input, "the `axes` input, honouring noop_with_empty_axes", input_versions),
    ):
        function.__doc__ = f"{op_type}: {what} over {where}."
        function.__qualname__ = function.__name__ = f"{op_type}_v{versions[0]}"
        kernel(op_type, since=versions)(function)


_register("ReduceSum", (1, 11), (13,))
_register("ReduceMean", (1, 11, 13), (18,))
_register("ReduceMax", (1, 11, 12, 13), (18, 20))
_register("ReduceMin", (1, 11, 12, 13), (18, 20))
_register("ReduceProd", (1, 11, 13), (18,))
_register("ReduceL1", (1, 11, 13), (18,))
_register("ReduceL2", (1, 11, 13), (18,))
_register("ReduceSumSquare", (1, 11, 13), (18,))
_register("ReduceLogSum", (1, 11, 13), (18, 28))
_register("ReduceLogSumExp", (1, 11, 13), (18, 28))


def _arg_extreme(data: np.ndarray, axis: int, keepdims: int, last: bool, largest: bool):
    values = widen(data)
    if values.ndim == 0:
        raise ValueError("ArgMax/ArgMin expect a tensor of rank >= 1, got a scalar")
    axis = normalize_axis(axis, values.ndim)
    if values.shape[axis] == 0:
        raise ValueError(f"ArgMax/ArgMin over axis {axis} of length 0 has no answer")
    pick = np.argmax if largest else np.argmin
    if last:
        index = values.shape[axis] - 1 - pick(np.flip(values, axis), axis=axis)
    else:
        index = pick(values, axis=axis)
    if keepdims:
        index = np.expand_dims(index, axis)
    return np.asarray(index, dtype=np.int64)


@kernel("ArgMax", since=(1, 11, 12, 13))
def argmax(data, *, axis, keepdims, select_last_index=None):
    """Index (int64) of the largest value along ``axis``; ties pick the first or last."""
    return _arg_extreme(data, axis, keepdims, bool(select_last_index), largest=True)


@kernel("ArgMin", since=(1, 11, 12, 13))
def argmin(data, *, axis, keepdims, select_last_index=None):
    """Index (int64) of the smallest value along ``axis``; ties pick the first or last."""
    return _arg_extreme(data, axis, keepdims, bool(select_last_index), largest=False)
