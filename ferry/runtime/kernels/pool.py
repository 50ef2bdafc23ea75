"""Pooling kernels: Average/Max/Lp pooling, their global forms, MaxRoiPool and MaxUnpool."""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels import native_conv
from ferry.runtime.kernels._window import (
    Window,
    coverage,
    geometry,
    padded,
    spatial_params,
    tap_view,
    windows,
)
from ferry.runtime.registry import kernel


def _pool_window(x: np.ndarray, kernel_shape, strides, pads, auto_pad, ceil_mode=0,
                 dilations=None) -> Window:
    if x.ndim < 3:
        raise ValueError(f"pooling expects an input of rank >= 3 (N, C, ...), got {x.shape}")
    if not kernel_shape:
        raise ValueError("pooling requires the kernel_shape attribute")
    return geometry(x.shape[2:], kernel_shape, strides=strides, dilations=dilations, pads=pads,
                    auto_pad=auto_pad, ceil_mode=ceil_mode)


def _float_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _kernel_axes(win: Window) -> tuple[int, ...]:
    return tuple(range(-len(win.kernel), 0))


_BLOCK_BYTES = 1 << 20  # input planes reduced together, sized to stay in cache


def _running(x: np.ndarray, win: Window, fill, op) -> np.ndarray:
    """Reduce the windows with ``op`` (a binary ufunc) one kernel tap at a time.

    Planes (the leading axes) go in cache-sized blocks through one reused padded buffer.
    """
    rank = len(win.kernel)
    planes = x.reshape(-1, *x.shape[x.ndim - rank:])
    out = np.empty((planes.shape[0], *win.out), dtype=x.dtype)
    step = max(1, _BLOCK_BYTES // max(1, planes[:1].nbytes))
    buf = None
    for b0 in range(0, planes.shape[0], step):
        block = planes[b0:b0 + step]
        if buf is not None and len(buf) != len(block):
            buf = buf[: len(block)]
        buf = padded(block, win, fill, buf)
        acc = out[b0:b0 + step]
        views = (tap_view(buf, win, tap) for tap in np.ndindex(*win.kernel))
        np.copyto(acc, next(views))
        for view in views:
            op(acc, view, out=acc)
    return out.reshape(*x.shape[:x.ndim - rank], *win.out)


def _lowest(dtype: np.dtype):
    return np.iinfo(dtype).min if np.issubdtype(dtype, np.integer) else -np.inf


@kernel("AveragePool", since=(1, 7, 10, 11, 19, 22))
def average_pool(x, *, auto_pad, kernel_shape, pads, strides, count_include_pad=None,
                 ceil_mode=None, dilations=None):
    """Mean over each window; padding counts only when count_include_pad is set."""
    win = _pool_window(x, kernel_shape, strides, pads, auto_pad, ceil_mode, dilations)
    ctype = _float_dtype(x.dtype)
    total = _running(x.astype(ctype, copy=False), win, 0, np.add)
    count = coverage(x.shape[2:], win, bool(count_include_pad))
    total /= count.astype(ctype)
    return total.astype(x.dtype, copy=False)


@kernel("LpPool", since=(1, 2, 11, 18, 22))
def lp_pool(x, *, auto_pad, kernel_shape, p, pads, strides, ceil_mode=None, dilations=None):
    """p-norm over each window (padding contributes zero)."""
    win = _pool_window(x, kernel_shape, strides, pads, auto_pad, ceil_mode, dilations)
    ctype = _float_dtype(x.dtype)
    power = np.abs(windows(x.astype(ctype, copy=False), win, 0)) ** p
    return (power.sum(axis=_kernel_axes(win)) ** (1.0 / p)).astype(x.dtype, copy=False)


@kernel("MaxPool", since=(1, 8, 10, 11, 12, 22))
def max_pool(x, *, auto_pad, kernel_shape, pads, strides, ceil_mode=None, dilations=None,
             storage_order=None, _num_outputs):
    """Max over each window; optional flat Indices (row- or column-major per storage_order)."""
    win = _pool_window(x, kernel_shape, strides, pads, auto_pad, ceil_mode, dilations)
    if _num_outputs < 2:
        if (x.dtype == np.float32 and x.ndim == 4 and x.size and all(win.out)
                and native_conv.available()):
            return native_conv.max_pool(x, win.kernel, win.strides, win.dilations,
                                        win.pads_begin, win.out)
        return _running(x, win, _lowest(x.dtype), np.maximum)
    view = windows(x, win, _lowest(x.dtype))
    y = view.max(axis=_kernel_axes(win))
    return y, _argmax_indices(x.shape, view, y, win, storage_order or 0)


def _argmax_indices(shape, view, y, win: Window, storage_order: int) -> np.ndarray:
    """Flat input index of each window's first maximal element that lies inside the input."""
    rank = len(win.kernel)
    inside = windows(np.ones(shape[2:], dtype=bool), win, False)
    flat = view.reshape(*view.shape[: 2 + rank], -1)
    hit = (flat == y[..., None]) & inside.reshape(*inside.shape[:rank], -1)
    tap = np.argmax(hit, axis=-1)
    taps = np.indices(win.kernel).reshape(rank, -1)
    coords = []
    for d in range(rank):
        start = np.arange(win.out[d]) * win.strides[d] - win.pads_begin[d]
        start = start.reshape([-1 if i == d else 1 for i in range(rank)])
        coords.append(start + taps[d][tap] * win.dilations[d])
    spatial = shape[2:]
    if storage_order:
        offset = np.zeros_like(tap)
        for d in reversed(range(rank)):
            offset = offset * spatial[d] + coords[d]
    else:
        offset = np.ravel_multi_index(coords, spatial, mode="clip")
    plane = int(np.prod(spatial))
    base = np.arange(shape[0] * shape[1]).reshape(shape[0], shape[1], *([1] * rank)) * plane
    return (base + offset).astype(np.int64)


@kernel("GlobalAveragePool", since=(1, 22))
def global_average_pool(x):
    """Mean over all spatial axes, keeping them as size 1."""
    axes = tuple(range(2, x.ndim))
    return x.mean(axis=axes, keepdims=True, dtype=_float_dtype(x.dtype)).astype(x.dtype)


@kernel("GlobalMaxPool", since=(1, 22))
def global_max_pool(x):
    """Max over all spatial axes, keeping them as size 1."""
    return x.max(axis=tuple(range(2, x.ndim)), keepdims=True)


@kernel("GlobalLpPool", since=(1, 2, 22))
def global_lp_pool(x, *, p):
    """p-norm over all spatial axes, keeping them as size 1."""
    ctype = _float_dtype(x.dtype)
    total = (np.abs(x.astype(ctype)) ** p).sum(axis=tuple(range(2, x.ndim)), keepdims=True)
    return (total ** (1.0 / p)).astype(x.dtype)


@kernel("MaxRoiPool", since=(1, 22))
def max_roi_pool(x, rois, *, pooled_shape, spatial_scale):
    """Max over a pooled_shape grid of bins inside each (rounded, scaled) region of interest."""
    if not pooled_shape or len(pooled_shape) != 2:
        raise ValueError(f"pooled_shape must be [height, width], got {pooled_shape}")
    ph, pw = pooled_shape
    height, width = x.shape[2:]
    y = np.zeros((rois.shape[0], x.shape[1], ph, pw), dtype=x.dtype)
    # scaled corners rounded half away from zero, in the RoIs' own precision
    scaled = rois[:, 1:] * rois.dtype.type(spatial_scale)
    corners = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int64).tolist()
    for r, (batch, (xs, ys, xe, ye)) in enumerate(zip(rois[:, 0].tolist(), corners, strict=True)):
        roi_w, roi_h = max(xe - xs + 1, 1), max(ye - ys + 1, 1)
        for i in range(ph):
            h0 = min(max(int(np.floor(i * roi_h / ph)) + ys, 0), height)
            h1 = min(max(int(np.ceil((i + 1) * roi_h / ph)) + ys, 0), height)
            for j in range(pw):
                w0 = min(max(int(np.floor(j * roi_w / pw)) + xs, 0), width)
                w1 = min(max(int(np.ceil((j + 1) * roi_w / pw)) + xs, 0), width)
                if h1 > h0 and w1 > w0:
                    y[r, :, i, j] = x[int(batch), :, h0:h1, w0:w1].max(axis=(1, 2))
    return y


@kernel("MaxUnpool", since=(9, 11, 22))
def max_unpool(x, indices, output_shape=None, *, kernel_shape, pads, strides):
    """Scatter X to the flat positions in I of the unpooled tensor, zeros elsewhere."""
    rank = x.ndim - 2
    strides = spatial_params(strides, rank, 1, "strides")
    pads = spatial_params(pads, 2 * rank, 0, "pads")
    natural = [(n - 1) * s + k - pads[d] - pads[d + rank]
               for d, (n, s, k) in enumerate(zip(x.shape[2:], strides, kernel_shape, strict=True))]
    natural = (*x.shape[:2], *natural)
    coords = np.unravel_index(indices.astype(np.int64).ravel(), natural)
    shape = natural if output_shape is None else tuple(int(v) for v in output_shape)
    if len(shape) != x.ndim or any((c >= s).any() for c, s in zip(coords, shape, strict=True)):
        raise ValueError(f"output_shape {list(shape)} cannot hold the unpooled {list(natural)}")
    y = np.zeros(shape, dtype=x.dtype)
    y[coords] = x.ravel()
    return y
