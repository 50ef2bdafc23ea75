"""JPEG pixel reconstruction: integer IDCT, chroma upsampling and color conversion.

The arithmetic follows libjpeg's defaults bit for bit, so decoded images match what
common decoders (libjpeg / libjpeg-turbo, as used by Pillow and OpenCV) produce:

* the "islow" IDCT: a separable 8-point Loeffler-Ligtenberg-Moschytz IDCT in 13-bit
  fixed point, keeping 2 extra bits between the column and the row pass;
* "fancy" (triangular) chroma upsampling for 2:1 horizontal and/or vertical ratios,
  plain replication for the other integer ratios;
* YCbCr -> RGB in 16-bit fixed point.
"""

from __future__ import annotations

import numpy as np

_CONST_BITS, _PASS1_BITS = 13, 2


def _fix(x: float, bits: int = _CONST_BITS) -> int:
    return int(x * (1 << bits) + 0.5)


# the IDCT rotation constants: c(k) = cos(k*pi/16) combinations, scaled by 2^13
_F0298, _F0390, _F0541 = _fix(0.298631336), _fix(0.390180644), _fix(0.541196100)
_F0765, _F0899, _F1175 = _fix(0.765366865), _fix(0.899976223), _fix(1.175875602)
_F1501, _F1847, _F1961 = _fix(1.501321110), _fix(1.847759065), _fix(1.961570560)
_F2053, _F2562, _F3072 = _fix(2.053119869), _fix(2.562915447), _fix(3.072711026)


def _descale(x: np.ndarray, n: int) -> np.ndarray:
    return (x + (1 << (n - 1))) >> n


def _idct_1d(x: np.ndarray, shift: int) -> np.ndarray:
    """One 8-point pass along axis 1 of (N, 8, M) int64 data, descaled by ``shift`` bits."""
    s = [x[:, i] for i in range(8)]
    # even part
    z1 = (s[2] + s[6]) * _F0541
    tmp2, tmp3 = z1 - s[6] * _F1847, z1 + s[2] * _F0765
    tmp0, tmp1 = (s[0] + s[4]) << _CONST_BITS, (s[0] - s[4]) << _CONST_BITS
    e10, e13, e11, e12 = tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2
    # odd part
    t0, t1, t2, t3 = s[7], s[5], s[3], s[1]
    z1, z2, z3, z4 = t0 + t3, t1 + t2, t0 + t2, t1 + t3
    z5 = (z3 + z4) * _F1175
    t0, t1, t2, t3 = t0 * _F0298, t1 * _F2053, t2 * _F3072, t3 * _F1501
    z1, z2 = z1 * -_F0899, z2 * -_F2562
    z3, z4 = z3 * -_F1961 + z5, z4 * -_F0390 + z5
    t0, t1, t2, t3 = t0 + z1 + z3, t1 + z2 + z4, t2 + z2 + z3, t3 + z1 + z4
    out = [e10 + t3, e11 + t2, e12 + t1, e13 + t0, e13 - t0, e12 - t1, e11 - t2, e10 - t3]
    return _descale(np.stack(out, axis=1), shift)


def idct_blocks(coefficients: np.ndarray, quant: np.ndarray) -> np.ndarray:
    """(..., 64) natural-order coefficients and a quant table -> (..., 8, 8) uint8 samples."""
    lead = coefficients.shape[:-1]
    blocks = (coefficients.reshape(-1, 8, 8).astype(np.int64)) * quant.reshape(8, 8).astype(
        np.int64
    )
    columns = _idct_1d(blocks, _CONST_BITS - _PASS1_BITS)  # along rows index: column pass
    rows = _idct_1d(columns.transpose(0, 2, 1), _CONST_BITS + _PASS1_BITS + 3).transpose(0, 2, 1)
    return np.clip(rows + 128, 0, 255).astype(np.uint8).reshape(*lead, 8, 8)


def blocks_to_plane(blocks: np.ndarray) -> np.ndarray:
    """(rows, cols, 8, 8) sample blocks -> (rows*8, cols*8) plane."""
    r, c = blocks.shape[:2]
    return blocks.transpose(0, 2, 1, 3).reshape(r * 8, c * 8)


# -- upsampling --------------------------------------------------------------------------------


def _neighbors(p: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The previous and next samples along ``axis``, replicating the edges."""
    n = p.shape[axis]
    before = np.take(p, np.r_[0, 0 : n - 1], axis=axis)
    after = np.take(p, np.r_[1:n, n - 1], axis=axis)
    return before, after


def _interleave(first: np.ndarray, second: np.ndarray, axis: int) -> np.ndarray:
    return np.stack([first, second], axis=axis + 1).reshape(
        *first.shape[:axis], first.shape[axis] * 2, *first.shape[axis + 1 :]
    )


def _fancy_h2(p: np.ndarray, bias: tuple[int, int], shift: int) -> np.ndarray:
    """Double the width: outputs 3/4 nearest + 1/4 next-nearest, with alternating rounding."""
    left, right = _neighbors(p, 1)
    return _interleave((3 * p + left + bias[0]) >> shift, (3 * p + right + bias[1]) >> shift, 1)


def _fancy_v2(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column sums 3*nearest + next-nearest row for the upper and the lower output rows."""
    above, below = _neighbors(p, 0)
    return 3 * p + above, 3 * p + below


def upsample(plane: np.ndarray, h: int, v: int, fancy: bool = True) -> np.ndarray:
    """Enlarge a chroma plane ``h`` times horizontally and ``v`` times vertically."""
    if h == v == 1:
        return plane
    p = plane.astype(np.int32)
    wide = p.shape[1] > 2
    if fancy and h == 2 and v == 2 and wide:
        upper, lower = _fancy_v2(p)
        out = _interleave(_fancy_h2(upper, (8, 7), 4), _fancy_h2(lower, (8, 7), 4), 0)
    elif fancy and h == 2 and v == 1 and wide:
        out = _fancy_h2(p, (1, 2), 2)
    elif fancy and h == 1 and v == 2:
        upper, lower = _fancy_v2(p)
        out = _interleave((upper + 1) >> 2, (lower + 2) >> 2, 0)
    else:
        out = np.repeat(np.repeat(p, v, axis=0), h, axis=1)
    return out.astype(np.uint8)


# -- color -------------------------------------------------------------------------------------

_SCALE = 16
_HALF = 1 << (_SCALE - 1)
_X = np.arange(256, dtype=np.int64) - 128
_CR_R = (_fix(1.40200, _SCALE) * _X + _HALF) >> _SCALE
_CB_B = (_fix(1.77200, _SCALE) * _X + _HALF) >> _SCALE
_CR_G = -_fix(0.71414, _SCALE) * _X
_CB_G = -_fix(0.34414, _SCALE) * _X + _HALF


def ycc_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Full-range YCbCr (JFIF) planes -> (H, W, 3) uint8 RGB."""
    y = y.astype(np.int64)
    r = y + _CR_R[cr]
    g = y + ((_CB_G[cb] + _CR_G[cr]) >> _SCALE)
    b = y + _CB_B[cb]
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)
