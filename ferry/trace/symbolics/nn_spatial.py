"""Spatial rearrangements: interpolate (Resize), padding, pixel shuffle/unshuffle."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ferry.trace.registry import symbolic
from ferry.trace.symbolics._helpers import numpy_dtype
from ferry.trace.symbolics.nn import per_axis, unsupported
from ferry.trace.symbolics.nn_pool import adaptive_avg_pool
from ferry.trace.symint import SymInt

__all__ = ["interpolate", "pad", "pixel_shuffle", "pixel_unshuffle"]

_DOUBLE, _INT64 = 11, 7  # ONNX element types for Cast

# torch mode -> (Resize mode, extra attributes); align_corners picks the coordinate mode
_RESIZE = {
    "nearest": ("nearest", {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}),
    "nearest-exact": ("nearest", {"coordinate_transformation_mode": "half_pixel",
                                  "nearest_mode": "round_prefer_ceil"}),
    "linear": ("linear", {}),
    "bilinear": ("linear", {}),
    "trilinear": ("linear", {}),
    "bicubic": ("cubic", {"cubic_coeff_a": -0.75}),
}


@symbolic(F.interpolate)
def interpolate(g, x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize with torch's sampling: nearest = asymmetric/floor, nearest-exact = half_pixel/
    round, (bi/tri)linear and bicubic (a=-0.75) = half_pixel or align_corners; "area" is
    adaptive average pooling. ``size`` may hold dynamic sizes."""
    n = x.rank - 2
    if mode == "area":
        target = per_axis(size, n) if size is not None else list(g.out.shape[2:])
        if any(isinstance(s, SymInt) for s in target):
            raise unsupported(g, "interpolate(mode='area') to a dynamic size")
        return adaptive_avg_pool(g, x, n, [int(s) for s in target], "interpolate(mode='area')")
    if mode not in _RESIZE:
        raise unsupported(g, f"interpolate(mode={mode!r})")
    onnx_mode, attrs = _RESIZE[mode]
    attrs = dict(attrs, mode=onnx_mode)
    if onnx_mode != "nearest":
        attrs["coordinate_transformation_mode"] = "align_corners" if align_corners else "half_pixel"
    if antialias:
        if g.opset < 18:
            raise unsupported(g, "interpolate(antialias=True) needs opset 18 or newer")
        attrs.update(antialias=1, exclude_outside=1)
        if onnx_mode == "cubic":
            attrs["cubic_coeff_a"] = -0.5
    scales, sizes = _resize_target(g, x, n, size, scale_factor, recompute_scale_factor)
    inputs = (x, None, scales) if sizes is None else (x, None, None, sizes)
    return g.op("Resize", *inputs, **attrs)


def _resize_target(g, x, n, size, scale_factor, recompute):
    """Resize's (scales, sizes) inputs: sizes for ``size`` (and recomputed scale factors:
    floor(in * scale) as torch computes them), scales otherwise."""
    if size is not None:
        return None, g.shape_value([*x.shape[:2], *per_axis(size, n)])
    factors = [float(s) for s in per_axis(scale_factor, n)]
    if not recompute:
        return g.const(np.asarray([1.0, 1.0, *factors], dtype=np.float32)), None
    parts = [g.op("Shape", x, start=0, end=2)]
    for dim, factor in zip(x.shape[2:], factors):
        if isinstance(dim, SymInt):
            scaled = g.op("Mul", g.op("Cast", dim.var, to=_DOUBLE), g.const(np.asarray(factor, dtype=np.float64)))
            size_value = g.op("Cast", g.op("Floor", scaled), to=_INT64)
            parts.append(g.op("Unsqueeze", size_value, g.int64([0])))
        else:
            parts.append(g.int64([math.floor(float(dim) * factor)]))
    return None, g.op("Concat", *parts, axis=0)


