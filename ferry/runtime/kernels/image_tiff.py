"""A TIFF decoder in numpy + stdlib (first image of a classic little/big-endian TIFF).

Strips or tiles, chunky or planar samples, 1/2/4/8/16-bit integer samples, compression
none / PackBits / LZW / Deflate / LZMA, horizontal predictor, and the bilevel, gray,
RGB(A), palette and CMYK photometric interpretations.
"""

from __future__ import annotations

import lzma
import struct
import zlib

import numpy as np

from ferry.runtime.kernels.image_samples import (
    check_size,
    cmyk_to_rgb,
    stretch,
    unpack_samples,
)

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_TYPE_CODES = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I"}
_COMPRESSIONS = {
    2: "CCITT RLE", 3: "CCITT fax 3", 4: "CCITT fax 4", 6: "old-style JPEG", 7: "JPEG",
    34712: "JPEG 2000", 50000: "Zstandard", 50001: "WebP", 34676: "SGILog",
}  # fmt: skip
_REVERSED_BITS = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def _ifd(data: bytes) -> dict[int, tuple]:
    """The tags of the first image file directory: {tag: tuple of values}."""
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(order + "I", data, 4)
    if offset + 2 > len(data):
        raise ValueError("TIFF: image directory offset out of range")
    (count,) = struct.unpack_from(order + "H", data, offset)
    tags = {}
    for i in range(count):
        tag, kind, n, value = struct.unpack_from(order + "HHI4s", data, offset + 2 + 12 * i)
        size = _TYPE_SIZES.get(kind, 0) * n
        raw = value if size <= 4 else data[struct.unpack(order + "I", value)[0] :][:size]
        if len(raw) < size:
            raise ValueError(f"TIFF: tag {tag} points past the end of the stream")
        if kind in _TYPE_CODES:
            tags[tag] = struct.unpack(f"{order}{n}{_TYPE_CODES[kind]}", raw[:size])
        elif kind in (5, 10):  # rationals
            pairs = struct.unpack(f"{order}{2 * n}{'I' if kind == 5 else 'i'}", raw[:size])
            tags[tag] = tuple(a / b if b else 0.0 for a, b in zip(pairs[::2], pairs[1::2]))
        else:
            tags[tag] = (raw[:size],)
    tags[-1] = (order,)
    return tags


def _packbits(chunk: bytes) -> bytes:
    out, pos = bytearray(), 0
    while pos < len(chunk):
        n = chunk[pos]
        pos += 1
        if n < 128:
            out += chunk[pos : pos + n + 1]
            pos += n + 1
        elif n > 128:
            out += chunk[pos : pos + 1] * (257 - n)
            pos += 1
    return bytes(out)


def _lzw(chunk: bytes) -> bytes:
    """TIFF LZW: MSB-first codes of 9-12 bits, Clear=256, EOI=257, early code-width change."""
    if chunk[:2] == b"\x00\x01":
        raise ValueError("TIFF: old-style (LSB-first) LZW is not supported")
    out = bytearray()
    initial = [bytes([i]) for i in range(256)] + [b"", b""]
    table = list(initial)
    width, old, bits, nbits, pos = 9, None, 0, 0, 0
    while True:
        while nbits < width and pos < len(chunk):
            bits, nbits, pos = (bits << 8) | chunk[pos], nbits + 8, pos + 1
        if nbits < width:
            break
        nbits -= width
        code = bits >> nbits
        bits &= (1 << nbits) - 1
        if code == 257:
            break
        if code == 256:
            table = list(initial)
            width, old = 9, None
            continue
        if old is None:
            entry = table[code]
        elif code < len(table):
            entry = table[code]
            table.append(table[old] + entry[:1])
        elif code == len(table):
            entry = table[old] + table[old][:1]
            table.append(entry)
        else:
            raise ValueError(f"TIFF: corrupt LZW stream (code {code})")
        out += entry
        old = code
        if len(table) + 1 >= 1 << width and width < 12:
            width += 1
    return bytes(out)


def _decompress(chunk: bytes, compression: int) -> bytes:
    if compression == 1:
        return chunk
    if compression == 32773:
        return _packbits(chunk)
    if compression == 5:
        return _lzw(chunk)
    if compression in (8, 32946):
        return zlib.decompressobj().decompress(chunk)
    if compression == 34925:
        return lzma.decompress(chunk)
    name = _COMPRESSIONS.get(compression, f"code {compression}")
    raise ValueError(f"TIFF: {name} compression is not supported")


