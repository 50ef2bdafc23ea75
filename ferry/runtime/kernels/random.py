"""Random generator kernels: RandomNormal(Like), RandomUniform(Like), Bernoulli, Multinomial.

A ``seed`` attribute makes a node deterministic: every call with the same seed builds a
fresh numpy PCG64 generator from the seed's float64 bit pattern, so the same seed gives
the same output in every run and every session. Without a seed each call draws fresh
entropy. Bernoulli draws its uniforms U as RandomUniformLike does (same seed, input's
dtype) and returns ``X > U``, which is 1 with probability X.
"""

from __future__ import annotations

import numpy as np

from ferry.ir.dtypes import DataType, from_numpy_dtype
from ferry.ir.minifloat import from_float32, to_float32
from ferry.runtime.registry import kernel

_FLOAT_OUTPUTS = (DataType.FLOAT16, DataType.FLOAT, DataType.DOUBLE, DataType.BFLOAT16)


def _generator(seed: float | None) -> np.random.Generator:
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(int(np.array(seed, dtype=np.float64).view(np.uint64)))


def _float_code(dtype: int | None, like: np.ndarray | None, op: str) -> DataType:
    """The float output type: the ``dtype`` attribute, else the input's element type."""
    if dtype is None:
        if like is None:
            raise ValueError(f"{op} needs a dtype")
        code = from_numpy_dtype(np.asarray(like).dtype)
    else:
        code = DataType(dtype)
    if code not in _FLOAT_OUTPUTS:
        raise TypeError(f"{op} produces float16, float, double or bfloat16, not {code.name}")
    return code


def _as_code(values: np.ndarray, code: DataType) -> np.ndarray:
    if code == DataType.BFLOAT16:
        return from_float32(values.astype(np.float32), code)
    return values.astype(code.numpy)


def _shape(shape: list[int] | None, op: str) -> tuple[int, ...]:
    if shape is None:
        raise ValueError(f"{op} needs the 'shape' attribute")
    if any(d < 0 for d in shape):
        raise ValueError(f"{op} shape must be non-negative, got {shape}")
    return tuple(int(d) for d in shape)


def _normal(shape, code: DataType, mean: float, scale: float, seed) -> np.ndarray:
    return _as_code(_generator(seed).normal(mean, scale, size=shape), code)


def _uniform(shape, code: DataType, low: float, high: float, seed) -> np.ndarray:
    return _as_code(_generator(seed).uniform(low, high, size=shape), code)


@kernel("RandomNormal", since=(1, 22))
def random_normal(*, dtype, mean, scale, seed, shape):
    """A tensor of ``shape`` drawn from Normal(mean, scale) in the float ``dtype``."""
    code = _float_code(dtype, None, "RandomNormal")
    return _normal(_shape(shape, "RandomNormal"), code, mean, scale, seed)


@kernel("RandomNormalLike", since=(1, 22))
def random_normal_like(x, *, dtype, mean, scale, seed):
    """Normal(mean, scale) draws shaped like the input, in ``dtype`` or the input's float type."""
    code = _float_code(dtype, x, "RandomNormalLike")
    return _normal(np.shape(x), code, mean, scale, seed)


@kernel("RandomUniform", since=(1, 22))
def random_uniform(*, dtype, high, low, seed, shape):
    """A tensor of ``shape`` drawn from Uniform[low, high) in the float ``dtype``."""
    code = _float_code(dtype, None, "RandomUniform")
    return _uniform(_shape(shape, "RandomUniform"), code, low, high, seed)


@kernel("RandomUniformLike", since=(1, 22))
def random_uniform_like(x, *, dtype, high, low, seed):
    """Uniform[low, high) draws shaped like the input, in ``dtype`` or the input's float type."""
    code = _float_code(dtype, x, "RandomUniformLike")
    return _uniform(np.shape(x), code, low, high, seed)


@kernel("Bernoulli", since=(15, 22))
def bernoulli(x, *, dtype, seed):
    """1 with probability p (the input), else 0, in ``dtype`` (default: the input's type)."""
    x = np.asarray(x)
    probability_code = _float_code(None, x, "Bernoulli")
    code = probability_code if dtype is None else DataType(dtype)
    draws = _uniform(x.shape, probability_code, 0.0, 1.0, seed)
    exotic = probability_code == DataType.BFLOAT16
    hits = to_float32(x) > to_float32(draws) if exotic else x > draws
    if code == DataType.BFLOAT16:
        return from_float32(hits.astype(np.float32), code)
    return hits.astype(code.numpy)


@kernel("Multinomial", since=(7, 22))
def multinomial(x, *, dtype, sample_size, seed):
    """``sample_size`` class indices per batch row, drawn from softmax of the row's log-probabilities."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"Multinomial expects a [batch_size, class_size] tensor, got shape {x.shape}")
    code = DataType(dtype)
    if code not in (DataType.INT32, DataType.INT64):
        raise TypeError(f"Multinomial produces int32 or int64, not {code.name}")
    logits = to_float32(x).astype(np.float64) if x.dtype.names else x.astype(np.float64)
    logits = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    cumulative = np.cumsum(weights, axis=1)
    cumulative /= cumulative[:, -1:]
    draws = _generator(seed).random((x.shape[0], sample_size))
    samples = np.stack([np.searchsorted(c, d, side="right") for c, d in zip(cumulative, draws)])
    samples = np.minimum(samples.reshape(x.shape[0], sample_size), x.shape[1] - 1)
    return samples.astype(code.numpy)
