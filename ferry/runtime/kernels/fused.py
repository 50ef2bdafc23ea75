"""Kernels of the session's fused steps (domain ``ferry.internal``, opset 1).

These ops exist only inside an ``InferenceSession``'s own copy of a model, where
:mod:`ferry.runtime.fusions` puts them in place of standard-op patterns; they are never
saved. Each does the work of its pattern in fewer passes over memory and writes its
epilogue (bias, residual, activation) in place on a buffer it just allocated.
"""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels._numeric import split
from ferry.runtime.kernels.conv import conv
from ferry.runtime.registry import kernel

INTERNAL_DOMAIN = "ferry.internal"

ACTIVATIONS = ("", "Relu", "LeakyRelu", "Clip", "Gelu")
"""Epilogue activations: none, max(x, 0), x or alpha * x, clip to [alpha, beta], erf GELU."""


def activate_in_place(y: np.ndarray, activation: str, alpha: float, beta: float) -> np.ndarray:
    """Apply ``activation`` to the float array ``y`` in place and return it."""
    if activation == "Relu":
        np.maximum(y, 0, out=y)
    elif activation == "LeakyRelu":
        np.multiply(y, np.where(y < 0, y.dtype.type(alpha), y.dtype.type(1)), out=y)
    elif activation == "Clip":
        np.clip(y, y.dtype.type(alpha), y.dtype.type(beta), out=y)
    elif activation == "Gelu":
        gelu_in_place(y)
    elif activation:
        raise ValueError(f"unknown fused activation {activation!r}; known: {ACTIVATIONS[1:]}")
    return y


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
def fused_matmul(a, b, bias=None, *, activation="", alpha=0.0, beta=0.0):
    """MatMul(a, b) + bias (broadcast over the last axis), then ``activation``."""
    y = np.matmul(a, b)
    if bias is not None:
        if np.broadcast_shapes(y.shape, bias.shape) == y.shape:
            y += bias
        else:
            y = y + bias
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


# erf(u) ~= u * P(u^2) / Q(u^2) on |u| <= 3.92 (tools/gen_erf_rational.py; <= 7 float32 ulp)
_ERF_P = (1.128379150092745, 0.1899124464377192, 0.052666260748970656, 0.0037413491968694102,
          0.00028374295877328995, 2.044658584998693e-06)
_ERF_Q = (1.0, 0.5016383584639699, 0.11388971346793163, 0.014919053533191416,
          0.0011556850159590362, 3.7979556925513136e-05)
_ERF_CLIP = 3.92
_CHUNK = 1 << 16  # elements per block: the temporaries stay in the L2 cache


def _polynomial(coefficients: tuple[float, ...], s: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.multiply(s, coefficients[-1], out=out)
    for c in coefficients[-2:0:-1]:
        out += c
        out *= s
    out += coefficients[0]
    return out


def gelu_in_place(y: np.ndarray) -> np.ndarray:
    """GELU of a float array, in place. float32 (and float16, via float32) use the rational
    erf in cache-sized blocks; float64 uses the accurate erf of the Erf kernel."""
    if y.dtype == np.float64 or not y.flags.c_contiguous:
        from ferry.runtime.kernels.math_unary import erf

        y[...] = y * 0.5 * (1.0 + erf(y * np.sqrt(0.5)))
        return y
    flat = y.reshape(-1)
    blocks = split(flat.size, 1, _CHUNK)

    def block(index: int) -> None:
        part = flat[blocks[index]]
        work = np.empty((4, min(_CHUNK, part.size)), np.float32)
        for start in range(0, part.size, _CHUNK):
            _gelu_chunk(part[start:start + _CHUNK], work)

    for index in range(len(blocks)):
        block(index)
    return y


def _gelu_chunk(chunk: np.ndarray, work: np.ndarray) -> None:
    n = chunk.size
    u, s, num, den = (row[:n] for row in work)
    np.multiply(chunk, np.float32(np.sqrt(0.5)), out=u)
    np.clip(u, -_ERF_CLIP, _ERF_CLIP, out=u)
    np.multiply(u, u, out=s)
    _polynomial(_ERF_P, s, num)
    _polynomial(_ERF_Q, s, den)
    num *= u
    num /= den  # erf(x / sqrt 2)
    num += 1.0
    num *= 0.5
    if chunk.dtype == np.float32:
        chunk *= num
    else:
        chunk[...] = chunk * num
