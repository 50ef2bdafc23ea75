"""Kernels of the session's fused steps (domain ``ferry.internal``, opset 1).

These ops exist only inside an ``InferenceSession``'s own copy of a model, where
:mod:`ferry.runtime.fusions` puts them in place of standard-op patterns; they are never
saved. Each does the work of its pattern in fewer passes over memory and writes its
epilogue (bias, residual, activation) in place on a buffer it just allocated.
"""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels import native_rows
from ferry.runtime.kernels._activation import activate_in_place, gelu_in_place
from ferry.runtime.kernels._numeric import split
from ferry.runtime.kernels.conv import conv
from ferry.runtime.registry import kernel

INTERNAL_DOMAIN = "ferry.internal"

@kernel("FusedConv", since=1, domain=INTERNAL_DOMAIN)
def fused_conv(x, w, b=None, residual=None, *, auto_pad="NOTSET", dilations=None, group=1,
               kernel_shape=None, pads=None, strides=None, activation="", alpha=0.0, beta=0.0):
    """Conv(x, w, b) + residual, then ``activation``: ONNX Conv followed by Add and the
    activation node it replaces."""
    y = conv(x, w, b, auto_pad=auto_pad, dilations=dilations, group=group,
             kernel_shape=kernel_shape, pads=pads, strides=strides)
    if residual is not None:
        if residual.shape == y.shape and y.flags.writeable:
            y += residual
        else:
            y = y + residual
    return activate_in_place(y, activation, alpha, beta)


@kernel("FusedMatMul", since=1, domain=INTERNAL_DOMAIN)
def fused_matmul(a, b, bias=None, residual=None, *, activation="", alpha=0.0, beta=0.0):
    """MatMul(a, b) + bias + residual (each broadcast as ONNX Add), then ``activation``."""
    y = np.matmul(a, b)
    for term in (bias, residual):
        if term is None:
            continue
        if np.broadcast_shapes(y.shape, term.shape) == y.shape:
            y += term
        else:
            y = y + term
    return activate_in_place(y, activation, alpha, beta)


@kernel("Gelu", since=1, domain=INTERNAL_DOMAIN)
def gelu(x):
    """x * (1 + erf(x / sqrt(2))) / 2 (the exact, erf-based GELU)."""
    y = np.array(x, dtype=np.result_type(x, np.float32) if x.dtype.kind != "f" else x.dtype)
    return gelu_in_place(y)


@kernel("MaskedSoftmax", since=1, domain=INTERNAL_DOMAIN)
def masked_softmax(x, mask, *, nan_to_zero=0):
    """Softmax(x + mask) along the last axis (ONNX Add then Softmax, opset 13); with
    ``nan_to_zero``, NaN results (rows masked entirely) become 0."""
    if x.dtype == mask.dtype == np.float32 and (x.ndim or mask.ndim) and native_rows.available():
        return native_rows.softmax_last_axis(x, mask, nan_to_zero=bool(nan_to_zero))
    shape = np.broadcast_shapes(x.shape, mask.shape)
    dtype = np.result_type(x, mask)
    if dtype.kind != "f" or not shape:
        from ferry.runtime.kernels.softmax import softmax

        y = softmax(np.add(x, mask), axis=-1)
    else:
        y = np.add(x, mask, dtype=dtype)
        rows = y.reshape(-1, shape[-1])
        with np.errstate(invalid="ignore", over="ignore"):
            for part in split(rows.shape[0], rows.shape[1]):  # cache-sized blocks of rows
                block = rows[part]
                block -= np.max(block, axis=1, keepdims=True)
                np.exp(block, out=block)
                block /= np.sum(block, axis=1, keepdims=True)
    if nan_to_zero:
        np.copyto(y, 0, where=np.isnan(y))
    return y
