"""ferry's compiled convolution kernels (``native/``), when they are built.

``ferry.runtime.kernels._native`` is an optional C extension: ``pip install`` compiles it
where a C compiler is present, and ferry runs its numpy algorithms where it is not. It
runs on x86-64 CPUs with AVX2 and FMA (``available()`` tells whether this process can use
it), on its own thread pool, for float32 and one group:

- ``conv_f43``: Winograd F(4x4, 3x3) for 2-D 3x3 kernels, stride 1, dilation 1;
- ``gemm_into``: the GEMM W (M, K) @ X (K, N) of 1x1 and im2col convolutions, with W
  packed once by ``pack_gemm``, and ``im2col_into`` for 2-D windows;
- ``gemm_rows``: rows (R, K) @ W (K, N) for MatMul and Gemm with constant weights, W packed
  once by ``pack_panels``, bias per column, GELU among the epilogues; ``matmul`` for two
  computed operands (attention's batched products);
- ``max_pool``: 2-D MaxPool (without its Indices output).

The kernels apply the fused epilogue (bias, residual, Relu/LeakyRelu/Clip; GELU in the
GEMMs) on the output while it is in cache. Running convolutions on ferry's own threads instead of OpenBLAS's also keeps
BLAS worker threads, which spin for ~100 ms after each call, off the other core.

Winograd changes the order of the arithmetic, not its result: outputs differ from a direct
float32 sum by a few units in the last place of the output's magnitude (bounded in
tests/runtime/test_native_conv.py), as with onnxruntime's and cuDNN's Winograd kernels.
"""

from __future__ import annotations

import os
from contextvars import ContextVar

import numpy as np

from ferry.runtime.kernels._winograd import winograd_matrices

try:
    from ferry.runtime.kernels import _native
except ImportError:  # not compiled here: the numpy algorithms run instead
    _native = None

__all__ = ["NATIVE_POINTS", "available", "built", "enabled", "pack_f43", "conv_f43", "pack_gemm", "gemm_into",
           "pack_panels", "gemm_rows", "matmul", "im2col_into", "max_pool", "threads", "NATIVE_ACTIVATIONS"]

NATIVE_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0)
"""Interpolation points of the C kernel's hard-coded input and output transforms."""
NATIVE_ACTIVATIONS = {"": 0, "Relu": 1, "LeakyRelu": 2, "Clip": 3, "Gelu": 4}
"""Epilogue activations the C kernel applies itself (others run after it, in numpy)."""
_ROWS = 4  # output channels per register tile of the C kernel's GEMM
_PANEL = 24  # columns per panel of the C kernel's GEMM

threads: ContextVar[int] = ContextVar("ferry_native_threads", default=0)
"""Threads for native kernels; 0: the CPUs this process could run on when ferry was
imported. Sessions set it from ``SessionOptions.intra_op_num_threads`` while they run."""
enabled: ContextVar[bool] = ContextVar("ferry_native_enabled",
                                       default=os.environ.get("FERRY_NATIVE_KERNELS") != "0")
"""Whether kernels may use the extension (sessions set it from
``SessionOptions.use_native_kernels``; the environment variable ``FERRY_NATIVE_KERNELS=0``
turns it off by default)."""
_SUPPORTED = _native is not None and _native.cpu_supported()


def built() -> bool:
    """True when the extension is compiled and this CPU runs it."""
    return _SUPPORTED


def available() -> bool:
    """True when the extension is built, this CPU runs it and it is enabled here."""
    return _SUPPORTED and enabled.get()


