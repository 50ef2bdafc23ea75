"""Convolution kernels: Conv, ConvTranspose, DeformConv, ConvInteger, QLinearConv.

Float Conv packs its weights and runs ``conv_algorithms.conv_packed``, which picks an
algorithm per shape (im2col GEMM blocks, per-tap shifted GEMMs, 1x1 and depthwise fast
paths); the integer convolutions use the same im2col/1x1 paths. Transposed convolution
runs one matmul and scatters each kernel tap.
"""

from __future__ import annotations

import itertools

import numpy as np

from ferry.runtime.kernels._window import Window, geometry, spatial_params
from ferry.runtime.kernels.conv_algorithms import (
    conv_packed,
    depthwise_conv,
    im2col_conv,
    pack_conv_weights,
    pointwise_conv,
)
from ferry.runtime.registry import kernel


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    """Accumulate half precision in float32; keep float32/float64 as they are."""
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _check_operands(x: np.ndarray, w: np.ndarray, group: int) -> None:
    if x.ndim < 3 or w.ndim != x.ndim:
        raise ValueError(f"Conv expects X of rank >= 3 and W of the same rank, got X{x.shape} "
                         f"and W{w.shape}")
    if x.shape[1] != w.shape[1] * group or w.shape[0] % group:
        raise ValueError(f"channels mismatch: X has {x.shape[1]} channels, W{w.shape} with "
                         f"group={group} expects {w.shape[1] * group} and M divisible by group")


