"""ferry's compiled row kernels (``native/rows.c``): LayerNormalization and (masked) Softmax
over the last axis of float32 arrays, on the extension's thread pool.

The extension is optional (see :mod:`ferry.runtime.kernels.native_conv`, whose
``available()``, ``enabled`` and ``threads`` govern these kernels too); callers keep their
numpy code for when it is not built or turned off.

- ``layer_norm_rows``: ONNX LayerNormalization-17 with float32 statistics (stash_type 1) on
  rows: sums in double, variance as the mean of squared deviations;
- ``softmax_last_axis``: ONNX Softmax-13 on the last axis of ``x + mask`` (numpy broadcasting),
  NaN results of rows masked entirely turned into 0 on request. Its exp is within 1 float32
  ulp of the exact value down to ln(FLT_MIN); results that would be subnormal are 0.
"""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels import native_conv
from ferry.runtime.kernels.native_conv import _native, _thread_count

__all__ = ["available", "layer_norm_rows", "softmax_last_axis"]

available = native_conv.available


def layer_norm_rows(x: np.ndarray, scale: np.ndarray, bias: np.ndarray | None,
                    epsilon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, mean, inv_std) of contiguous float32 ``x`` (R, L): y = (x - mean) * inv_std * scale
    + bias per row, inv_std = 1 / sqrt(variance + epsilon); ``scale`` and ``bias`` (None: 0)
    are float32 rows of L values; mean and inv_std have shape (R,)."""
    rows, length = x.shape
    y = np.empty((rows, length), dtype=np.float32)
    mean = np.empty(rows, dtype=np.float32)
    inv_std = np.empty(rows, dtype=np.float32)
    _native.layer_norm(x, rows, length, scale, bias, float(epsilon), y, mean, inv_std, _thread_count())
    return y, mean, inv_std


def softmax_last_axis(x: np.ndarray, mask: np.ndarray | None = None, *,
                      nan_to_zero: bool = False) -> np.ndarray:
    """exp(s - max) / sum(exp(s - max)) along the last axis of s = ``x`` + ``mask``
    (float32, broadcast together as numpy does; None: no mask), with NaN rows set to 0 when
    ``nan_to_zero``. ``x`` and the result have at least one dimension."""
    shape = x.shape if mask is None or mask.shape == x.shape else np.broadcast_shapes(x.shape, mask.shape)
    x = np.ascontiguousarray(x if x.shape == shape else np.broadcast_to(x, shape), dtype=np.float32)
    y = np.empty(shape, dtype=np.float32)
    length = shape[-1]
    if y.size == 0:
        return y
    mask_rows, rows = 1, y.size // length
    if mask is not None:
        mask, mask_rows = _mask_rows(mask, shape)
    _native.softmax(x, rows, length, mask, mask_rows, bool(nan_to_zero), y, _thread_count())
    return y


def _mask_rows(mask: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """``mask`` as contiguous float32 rows (M, L) such that row i of ``x`` (shape ``shape``)
    reads mask row i % M: its trailing axes that match ``shape``, when it is 1 on all the
    axes before them (a mask over (S, L) or (1, L) shared by batches and heads); else the
    mask broadcast to the whole shape."""
    padded = (1,) * (len(shape) - mask.ndim) + mask.shape
    first = len(shape) - 1  # the mask's row axes: [first, last axis), where it matches shape
    while first > 0 and padded[first - 1] == shape[first - 1]:
        first -= 1
    if all(n == 1 for n in padded[:first]):
        if padded[first:] != shape[first:]:
            mask = np.broadcast_to(mask.reshape(padded[first:]), shape[first:])
    else:
        mask = np.broadcast_to(mask, shape)
    mask = np.ascontiguousarray(mask, dtype=np.float32)
    return mask, mask.size // shape[-1]
