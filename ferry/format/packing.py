"""Sub-byte element packing of the ONNX wire format.

4-, 2- and 6-bit types are stored as a little-endian bit stream: element ``i`` takes
bits ``[i*w, (i+1)*w)`` of the stream, the last byte padded with zeros. In memory
ferry keeps one element per byte (see :mod:`ferry.ir.dtypes`).
"""

from __future__ import annotations

import numpy as np

from ferry.ir.dtypes import DataType

__all__ = ["pack_bits", "unpack_bits", "SIGNED_SUBBYTE"]

SIGNED_SUBBYTE = {DataType.INT4: 4, DataType.INT2: 2}


def pack_bits(values: np.ndarray, width: int) -> bytes:
    """Pack the low ``width`` bits of each uint8 in ``values`` into a bit stream."""
    flat = np.ascontiguousarray(values, dtype=np.uint8).reshape(-1, 1)
    bits = np.unpackbits(flat, axis=1, bitorder="little")[:, :width]
    return np.packbits(bits.reshape(-1), bitorder="little").tobytes()


def unpack_bits(data: bytes | np.ndarray, width: int, count: int, *, signed: bool) -> np.ndarray:
    """Unpack ``count`` elements of ``width`` bits; sign-extend when ``signed``."""
    stream = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, memoryview)) else data
    needed = (count * width + 7) // 8
    if stream.size < needed:
        raise ValueError(f"{count} elements of {width} bits need {needed} bytes, got {stream.size}")
    bits = np.unpackbits(stream[:needed], bitorder="little")[: count * width].reshape(count, width)
    padded = np.zeros((count, 8), dtype=np.uint8)
    padded[:, :width] = bits
    values = np.packbits(padded, axis=1, bitorder="little").reshape(count)
    if signed:
        values = values.astype(np.int8)
        values[values >= (1 << (width - 1))] -= 1 << width
    return values
