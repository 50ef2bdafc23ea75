"""BMP and Netpbm (PBM/PGM/PPM in ASCII and binary, PAM) decoders in numpy.

BMP: core and info headers (v1-v5), 1/4/8-bit palettes, RLE4/RLE8, 16/24/32-bit with
or without bitfield masks, bottom-up and top-down rows. Netpbm: P1-P7, any maxval
(samples rescaled to 0..255).
"""

from __future__ import annotations

import re
import struct

import numpy as np

from ferry.runtime.kernels.image_samples import check_size, unpack_samples

# -- BMP ---------------------------------------------------------------------------------------

_BI_RGB, _BI_RLE8, _BI_RLE4, _BI_BITFIELDS, _BI_ALPHABITFIELDS = 0, 1, 2, 3, 6


def _bmp_header(data: bytes) -> dict:
    if len(data) < 26:
        raise ValueError("BMP: stream too short")
    (offset,) = struct.unpack_from("<I", data, 10)
    (size,) = struct.unpack_from("<I", data, 14)
    if size == 12:  # BITMAPCOREHEADER
        width, height, _, bpp = struct.unpack_from("<HhHH", data, 18)
        return dict(offset=offset, size=size, width=width, height=height, bpp=bpp,
                    compression=_BI_RGB, colors=0, masks=None, entry=3)  # fmt: skip
    if size < 40 or len(data) < 14 + size:
        raise ValueError(f"BMP: unsupported header size {size}")
    width, height, _, bpp, compression = struct.unpack_from("<iiHHI", data, 18)
    (colors,) = struct.unpack_from("<I", data, 46)
    masks = None  # BI_RGB ignores alpha; bitfield masks follow the 40-byte header fields
    if compression in (_BI_BITFIELDS, _BI_ALPHABITFIELDS):
        count = 4 if compression == _BI_ALPHABITFIELDS or size >= 56 else 3
        masks = struct.unpack_from(f"<{count}I", data, 54)
    return dict(offset=offset, size=size, width=width, height=height, bpp=bpp,
                compression=compression, colors=colors, masks=masks, entry=4)  # fmt: skip


def _bmp_palette(data: bytes, header: dict) -> np.ndarray:
    count = header["colors"] or 1 << header["bpp"]
    start, entry = 14 + header["size"], header["entry"]
    table = np.frombuffer(data, np.uint8, count * entry, start).reshape(count, entry)
    return np.ascontiguousarray(table[:, 2::-1])  # BGR(X) -> RGB


def _rle(data: bytes, pos: int, width: int, height: int, four: bool) -> np.ndarray:
    """Expand RLE8/RLE4 into palette indices, rows bottom-up as stored."""
    out = np.zeros((height, width), np.uint8)
    x = y = 0
    while pos + 1 < len(data) and y < height:
        count, value = data[pos], data[pos + 1]
        pos += 2
        if count:  # encoded run
            run = [value >> 4, value & 15] * count if four else [value] * count
            end = min(width, x + count)
            out[y, x:end] = run[: end - x]
            x += count
        elif value == 0:
            x, y = 0, y + 1
        elif value == 1:
            break
        elif value == 2:
            x, y = x + data[pos], y + data[pos + 1]
            pos += 2
        else:  # absolute run of `value` indices, padded to 16 bits
            nbytes = (value + 1) // 2 if four else value
            raw = data[pos : pos + nbytes]
            run = [n for b in raw for n in (b >> 4, b & 15)] if four else list(raw)
            end = min(width, x + value)
            out[y, x:end] = run[: end - x]
            x += value
            pos += nbytes + (nbytes & 1)
    return out


