"""Resize (opsets 10-19) and Upsample, computed separably: one gather + weighted sum per axis."""

from __future__ import annotations

import math

import numpy as np

from ferry.runtime.kernels.attention import from_float, to_float
from ferry.runtime.registry import kernel

_COORDINATE_MODES = {
    "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
    "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn",
}


def _source_coordinates(mode: str, n_in: int, n_out: int, scale: float, roi: tuple) -> np.ndarray:
    """Where each output position of one axis samples the input, per coordinate_transformation_mode.

    The formulas' resized length is ``n_in * scale``: fractional when it comes from a scale.
    """
    i = np.arange(n_out, dtype=np.float64)
    length = n_in * scale
    if mode == "half_pixel":
        return (i + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / length)
        return offset + (i + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (i + 0.5) / scale - 0.5 if length > 1 else np.zeros(n_out)
    if mode == "align_corners":
        return i * (n_in - 1) / (length - 1) if length > 1 else np.zeros(n_out)
    if mode == "asymmetric":
        return i / scale
    if mode == "legacy":  # Resize-10 / Upsample: asymmetric, in float32 like common runtimes
        return (i.astype(np.float32) / np.float32(scale)).astype(np.float64)
    if mode == "tf_half_pixel_for_nn":
        return (i + 0.5) / scale
    if mode == "tf_crop_and_resize":
        start, end = roi
        if length > 1:
            return start * (n_in - 1) + i * (end - start) * (n_in - 1) / (length - 1)
        return np.full(n_out, 0.5 * (start + end) * (n_in - 1))
    raise ValueError(f"unsupported coordinate_transformation_mode {mode!r}")


def _nearest_index(x: np.ndarray, nearest_mode: str, downsampling: bool) -> np.ndarray:
    if nearest_mode == "round_prefer_floor":
        return np.ceil(x - 0.5)
    if nearest_mode == "round_prefer_ceil":
        return np.floor(x + 0.5)
    if nearest_mode == "floor":
        return np.floor(x)
    if nearest_mode == "ceil":
        return np.ceil(x)
    if nearest_mode == "legacy":  # Resize-10 / Upsample: truncate, but ceil when shrinking
        return np.ceil(x) if downsampling else np.floor(x)
    raise ValueError(f"unsupported nearest_mode {nearest_mode!r}")


def _cubic_kernel(d: np.ndarray, a: float) -> np.ndarray:
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _filter_taps(x, n_in, mode, scale, cubic_coeff_a, exclude_outside, antialias):
    """Input indices [n_out, taps] and weights for linear/cubic sampling at positions ``x``."""
    support = 1 if mode == "linear" else 2
    stretch = min(scale, 1.0) if antialias else 1.0
    first = math.floor(-support / stretch) + 1
    offsets = np.arange(first, 2 - first, dtype=np.float64)
    base = np.floor(x)
    distance = (offsets[None, :] - (x - base)[:, None]) * stretch
    if mode == "linear":
        weights = np.maximum(0.0, 1 - np.abs(distance))
    else:
        weights = _cubic_kernel(distance, cubic_coeff_a)
    index = base[:, None].astype(np.int64) + offsets.astype(np.int64)[None, :]
    if exclude_outside:
        weights = np.where((index >= 0) & (index < n_in), weights, 0.0)
    if exclude_outside or antialias:
        weights = weights / weights.sum(axis=1, keepdims=True)
    return np.clip(index, 0, n_in - 1), weights


def _resample_axis(x: np.ndarray, axis: int, n_out: int, scale: float, roi: tuple, opts: dict):
    """Resize ``x`` along one axis, with the options of the node."""
    n_in = x.shape[axis]
    pos = _source_coordinates(opts["coordinate_mode"], n_in, n_out, scale, roi)
    mode = opts["mode"]
    if mode == "nearest":
        index = _nearest_index(pos, opts["nearest_mode"], scale < 1)
        out = np.take(x, np.clip(index, 0, n_in - 1).astype(np.int64), axis=axis)
    elif mode in ("linear", "cubic"):
        index, weights = _filter_taps(
            pos, n_in, mode, scale, opts["cubic_coeff_a"], opts["exclude_outside"],
            opts["antialias"],
        )
        gathered = np.take(x, index, axis=axis)
        weights = weights.reshape(weights.shape + (1,) * (x.ndim - axis - 1))
        out = (gathered * weights).sum(axis=axis + 1)
    else:
        raise ValueError(f"Resize mode must be nearest, linear or cubic, found {mode!r}")
    if opts["coordinate_mode"] == "tf_crop_and_resize":
        outside = (pos < 0) | (pos > n_in - 1)
        shape = [1] * x.ndim
        shape[axis] = n_out
        out = np.where(outside.reshape(shape), opts["extrapolation_value"], out)
    return out


def _resize(x: np.ndarray, out_shape, scales, rois, opts: dict) -> np.ndarray:
    """Resample every axis whose size, scale or region changes; numeric modes compute in float."""
    numeric = opts["mode"] != "nearest" or opts["coordinate_mode"] == "tf_crop_and_resize"
    y = to_float(x) if numeric else x
    for axis, n_out in enumerate(out_shape):
        crop = opts["coordinate_mode"] == "tf_crop_and_resize" and rois[axis] != (0.0, 1.0)
        if n_out != x.shape[axis] or scales[axis] != 1 or crop:
            y = _resample_axis(y, axis, n_out, scales[axis], rois[axis], opts)
    return from_float(y, x.dtype) if numeric else y


def _options(mode, coordinate_mode, nearest_mode, cubic_coeff_a=-0.75, exclude_outside=0,
             extrapolation_value=0.0, antialias=0) -> dict:
    return {
        "mode": mode, "coordinate_mode": coordinate_mode, "nearest_mode": nearest_mode,
        "cubic_coeff_a": cubic_coeff_a, "exclude_outside": exclude_outside,
        "extrapolation_value": extrapolation_value, "antialias": antialias,
    }


def _legacy_upsample(x: np.ndarray, scales, mode: str, *, upsample: bool = True) -> np.ndarray:
    """Resize-10 / Upsample semantics: asymmetric coordinates, out = floor(in * scale)."""
    scales = [float(s) for s in np.asarray(scales, np.float64).ravel()]
    if len(scales) != x.ndim:
        raise ValueError(f"expected {x.ndim} scales (one per axis), found {len(scales)}")
    if upsample and min(scales) < 1:
        raise ValueError(f"Upsample scales must be >= 1, found {scales}")
    if mode == "bilinear":
        mode = "linear"
    out_shape = [math.floor(n * s) for n, s in zip(x.shape, scales, strict=True)]
    opts = _options(mode, "legacy", "legacy")
    return _resize(x, out_shape, scales, [(0.0, 1.0)] * x.ndim, opts)


@kernel("Upsample", since=1)
def upsample_1(X, *, height_scale, mode, width_scale):
    """Upsample (experimental opset 1): scale the last two axes of an NCHW tensor."""
    return _legacy_upsample(X, [1.0] * (X.ndim - 2) + [height_scale, width_scale], mode)


@kernel("Upsample", since=7)
def upsample_7(X, *, mode, scales):
    """Upsample with a per-axis ``scales`` attribute (nearest or linear, asymmetric)."""
    return _legacy_upsample(X, scales, mode)


@kernel("Upsample", since=(9, 10))
def upsample_9(X, scales, *, mode):
    """Upsample with a ``scales`` input (nearest or linear, asymmetric)."""
    return _legacy_upsample(X, scales, mode)


@kernel("Resize", since=10)
def resize_10(X, scales, *, mode):
    """Resize-10: scales input only, asymmetric coordinates, out = floor(in * scale)."""
    return _legacy_upsample(X, scales, mode, upsample=False)


def _normalize_axes(axes, rank: int) -> list[int]:
    if axes is None:
        return list(range(rank))
    normalized = [a + rank if a < 0 else a for a in axes]
    if any(not 0 <= a < rank for a in normalized) or len(set(normalized)) != len(normalized):
        raise ValueError(f"axes {list(axes)} are invalid or repeated for a rank-{rank} input")
    return normalized


def _present(value) -> bool:
    return value is not None and np.asarray(value).size > 0


def _target(x, axes, roi, scales, sizes, policy, coordinate_mode):
    """Output shape, per-axis scales and per-axis (start, end) regions of interest."""
    rank = x.ndim
    rois = [(0.0, 1.0)] * rank
    if _present(roi) and coordinate_mode == "tf_crop_and_resize":
        roi = np.asarray(roi, np.float64).ravel()
        if roi.size != 2 * len(axes):
            raise ValueError(f"roi must have {2 * len(axes)} values, found {roi.size}")
        for i, a in enumerate(axes):
            rois[a] = (float(roi[i]), float(roi[i + len(axes)]))
    out_shape, full_scales = list(x.shape), [1.0] * rank
    if _present(scales) == _present(sizes):
        raise ValueError("Resize needs exactly one of 'scales' and 'sizes'")
    if _present(scales):
        scales = np.asarray(scales, np.float64).ravel()
        if scales.size != len(axes):
            raise ValueError(f"expected {len(axes)} scales, found {scales.size}")
        for a, s in zip(axes, scales, strict=True):  # the roi does not shrink the output
            out_shape[a], full_scales[a] = math.floor(x.shape[a] * s), float(s)
        return out_shape, full_scales, rois
    sizes = [int(s) for s in np.asarray(sizes).ravel()]
    if len(sizes) != len(axes):
        raise ValueError(f"expected {len(axes)} sizes, found {len(sizes)}")
    if policy in ("not_larger", "not_smaller"):
        ratios = [s / x.shape[a] for a, s in zip(axes, sizes, strict=True)]
        ratio = min(ratios) if policy == "not_larger" else max(ratios)
        for a in axes:  # one scale for every resized axis, which also maps coordinates
            out_shape[a], full_scales[a] = math.floor(ratio * x.shape[a] + 0.5), ratio
        return out_shape, full_scales, rois
    if policy not in (None, "stretch"):
        raise ValueError(f"unsupported keep_aspect_ratio_policy {policy!r}")
    for a, s in zip(axes, sizes, strict=True):
        out_shape[a], full_scales[a] = s, s / x.shape[a]
    return out_shape, full_scales, rois


@kernel("Resize", since=(11, 13, 18, 19))
def resize(
    X, roi=None, scales=None, sizes=None, *,
    coordinate_transformation_mode, cubic_coeff_a, exclude_outside, extrapolation_value,
    mode, nearest_mode, antialias=None, axes=None, keep_aspect_ratio_policy=None,
):
    """Resize to ``sizes`` or by ``scales`` with nearest/linear/cubic interpolation."""
    if coordinate_transformation_mode not in _COORDINATE_MODES:
        raise ValueError(
            f"unsupported coordinate_transformation_mode {coordinate_transformation_mode!r}"
        )
    axes = _normalize_axes(axes, X.ndim)
    out_shape, full_scales, rois = _target(
        X, axes, roi, scales, sizes, keep_aspect_ratio_policy, coordinate_transformation_mode
    )
    opts = _options(
        mode, coordinate_transformation_mode, nearest_mode, cubic_coeff_a, exclude_outside,
        extrapolation_value, antialias or 0,
    )
    return _resize(X, out_shape, full_scales, rois, opts)
