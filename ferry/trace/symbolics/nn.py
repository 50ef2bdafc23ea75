"""Neural-network layers: convolutions, normalizations, dropout, embedding, normalize.

Pooling lives in :mod:`nn_pool`, resizing/padding/pixel shuffle in :mod:`nn_spatial`;
the small helpers here (window parameters, unbatched inputs, reductions) serve all three.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ferry.errors import UnsupportedOperatorError
from ferry.ir import ArrayTensor
from ferry.trace.registry import symbolic
from ferry.trace.symbolics._helpers import cast_to, dtype_code, numpy_dtype
from ferry.trace.tracer import Var

__all__ = ["filled", "p_norm", "per_axis", "reduce", "unsupported", "with_batch"]


# -- shared helpers ----------------------------------------------------------------------
def unsupported(g, what: str) -> UnsupportedOperatorError:
    """The error for an argument combination the tracer cannot express, with the source line."""
    where = getattr(g.tracer, "current_source", None)
    return UnsupportedOperatorError(f"{where}: {what}" if where else what)


def per_axis(value, n: int) -> list:
    """A torch window argument (int or sequence) as one entry per spatial axis."""
    if not isinstance(value, (list, tuple, torch.Size)):
        return [value] * n
    value = list(value)
    return value * n if len(value) == 1 else value


def with_batch(g, x: Var, spatial: int, build):
    """``build(value)`` on an ``(N, C, *spatial)`` value: an unbatched ``(C, *spatial)``
    input gets a batch axis of 1 for the ONNX op, removed again from the result(s)."""
    if x.rank == spatial + 2:
        return build(x.value)
    zero = g.int64([0])
    out = build(g.op("Unsqueeze", x, zero))
    if isinstance(out, tuple):
        return tuple(g.op("Squeeze", o, zero) for o in out)
    return g.op("Squeeze", out, zero)


def reduce(g, op_type: str, x, axes, keepdims: bool = True):
    """ReduceX over ``axes`` (an attribute before opset 18, an input from 18; ReduceSum: 13)."""
    axes = [int(a) for a in axes]
    if g.opset >= (13 if op_type == "ReduceSum" else 18):
        return g.op(op_type, x, g.int64(axes), keepdims=int(keepdims))
    return g.op(op_type, x, axes=axes, keepdims=int(keepdims))


def filled(g, dims, fill: float, dtype: torch.dtype):
    """A tensor of shape ``dims`` (ints or SymInts) filled with ``fill``."""
    array = np.asarray(fill, dtype=numpy_dtype(dtype))
    if all(isinstance(d, int) for d in dims):
        return g.const(np.full([int(d) for d in dims], array))
    return g.op("ConstantOfShape", g.shape_value(dims), value=ArrayTensor(array.reshape(1)))


def _param(g, x: Var, param, dims, fill: float):
    """An optional affine parameter as a value of x's dtype (``fill`` when None)."""
    if param is None:
        return filled(g, dims, fill, x.dtype)
    if isinstance(param, Var):
        return cast_to(g, param.value, param.dtype, x.dtype)
    return g.const(np.asarray(param, dtype=numpy_dtype(x.dtype)))


def _per_channel(g, x: Var, value):
    """A (C,) value shaped to broadcast over axis 1 of ``x``."""
    if x.rank <= 2:
        return value
    return g.op("Unsqueeze", value, g.int64(list(range(1, x.rank - 1))))


def _standardize(g, x: Var, axes, eps: float):
    """(x - mean) / sqrt(var + eps) with the biased variance over ``axes``."""
    mean = reduce(g, "ReduceMean", x, axes)
    centered = g.op("Sub", x, mean)
    var = reduce(g, "ReduceMean", g.op("Mul", centered, centered), axes)
    eps_value = g.const(np.asarray(eps, dtype=numpy_dtype(x.dtype)))
    return g.op("Div", centered, g.op("Sqrt", g.op("Add", var, eps_value)))


