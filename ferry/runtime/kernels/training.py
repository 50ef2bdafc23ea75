"""Optimizer kernels of the ai.onnx.preview.training domain: Adagrad, Adam, Momentum.

Each optimizes several tensors at once: the variadic inputs are the tensors, then their
gradients, then their optimizer state tensors (one group per state), and the outputs are
the new tensors followed by the new state tensors, in the same grouped order.
"""

from __future__ import annotations

import numpy as np

from ferry.runtime.registry import kernel

TRAINING_DOMAIN = "ai.onnx.preview.training"


def _groups(op: str, tensors: tuple, count: int) -> list[tuple[np.ndarray, ...]]:
    """Split the variadic inputs into ``count`` equal groups, zipped per optimized tensor."""
    if not tensors or len(tensors) % count:
        raise ValueError(
            f"{op} expects {count} variadic inputs per optimized tensor "
            f"(tensors, gradients, states...), got {len(tensors)}"
        )
    n = len(tensors) // count
    return list(zip(*(tensors[i * n : (i + 1) * n] for i in range(count))))


def _scalar(value: np.ndarray, dtype: np.dtype, name: str):
    value = np.asarray(value)
    if value.size != 1:
        raise ValueError(f"{name} must be a scalar, got shape {value.shape}")
    return value.reshape(()).astype(dtype)


def _regroup(results: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Per-tensor result tuples -> all new tensors, then each state group in turn."""
    return tuple(np.asarray(r) for group in zip(*results) for r in group)


@kernel("Adagrad", since=1, domain=TRAINING_DOMAIN)
def adagrad(R, T, *tensors, norm_coefficient, decay_factor, epsilon):
    """ADAGRAD step: decayed rate R/(1+T*decay), accumulate squared regularized gradients."""
    results = []
    for x, g, h in _groups("Adagrad", tensors, 3):
        dtype = x.dtype
        t = _scalar(T, dtype, "T")
        r = _scalar(R, dtype, "R") / (1 + t * dtype.type(decay_factor))
        g_reg = dtype.type(norm_coefficient) * x + g
        h_new = h + g_reg * g_reg
        x_new = x - r * g_reg / (np.sqrt(h_new) + dtype.type(epsilon))
        results.append((x_new.astype(dtype), h_new.astype(dtype)))
    return _regroup(results)


@kernel("Adam", since=1, domain=TRAINING_DOMAIN)
def adam(R, T, *tensors, alpha, beta, epsilon, norm_coefficient, norm_coefficient_post):
    """Adam step: running first/second moments, bias-corrected rate when T > 0, post decay."""
    results = []
    for x, g, v, h in _groups("Adam", tensors, 4):
        dtype = x.dtype
        a, b = dtype.type(alpha), dtype.type(beta)
        t = int(np.asarray(T).reshape(()))
        r = _scalar(R, dtype, "R")
        g_reg = dtype.type(norm_coefficient) * x + g
        v_new = a * v + (1 - a) * g_reg
        h_new = b * h + (1 - b) * (g_reg * g_reg)
        h_sqrt = np.sqrt(h_new) + dtype.type(epsilon)
        if t > 0:
            r = r * np.sqrt(1 - b**t) / (1 - a**t)
        x_new = (x - r * (v_new / h_sqrt)) * (1 - dtype.type(norm_coefficient_post))
        results.append((x_new.astype(dtype), v_new.astype(dtype), h_new.astype(dtype)))
    return _regroup(results)


@kernel("Momentum", since=1, domain=TRAINING_DOMAIN)
def momentum(R, T, *tensors, alpha, beta, mode, norm_coefficient):
    """SGD with standard or Nesterov momentum; beta is taken as 1 on the first step (T == 0)."""
    if mode not in ("standard", "nesterov"):
        raise ValueError(f"Momentum mode must be 'standard' or 'nesterov', got {mode!r}")
    results = []
    for x, g, v in _groups("Momentum", tensors, 3):
        dtype = x.dtype
        a = dtype.type(alpha)
        b = dtype.type(beta) if int(np.asarray(T).reshape(())) > 0 else dtype.type(1)
        r = _scalar(R, dtype, "R")
        g_reg = dtype.type(norm_coefficient) * x + g
        v_new = a * v + b * g_reg
        step = g_reg + a * v_new if mode == "nesterov" else v_new
        results.append(((x - r * step).astype(dtype), v_new.astype(dtype)))
    return _regroup(results)
