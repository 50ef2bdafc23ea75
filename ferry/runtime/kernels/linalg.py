"""Linear algebra kernels: MatMul, Gemm, Einsum, Det.
"""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels._numeric import narrow, widen
from ferry.runtime.registry import kernel


@kernel("MatMul", since=(1, 9, 13))
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Matrix product with numpy.matmul semantics (1-D promotion, batch broadcasting)."""
    return narrow(np.matmul(widen(a), widen(b)), a.dtype)


@kernel("Gemm", since=(1, 6, 7, 9, 11, 13))
def gemm(a, b, c=None, *, alpha, beta, transA, transB, broadcast=None) -> np.ndarray:
    """Y = alpha * op(A) @ op(B) + beta * C, C unidirectionally broadcast to (M, N)."""
    dtype = a.dtype
    a, b = widen(a), widen(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"Gemm expects 2-D A and B, got shapes {a.shape} and {b.shape}")
    y = np.matmul(a.T if transA else a, b.T if transB else b)
    if alpha != 1.0:
        y = y * alpha
    if c is not None and beta != 0.0:
        c = widen(c)
        if broadcast == 0 and c.shape != y.shape:
            raise ValueError(f"Gemm with broadcast=0 expects C of shape {y.shape}, got {c.shape}")
        try:
            c = np.broadcast_to(c, y.shape)
        except ValueError:
            raise ValueError(
                f"Gemm: C of shape {c.shape} does not broadcast to {y.shape}"
            ) from None
        y = y + (c * beta if beta != 1.0 else c)
    return narrow(y, dtype)


@kernel("Einsum", since=(12, 28))
def einsum(*inputs: np.ndarray, equation) -> np.ndarray:
    """Einstein summation over the operands (explicit or implicit form, ellipsis, repeats)."""
    if not inputs:
        raise ValueError("Einsum expects at least one input")
    dtype = inputs[0].dtype
    operands = [widen(x) for x in inputs]
    result = np.einsum(equation.replace(" ", ""), *operands, optimize=len(operands) > 2)
    return narrow(np.array(result), dtype)


@kernel("Det", since=(11, 22))
def det(x: np.ndarray) -> np.ndarray:
    """Determinant of each square matrix in the last two axes; output drops those axes."""
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"Det expects a [..., M, M] input, got shape {x.shape}")
    values = widen(x)
    if values.dtype == np.float16:
        values = values.astype(np.float32)
    return narrow(np.linalg.det(values), x.dtype)
