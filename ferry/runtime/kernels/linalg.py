"""Linear algebra kernels: MatMul, Gemm, Einsum, Det.
"""

from __future__ import annotations

import numpy as np

from ferry.runtime.kernels import native_conv
from ferry.runtime.kernels._numeric import narrow, widen
from ferry.runtime.kernels.fused import INTERNAL_DOMAIN, fused_matmul
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
    if native_conv.available():
        y = native_conv.matmul(a, b)
        if y is not None:
            return y
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


_NATIVE_MIN_ROWS = 4
"""Products with fewer rows of A than this keep their other path: the compiled row GEMM
computes four rows at a time."""


class _ConstantWeights:
    """float32 weights W (K, N) of ``rows @ W`` packed once, on first use, for the compiled
    GEMM: as panels for many rows, as transposed rows (Y^T = W^T A^T, a matrix-vector loop
    for one row) for fewer than four."""

    def __init__(self, w: np.ndarray, bias: np.ndarray | None) -> None:
        self.w, self.bias = w, bias
        self.k, self.n = w.shape
        self._panels = self._transposed = None

    def accepts(self, a: np.ndarray) -> bool:
        return a.dtype == np.float32 and a.ndim >= 1 and a.shape[-1] == self.k

    def product(self, a: np.ndarray, activation=None, residual: np.ndarray | None = None) -> np.ndarray:
        """a (..., K) @ W + bias (+ residual, float32 (..., N)), then ``activation``, as
        float32 (..., N)."""
        rows = a.reshape(-1, self.k)
        if residual is not None:
            residual = np.ascontiguousarray(residual).reshape(rows.shape[0], self.n)
        if rows.shape[0] >= _NATIVE_MIN_ROWS:
            if self._panels is None:
                self._panels = native_conv.pack_panels(self.w)
            y = native_conv.gemm_rows(rows, self._panels, self.n, bias=self.bias, residual=residual,
                                      activation=activation)
        else:
            if self._transposed is None:
                self._transposed = native_conv.pack_gemm(np.ascontiguousarray(self.w.T))
            y_t = np.empty((self.n, rows.shape[0]), np.float32)
            native_conv.gemm_into(self._transposed, self.n, np.ascontiguousarray(rows.T), y_t,
                                  bias=self.bias, residual=None if residual is None else
                                  np.ascontiguousarray(residual.T), activation=activation)
            y = np.ascontiguousarray(y_t.T)
        return y.reshape(*a.shape[:-1], self.n)


def _constant_weights(b, bias=None) -> _ConstantWeights | None:
    """The packed form of constant float32 2-D weights and an optional constant bias that
    broadcasts as one row of N, when the compiled kernels are in use; else None."""
    if not native_conv.available() or not isinstance(b, np.ndarray):
        return None
    if b.dtype != np.float32 or b.ndim != 2 or not b.size:
        return None
    if bias is not None:
        if not isinstance(bias, np.ndarray) or bias.dtype != np.float32 or bias.ndim > 1:
            return None
        if bias.size not in (1, b.shape[1]):
            return None
        bias = np.ascontiguousarray(np.broadcast_to(bias.reshape(-1), (b.shape[1],)))
    return _ConstantWeights(b, bias)  # a view (Gemm's transB): the packed forms are copies


@preparer("MatMul", since=(1, 9, 13))
def prepare_matmul(constants, *, _input_shapes=()):
    """Constant float32 2-D B: packed once for the compiled GEMM."""
    a, b = constants
    weights = _constant_weights(b) if a is RUN_TIME else None
    if weights is None:
        return None

    def matmul_prepared(a_, b_):
        return weights.product(a_) if weights.accepts(a_) else matmul(a_, b_)

    return matmul_prepared


@preparer("FusedMatMul", since=1, domain=INTERNAL_DOMAIN)
def prepare_fused_matmul(constants, *, activation="", alpha=0.0, beta=0.0, _input_shapes=()):
    """FusedMatMul with constant float32 weights and bias: packed once for the compiled GEMM,
    which applies the bias and the activation (GELU included) as it stores the result."""
    a, b, bias = [*constants, None][:3]
    weights = _constant_weights(b, bias) if a is RUN_TIME and bias is not RUN_TIME else None
    if weights is None or (bias is not None and weights.bias is None):
        return None
    epilogue = (activation, alpha, beta)

    def fused_matmul_prepared(a_, b_, bias_=None, residual=None, **_):
        shape = (*a_.shape[:-1], weights.n)
        if not weights.accepts(a_) or (residual is not None and (
                residual.shape != shape or residual.dtype != np.float32)):
            return fused_matmul(a_, b_, bias_, residual, activation=activation, alpha=alpha,
                                beta=beta)
        return weights.product(a_, epilogue, residual)

    return fused_matmul_prepared


def gemm_bias_row(c, beta: float, columns: int) -> np.ndarray | None:
    """Gemm's beta * C as one float row of ``columns`` values, when the constant C is a
    scalar or one row (C of shape (N,), (1, N), (1,) or (1, 1)); None for any other C."""
    if not isinstance(c, np.ndarray) or c.dtype.kind != "f" or c.ndim > 2 or c.size not in (1, columns):
        return None
    if c.ndim == 2 and c.shape[0] != 1:
        return None
    return np.ascontiguousarray(np.broadcast_to(c.reshape(-1) * c.dtype.type(beta), (columns,)))


@preparer("Gemm", since=(7, 9, 11, 13))
def prepare_gemm(constants, *, alpha, beta, transA, transB, broadcast=None, _input_shapes=()):
    """Constant float32 B (and constant bias C of one row, or none): op(B) packed once for
    the compiled GEMM; other calls take the plain kernel."""
    a, b, c = [*constants, None, None, None][:3]
    if transA or alpha != 1.0 or a is not RUN_TIME or c is RUN_TIME:
        return None
    if not isinstance(b, np.ndarray) or b.ndim != 2:
        return None
    matrix = b.T if transB else b
    bias = None
    if c is not None and beta != 0.0:
        bias = gemm_bias_row(c, beta, matrix.shape[1])
        if bias is None:
            return None
    weights = _constant_weights(matrix, bias)
    if weights is None:
        return None

    def gemm_prepared(a_, b_, c_=None, **_):
        if not weights.accepts(a_) or a_.ndim != 2:
            return gemm(a_, b_, c_, alpha=alpha, beta=beta, transA=transA, transB=transB,
                        broadcast=broadcast)
        return weights.product(a_)

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