def _unpack(block: bytes, rows: int, width: int, spp: int, bits: int, order: str) -> np.ndarray:
    """Bytes of ``rows`` byte-aligned rows -> samples (rows, width, spp)."""
    stride = (width * spp * bits + 7) // 8
    need = rows * stride
    raw = np.frombuffer(block[:need].ljust(need, b"\x00"), np.uint8).reshape(rows, stride)
    if bits == 16:
        values = raw.view(order + "u2").astype(np.uint16)[:, : width * spp]
    elif bits in (1, 2, 4, 8):
        values = unpack_samples(raw, width * spp, bits)
    else:
        raise ValueError(f"TIFF: {bits}-bit samples are not supported")
    return values.reshape(rows, width, spp)


def _chunk_layout(tags: dict, width: int, height: int) -> tuple[tuple, tuple, int, int]:
    """(offsets, byte counts, chunk width, chunk height) for strips or tiles."""
    if 324 in tags:
        return tags[324], tags.get(325, ()), tags[322][0], tags[323][0]
    if 273 not in tags:
        raise ValueError("TIFF: no strip or tile offsets")
    rows = min(tags.get(278, (height,))[0], height)
    return tags[273], tags.get(279, ()), width, rows


def _planes(data: bytes, tags: dict, width: int, height: int) -> np.ndarray:
    """All samples (height, width, spp), assembled from the compressed strips/tiles."""
    order, spp = tags[-1][0], tags.get(277, (1,))[0]
    bits, compression = tags.get(258, (1,))[0], tags.get(259, (1,))[0]
    planar = tags.get(284, (1,))[0] == 2
    offsets, counts, cw, ch = _chunk_layout(tags, width, height)
    check_size(cw, ch, "TIFF strip/tile")
    if not 1 <= spp <= 16:
        raise ValueError(f"TIFF: {spp} samples per pixel")
    across, down = -(-width // cw), -(-height // ch)
    per_chunk = 1 if planar else spp
    image = np.zeros((down * ch, across * cw, spp), np.uint16 if bits == 16 else np.uint8)
    for index, offset in enumerate(offsets):
        plane, tile = divmod(index, across * down) if planar else (0, index)
        if plane >= spp:
            break
        size = counts[index] if index < len(counts) else len(data) - offset
        block = _decompress(data[offset : offset + size], compression)
        if tags.get(266, (1,))[0] == 2:
            block = block.translate(_REVERSED_BITS)
        samples = _unpack(block, ch, cw, per_chunk, bits, order)
        if tags.get(317, (1,))[0] == 2:  # horizontal differencing
            samples = np.cumsum(samples, axis=1, dtype=samples.dtype)
        elif tags.get(317, (1,))[0] != 1:
            raise ValueError("TIFF: only the horizontal differencing predictor is supported")
        r, c = divmod(tile, across)
        channels = slice(plane, plane + 1) if planar else slice(None)
        image[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw, channels] = samples
    return image[:height, :width]


def _color(samples: np.ndarray, tags: dict, bits: int) -> np.ndarray:
    """Apply the photometric interpretation: (H, W, C) uint8, C in 1..4."""
    photometric = tags.get(262, (1,))[0]
    spp = samples.shape[2]
    alpha = bool(set(tags.get(338, ())) & {1, 2})
    if photometric == 3:
        cmap = np.asarray(tags[320], np.uint16).reshape(3, -1).T
        return (cmap[np.minimum(samples[..., 0], len(cmap) - 1)] >> 8).astype(np.uint8)
    pixels = stretch(samples, bits)
    if photometric in (0, 1):
        gray = 255 - pixels[..., :1] if photometric == 0 else pixels[..., :1]
        return np.concatenate([gray, pixels[..., 1:2]], axis=2) if alpha and spp > 1 else gray
    if photometric == 2 and spp >= 3:
        return pixels[..., : 4 if alpha and spp > 3 else 3]
    if photometric == 5 and spp >= 4:
        return cmyk_to_rgb(pixels[..., :4], inverted=False)
    names = {6: "YCbCr", 8: "CIE L*a*b*", 9: "ICC L*a*b*", 32844: "LogL", 32845: "LogLuv"}
    name = names.get(photometric, f"photometric {photometric}")
    raise ValueError(f"TIFF: {name} images with {spp} samples per pixel are not supported")


def decode_tiff(data: bytes) -> np.ndarray:
    """Decode the first image of a TIFF stream to (H, W, C) uint8."""
    tags = _ifd(data)
    try:
        width, height = tags[256][0], tags[257][0]
    except KeyError:
        raise ValueError("TIFF: missing ImageWidth/ImageLength") from None
    check_size(width, height, "TIFF")
    bits = tags.get(258, (1,))[0]
    if tags.get(339, (1,))[0] not in (1, 2) or len(set(tags.get(258, (1,)))) != 1:
        raise ValueError("TIFF: only unsigned integer samples of one bit depth are supported")
    return np.ascontiguousarray(_color(_planes(data, tags, width, height), tags, bits))
