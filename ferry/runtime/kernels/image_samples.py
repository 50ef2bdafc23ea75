"""Sample-level helpers shared by the image decoders."""

from __future__ import annotations

import numpy as np


def unpack_samples(rows: np.ndarray, count: int, bits: int) -> np.ndarray:
    """Split each byte row of (rows, stride) uint8 into its first ``count`` ``bits``-bit samples
    (MSB first), for bits in 1, 2, 4 or 8."""
    if bits == 8:
        return rows[:, :count]
    if bits not in (1, 2, 4):
        raise ValueError(f"unsupported sample size of {bits} bits")
    unpacked = np.unpackbits(rows, axis=1)[:, : count * bits].reshape(rows.shape[0], count, bits)
    weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.uint8)
    return (unpacked * weights).sum(axis=2, dtype=np.uint8)


def stretch(values: np.ndarray, bits: int) -> np.ndarray:
    """Scale ``bits``-bit gray levels to 0..255 (for bits 1, 2, 4: exact multiples of 255)."""
    if bits == 8:
        return values.astype(np.uint8)
    if bits == 16:
        return (values >> 8).astype(np.uint8)
    return (values.astype(np.uint16) * (255 // ((1 << bits) - 1))).astype(np.uint8)


MAX_PIXELS = 1 << 26  # 64 Mi pixels: larger sizes are taken as corrupt headers (or bombs)


def check_size(width: int, height: int, what: str) -> None:
    """Reject empty or implausibly large images before allocating them."""
    if width <= 0 or height <= 0:
        raise ValueError(f"{what}: bad image size {width}x{height}")
    if width * height > MAX_PIXELS:
        raise ValueError(f"{what}: image of {width}x{height} pixels exceeds the {MAX_PIXELS} limit")


def cmyk_to_rgb(cmyk: np.ndarray, inverted: bool) -> np.ndarray:
    """(H, W, 4) CMYK (Adobe streams store it inverted) -> RGB: (255-C)(255-K)/255, rounded."""
    ink = cmyk.astype(np.int64)
    if inverted:
        ink = 255 - ink
    white = 255 - ink[..., 3:]
    product = ink[..., :3] * white + 128
    return np.clip(white - (((product >> 8) + product) >> 8), 0, 255).astype(np.uint8)
