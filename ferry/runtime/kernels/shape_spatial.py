"""Padding and spatial rearrangement kernels: Pad, CenterCropPad, DepthToSpace,
SpaceToDepth, ReverseSequence, Col2Im.

All but Col2Im only move data, so they work on strings and exotic (structured) dtypes.
"""

from __future__ import annotations

import math

import numpy as np

from ferry.runtime.kernels._axes import int_list, normalize_axes, zero_scalar
from ferry.runtime.registry import kernel

_PAD_MODES = ("constant", "reflect", "edge", "wrap")


# ---------------------------------------------------------------------------- Pad


def _pad(data: np.ndarray, begins: list[int], ends: list[int], mode: str, fill) -> np.ndarray:
    """Pad (or crop, where negative) each axis by ``begins``/``ends`` using ``mode``."""
    if mode not in _PAD_MODES:
        raise ValueError(f"Pad mode must be one of {_PAD_MODES}, got {mode!r}")
    crop = []
    for axis, (begin, end, dim) in enumerate(zip(begins, ends, data.shape, strict=True)):
        first, last = max(-begin, 0), dim - max(-end, 0)
        if last < first:
            raise ValueError(f"pads {begin}, {end} remove more than the {dim} elements of axis {axis}")
        crop.append(slice(first, last))
    data = data[tuple(crop)]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begins, ends, strict=True)]
    if mode != "constant":
        for axis, (width, dim) in enumerate(zip(widths, data.shape, strict=True)):
            if dim == 0 and any(width):
                raise ValueError(f"{mode} padding needs data along axis {axis}, which is empty")
        return np.pad(data, widths, mode=mode)
    shape = [dim + b + e for dim, (b, e) in zip(data.shape, widths, strict=True)]
    out = np.empty(shape, dtype=data.dtype)
    out[...] = fill
    out[tuple(slice(b, b + dim) for dim, (b, _) in zip(data.shape, widths, strict=True))] = data
    return out


def _split_pads(pads: list[int], count: int) -> tuple[list[int], list[int]]:
    if len(pads) != 2 * count:
        raise ValueError(f"pads {pads} must hold 2 * {count} values (all begins, then all ends)")
    return pads[:count], pads[count:]


def _attribute_fill(value, dtype: np.dtype):
    return zero_scalar(dtype) if value is None else np.asarray(value).astype(dtype)


@kernel("Pad", since=1)
def pad_v1(data, *, paddings, mode, value):
    """Pad by the ``paddings`` attribute (begins then ends) with ``mode`` and fill ``value``."""
    data = np.asarray(data)
    begins, ends = _split_pads(list(paddings), data.ndim)
    return _pad(data, begins, ends, mode, _attribute_fill(value, data.dtype))


@kernel("Pad", since=2)
def pad_v2(data, *, pads, mode, value):
    """Pad (or crop, where negative) by the ``pads`` attribute with ``mode`` and fill ``value``."""
    data = np.asarray(data)
    begins, ends = _split_pads(list(pads), data.ndim)
    return _pad(data, begins, ends, mode, _attribute_fill(value, data.dtype))


@kernel("Pad", since=(11, 13, 18, 19, 21, 23, 24, 25))
def pad(data, pads, constant_value=None, axes=None, *, mode):
    """Pad (or crop) the ``axes`` (all by default) by the ``pads`` input; constant mode fills ``constant_value``."""
    data = np.asarray(data)
    axes = list(range(data.ndim)) if axes is None else normalize_axes(int_list(axes), data.ndim)
    axis_begins, axis_ends = _split_pads(int_list(pads), len(axes))
    begins, ends = [0] * data.ndim, [0] * data.ndim
    for axis, begin, end in zip(axes, axis_begins, axis_ends, strict=True):
        begins[axis], ends[axis] = begin, end
    if constant_value is None:
        fill = zero_scalar(data.dtype)
    else:
        fill = np.asarray(constant_value)
        if fill.size != 1:
            raise ValueError(f"constant_value must be a scalar, got shape {fill.shape}")
        fill = fill.reshape(())
    return _pad(data, begins, ends, mode, fill)