# -- convolutions ------------------------------------------------------------------------
def _conv_pads(padding, kernel, dilations, n: int) -> list[int]:
    """ONNX pads (begins then ends) for torch's int/tuple/"same"/"valid" padding."""
    if padding == "valid":
        return [0] * (2 * n)
    if padding == "same":
        totals = [d * (k - 1) for d, k in zip(dilations, kernel)]
        begins = [t // 2 for t in totals]
        return begins + [t - b for t, b in zip(totals, begins)]
    pads = [int(p) for p in per_axis(padding, n)]
    return pads + pads


@symbolic(torch.conv1d, torch.conv2d, torch.conv3d)
def conv(g, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """F.convNd: Conv with explicit pads ("same" pads the extra element at the end)."""
    n = weight.rank - 2
    kernel = [int(k) for k in weight.tensor.shape[2:]]
    dilations = [int(d) for d in per_axis(dilation, n)]
    attrs = dict(
        kernel_shape=kernel, strides=[int(s) for s in per_axis(stride, n)],
        pads=_conv_pads(padding, kernel, dilations, n), dilations=dilations, group=int(groups),
    )
    inputs = (weight,) if bias is None else (weight, bias)
    return with_batch(g, x, n, lambda v: g.op("Conv", v, *inputs, **attrs))


@symbolic(torch.conv_transpose1d, torch.conv_transpose2d, torch.conv_transpose3d)
def conv_transpose(g, x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                   dilation=1):
    """F.conv_transposeNd: ConvTranspose (torch's weight layout (C_in, C_out/groups, k...))."""
    n = weight.rank - 2
    pads = [int(p) for p in per_axis(padding, n)]
    attrs = dict(
        kernel_shape=[int(k) for k in weight.tensor.shape[2:]],
        strides=[int(s) for s in per_axis(stride, n)], pads=pads + pads,
        output_padding=[int(p) for p in per_axis(output_padding, n)],
        dilations=[int(d) for d in per_axis(dilation, n)], group=int(groups),
    )
    inputs = (weight,) if bias is None else (weight, bias)
    return with_batch(g, x, n, lambda v: g.op("ConvTranspose", v, *inputs, **attrs))


# -- normalizations ----------------------------------------------------------------------
@symbolic(F.batch_norm)
def batch_norm(g, x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Eval with running stats: BatchNormalization; batch statistics (training=True or no
    running stats, e.g. track_running_stats=False) are computed in the graph."""
    channels = [x.shape[1]]
    scale, shift = _param(g, x, weight, channels, 1.0), _param(g, x, bias, channels, 0.0)
    if training or running_mean is None:
        y = _standardize(g, x, [0, *range(2, x.rank)], eps)
        y = g.op("Mul", y, _per_channel(g, x, scale))
        return g.op("Add", y, _per_channel(g, x, shift))
    return g.op("BatchNormalization", x, scale, shift, running_mean, running_var, epsilon=float(eps))


@symbolic(torch.batch_norm)
def batch_norm_aten(g, x, weight, bias, running_mean, running_var, training, momentum, eps,
                    cudnn_enabled=True):
    return batch_norm(g, x, running_mean, running_var, weight, bias, training, momentum, eps)


@symbolic(F.layer_norm, torch.layer_norm)
def layer_norm(g, x, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
    """Normalize over the last len(normalized_shape) axes: LayerNormalization from opset 17,
    ReduceMean arithmetic before."""
    dims = list(normalized_shape)
    axis = -len(dims)
    scale = _param(g, x, weight, dims, 1.0)
    shift = None if bias is None else _param(g, x, bias, dims, 0.0)
    if g.opset >= 17:
        inputs = (x, scale) if shift is None else (x, scale, shift)  # no trailing "" input:
        return g.op("LayerNormalization", *inputs, axis=axis, epsilon=float(eps))  # ORT crashes
    y = g.op("Mul", _standardize(g, x, range(x.rank + axis, x.rank), eps), scale)
    return y if shift is None else g.op("Add", y, shift)


@symbolic(F.group_norm, torch.group_norm)
def group_norm(g, x, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):
    """Statistics per (sample, group of channels): InstanceNormalization over the input
    reshaped to (N, groups, -1), then the per-channel affine."""
    groups = int(num_groups)
    grouped = g.op("Reshape", x, g.int64([0, groups, -1]))
    ones, zeros = filled(g, [groups], 1.0, x.dtype), filled(g, [groups], 0.0, x.dtype)
    y = g.op("InstanceNormalization", grouped, ones, zeros, epsilon=float(eps))
    y = g.op("Reshape", y, g.op("Shape", x))
    if weight is not None:
        y = g.op("Mul", y, _per_channel(g, x, _param(g, x, weight, [x.shape[1]], 1.0)))
    if bias is not None:
        y = g.op("Add", y, _per_channel(g, x, _param(g, x, bias, [x.shape[1]], 0.0)))
    return y


@symbolic(F.instance_norm)
def instance_norm(g, x, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Statistics per (sample, channel): InstanceNormalization; with use_input_stats=False
    (track_running_stats in eval) the running stats apply: BatchNormalization."""
    if not use_input_stats:
        return batch_norm(g, x, running_mean, running_var, weight, bias, False, momentum, eps)
    channels = [x.shape[1]]
    scale, shift = _param(g, x, weight, channels, 1.0), _param(g, x, bias, channels, 0.0)
    return g.op("InstanceNormalization", x, scale, shift, epsilon=float(eps))


@symbolic(torch.instance_norm)
def instance_norm_aten(g, x, weight, bias, running_mean, running_var, use_input_stats,
                       momentum, eps, cudnn_enabled=True):
    return instance_norm(g, x, running_mean, running_var, weight, bias, use_input_stats,
                         momentum, eps)


# -- dropout (identity at inference) -----------------------------------------------------
def _dropout(g, x, p=0.5, training=True, inplace=False):
    if training and p > 0:
        raise unsupported(
            g, "dropout in training mode is random and cannot be exported; call it with "
            "training=self.training (export puts modules in eval mode) or training=False"
        )
    return x.value


def _dropout_aten(g, x, p, train):
    return _dropout(g, x, p, train)


symbolic(F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout,
         F.feature_alpha_dropout)(_dropout)
symbolic(torch.dropout, torch.alpha_dropout, torch.feature_dropout,
         torch.feature_alpha_dropout)(_dropout_aten)


# -- embedding and normalize ------------------------------------------------------------
def p_norm(g, x, dtype: torch.dtype, p: float, axes, keepdims: bool = True):
    """The p-norm of ``x`` (of ``dtype``) over ``axes`` (p: 0, 1, 2, inf, -inf or other)."""
    p = float(p)
    if p == 2:
        return reduce(g, "ReduceL2", x, axes, keepdims)
    if p == 1:
        return reduce(g, "ReduceL1", x, axes, keepdims)
    if math.isinf(p):
        return reduce(g, "ReduceMax" if p > 0 else "ReduceMin", g.op("Abs", x), axes, keepdims)
    if p == 0:
        zero = g.const(np.asarray(0, dtype=numpy_dtype(dtype)))
        nonzero = g.op("Cast", g.op("Not", g.op("Equal", x, zero)), to=dtype_code(dtype))
        return reduce(g, "ReduceSum", nonzero, axes, keepdims)
    power = g.op("Pow", g.op("Abs", x), g.const(np.asarray(p, dtype=numpy_dtype(dtype))))
    total = reduce(g, "ReduceSum", power, axes, keepdims)
    return g.op("Pow", total, g.const(np.asarray(1.0 / p, dtype=numpy_dtype(dtype))))


@symbolic(F.normalize)
def normalize(g, x, p=2.0, dim=1, eps=1e-12, out=None):
    """x / max(||x||_p over dim, eps)."""
    norm = p_norm(g, x, x.dtype, p, [dim % x.rank])
    floor = g.const(np.asarray(eps, dtype=numpy_dtype(x.dtype)))
    return g.op("Div", x, g.op("Max", norm, floor))


@symbolic(F.embedding)
def embedding(g, indices, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight``: Gather on axis 0 (padding_idx only matters for gradients); with
    max_norm, rows whose norm exceeds it are scaled to max_norm as torch's renorm does."""
    rows = g.op("Gather", weight, indices, axis=0)
    if max_norm is None:
        return rows
    dtype = numpy_dtype(weight.dtype)
    norm = p_norm(g, rows, weight.dtype, norm_type, [-1])
    limit = g.const(np.asarray(max_norm, dtype=dtype))
    shrink = g.op("Div", limit, g.op("Add", norm, g.const(np.asarray(1e-7, dtype=dtype))))
    scale = g.op("Where", g.op("Greater", norm, limit), shrink, g.const(np.asarray(1, dtype=dtype)))
    return g.op("Mul", rows, scale)


@symbolic(torch.embedding)
def embedding_aten(g, weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    return g.op("Gather", weight, indices, axis=0)
