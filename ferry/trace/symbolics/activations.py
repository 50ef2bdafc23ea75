"""Activations as ``torch.nn.functional`` functions, ``torch.*`` functions, Tensor methods
and their in-place forms (``relu`` is in arithmetic, ``sigmoid``/``tanh`` in math).

Each maps to its ONNX operator where one exists at the target opset (Gelu from 20, Mish
from 18, HardSwish from 14) and to an equivalent decomposition otherwise. Constants take
the input's dtype.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ferry.ir import Value
from ferry.trace.symbolics._helpers import as_value
from ferry.trace.symbolics.math import symbolic, unsupported, variants

T = torch.Tensor
NN = torch._C._nn


def _const(g, x, number) -> Value:
    return as_value(g, number, x.dtype)


def _nn(*names: str) -> list:
    """The ``torch._C._nn`` builtins (called directly by some libraries) that exist."""
    return [getattr(NN, name) for name in names if hasattr(NN, name)]


# -- piecewise linear ---------------------------------------------------------------------------
@symbolic(F.hardtanh, F.hardtanh_, *_nn("hardtanh", "hardtanh_"))
def hardtanh(g, x, min_val=-1.0, max_val=1.0, inplace=False):
    """Clip(x, min_val, max_val) (nn.ReLU6 calls this with 0 and 6)."""
    return g.op("Clip", x, _const(g, x, min_val), _const(g, x, max_val))


@symbolic(F.relu6, *_nn("relu6", "relu6_"))
def relu6(g, x, inplace=False):
    return hardtanh(g, x, 0.0, 6.0)


@symbolic(F.leaky_relu, F.leaky_relu_, *_nn("leaky_relu", "leaky_relu_"))
def leaky_relu(g, x, negative_slope=0.01, inplace=False):
    return g.op("LeakyRelu", x, alpha=float(negative_slope))


@symbolic(F.rrelu, F.rrelu_, *variants("rrelu"))
def rrelu(g, x, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, generator=None):
    """In evaluation: leaky ReLU with slope (lower + upper) / 2."""
    if training:
        raise unsupported(g, "rrelu with training=True draws random slopes; export the model in eval mode")
    return g.op("LeakyRelu", x, alpha=(lower + upper) / 2)


@symbolic(F.threshold, F.threshold_, *variants("threshold"))
def threshold(g, x, threshold, value, inplace=False):
    """x where x > threshold, else value."""
    keep = g.op("Greater", x, _const(g, x, threshold))
    return g.op("Where", keep, x, _const(g, x, value))


@symbolic(F.hardshrink, *variants("hardshrink", inplace=False))
def hardshrink(g, x, lambd=0.5):
    """x where |x| > lambd, else 0 (ONNX Shrink with bias 0)."""
    return g.op("Shrink", x, lambd=float(lambd), bias=0.0)


@symbolic(F.softshrink)
def softshrink(g, x, lambd=0.5):
    """x - lambd above lambd, x + lambd below -lambd, else 0 (ONNX Shrink with bias lambd)."""
    return g.op("Shrink", x, lambd=float(lambd), bias=float(lambd))


# -- exponential family ------------------------------------------------------------------------
@symbolic(F.elu, F.elu_)
def elu(g, x, alpha=1.0, inplace=False):
    return g.op("Elu", x, alpha=float(alpha))


@symbolic(F.selu, *variants("selu"))
def selu(g, x, inplace=False):
    """ONNX Selu, whose default alpha and gamma are torch's constants."""
    return g.op("Selu", x)


@symbolic(F.celu, *variants("celu"))
def celu(g, x, alpha=1.0, inplace=False):
    """ONNX Celu (float32 only); max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) otherwise."""
    if x.dtype == torch.float32:
        return g.op("Celu", x, alpha=float(alpha))
    a = _const(g, x, alpha)
    negative = g.op("Mul", a, g.op("Sub", g.op("Exp", g.op("Div", x, a)), _const(g, x, 1)))
    zero = _const(g, x, 0)
    return g.op("Add", g.op("Max", x, zero), g.op("Min", negative, zero))


@symbolic(F.gelu)
def gelu(g, x, approximate="none"):
    """ONNX Gelu from opset 20; before: x/2 (1 + erf(x/sqrt 2)) or its tanh approximation."""
    if g.opset >= 20:
        return g.op("Gelu", x, approximate=approximate)
    half = g.op("Mul", x, _const(g, x, 0.5))
    if approximate == "tanh":
        cube = g.op("Mul", g.op("Mul", x, x), x)
        inner = g.op("Add", x, g.op("Mul", cube, _const(g, x, 0.044715)))
        t = g.op("Tanh", g.op("Mul", inner, _const(g, x, math.sqrt(2.0 / math.pi))))
    else:
        t = g.op("Erf", g.op("Mul", x, _const(g, x, math.sqrt(0.5))))
    return g.op("Mul", half, g.op("Add", t, _const(g, x, 1.0)))


