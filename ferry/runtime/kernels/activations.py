"""Activation kernels: Relu and its variants, sigmoid-family functions, Gelu, Mish, Swish,
Shrink and Clip."""

from __future__ import annotations

import math

import numpy as np

from ferry.runtime.kernels._numeric import narrow, require_float, widen
from ferry.runtime.kernels.math_unary import erf, float_result
from ferry.runtime.registry import kernel

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _float_activation(op: str, x, fn) -> np.ndarray:
    x = np.asarray(x)
    require_float(x, op)
    return float_result(x, fn)


@kernel("Relu", since=(1, 6, 13, 14))
def relu(x, *, consumed_inputs=None):
    """Element-wise max(x, 0); signed integers allowed from opset 14."""
    x = np.asarray(x)
    if x.dtype.kind == "i":
        return np.asarray(np.maximum(x, 0).astype(x.dtype))
    return _float_activation("Relu", x, lambda v: np.maximum(v, 0))


@kernel("LeakyRelu", since=(1, 6, 16))
def leaky_relu(x, *, alpha, consumed_inputs=None):
    """Element-wise x for x >= 0, alpha * x below zero."""
    return _float_activation("LeakyRelu", x, lambda v: np.where(v < 0, v * alpha, v))


def _prelu_slope(x: np.ndarray, slope: np.ndarray, legacy: bool) -> np.ndarray:
    """The slope broadcast to X's shape; before opset 7 a 1-D slope of length C may also
    apply per channel along axis 1."""
    if legacy and slope.ndim == 1 and x.ndim > 2 and slope.shape[0] == x.shape[1] > 1:
        slope = slope.reshape((-1,) + (1,) * (x.ndim - 2))
    try:
        return np.broadcast_to(slope, x.shape)
    except ValueError:
        raise ValueError(
            f"PRelu slope of shape {slope.shape} does not broadcast to input shape {x.shape}"
        ) from None


def _prelu(x, slope, legacy: bool) -> np.ndarray:
    x, slope = np.asarray(x), np.asarray(slope)
    slope = _prelu_slope(x, slope, legacy)
    if x.dtype.kind in "iu":
        return np.asarray(np.where(x < 0, x * slope.astype(x.dtype), x).astype(x.dtype))
    wide_slope = widen(slope)
    with np.errstate(all="ignore"):
        wide = widen(x)
        return narrow(np.where(wide < 0, wide * wide_slope, wide), x.dtype)


@kernel("PRelu", since=(1, 6))
def prelu_legacy(x, slope, *, consumed_inputs=None):
    """Element-wise x for x >= 0, slope * x below zero; slope is one value or one per channel."""
    return _prelu(x, slope, legacy=True)


@kernel("PRelu", since=(7, 9, 16))
def prelu(x, slope):
    """Element-wise x for x >= 0, slope * x below zero; slope broadcasts onto X."""
    return _prelu(x, slope, legacy=False)


@kernel("Elu", since=(1, 6, 22))
def elu(x, *, alpha, consumed_inputs=None):
    """Element-wise x for x >= 0, alpha * (exp(x) - 1) below zero."""
    return _float_activation("Elu", x, lambda v: np.where(v < 0, alpha * np.expm1(v), v))


@kernel("Selu", since=(1, 6, 22))
def selu(x, *, alpha, gamma, consumed_inputs=None):
    """Element-wise gamma * x for x > 0, gamma * alpha * (exp(x) - 1) otherwise."""
    return _float_activation("Selu", x, lambda v: gamma * np.where(v > 0, v, alpha * np.expm1(v)))


