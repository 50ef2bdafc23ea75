"""Sorting kernels: TopK and Unique."""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels._axes import normalize_axis
from ferry.runtime.kernels._numeric import widen
from ferry.runtime.registry import kernel


def _top_k(x: np.ndarray, k, axis: int, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """The k largest (or smallest) entries along ``axis``, sorted, ties by lower index first."""
    values = widen(x)
    if values.ndim == 0:
        raise ValueError("TopK expects a tensor of rank >= 1, got a scalar")
    axis = normalize_axis(axis, values.ndim)
    k = int(np.asarray(k).reshape(-1)[0]) if isinstance(k, np.ndarray) else int(k)
    n = values.shape[axis]
    if not 0 <= k <= n:
        raise ValueError(f"TopK expects 0 <= k <= {n} (the length of axis {axis}), got k={k}")
    if largest:
        # A stable ascending sort of the reversed axis, read backwards, is descending
        # with equal values in ascending index order.
        reversed_order = np.argsort(np.flip(values, axis), axis=axis, kind="stable")
        order = n - 1 - np.flip(reversed_order, axis)
    else:
        order = np.argsort(values, axis=axis, kind="stable")
    indices = np.take(order, np.arange(k), axis=axis).astype(np.int64)
    return np.take_along_axis(x, indices, axis=axis), indices


@kernel("TopK", since=1)
def top_k_v1(x, *, axis, k):
    """The k largest entries along ``axis`` (k an attribute), values and int64 indices."""
    if k is None:
        raise ValueError("TopK-1 requires the `k` attribute")
    return _top_k(x, k, axis, largest=True)


@kernel("TopK", since=10)
def top_k_v10(x, k, *, axis):
    """The k largest entries along ``axis`` (k a 1-element input), values and int64 indices."""
    return _top_k(x, k, axis, largest=True)


@kernel("TopK", since=(11, 24))
def top_k(x, k, *, axis, largest, sorted):
    """The k largest or smallest entries along ``axis``; always returned sorted, stable on ties."""
    return _top_k(x, k, axis, largest=bool(largest))


def _rows_differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, whether rows of ``a`` and ``b`` differ (NaN counts as equal to NaN)."""
    unequal = np.asarray(a != b, dtype=bool)
    if a.dtype.kind in "fc":
        unequal &= ~(np.isnan(a) & np.isnan(b))
    return unequal.any(axis=1)


def _group_rows(rows: np.ndarray):
    """Sort rows lexicographically (stably) and group equal ones.

    Returns, per group in sorted order, the first original row index and the count, plus
    each original row's group number.
    """
    n = rows.shape[0]
    if rows.shape[1] == 0:
        order = np.arange(n)
        starts = np.arange(n) == 0
    else:
        order = np.lexsort(rows.T[::-1])
        ordered = rows[order]
        starts = np.concatenate([[True], _rows_differ(ordered[1:], ordered[:-1])])[:n]
    group = np.cumsum(starts) - 1
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = group
    start_positions = np.flatnonzero(starts)
    counts = np.diff(np.append(start_positions, n))
    return order[start_positions].astype(np.int64), counts.astype(np.int64), inverse


@kernel("Unique", since=(11, 28))
def unique(x, *, axis, sorted):
    """Unique values (or slices along ``axis``), first-occurrence indices, inverse map, counts."""
    values = widen(x)
    if axis is None:
        rows = values.reshape(-1, 1)
    else:
        axis = normalize_axis(axis, values.ndim)
        moved = np.moveaxis(values, axis, 0)
        rows = moved.reshape(moved.shape[0], -1)
    first, counts, inverse = _group_rows(rows)
    if not sorted:
        by_occurrence = np.argsort(first, kind="stable")
        rank = np.empty_like(by_occurrence)
        rank[by_occurrence] = np.arange(by_occurrence.size)
        first, counts, inverse = first[by_occurrence], counts[by_occurrence], rank[inverse]
    y = x.reshape(-1)[first] if axis is None else np.take(x, first, axis=axis)
    return y, first, inverse.astype(np.int64), counts