@symbolic(F.softplus)
def softplus(g, x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""
    scaled = x.value if beta == 1 else g.op("Mul", x, _const(g, x, beta))
    soft = g.op("Softplus", scaled)
    if beta != 1:
        soft = g.op("Div", soft, _const(g, x, beta))
    return g.op("Where", g.op("Greater", scaled, _const(g, x, threshold)), x, soft)


@symbolic(F.logsigmoid)
def logsigmoid(g, x):
    """min(x, 0) - log(1 + exp(-|x|)), stable for large |x|."""
    zero = _const(g, x, 0)
    tail = g.op("Softplus", g.op("Neg", g.op("Abs", x)))
    return g.op("Sub", g.op("Min", x, zero), tail)


# -- sigmoid-gated ---------------------------------------------------------------------------------
@symbolic(F.silu, *_nn("silu", "silu_"))
def silu(g, x, inplace=False):
    """x * sigmoid(x)."""
    return g.op("Mul", x, g.op("Sigmoid", x))


@symbolic(F.mish, *_nn("mish", "mish_"))
def mish(g, x, inplace=False):
    """ONNX Mish from opset 18; x * tanh(softplus(x)) before."""
    if g.opset >= 18:
        return g.op("Mish", x)
    return g.op("Mul", x, g.op("Tanh", g.op("Softplus", x)))


@symbolic(F.hardsigmoid, *_nn("hardsigmoid", "hardsigmoid_"))
def hardsigmoid(g, x, inplace=False):
    """relu6(x + 3) / 6 = ONNX HardSigmoid(alpha=1/6, beta=1/2)."""
    return g.op("HardSigmoid", x, alpha=1.0 / 6, beta=0.5)


@symbolic(F.hardswish, *_nn("hardswish", "hardswish_"))
def hardswish(g, x, inplace=False):
    """x * relu6(x + 3) / 6: ONNX HardSwish from opset 14."""
    if g.opset >= 14:
        return g.op("HardSwish", x)
    return g.op("Mul", x, hardsigmoid(g, x))


@symbolic(F.softsign)
def softsign(g, x):
    return g.op("Softsign", x)


@symbolic(F.tanhshrink)
def tanhshrink(g, x):
    return g.op("Sub", x, g.op("Tanh", x))


@symbolic(F.glu, *_nn("glu"))
def glu(g, x, dim=-1):
    """a * sigmoid(b) for the two halves a, b of ``x`` along ``dim``."""
    axis = dim % x.rank
    half = x.shape[axis] // 2
    sizes = g.shape_value([half, half])
    if g.opset >= 13:
        a, b = g.op("Split", x, sizes, axis=axis, num_outputs=2)
    else:
        a, b = g.op("Split", x, axis=axis, split=[half, half], num_outputs=2)
    return g.op("Mul", a, g.op("Sigmoid", b))


@symbolic(F.prelu, *variants("prelu", inplace=False))
def prelu(g, x, weight):
    """ONNX PRelu with the per-channel weight (channels on axis 1) shaped to broadcast."""
    if weight.rank == 1 and weight.shape[0] != 1 and x.rank > 2:
        weight = g.op("Reshape", weight, g.int64([-1] + [1] * (x.rank - 2)))
    return g.op("PRelu", x, weight)


# -- softmax family --------------------------------------------------------------------------------
def _softmax_dim(dim, rank: int) -> int:
    """torch's implicit softmax dim (with a deprecation warning) when ``dim`` is None."""
    if dim is None:
        dim = 0 if rank in (0, 1, 3) else 1
    return dim % max(rank, 1)


def _softmax(g, x, dim, dtype, onnx_op: str, negate: bool = False) -> Value:
    value = as_value(g, x, dtype or x.dtype)
    if negate:
        value = g.op("Neg", value)
    if x.rank == 0:
        return _scalar_softmax(g, value, onnx_op, dtype or x.dtype)
    axis = _softmax_dim(dim, x.rank)
    if g.opset >= 13 or axis == x.rank - 1:
        return g.op(onnx_op, value, axis=axis)
    perm = list(range(x.rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    moved = g.op(onnx_op, g.op("Transpose", value, perm=perm), axis=x.rank - 1)
    return g.op("Transpose", moved, perm=perm)


def _scalar_softmax(g, value, onnx_op, dtype):
    """softmax of a 0-d tensor is 1 (log_softmax 0)."""
    zero = g.op("Sub", value, value)
    return zero if onnx_op == "LogSoftmax" else g.op("Add", zero, as_value(g, 1, dtype))


def _softmax_entry(onnx_op: str, negate: bool = False):
    def entry(g, x, dim=None, *args, dtype=None, _stacklevel=3):
        """torch's forms: F.fn(x, dim, _stacklevel, dtype) and torch.fn / Tensor.fn(x, dim, dtype)."""
        for arg in args:
            if isinstance(arg, torch.dtype):
                dtype = arg
        return _softmax(g, x, dim, dtype, onnx_op, negate)

    return entry


symbolic(F.softmax, *variants("softmax", inplace=False))(_softmax_entry("Softmax"))
symbolic(F.log_softmax, *variants("log_softmax", inplace=False))(_softmax_entry("LogSoftmax"))
symbolic(F.softmin)(_softmax_entry("Softmax", negate=True))
