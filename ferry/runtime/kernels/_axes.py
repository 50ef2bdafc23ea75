"""Small helpers shared by kernels: axis normalization, integer inputs, fill values."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = [
    "int_list",
    "int_scalar",
    "normalize_axes",
    "normalize_axis",
    "zero_scalar",
]


def normalize_axis(axis: int, rank: int, *, name: str = "axis") -> int:
    """``axis`` in [-rank, rank-1] mapped to [0, rank-1]; ValueError when out of range."""
    axis = int(axis)
    if not -rank <= axis < rank:
        raise ValueError(f"{name} {axis} is out of range for rank {rank}: expected [{-rank}, {rank - 1}]")
    return axis + rank if axis < 0 else axis


def normalize_axes(
    axes: Iterable[int], rank: int, *, name: str = "axes", unique: bool = True
) -> list[int]:
    """Each axis normalized against ``rank``; with ``unique``, repeated axes are an error."""
    result = [normalize_axis(a, rank, name=name) for a in axes]
    if unique and len(set(result)) != len(result):
        raise ValueError(f"{name} {list(axes)} repeat an axis (rank {rank})")
    return result


def int_list(values) -> list[int] | None:
    """A 1-D integer tensor, list or scalar as a list of Python ints (``None`` stays None)."""
    if values is None:
        return None
    return [int(v) for v in np.asarray(values).reshape(-1)]


def int_scalar(value, *, name: str = "value") -> int:
    """A scalar or one-element tensor as a Python int."""
    array = np.asarray(value)
    if array.size != 1:
        raise ValueError(f"{name} must hold exactly one element, got shape {array.shape}")
    return int(array.reshape(-1)[0])


def zero_scalar(dtype: np.dtype) -> np.ndarray:
    """A 0-d array holding the zero of ``dtype``: all-zero bits, or "" for strings."""
    dtype = np.dtype(dtype)
    if dtype.kind == "O":
        return np.array("", dtype=object)
    return np.zeros((), dtype=dtype)
