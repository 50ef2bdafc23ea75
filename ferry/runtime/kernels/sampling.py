"""Spatial sampling kernels: GridSample (N-d, linear/nearest/cubic) and AffineGrid."""

from __future__ import annotations

import itertools

import numpy as np

from ferry.runtime.registry import kernel

_MODES = {"bilinear": "linear", "bicubic": "cubic", "linear": "linear", "cubic": "cubic",
          "nearest": "nearest"}
_CUBIC_A = -0.75


def _unnormalize(g: np.ndarray, size: int, align_corners: bool) -> np.ndarray:
    """Grid value in [-1, 1] to a pixel coordinate along an axis of length ``size``."""
    if align_corners:
        return (g + 1) / 2 * (size - 1)
    return ((g + 1) * size - 1) / 2


def _reflect(c: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fold coordinates into [low, high] by repeated mirroring at both ends."""
    span = high - low
    if span <= 0:
        return np.zeros_like(c)
    dist = np.abs(c - low)
    flips = np.floor(dist / span)
    extra = dist - flips * span
    return np.where(flips % 2 == 0, low + extra, high - extra)


def _apply_padding(c: np.ndarray, size: int, padding_mode: str, align_corners: bool):
    """Move coordinates into the input for border/reflection padding; zeros leaves them."""
    if padding_mode == "border":
        return np.clip(c, 0, size - 1)
    if padding_mode == "reflection":
        low, high = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
        return np.clip(_reflect(c, low, high), 0, size - 1)
    return c


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """Keys cubic convolution weights (A = -0.75) for taps at offsets -1, 0, 1, 2."""
    def near(d):
        return ((_CUBIC_A + 2) * d - (_CUBIC_A + 3)) * d * d + 1

    def far(d):
        return ((_CUBIC_A * d - 5 * _CUBIC_A) * d + 8 * _CUBIC_A) * d - 4 * _CUBIC_A

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _axis_taps(c, size, mode, padding_mode, align_corners):
    """[(index, weight)] along one axis; weights are zero for taps outside the input."""
    if mode == "nearest":
        c = _apply_padding(c, size, padding_mode, align_corners)
        taps = [(np.rint(c).astype(np.int64), np.ones_like(c))]
    elif mode == "linear":
        c = _apply_padding(c, size, padding_mode, align_corners)
        low = np.floor(c)
        taps = [(low.astype(np.int64), 1 - (c - low)), (low.astype(np.int64) + 1, c - low)]
    else:
        low = np.floor(c)
        taps = []
        for offset, weight in zip(range(-1, 3), _cubic_weights(c - low), strict=True):
            index = _apply_padding(low + offset, size, padding_mode, align_corners)
            taps.append((np.rint(index).astype(np.int64), weight))
    return [(np.clip(i, 0, size - 1), w * ((i >= 0) & (i < size))) for i, w in taps]


@kernel("GridSample", since=(16, 20, 22))
def grid_sample(x, grid, *, align_corners, mode, padding_mode):
    """Sample X at normalized grid locations with linear/nearest/cubic interpolation."""
    rank = x.ndim - 2
    if grid.ndim != x.ndim or grid.shape[-1] != rank or grid.shape[0] != x.shape[0]:
        raise ValueError(f"grid must have shape (N, *out, {rank}) for X{x.shape}, got {grid.shape}")
    if mode not in _MODES or padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"unsupported GridSample mode {mode!r} / padding_mode {padding_mode!r}")
    mode = _MODES[mode]
    ctype = np.float64 if x.dtype == np.float64 or grid.dtype == np.float64 else np.float32
    axes = []
    for d, size in enumerate(x.shape[2:]):
        c = _unnormalize(grid[..., rank - 1 - d].astype(ctype), size, bool(align_corners))
        axes.append(_axis_taps(c, size, mode, padding_mode, bool(align_corners)))
    xt = np.moveaxis(x, 1, -1)  # (N, *in, C)
    batch = np.arange(x.shape[0]).reshape(-1, *([1] * rank))
    numeric = x.dtype.kind in "biufc"
    out = np.zeros((*grid.shape[:-1], x.shape[1]), dtype=ctype if numeric else x.dtype)
    for combo in itertools.product(*axes):
        values = xt[(batch, *(index for index, _ in combo))]
        weight = np.prod([w for _, w in combo], axis=0)
        if numeric:
            out += values * weight[..., None]
        else:
            out = np.where(weight[..., None] > 0, values, out)
    return np.moveaxis(out, -1, 1).astype(x.dtype)


def _base_coords(size: int, align_corners: bool) -> np.ndarray:
    """Normalized pixel-centre (or corner-aligned) coordinates in [-1, 1] along one axis."""
    if size <= 1:
        return np.zeros(max(size, 0))
    if align_corners:
        return np.linspace(-1.0, 1.0, size)
    return (np.arange(size) * 2 + 1) / size - 1


@kernel("AffineGrid", since=20)
def affine_grid(theta, size, *, align_corners):
    """Normalized sampling grid (N, *spatial, r) from affine matrices theta (N, r, r+1)."""
    shape = [int(v) for v in np.asarray(size).reshape(-1)]
    spatial = shape[2:]
    rank = len(spatial)
    if theta.shape[1:] != (rank, rank + 1) or theta.shape[0] != shape[0]:
        raise ValueError(f"theta must have shape ({shape[0]}, {rank}, {rank + 1}) for size "
                         f"{shape}, got {theta.shape}")
    coords = np.meshgrid(*(_base_coords(s, bool(align_corners)) for s in spatial), indexing="ij")
    # homogeneous (x, y[, z], 1): the innermost spatial axis comes first
    base = np.stack([*reversed(coords), np.ones(spatial)], axis=-1).reshape(-1, rank + 1)
    grid = np.einsum("pk,nrk->npr", base, theta.astype(np.float64))
    return grid.reshape(shape[0], *spatial, rank).astype(theta.dtype)