@kernel("CenterCropPad", since=18)
def center_crop_pad(input_data, shape, *, axes):
    """Crop or zero-pad the ``axes`` to ``shape``, keeping the input centred (extra goes to the end)."""
    data = np.asarray(input_data)
    axes = list(range(data.ndim)) if axes is None else normalize_axes(axes, data.ndim)
    target = int_list(shape)
    if len(target) != len(axes):
        raise ValueError(f"shape {target} must give one size per axis in {axes}")
    begins, ends = [0] * data.ndim, [0] * data.ndim
    for axis, size in zip(axes, target, strict=True):
        diff = size - data.shape[axis]
        if diff >= 0:
            begins[axis] = diff // 2
        else:
            begins[axis] = -((-diff) // 2)
        ends[axis] = diff - begins[axis]
    return _pad(data, begins, ends, "constant", zero_scalar(data.dtype))


# ---------------------------------------------------------------------------- DepthToSpace, SpaceToDepth


def _check_nchw(x: np.ndarray, op: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op} expects a 4-D [N, C, H, W] input, got shape {x.shape}")


@kernel("DepthToSpace", since=(1, 11, 13, 28))
def depth_to_space(input, *, blocksize, mode=None):
    """Move channel blocks into blocksize x blocksize spatial tiles (DCR or CRD channel order)."""
    x = np.asarray(input)
    _check_nchw(x, "DepthToSpace")
    n, c, h, w = x.shape
    b, mode = int(blocksize), mode or "DCR"
    if b < 1 or c % (b * b):
        raise ValueError(f"channels {c} must be a multiple of blocksize^2 = {b * b}")
    if mode == "DCR":
        tmp = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    elif mode == "CRD":
        tmp = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        raise ValueError(f"DepthToSpace mode must be 'DCR' or 'CRD', got {mode!r}")
    return tmp.reshape(n, c // (b * b), h * b, w * b)


@kernel("SpaceToDepth", since=(1, 13, 28))
def space_to_depth(input, *, blocksize, mode=None):
    """Move blocksize x blocksize spatial tiles into channels (DCR or CRD channel order)."""
    x = np.asarray(input)
    _check_nchw(x, "SpaceToDepth")
    n, c, h, w = x.shape
    b, mode = int(blocksize), mode or "DCR"
    if b < 1 or h % b or w % b:
        raise ValueError(f"height {h} and width {w} must be multiples of blocksize {b}")
    tmp = x.reshape(n, c, h // b, b, w // b, b)
    if mode == "DCR":
        tmp = tmp.transpose(0, 3, 5, 1, 2, 4)
    elif mode == "CRD":
        tmp = tmp.transpose(0, 1, 3, 5, 2, 4)
    else:
        raise ValueError(f"SpaceToDepth mode must be 'DCR' or 'CRD', got {mode!r}")
    return tmp.reshape(n, c * b * b, h // b, w // b)


# ---------------------------------------------------------------------------- ReverseSequence


@kernel("ReverseSequence", since=(10, 28))
def reverse_sequence(input, sequence_lens, *, batch_axis, time_axis):
    """For each batch entry i, reverse the first ``sequence_lens[i]`` steps along the time axis."""
    x = np.asarray(input)
    if {batch_axis, time_axis} != {0, 1} or x.ndim < 2:
        raise ValueError(f"batch_axis {batch_axis} and time_axis {time_axis} must be 0 and 1 of a rank >= 2 input")
    lengths = int_list(sequence_lens)
    if len(lengths) != x.shape[batch_axis]:
        raise ValueError(f"{len(lengths)} sequence_lens for a batch of {x.shape[batch_axis]}")
    out = x.copy()
    for i, length in enumerate(lengths):
        if not 0 <= length <= x.shape[time_axis]:
            raise ValueError(f"sequence_lens[{i}] = {length} is outside [0, {x.shape[time_axis]}]")
        dst = [slice(None)] * x.ndim
        dst[batch_axis], dst[time_axis] = i, slice(0, length)
        src = list(dst)
        src[time_axis] = slice(length - 1, None, -1) if length else slice(0, 0)
        out[tuple(dst)] = x[tuple(src)]
    return out


# ---------------------------------------------------------------------------- Col2Im


@kernel("Col2Im", since=18)
def col2im(input, image_shape, block_shape, *, dilations, pads, strides):
    """Sum column blocks [N, C*prod(block), L] back into an image [N, C, *image_shape] (inverse of im2col)."""
    x = np.asarray(input)
    image, block = int_list(image_shape), int_list(block_shape)
    nd = len(image)
    dilations = [1] * nd if dilations is None else list(dilations)
    strides = [1] * nd if strides is None else list(strides)
    pads = [0] * (2 * nd) if pads is None else list(pads)
    if len(block) != nd or len(dilations) != nd or len(strides) != nd or len(pads) != 2 * nd:
        raise ValueError(f"Col2Im: block_shape, dilations, strides and pads must match {nd} spatial dims")
    kernel_size = math.prod(block)
    if x.ndim != 3 or x.shape[1] % kernel_size:
        raise ValueError(f"Col2Im input must be [N, C*{kernel_size}, L], got shape {x.shape}")
    padded = [image[i] + pads[i] + pads[i + nd] for i in range(nd)]
    counts = [(padded[i] - dilations[i] * (block[i] - 1) - 1) // strides[i] + 1 for i in range(nd)]
    if math.prod(counts) != x.shape[2]:
        raise ValueError(f"Col2Im input has {x.shape[2]} blocks, but the geometry gives {counts}")
    n, channels = x.shape[0], x.shape[1] // kernel_size
    cols = x.reshape(n, channels, *block, *counts)
    out = np.zeros((n, channels, *padded), dtype=x.dtype)
    for offset in np.ndindex(*block):
        window = tuple(
            slice(k * d, k * d + s * (c - 1) + 1, s)
            for k, d, s, c in zip(offset, dilations, strides, counts, strict=True)
        )
        out[(slice(None), slice(None), *window)] += cols[(slice(None), slice(None), *offset)]
    return out[(slice(None), slice(None), *(slice(pads[i], pads[i] + image[i]) for i in range(nd)))]
