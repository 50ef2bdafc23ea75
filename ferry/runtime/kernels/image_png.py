"""A PNG decoder in numpy + zlib: every color type, bit depth, filter type and Adam7.

Sub-byte gray samples are scaled to 0..255, 16-bit samples keep their high byte, palette
images expand through PLTE (with tRNS as alpha), and a tRNS color key on gray/RGB images
becomes an alpha channel.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from ferry.runtime.kernels.image_samples import check_size, stretch, unpack_samples

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# Adam7 passes: (row start, column start, row step, column step)
_ADAM7 = (
    (0, 0, 8, 8),
    (0, 4, 8, 8),
    (4, 0, 8, 4),
    (0, 2, 4, 4),
    (2, 0, 4, 2),
    (0, 1, 2, 2),
    (1, 0, 2, 1),
)


def _chunks(data: bytes):
    """Yield (type, payload) for each chunk, checking lengths and CRCs."""
    pos = len(_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            raise ValueError(f"PNG: chunk {kind!r} is truncated")
        payload = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(kind + payload) != crc:
            raise ValueError(f"PNG: chunk {kind!r} has a bad CRC")
        yield kind, payload
        if kind == b"IEND":
            return
        pos = end + 4
    raise ValueError("PNG: missing IEND chunk")


def _read(data: bytes) -> tuple[dict, bytes, np.ndarray | None, bytes | None]:
    header, idat, palette, trns = None, [], None, None
    for kind, payload in _chunks(data):
        if kind == b"IHDR":
            w, h, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", payload)
            header = dict(width=w, height=h, depth=depth, ctype=ctype, interlace=interlace)
            if (
                ctype not in _CHANNELS
                or depth not in _DEPTHS[ctype]
                or comp
                or filt
                or interlace > 1
            ):
                raise ValueError(
                    f"PNG: unsupported header (color type {ctype}, bit depth {depth}, "
                    f"compression {comp}, filter {filt}, interlace {interlace})"
                )
        elif kind == b"PLTE":
            palette = np.frombuffer(payload, np.uint8).reshape(-1, 3)
        elif kind == b"tRNS":
            trns = payload
        elif kind == b"IDAT":
            idat.append(payload)
    if header is None or not idat:
        raise ValueError("PNG: missing IHDR or IDAT chunk")
    width, height = header["width"], header["height"]
    check_size(width, height, "PNG")
    raw = zlib.decompressobj().decompress(b"".join(idat), _raw_size(header))  # ignore extra data
    return header, raw, palette, trns


def _passes(header: dict) -> list[tuple[int, int, int, int, int, int]]:
    """(row start, column start, row step, column step, rows, columns) of each pass."""
    width, height = header["width"], header["height"]
    passes = _ADAM7 if header["interlace"] else ((0, 0, 1, 1),)
    return [
        (r0, c0, dr, dc, -(-(height - r0) // dr), -(-(width - c0) // dc))
        for r0, c0, dr, dc in passes
        if width > c0 and height > r0
    ]


def _raw_size(header: dict) -> int:
    """Bytes of filtered scanlines: each pass row has a filter byte, then packed samples."""
    bits = _CHANNELS[header["ctype"]] * header["depth"]
    return sum(rows * (1 + (cols * bits + 7) // 8) for *_, rows, cols in _passes(header))


def _paeth_row(line: bytearray, prior: bytes, bpp: int) -> None:
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        line[i] = (line[i] + pred) & 0xFF


def _average_row(line: bytearray, prior: bytes, bpp: int) -> None:
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        line[i] = (line[i] + ((a + prior[i]) >> 1)) & 0xFF


def _unfilter(raw: bytes, rows: int, stride: int, bpp: int) -> np.ndarray:
    """Undo the per-scanline filters of ``rows`` scanlines of ``stride`` bytes."""
    if len(raw) < rows * (stride + 1):
        raise ValueError("PNG: image data is truncated")
    out = np.zeros((rows, stride), np.uint8)
    prior = bytes(stride)
    for r in range(rows):
        start = r * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw, np.uint8, stride, start + 1)
        if kind == 0:
            current = line
        elif kind == 1:  # Sub: running sum per byte lane of each pixel (mod 256)
            pad = (-stride) % bpp
            lanes = np.concatenate([line, np.zeros(pad, np.uint8)]).reshape(-1, bpp)
            current = np.cumsum(lanes, axis=0, dtype=np.uint8).reshape(-1)[:stride]
        elif kind == 2:
            current = line + np.frombuffer(prior, np.uint8)
        elif kind in (3, 4):
            buffer = bytearray(line.tobytes())
            (_average_row if kind == 3 else _paeth_row)(buffer, prior, bpp)
            current = np.frombuffer(bytes(buffer), np.uint8)
        else:
            raise ValueError(f"PNG: unknown filter type {kind} on row {r}")
        out[r] = current
        prior = current.tobytes()
    return out


def _samples(rows: np.ndarray, width: int, depth: int, channels: int) -> np.ndarray:
    """Unfiltered scanline bytes -> integer samples (rows, width, channels)."""
    if depth == 16:
        values = rows.view(">u2")[:, : width * channels]
    else:
        values = unpack_samples(rows, width * channels, depth)
    return values.reshape(rows.shape[0], width, channels)


def _pixels(raw: bytes, header: dict, channels: int) -> np.ndarray:
    """All samples (height, width, channels), de-interlacing Adam7 if needed."""
    depth = header["depth"]
    bpp = max(1, channels * depth // 8)
    image = np.zeros(
        (header["height"], header["width"], channels), ">u2" if depth == 16 else np.uint8
    )
    offset = 0
    for r0, c0, dr, dc, rows, cols in _passes(header):
        stride = (cols * channels * depth + 7) // 8
        image[r0::dr, c0::dc] = _samples(
            _unfilter(raw[offset:], rows, stride, bpp), cols, depth, channels
        )
        offset += rows * (stride + 1)
    return image


def _color_key(samples: np.ndarray, trns: bytes, channels: int) -> np.ndarray:
    """Alpha from a tRNS color key (gray or RGB images): 0 where the pixel matches."""
    key = np.frombuffer(trns[: 2 * channels], ">u2").astype(samples.dtype)
    return np.where(np.all(samples == key, axis=2), 0, 255).astype(np.uint8)[..., None]


def decode_png(data: bytes) -> np.ndarray:
    """Decode a PNG stream to (H, W, C) uint8, C in 1..4 (gray, gray+alpha, RGB, RGBA)."""
    header, raw, palette, trns = _read(data)
    ctype, depth = header["ctype"], header["depth"]
    samples = _pixels(raw, header, _CHANNELS[ctype])
    if ctype == 3:
        if palette is None:
            raise ValueError("PNG: palette image without a PLTE chunk")
        index = samples[..., 0]
        if index.max() >= len(palette):
            raise ValueError("PNG: palette index out of range")
        rgb = palette[index]
        if trns is None:
            return rgb
        alpha = np.full(256, 255, np.uint8)
        alpha[: len(trns)] = np.frombuffer(trns[:256], np.uint8)
        return np.concatenate([rgb, alpha[index][..., None]], axis=2)
    alpha = _color_key(samples, trns, _CHANNELS[ctype]) if trns and ctype in (0, 2) else None
    image = stretch(samples, depth)  # sub-byte depths only occur on gray images here
    return image if alpha is None else np.concatenate([image, alpha], axis=2)
