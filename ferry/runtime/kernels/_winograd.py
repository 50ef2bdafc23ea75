"""Winograd minimal filtering F(m x m, r x r) for 2-D stride-1 convolutions.

Each output tile of m x m pixels is computed from an a x a input tile (a = m + r - 1) as
``AT [(G g G^T) * (BT d B)] A`` (Lavin & Gray, "Fast Algorithms for Convolutional Neural
Networks", 2016). The matrices come from the Toom-Cook construction on ``a - 1`` finite
interpolation points plus the point at infinity: AT and G follow from the points, BT is
solved from the identity the three must satisfy.

numpy layout: tiles are gathered with one strided copy into D (a, a, C, tiles); each
transform is two skinny GEMMs, one per tile axis; the a*a element-wise products over
channels are one batched GEMM (a*a, M, C) @ (a*a, C, tiles). Work goes in blocks of tile
rows whose buffers stay in the last-level cache.

Accuracy (float32, random normal data): F(4x4, 3x3) on points 0, 1, -1, 1/2, -2 gives a
max error about 1.5e-6 of the output's max magnitude per tile, a few times that of a
direct float32 sum; F(2x2, 3x3) is as accurate as the direct sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

# Interpolation points (besides infinity) for each output tile size m, kernel size 3.
_POINTS = {2: (0.0, 1.0, -1.0), 4: (0.0, 1.0, -1.0, 0.5, -2.0)}
_BLOCK_BYTES = 6 << 20  # one block's transformed input (a*a, C, tiles) in bytes


@dataclass(frozen=True)
class WinogradMatrices:
    """AT (m, a), G (a, r), BT (a, a) in float64 for F(m, r)."""

    at: np.ndarray
    g: np.ndarray
    bt: np.ndarray


@cache
def winograd_matrices(m: int, r: int, points: tuple[float, ...] | None = None) -> WinogradMatrices:
    """Toom-Cook matrices for F(m, r) on ``points`` (default ``_POINTS[m]``) and infinity."""
    points = np.asarray(_POINTS[m] if points is None else points, dtype=np.float64)
    a = m + r - 1
    if len(points) != a - 1:
        raise ValueError(f"F({m}, {r}) needs {a - 1} finite points, have {len(points)}")
    at, g = np.zeros((m, a)), np.zeros((a, r))
    for j, p in enumerate(points):
        at[:, j] = p ** np.arange(m)
        g[j] = p ** np.arange(r) / np.prod([p - q for q in points if q != p])
    at[m - 1, a - 1] = g[a - 1, r - 1] = 1.0
    # correlation identity: sum_j AT[i, j] G[j, k] BT[j, l] == (l == i + k)
    system = np.einsum("ij,jk,jJ,lL->iklJL", at, g, np.eye(a), np.eye(a)).reshape(-1, a * a)
    target = np.zeros((m, r, a))
    for i in range(m):
        for k in range(r):
            target[i, k, i + k] = 1.0
    bt, *_ = np.linalg.lstsq(system, target.ravel(), rcond=None)
    bt = bt.reshape(a, a)
    if np.abs(system @ bt.ravel() - target.ravel()).max() > 1e-9:
        raise ArithmeticError(f"no Winograd input transform for F({m}, {r}) on {points}")
    return WinogradMatrices(at, g, bt)


def pack_winograd(w: np.ndarray, m: int) -> np.ndarray:
    """Transformed weights U (a*a, M, C) = G w G^T per (output, input) channel pair."""
    mats = winograd_matrices(m, w.shape[-1])
    u = np.einsum("ak,mckl,bl->abmc", mats.g, w.astype(np.float64), mats.g)
    return np.ascontiguousarray(u.reshape(-1, *w.shape[:2]), dtype=w.dtype)


@cache
def _transforms(m: int, r: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """BT (a, a) and AT (m, a) in ``dtype``."""
    mats = winograd_matrices(m, r)
    return mats.bt.astype(dtype), mats.at.astype(dtype)


def _both_axes(matrix: np.ndarray, data: np.ndarray, scratch: np.ndarray, out: np.ndarray) -> None:
    """out[i, j] = sum_kl matrix[i, k] matrix[j, l] data[k, l]: the 2-D transform of every
    tile, applied one axis at a time (two skinny GEMMs instead of one with the Kronecker
    product: a third of the arithmetic)."""
    a = data.shape[0]
    rows = matrix.shape[0]
    first = scratch.reshape(rows, a, -1)
    np.matmul(matrix, data.reshape(a, -1), out=first.reshape(rows, -1))
    np.matmul(matrix, first, out=out.reshape(rows, rows, -1))


def winograd_conv(xp: np.ndarray, u: np.ndarray, m: int, out: np.ndarray, epilogue=None) -> None:
    """Stride-1 3x3 correlation of the padded image ``xp`` (C, >= m*TH+2, >= m*TW+2) into
    ``out`` (M, OH, OW); ``u`` from ``pack_winograd``. ``epilogue(rows)`` is called on each
    finished block of output rows (a slice object) while it is still in cache."""
    a = int(round(np.sqrt(u.shape[0])))
    r = a - m + 1
    c, (mo, oh, ow) = xp.shape[0], out.shape
    th, tw = -(-oh // m), -(-ow // m)
    bt, at = _transforms(m, r, xp.dtype)
    step = max(1, min(th, _BLOCK_BYTES // (a * a * c * tw * xp.itemsize)))
    starts = range(0, th, step)
    s_c, s_y, s_x = xp.strides

    def block(index: int) -> None:
        t0 = starts[index]
        nt = min(step, th - t0)
        span = nt * tw
        d = np.empty((a, a, c, span), dtype=xp.dtype)
        src = np.lib.stride_tricks.as_strided(
            xp[:, t0 * m:], (a, a, c, nt, tw), (s_y, s_x, s_c, m * s_y, m * s_x), writeable=False)
        np.copyto(d.reshape(a, a, c, nt, tw), src)
        v = np.empty((a * a, c, span), dtype=xp.dtype)
        _both_axes(bt, d, np.empty_like(d), v)
        prod = np.matmul(u, v)  # (a*a, M, span)
        tiles = np.empty((m * m, mo, span), dtype=xp.dtype)
        _both_axes(at, prod.reshape(a, a, mo, span), np.empty((m, a, mo, span), dtype=xp.dtype), tiles)
        _scatter_tiles(tiles.reshape(m, m, mo, nt, tw), out, t0 * m)
        if epilogue is not None:
            epilogue(slice(t0 * m, min(oh, (t0 + nt) * m)))

    for index in range(len(starts)):
        block(index)


def _scatter_tiles(tiles: np.ndarray, out: np.ndarray, row0: int) -> None:
    """Write tiles (m, m, M, nt, TW) into out[:, row0:row0 + m*nt], cropping the edges."""
    m, _, mo, nt, tw = tiles.shape
    rows = min(out.shape[1] - row0, m * nt)
    full_rows, full_cols = rows // m, out.shape[2] // m
    s_m, s_y, s_x = out.strides
    if full_rows and full_cols:
        dst = np.lib.stride_tricks.as_strided(
            out[:, row0:], (m, m, mo, full_rows, full_cols), (s_y, s_x, s_m, m * s_y, m * s_x))
        np.copyto(dst, tiles[:, :, :, :full_rows, :full_cols])
    if full_rows * m < rows or full_cols * m < out.shape[2]:  # partial tiles at the edges
        grid = tiles.transpose(2, 3, 0, 4, 1).reshape(mo, nt * m, tw * m)
        block = out[:, row0:row0 + rows]
        block[:, full_rows * m:] = grid[:, full_rows * m:rows, :out.shape[2]]
        block[:, :, full_cols * m:] = grid[:, :rows, full_cols * m:out.shape[2]]