def _grouped_matmul(cols: np.ndarray, w: np.ndarray, group: int) -> np.ndarray:
    """cols (N, P, C, K) times weights (M, C/group, *k) -> (N, M, P), group by group."""
    n, p, c, k = cols.shape
    m = w.shape[0]
    cols = cols.reshape(n * p, group, (c // group) * k).transpose(1, 0, 2)
    weights = w.reshape(group, m // group, (c // group) * k).transpose(0, 2, 1)
    out = np.matmul(cols, weights)  # (group, N*P, M/group)
    return out.transpose(1, 0, 2).reshape(n, p, m).transpose(0, 2, 1)


def _window_for(x, w, kernel_shape, strides, dilations, pads, auto_pad) -> Window:
    if kernel_shape and list(kernel_shape) != list(w.shape[2:]):
        raise ValueError(f"kernel_shape {kernel_shape} does not match W shape {w.shape}")
    win = geometry(x.shape[2:], w.shape[2:], strides=strides, dilations=dilations, pads=pads,
                   auto_pad=auto_pad)
    if any(size < 1 for size in win.out) and x.size:
        raise ValueError(
            f"the kernel {list(w.shape[2:])} (dilations {dilations}) does not fit the padded "
            f"input {list(x.shape[2:])}: output size would be {list(win.out)}"
        )
    return win


def _conv(x: np.ndarray, w: np.ndarray, win: Window, group: int) -> np.ndarray:
    """Plain N-d grouped cross-correlation (zero padded) in the dtype of ``x``."""
    n, c, m = x.shape[0], x.shape[1], w.shape[0]
    if group > 1 and c == group and np.issubdtype(x.dtype, np.floating):
        return depthwise_conv(x, w, win, group)
    if all(k == 1 for k in win.kernel) and not any(win.pads_begin + win.pads_end):
        return pointwise_conv(x, w, win, group)
    if 0 in win.out:
        return np.zeros((n, m, *win.out), dtype=np.result_type(x, w))
    return im2col_conv(x, w, win, group)


@kernel("Conv", since=(1, 11, 22))
def conv(x, w, b=None, *, auto_pad, dilations, group, kernel_shape, pads, strides):
    """N-d grouped convolution (cross-correlation) with optional bias, per ONNX Conv."""
    _check_operands(x, w, group)
    _window_for(x, w, kernel_shape, strides, dilations, pads, auto_pad)
    ctype = _compute_dtype(x.dtype)
    packed = pack_conv_weights(w.astype(ctype, copy=False), group=group, strides=strides,
                               dilations=dilations, pads=pads, auto_pad=auto_pad)
    y = conv_packed(x.astype(ctype, copy=False), packed, bias=b)
    return y.astype(x.dtype, copy=False)


@kernel("ConvInteger", since=10)
def conv_integer(x, w, x_zero_point=None, w_zero_point=None, *, auto_pad, dilations, group,
                 kernel_shape, pads, strides):
    """Integer convolution of (x - x_zero_point) and (w - w_zero_point), accumulated in int32."""
    _check_operands(x, w, group)
    xi, wi = _shift(x, x_zero_point, None), _shift(w, w_zero_point, w.shape[0])
    win = _window_for(x, w, kernel_shape, strides, dilations, pads, auto_pad)
    return _conv(xi, wi, win, group).astype(np.int32)


def _shift(t: np.ndarray, zero_point, channels: int | None) -> np.ndarray:
    """``t - zero_point`` in int32; a 1-D zero point applies per output channel (axis 0)."""
    out = t.astype(np.int32)
    if zero_point is None:
        return out
    zp = np.asarray(zero_point).astype(np.int32)
    if zp.size == 1:
        return out - zp.reshape(())
    if channels is None or zp.size != channels:
        raise ValueError(f"zero point of shape {zp.shape} does not fit tensor of shape {t.shape}")
    return out - zp.reshape(-1, *([1] * (t.ndim - 1)))

@kernel("QLinearConv", since=10)
def qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point,
                 b=None, *, auto_pad, dilations, group, kernel_shape, pads, strides):
    """Quantized convolution: int32 accumulate, rescale by x_scale*w_scale/y_scale, requantize."""
    _check_operands(x, w, group)
    win = _window_for(x, w, kernel_shape, strides, dilations, pads, auto_pad)
    acc = _conv(_shift(x, x_zero_point, None), _shift(w, w_zero_point, w.shape[0]), win, group)
    if b is not None:
        acc = acc + b.astype(np.int32).reshape(-1, *([1] * len(win.kernel)))
    w_scale = np.asarray(w_scale, dtype=np.float32).reshape(-1, *([1] * len(win.kernel)))
    scale = np.float32(x_scale) * w_scale / np.float32(y_scale)
    y = np.rint(acc.astype(np.float32) * scale) + np.asarray(y_zero_point).astype(np.float32)
    info = np.iinfo(y_zero_point.dtype)
    return np.clip(y, info.min, info.max).astype(y_zero_point.dtype)


def _transpose_pads(in_shape, kernel, strides, dilations, pads, auto_pad, output_padding,
                    output_shape):
    """(pads_begin, pads_end, out) for ConvTranspose per its shape equations."""
    rank = len(in_shape)
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    full = [s * (n - 1) + op + e
            for s, n, op, e in zip(strides, in_shape, output_padding, extent, strict=True)]
    auto_pad = auto_pad or "NOTSET"
    if output_shape:
        out = list(output_shape[-rank:])
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [n * s for n, s in zip(in_shape, strides, strict=True)]
    else:
        if auto_pad == "VALID" or not pads:
            pads = [0] * (2 * rank)
        begin, end = list(pads[:rank]), list(pads[rank:])
        return begin, end, [f - b - e for f, b, e in zip(full, begin, end, strict=True)]
    total = [f - o for f, o in zip(full, out, strict=True)]
    begin = [t // 2 for t in total] if auto_pad == "SAME_UPPER" else [t - t // 2 for t in total]
    return begin, [t - b for t, b in zip(total, begin, strict=True)], out


def _scatter_taps(contrib, in_shape, kernel, strides, dilations, begin, out):
    """Sum per-tap contributions (..., *in, *kernel) into the output grid, cropped to ``out``.

    Tap t of input pixel i lands at i * stride + t * dilation - pads_begin.
    """
    lo = [min(0, bg) for bg in begin]  # a negative pad (output larger than computed) shifts
    size = [max((i - 1) * s + (kk - 1) * d + 1, bg + o) - low for i, s, kk, d, bg, o, low in
            zip(in_shape, strides, kernel, dilations, begin, out, lo, strict=True)]
    rank = len(kernel)
    buf = np.zeros((*contrib.shape[: contrib.ndim - 2 * rank], *size), dtype=contrib.dtype)
    for tap in itertools.product(*(range(kk) for kk in kernel)):
        dst = tuple(slice(t * d - low, t * d - low + (i - 1) * s + 1, s)
                    for t, d, low, i, s in zip(tap, dilations, lo, in_shape, strides,
                                               strict=True))
        buf[(Ellipsis, *dst)] += contrib[(Ellipsis, *tap)]
    crop = tuple(slice(bg - low, bg - low + o) for bg, low, o in zip(begin, lo, out, strict=True))
    return buf[(Ellipsis, *crop)]


@kernel("ConvTranspose", since=(1, 11, 22))
def conv_transpose(x, w, b=None, *, auto_pad, dilations, group, kernel_shape, output_padding,
                   output_shape, pads, strides):
    """N-d grouped transposed convolution (gradient of Conv) with ONNX output-shape rules."""
    rank = x.ndim - 2
    if w.ndim != x.ndim or w.shape[0] != x.shape[1] or x.shape[1] % group:
        raise ValueError(f"ConvTranspose expects W of shape (C, M/group, *k) with C={x.shape[1]}"
                         f", got W{w.shape} with group={group}")
    kernel = w.shape[2:]
    if kernel_shape and tuple(kernel_shape) != kernel:
        raise ValueError(f"kernel_shape {kernel_shape} does not match W shape {w.shape}")
    strides = spatial_params(strides, rank, 1, "strides")
    dilations = spatial_params(dilations, rank, 1, "dilations")
    output_padding = spatial_params(output_padding, rank, 0, "output_padding")
    begin, _, out = _transpose_pads(x.shape[2:], kernel, strides, dilations, pads, auto_pad,
                                    output_padding, output_shape)
    ctype = _compute_dtype(x.dtype)
    n, c, mg = x.shape[0], x.shape[1], w.shape[1]
    # (group, N*P, C/group) @ (group, C/group, M/group*K): every input pixel's contribution
    xs = x.astype(ctype).reshape(n, group, c // group, -1).transpose(1, 0, 3, 2)
    xs = xs.reshape(group, -1, c // group)
    ws = w.astype(ctype).reshape(group, c // group, -1)
    contrib = np.matmul(xs, ws).reshape(group, n, *x.shape[2:], mg, *kernel)
    contrib = np.moveaxis(contrib, 2 + rank, 1)  # (group, M/group, N, *in, *kernel)
    y = _scatter_taps(contrib, x.shape[2:], kernel, strides, dilations, begin, out)
    y = y.reshape(group * mg, n, *out).swapaxes(0, 1)
    if b is not None:
        y = y + b.astype(ctype).reshape(-1, *([1] * rank))
    return np.ascontiguousarray(y).astype(x.dtype, copy=False)


def _sample_linear(xt: np.ndarray, pos: list[np.ndarray]) -> np.ndarray:
    """Multilinear samples of xt (N, G, *in, Cg) at positions pos[d] of shape (N, G, ...).

    Corners outside the input contribute zero. Returns shape (*pos[0].shape, Cg).
    """
    in_shape = xt.shape[2:-1]
    lead = [np.arange(s).reshape(-1, *([1] * (pos[0].ndim - 1 - i))) for i, s in
            enumerate(pos[0].shape[:2])]
    low = [np.floor(p).astype(np.int64) for p in pos]
    out = np.zeros((*pos[0].shape, xt.shape[-1]), dtype=xt.dtype)
    for bits in itertools.product((0, 1), repeat=len(pos)):
        idx = [lo + bit for lo, bit in zip(low, bits, strict=True)]
        weight = np.ones(pos[0].shape, dtype=xt.dtype)
        for p, i, size in zip(pos, idx, in_shape, strict=True):
            weight = weight * (1 - np.abs(p - i)) * ((i >= 0) & (i < size))
        clipped = [np.clip(i, 0, size - 1) for i, size in zip(idx, in_shape, strict=True)]
        out += xt[(*lead, *clipped)] * weight[..., None]
    return out


@kernel("DeformConv", since=(19, 22))
def deform_conv(x, w, offset, b=None, mask=None, *, dilations, group, kernel_shape,
                offset_group, pads, strides):
    """Deformable convolution: kernel taps shifted by learned offsets, bilinearly sampled."""
    _check_operands(x, w, group)
    if kernel_shape and list(kernel_shape) != list(w.shape[2:]):
        raise ValueError(f"kernel_shape {kernel_shape} does not match W shape {w.shape}")
    n, c, rank, og = x.shape[0], x.shape[1], x.ndim - 2, offset_group or 1
    win = geometry(x.shape[2:], w.shape[2:], strides=strides, dilations=dilations, pads=pads)
    k = int(np.prod(win.kernel))
    ctype = _compute_dtype(x.dtype)
    offset = offset.astype(ctype).reshape(n, og, k, rank, *win.out)
    pos = []
    for d in range(rank):
        taps = np.indices(win.kernel).reshape(rank, k)[d] * win.dilations[d]
        outs = np.arange(win.out[d]) * win.strides[d] - win.pads_begin[d]
        base = taps.reshape(k, *([1] * rank)) + outs.reshape([-1 if i == d else 1
                                                              for i in range(rank)])
        pos.append(base + offset[:, :, :, d])  # (N, og, K, *out)
    xt = np.moveaxis(x.astype(ctype).reshape(n, og, c // og, *x.shape[2:]), 2, -1)
    samples = _sample_linear(xt, pos)  # (N, og, K, *out, C/og)
    if mask is not None:
        samples = samples * mask.astype(ctype).reshape(n, og, k, *win.out)[..., None]
    cols = np.moveaxis(samples, 2, -1)  # (N, og, *out, C/og, K)
    cols = np.moveaxis(cols, 1, -3).reshape(n, -1, c, k)
    y = _grouped_matmul(cols, w.astype(ctype), group).reshape(n, w.shape[0], *win.out)
    if b is not None:
        y = y + b.astype(ctype).reshape(-1, *([1] * rank))
    return y.astype(x.dtype, copy=False)