@kernel("Celu", since=(12, 28))
def celu(x, *, alpha):
    """Element-wise max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    return _float_activation(
        "Celu", x, lambda v: np.maximum(v, 0) + np.minimum(0, alpha * np.expm1(v / alpha))
    )


@kernel("ThresholdedRelu", since=(10, 22))
def thresholded_relu(x, *, alpha):
    """Element-wise x where x > alpha, else 0."""
    return _float_activation("ThresholdedRelu", x, lambda v: np.where(v > alpha, v, 0))


@kernel("HardSigmoid", since=(1, 6, 22))
def hard_sigmoid(x, *, alpha, beta, consumed_inputs=None):
    """Element-wise max(0, min(1, alpha * x + beta))."""
    return _float_activation("HardSigmoid", x, lambda v: np.clip(alpha * v + beta, 0, 1))


@kernel("HardSwish", since=(14, 22))
def hard_swish(x):
    """Element-wise x * max(0, min(1, x / 6 + 1 / 2))."""
    return _float_activation("HardSwish", x, lambda v: v * np.clip(v / 6 + 0.5, 0, 1))


@kernel("Sigmoid", since=(1, 6, 13))
def sigmoid(x, *, consumed_inputs=None):
    """Element-wise logistic function 1 / (1 + exp(-x))."""
    return _float_activation("Sigmoid", x, _sigmoid)


@kernel("Softplus", since=(1, 22))
def softplus(x):
    """Element-wise log(1 + exp(x)), computed without overflow."""
    return _float_activation("Softplus", x, _softplus)


@kernel("Softsign", since=(1, 22))
def softsign(x):
    """Element-wise x / (1 + |x|)."""
    return _float_activation("Softsign", x, lambda v: v / (1 + np.abs(v)))


def _gelu_tanh(v: np.ndarray) -> np.ndarray:
    """0.5 v (1 + tanh(sqrt(2 / pi) (v + 0.044715 v^3))) in v's dtype, in place on one buffer."""
    y = v * v
    y *= 0.044715
    y += 1.0
    y *= v
    y *= math.sqrt(2 / math.pi)
    np.tanh(y, out=y)
    y += 1.0
    y *= v
    y *= 0.5
    return y


def _gelu_exact(v: np.ndarray) -> np.ndarray:
    """0.5 v (1 + erf(v / sqrt 2)) evaluated in float64 (erf of a float32 input uses the
    float32-accurate pieces); the caller rounds once to the input dtype."""
    wide = v.astype(np.float64, copy=False)
    y = erf(wide * math.sqrt(0.5), single=v.dtype.itemsize <= 4)
    y += 1.0
    y *= wide
    y *= 0.5
    return y


@kernel("Gelu", since=20)
def gelu(x, *, approximate):
    """Element-wise 0.5 * x * (1 + erf(x / sqrt(2))), or its tanh form if approximate='tanh'."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"Gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    return _float_activation("Gelu", x, _gelu_tanh if approximate == "tanh" else _gelu_exact)


@kernel("Mish", since=(18, 22))
def mish(x):
    """Element-wise x * tanh(softplus(x))."""
    return _float_activation("Mish", x, lambda v: v * np.tanh(_softplus(v)))


@kernel("Swish", since=24)
def swish(x, *, alpha):
    """Element-wise x * sigmoid(alpha * x)."""
    return _float_activation("Swish", x, lambda v: v * _sigmoid(alpha * v))


@kernel("Shrink", since=9)
def shrink(x, *, bias, lambd):
    """Element-wise x + bias below -lambd, x - bias above lambd, 0 in between."""
    return float_result(
        x, lambda v: np.where(v < -lambd, v + bias, np.where(v > lambd, v - bias, 0))
    )


def _clip(x, low, high) -> np.ndarray:
    x = np.asarray(x)
    wide = widen(x)
    with np.errstate(invalid="ignore"):
        if low is not None:
            wide = np.maximum(wide, _clip_bound(low, wide.dtype))
        if high is not None:
            wide = np.minimum(wide, _clip_bound(high, wide.dtype))
    return narrow(np.array(wide), x.dtype)


def _clip_bound(bound, dtype: np.dtype) -> np.ndarray:
    """A bound as a scalar of the compute dtype (one-element tensors are accepted too)."""
    bound = widen(np.asarray(bound))
    if bound.size != 1:
        raise ValueError(f"Clip bounds must be scalars, got shape {bound.shape}")
    return bound.reshape(()).astype(dtype)


def _clip_attribute_bound(value: float | None, dtype: np.dtype) -> float | None:
    """An opset < 11 bound; the schema's +-FLT_MAX default means the type's own limit."""
    if value is None or abs(value) != _FLOAT32_MAX:
        return value
    limits = np.finfo(dtype if dtype.kind == "f" else np.float32)
    return float(limits.max if value > 0 else limits.min)


@kernel("Clip", since=(1, 6))
def clip_legacy(x, *, max, min, consumed_inputs=None):
    """Element-wise clamp of the input to the [min, max] attributes (opset < 11)."""
    dtype = np.asarray(x).dtype
    return _clip(x, _clip_attribute_bound(min, dtype), _clip_attribute_bound(max, dtype))


@kernel("Clip", since=(11, 12, 13))
def clip(x, min=None, max=None):
    """Element-wise Min(max, Max(x, min)) with optional bound inputs (so max wins if min > max)."""
    return _clip(x, min, max)