def _bitfields(words: np.ndarray, masks) -> np.ndarray:
    """Extract channels through bit masks, scaling each to 8 bits (rounded)."""
    channels = []
    for mask in masks:
        if not mask:
            continue
        shift = (mask & -mask).bit_length() - 1
        top = mask >> shift
        field = (words >> np.uint32(shift)) & np.uint32(top)
        channels.append(((field.astype(np.uint64) * 255 + top // 2) // top).astype(np.uint8))
    return np.stack(channels, axis=-1)


def _bmp_rows(data: bytes, header: dict, height: int) -> np.ndarray:
    width, bpp = header["width"], header["bpp"]
    stride = ((width * bpp + 31) // 32) * 4
    if header["offset"] + stride * height > len(data):
        raise ValueError("BMP: pixel data is truncated")
    rows = np.frombuffer(data, np.uint8, stride * height, header["offset"]).reshape(height, stride)
    if bpp <= 8:
        return unpack_samples(rows, width, bpp)
    if bpp == 24:
        return rows[:, : width * 3].reshape(height, width, 3)[..., ::-1]
    words = rows[:, : width * bpp // 8].copy().view("<u2" if bpp == 16 else "<u4")
    masks = header["masks"] or ((0x7C00, 0x3E0, 0x1F) if bpp == 16 else (0xFF0000, 0xFF00, 0xFF))
    return _bitfields(words.astype(np.uint32), masks)


def decode_bmp(data: bytes) -> np.ndarray:
    """Decode a Windows bitmap to (H, W, C) uint8 (RGB, or RGBA when it has an alpha mask)."""
    header = _bmp_header(data)
    width, height, bpp = header["width"], abs(header["height"]), header["bpp"]
    check_size(width, height, "BMP")
    if bpp not in (1, 4, 8, 16, 24, 32):
        raise ValueError(f"BMP: unsupported bit depth {bpp}")
    compression = header["compression"]
    if compression in (_BI_RLE8, _BI_RLE4):
        pixels = _rle(data, header["offset"], width, height, compression == _BI_RLE4)
    elif compression in (_BI_RGB, _BI_BITFIELDS, _BI_ALPHABITFIELDS):
        pixels = _bmp_rows(data, header, height)
    else:
        raise ValueError(f"BMP: unsupported compression {compression} (JPEG/PNG in BMP)")
    if bpp <= 8:
        palette = _bmp_palette(data, header)
        pixels = palette[np.minimum(pixels, len(palette) - 1)]
    if header["height"] > 0:  # bottom-up
        pixels = pixels[::-1]
    return np.ascontiguousarray(pixels, dtype=np.uint8)


# -- Netpbm ------------------------------------------------------------------------------------


def _pnm_tokens(data: bytes, count: int, pos: int) -> tuple[list[bytes], int]:
    """Read ``count`` whitespace-separated header tokens (skipping # comments)."""
    tokens = []
    while len(tokens) < count:
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            while pos < len(data) and data[pos] not in b"\r\n":
                pos += 1
            continue
        start = pos
        while pos < len(data) and not data[pos : pos + 1].isspace() and data[pos] != ord("#"):
            pos += 1
        if start == pos:
            raise ValueError("PNM: truncated header")
        tokens.append(data[start:pos])
    return tokens, pos + 1  # one whitespace byte ends the header


def _pam_header(data: bytes) -> tuple[int, int, int, int, int]:
    fields, pos = {}, 3
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise ValueError("PAM: header without ENDHDR")
        line = data[pos:end].split(b"#")[0].split()
        pos = end + 1
        if line and line[0] == b"ENDHDR":
            break
        if line:
            fields[line[0]] = line[1:]
    try:
        width, height, depth, maxval = (
            int(fields[k][0]) for k in (b"WIDTH", b"HEIGHT", b"DEPTH", b"MAXVAL")
        )
    except (KeyError, IndexError, ValueError):
        raise ValueError("PAM: header needs WIDTH, HEIGHT, DEPTH and MAXVAL") from None
    return width, height, depth, maxval, pos


def _scale(samples: np.ndarray, maxval: int) -> np.ndarray:
    if maxval == 255:
        return samples.astype(np.uint8)
    if not 0 < maxval < 65536:
        raise ValueError(f"PNM: maxval {maxval} out of range")
    return ((samples.astype(np.uint32) * 255 + maxval // 2) // maxval).astype(np.uint8)


def decode_pnm(data: bytes) -> np.ndarray:
    """Decode PBM/PGM/PPM (ASCII P1-P3, binary P4-P6) or PAM (P7) to (H, W, C) uint8."""
    kind = data[1] - ord("0")
    if kind == 7:
        width, height, channels, maxval, pos = _pam_header(data)
    else:
        count = 2 if kind in (1, 4) else 3
        tokens, pos = _pnm_tokens(data, count, 2)
        width, height = int(tokens[0]), int(tokens[1])
        maxval = 1 if count == 2 else int(tokens[2])
        channels = 3 if kind in (3, 6) else 1
    check_size(width, height, "PNM")
    size = width * height * channels
    if kind in (1, 2, 3):
        body = re.sub(rb"#[^\r\n]*", b" ", data[pos:])
        values = re.findall(rb"[01]", body) if kind == 1 else body.split()
        samples = np.array([int(v) for v in values[:size]], np.uint32)
    elif kind == 4:
        stride = (width + 7) // 8
        rows = np.frombuffer(data, np.uint8, stride * height, pos).reshape(height, stride)
        samples = np.unpackbits(rows, axis=1)[:, :width]
    else:
        dtype = np.dtype(">u2") if maxval > 255 else np.uint8
        samples = np.frombuffer(data, dtype, size, pos)
    if samples.size < size:
        raise ValueError("PNM: pixel data is truncated")
    samples = samples[:size].reshape(height, width, channels)
    if kind in (1, 4):  # 1 is black
        return ((1 - samples) * 255).astype(np.uint8)
    return _scale(samples, maxval)
