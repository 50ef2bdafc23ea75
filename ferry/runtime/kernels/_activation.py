"""In-place activations shared by fused steps and convolution epilogues.

An activation is named as the ONNX operator it stands for, with up to two parameters:
``("Relu", 0, 0)``, ``("LeakyRelu", alpha, 0)``, ``("Clip", min, max)``, ``("Gelu", 0, 0)``
(the exact, erf-based GELU).
"""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels._numeric import split

__all__ = ["ACTIVATIONS", "activate_in_place", "check_activation", "gelu_in_place"]

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
    else:
        check_activation(activation)
    return y


def check_activation(activation: str) -> None:
    """Raise ValueError unless ``activation`` names one of :data:`ACTIVATIONS`."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown fused activation {activation!r}; known: {ACTIVATIONS[1:]}")


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