def pack_f43(w: np.ndarray) -> np.ndarray:
    """Transformed float32 weights (36, ceil(M/4), C, 4): G w G^T per channel pair, output
    channels in groups of four (zero rows pad the last group)."""
    g = winograd_matrices(4, 3, NATIVE_POINTS).g
    m, c = w.shape[:2]
    mp = -(-m // _ROWS) * _ROWS
    u = np.zeros((6, 6, mp, c))
    rows = np.tensordot(g, w.astype(np.float64), axes=([1], [2]))  # (6, M, C, 3): G w
    u[:, :, :m] = np.tensordot(rows, g, axes=([3], [1])).transpose(0, 3, 1, 2)  # (G w) G^T
    packed = u.reshape(36, mp // _ROWS, _ROWS, c).transpose(0, 1, 3, 2)
    return np.ascontiguousarray(packed, dtype=np.float32)


def conv_f43(x: np.ndarray, u: np.ndarray, m: int, pads_begin: tuple[int, int],
             out_hw: tuple[int, int], *, bias: np.ndarray | None = None,
             residual: np.ndarray | None = None, activation=None) -> np.ndarray:
    """Conv of float32 ``x`` (N, C, H, W) with ``u`` from :func:`pack_f43` for ``m`` output
    channels, padding ``pads_begin`` (top, left) and output size ``out_hw``; then + bias,
    + residual (N, M, OH, OW) and ``activation`` (None or (name, alpha, beta))."""
    n, c, h, w = x.shape
    oh, ow = out_hw
    name, alpha, beta = activation or ("", 0.0, 0.0)
    code = None if name == "Gelu" else NATIVE_ACTIVATIONS.get(name)  # GELU: GEMM epilogues only
    x = np.ascontiguousarray(x, dtype=np.float32)
    if bias is not None:
        bias = np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
    if residual is not None:
        residual = np.ascontiguousarray(residual, dtype=np.float32)
    y = np.empty((n, m, oh, ow), dtype=np.float32)
    count = _thread_count()
    for i in range(n):
        _native.winograd_f43(x[i], c, h, w, u, m, u.shape[1] * _ROWS, bias,
                             None if residual is None else residual[i], y[i], oh, ow,
                             pads_begin[0], pads_begin[1], code or 0, float(alpha), float(beta),
                             count)
    return _late_activation(y, code, name, alpha, beta)


def pack_gemm(w: np.ndarray) -> np.ndarray:
    """float32 weights (M, K) as (ceil(M/4), K, 4): four output rows side by side per k."""
    m, k = w.shape
    mp = -(-m // _ROWS) * _ROWS
    padded = np.zeros((mp, k), dtype=np.float32)
    padded[:m] = w
    return np.ascontiguousarray(padded.reshape(mp // _ROWS, _ROWS, k).transpose(0, 2, 1))


def gemm_into(packed: np.ndarray, m: int, x: np.ndarray, y: np.ndarray, column: int = 0, *,
              bias: np.ndarray | None = None, residual: np.ndarray | None = None,
              activation=None) -> None:
    """y[:, column:column + N] = W @ x (+ bias[:, None], + residual[:, same columns], then
    ``activation``) for contiguous float32 ``x`` (K, N), ``y`` and ``residual`` (M, L)."""
    name, alpha, beta = activation or ("", 0.0, 0.0)
    code = NATIVE_ACTIVATIONS.get(name)
    k, n = x.shape
    _native.packed_gemm(packed, m, packed.shape[0] * _ROWS, k, x, n, n, y, column, y.shape[1],
                        bias, residual, code or 0, float(alpha), float(beta), _thread_count())
    _late_activation(y[:, column:column + n], code, name, alpha, beta)


def pack_panels(w: np.ndarray) -> np.ndarray:
    """float32 weights (K, N) of a product ``rows @ w`` as (ceil(N/24), K, 24): panels of 24
    columns, zeros past column N."""
    k, n = w.shape
    count = -(-n // _PANEL)
    padded = np.zeros((k, count * _PANEL), dtype=np.float32)
    padded[:, :n] = w
    return np.ascontiguousarray(padded.reshape(k, count, _PANEL).transpose(1, 0, 2))


def gemm_rows(a: np.ndarray, panels: np.ndarray, n: int, *, bias: np.ndarray | None = None,
              residual: np.ndarray | None = None, activation=None) -> np.ndarray:
    """``a`` (R, K) @ W (+ bias[None, :], + residual (R, N), then ``activation``) as a new
    float32 (R, N) array, W packed by :func:`pack_panels`."""
    name, alpha, beta = activation or ("", 0.0, 0.0)
    code = NATIVE_ACTIVATIONS.get(name)
    a = np.ascontiguousarray(a, dtype=np.float32)
    rows, k = a.shape
    y = np.empty((rows, n), dtype=np.float32)
    if rows:
        _native.gemm_rows(a, rows, k, panels, n, y, bias, residual, code or 0, float(alpha),
                          float(beta), _thread_count())
    return _late_activation(y, code, name, alpha, beta)


_MATMUL_MIN_WORK = 1 << 16
"""Multiply-adds below which numpy's own matmul is quicker than a call into the pool."""


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """``a @ b`` (numpy.matmul semantics) for float32 arrays of rank >= 2 on the compiled
    GEMM, matrices of a batch spread over the threads; None where it does not apply (other
    dtypes or ranks, batch shapes that broadcast other than by 1s, tiny products)."""
    if a.dtype != np.float32 or b.dtype != np.float32 or a.ndim < 2 or b.ndim < 2:
        return None
    (m, k), (k_b, n) = a.shape[-2:], b.shape[-2:]
    if k != k_b or not m * k * n:
        return None
    if b.ndim == 2:  # every row of a times one matrix: one product of all the rows
        shape, batch, m, a_stride, b_stride = (*a.shape[:-1], n), 1, a.size // k, 0, 0
    else:
        batch_a, batch_b = a.shape[:-2], b.shape[:-2]
        batch_a = (1,) * (len(batch_b) - len(batch_a)) + batch_a
        batch_b = (1,) * (len(batch_a) - len(batch_b)) + batch_b
        if batch_a == batch_b:
            a_stride, b_stride = m * k, k * n
        elif all(d == 1 for d in batch_a):
            a_stride, b_stride = 0, k * n
        elif all(d == 1 for d in batch_b):
            a_stride, b_stride = m * k, 0
        else:
            return None
        shape = (*np.broadcast_shapes(batch_a, batch_b), m, n)
        batch = int(np.prod(shape[:-2], dtype=np.int64))
    if batch * m * k * n < _MATMUL_MIN_WORK:
        return None
    y = np.empty(shape, dtype=np.float32)
    _native.gemm_batched(np.ascontiguousarray(a), a_stride, np.ascontiguousarray(b), b_stride,
                         batch, m, k, n, y, _thread_count())
    return y


def im2col_into(x: np.ndarray, kernel, strides, dilations, pads_begin, out_hw,
                out: np.ndarray, row0: int = 0) -> np.ndarray:
    """The im2col matrix (C*kh*kw, rows*OW) of one contiguous float32 image ``x`` (C, H, W)
    for output rows ``row0`` .. ``row0 + rows - 1`` (``out_hw`` = (rows, OW)) into ``out``
    (zero padding; ONNX Conv's window), returned as ``out``."""
    c, h, w = x.shape
    _native.im2col(x, c, h, w, *kernel, *strides, *dilations, *pads_begin, *out_hw, row0, out,
                   _thread_count())
    return out


def max_pool(x: np.ndarray, kernel, strides, dilations, pads_begin, out_hw) -> np.ndarray:
    """2-D MaxPool of float32 ``x`` (N, C, H, W): max over each window, padding excluded."""
    n, c, h, w = x.shape
    y = np.empty((n, c, *out_hw), dtype=np.float32)
    _native.max_pool_2d(np.ascontiguousarray(x), n * c, h, w, *kernel, *strides, *dilations,
                        *pads_begin, *out_hw, 0, y, _thread_count())
    return y


_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
"""The CPUs this process may run on, as it started (asking costs microseconds per call)."""


def _thread_count() -> int:
    return threads.get() or _CPUS


def _late_activation(y: np.ndarray, code, name: str, alpha: float, beta: float) -> np.ndarray:
    """Activations the C kernels do not apply (``code`` None), applied in numpy."""
    if code is None:
        from ferry.runtime.kernels._activation import activate_in_place

        activate_in_place(y, name, alpha, beta)
    return y
