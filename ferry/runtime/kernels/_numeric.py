"""Dtype helpers shared by kernels: compute on float16 and the exotic floats (bfloat16,
float8...; ferry's structured bit-pattern arrays, see ferry/ir/dtypes.py) in float32 and
round once at the end.
"""

from __future__ import annotations

import numpy as np

from ferry.ir.dtypes import DataType, from_numpy_dtype
from ferry.ir.minifloat import from_float32, to_float32

__all__ = ["widen", "narrow", "is_float", "require_float"]


def _exotic_float(dtype: np.dtype) -> DataType | None:
    """The ONNX type of a structured (exotic) float dtype, None for plain numpy dtypes."""
    if not dtype.names:
        return None
    code = from_numpy_dtype(dtype)
    if not code.is_floating:
        raise TypeError(f"element type {code.name.lower()} is not supported by this kernel")
    return code


def widen(x: np.ndarray) -> np.ndarray:
    """The array in a dtype numpy can compute with: float16 and exotic floats (bfloat16,
    float8...) become float32."""
    x = np.asarray(x)
    if x.dtype == np.float16 or _exotic_float(x.dtype):
        return to_float32(x)
    return x


def narrow(y, dtype: np.dtype) -> np.ndarray:
    """Cast a computed result back to the ONNX element type ``dtype`` (always an ndarray),
    rounding to nearest even."""
    y = np.asarray(y)
    code = _exotic_float(dtype)
    if code is not None:
        return from_float32(y, code)
    if y.dtype != dtype:
        with np.errstate(all="ignore"):
            y = y.astype(dtype)
    return y


def is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or (bool(dtype.names) and from_numpy_dtype(dtype).is_floating)


def require_float(x: np.ndarray, op: str) -> None:
    if not is_float(x.dtype):
        raise TypeError(f"{op} expects a floating-point tensor, got {x.dtype}")


def split(count: int, unit: int = 1, min_elements: int = 1 << 16, max_blocks: int = 8) -> list[slice]:
    """``count`` rows of ``unit`` elements each, cut into near-equal blocks of at least
    ``min_elements`` elements (at most ``max_blocks``): cache-sized pieces of row-wise work.
    """
    blocks = max(1, min(max_blocks, count, count * unit // max(1, min_elements)))
    bounds = [count * i // blocks for i in range(blocks + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(blocks)]
