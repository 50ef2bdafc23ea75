"""Linear algebra kernels: MatMul, Gemm, Einsum, Det.
"""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels import native_conv
from ferry.runtime.kernels._numeric import narrow, widen
from ferry.runtime.registry import RUN_TIME, kernel, preparer


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.matmul, with a stack of contiguous matrices times one matrix done as a single
    (rows, K) @ (K, N) product (one large BLAS call instead of one per matrix)."""
    if a.ndim > 2 and b.ndim == 2 and a.size and a.flags.c_contiguous:
        return np.matmul(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[1])
    return np.matmul(a, b)


@kernel("MatMul", since=(1, 9, 13))
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Matrix product with numpy.matmul semantics (1-D promotion, batch broadcasting)."""
    return narrow(_product(widen(a), widen(b)), a.dtype)


def _gemm_bias(c, shape: tuple[int, int], broadcast) -> np.ndarray:
    """C in its compute dtype, checked to broadcast unidirectionally to the (M, N) result."""
    c = widen(c)
    if broadcast == 0 and c.shape != shape:
        raise ValueError(f"Gemm with broadcast=0 expects C of shape {shape}, got {c.shape}")
    try:
        return np.broadcast_to(c, shape)
    except ValueError:
        raise ValueError(f"Gemm: C of shape {c.shape} does not broadcast to {shape}") from None


@kernel("Gemm", since=(1, 6, 7, 9, 11, 13))
def gemm(a, b, c=None, *, alpha, beta, transA, transB, broadcast=None) -> np.ndarray:
    """Y = alpha * op(A) @ op(B) + beta * C, C unidirectionally broadcast to (M, N)."""
    dtype = a.dtype
    a, b = widen(a), widen(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"Gemm expects 2-D A and B, got shapes {a.shape} and {b.shape}")
    y = np.matmul(a.T if transA else a, b.T if transB else b)
    in_place = y.dtype.kind == "f"  # y is fresh: scale and add into it
    if alpha != 1.0:
        y = np.multiply(y, alpha, out=y if in_place else None)
    if c is not None and beta != 0.0:
        c = _gemm_bias(c, y.shape, broadcast)
        if beta != 1.0:
            c = c * beta
        y = np.add(y, c, out=y if in_place and c.dtype == y.dtype else None)
    return narrow(y, dtype)


_NATIVE_GEMM_MAX_ROWS = 64
"""Gemm with at most this many rows of A runs on the compiled GEMM when B is constant:
small products gain nothing from BLAS's threads, whose spinning after the call slows what
runs next (onnxruntime-style sessions call such layers back to back)."""


@preparer("Gemm", since=(7, 9, 11, 13))
def prepare_gemm(constants, *, alpha, beta, transA, transB, broadcast=None, _input_shapes=()):
    """Constant float32 B (and constant bias C of one row, or none): pack op(B) once for the
    compiled GEMM, used for small A; other calls take the plain kernel."""
    a, b, c = [*constants, None, None, None][:3]
    if not native_conv.available() or transA or alpha != 1.0 or not isinstance(b, np.ndarray):
        return None
    if b.dtype != np.float32 or b.ndim != 2 or a is not RUN_TIME or c is RUN_TIME:
        return None
    weights = b if transB else b.T  # (N, K): one output feature per row
    bias = None
    if c is not None and beta != 0.0:
        if not isinstance(c, np.ndarray) or c.size != weights.shape[0] or c.shape[-1:] != (c.size,):
            return None
        bias = np.ascontiguousarray((c * beta).reshape(-1), dtype=np.float32)
    packed = native_conv.pack_gemm(np.ascontiguousarray(weights))
    features = weights.shape[0]

    def gemm_prepared(a_, b_, c_=None, **_):
        if (a_.dtype != np.float32 or a_.ndim != 2 or a_.shape[1] != weights.shape[1]
                or not 0 < a_.shape[0] <= _NATIVE_GEMM_MAX_ROWS):
            return gemm(a_, b_, c_, alpha=alpha, beta=beta, transA=transA, transB=transB,
                        broadcast=broadcast)
        y = np.empty((features, a_.shape[0]), np.float32)  # Y^T = op(B)^T @ A^T
        native_conv.gemm_into(packed, features, np.ascontiguousarray(a_.T), y, bias=bias)
        return np.ascontiguousarray(y.T)

    return gemm_prepared


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