# -- padding -----------------------------------------------------------------------------
_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@symbolic(F.pad)
def pad(g, x, pad, mode="constant", value=None):
    """F.pad: ``pad`` lists (begin, end) pairs from the last axis backwards; ONNX Pad wants
    all begins then all ends. replicate = edge, circular = wrap (Slice/Concat before opset
    19). Pads may be dynamic sizes."""
    if mode not in _PAD_MODES:
        raise unsupported(g, f"F.pad(mode={mode!r})")
    begins, ends = [0] * x.rank, [0] * x.rank
    for i in range(len(pad) // 2):
        begins[x.rank - 1 - i], ends[x.rank - 1 - i] = pad[2 * i], pad[2 * i + 1]
    if mode == "circular" and g.opset < 19:
        return _circular(g, x, begins, ends)
    inputs = [x, g.shape_value(begins + ends)]
    if mode == "constant" and value:
        inputs.append(g.const(np.asarray(value, dtype=numpy_dtype(x.dtype))))
    return g.op("Pad", *inputs, mode=_PAD_MODES[mode])


@symbolic(torch.constant_pad_nd)
def constant_pad_nd(g, x, pad_, value=0):
    return pad(g, x, pad_, "constant", value)


def _circular(g, x, begins, ends):
    """Wrap-around padding as Concat(tail slice, x, head slice) along each padded axis
    (negative pads crop first, as torch does)."""
    y = x.value
    for axis, (b, e) in enumerate(zip(begins, ends)):
        if isinstance(b, SymInt) or isinstance(e, SymInt):
            raise unsupported(g, "F.pad(mode='circular') with dynamic pads before opset 19")
        if b < 0 or e < 0:
            y = _slice(g, y, max(-b, 0), e if e < 0 else 2**62, axis)
            b, e = max(b, 0), max(e, 0)
        if (b, e) == (0, 0):
            continue
        parts = [y]
        if b:
            parts.insert(0, _slice(g, y, -b, 2**62, axis))
        if e:
            parts.append(_slice(g, y, 0, e, axis))
        y = g.op("Concat", *parts, axis=axis)
    return y


def _slice(g, value, start: int, end: int, axis: int):
    return g.op("Slice", value, g.int64([start]), g.int64([end]), g.int64([axis]))


# -- pixel shuffle -----------------------------------------------------------------------
def _as_4d(g, x, build):
    """``build`` on x seen as (N, C, H, W): other ranks fold their leading axes into N."""
    if x.rank == 4:
        return build(x.value)
    flat = g.op("Reshape", x, g.op("Concat", g.int64([-1]), g.op("Shape", x, start=-3), axis=0))
    y = build(flat)
    lead = g.op("Shape", x, start=0, end=x.rank - 3)
    return g.op("Reshape", y, g.op("Concat", lead, g.op("Shape", y, start=-3), axis=0))


@symbolic(torch.pixel_shuffle)
def pixel_shuffle(g, x, upscale_factor):
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r), channel c*r*r + i*r + j to pixel (i, j):
    DepthToSpace in CRD mode."""
    r = int(upscale_factor)
    return _as_4d(g, x, lambda v: g.op("DepthToSpace", v, blocksize=r, mode="CRD"))


@symbolic(torch.pixel_unshuffle)
def pixel_unshuffle(g, x, downscale_factor):
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W), the inverse of pixel_shuffle. SpaceToDepth puts
    the block offset before the channel; a reshape/transpose moves it after."""
    r = int(downscale_factor)

    def build(v):
        y = g.op("SpaceToDepth", v, blocksize=r)
        spatial = g.op("Shape", y, start=2)
        split = g.op("Reshape", y, g.op("Concat", g.int64([0, r * r, -1]), spatial, axis=0))
        moved = g.op("Transpose", split, perm=[0, 2, 1, 3, 4])
        return g.op("Reshape", moved, g.op("Concat", g.int64([0, -1]), spatial, axis=0))

    return _as_4d(g, x, build)
