"""ImageDecoder: decode an encoded image (uint8 bytes) into a (H, W, C) uint8 tensor.

The format is sniffed from the stream's magic bytes and decoded by ferry's own numpy
decoders (``image_*.py``): PNG, BMP, PNM/PAM, TIFF and JPEG (baseline and progressive,
Huffman coded, decoded like libjpeg's defaults: integer IDCT, fancy chroma upsampling).
JPEG 2000, WebP, GIF and the other formats raise a ``ValueError`` naming the format.
A decoder returns 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels; the kernel
drops alpha and converts to the requested ``pixel_format`` (Grayscale from color uses
the ITU-R 601 luma weights in 16-bit fixed point, like Pillow's RGB -> L).

The spec lets a decoder return an empty tensor for a stream it cannot decode; ferry raises
a ``ValueError`` saying what is wrong instead, so a bad input does not go unnoticed.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from collections.abc import Callable

import numpy as np

from ferry.runtime.kernels.image_bitmap import decode_bmp, decode_pnm
from ferry.runtime.kernels.image_jpeg import decode_jpeg
from ferry.runtime.kernels.image_png import decode_png
from ferry.runtime.kernels.image_tiff import decode_tiff
from ferry.runtime.registry import kernel

_UNSUPPORTED = (
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000 (JP2)"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II\x2b\x00", "BigTIFF"),
    (b"MM\x00\x2b", "BigTIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "Photoshop PSD"),
    (b"#?RADIANCE", "Radiance HDR"),
    (b"\x76\x2f\x31\x01", "OpenEXR"),
)


def _is_pnm(data: bytes) -> bool:
    return len(data) > 2 and data[0] == ord("P") and data[1:2] in b"1234567" and data[2:3].isspace()


def _decoder(data: bytes) -> tuple[str, Callable[[bytes], np.ndarray]]:
    """The format's name and decoder, told by the stream's magic bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG", decode_png
    if data.startswith(b"\xff\xd8"):
        return "JPEG", decode_jpeg
    if data.startswith(b"BM"):
        return "BMP", decode_bmp
    if _is_pnm(data):
        return "PNM", decode_pnm
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF", decode_tiff
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        kind = {b"VP8 ": "lossy", b"VP8L": "lossless", b"VP8X": "extended"}.get(data[12:16], "")
        raise ValueError(f"ImageDecoder: WebP ({kind or 'unknown'} bitstream) is not supported")
    for magic, name in _UNSUPPORTED:
        if data.startswith(magic):
            raise ValueError(f"ImageDecoder: the {name} format is not supported")
    raise ValueError(
        "ImageDecoder: unrecognized image format (expected PNG, JPEG, BMP, PNM or TIFF); "
        f"the stream starts with {data[:8]!r}"
    )


def decode_image(data: bytes) -> np.ndarray:
    """Decode ``data`` to (H, W, C) uint8 with C = 1, 2, 3 or 4 (gray, gray+alpha, RGB, RGBA)."""
    name, decode = _decoder(data)
    try:
        image = decode(data)
    except ValueError as error:
        raise ValueError(f"ImageDecoder: {error}") from None
    except (IndexError, KeyError, TypeError, struct.error, zlib.error, lzma.LZMAError) as error:
        raise ValueError(f"ImageDecoder: corrupt or truncated {name} stream ({error!r})") from None
    if image.ndim != 3 or image.dtype != np.uint8 or image.shape[2] not in (1, 2, 3, 4):
        raise AssertionError(f"image decoder produced {image.dtype} {image.shape}")
    return image


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma in 16-bit fixed point (L = 0.299 R + 0.587 G + 0.114 B, rounded)."""
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[..., None]


def convert_pixels(image: np.ndarray, pixel_format: str) -> np.ndarray:
    """Drop alpha and convert a decoded image to the RGB, BGR or Grayscale layout."""
    color = image.shape[2] >= 3
    if pixel_format == "Grayscale":
        result = to_gray(image) if color else image[..., :1]
    elif pixel_format in ("RGB", "BGR"):
        rgb = image[..., :3] if color else np.repeat(image[..., :1], 3, axis=2)
        result = rgb[..., ::-1] if pixel_format == "BGR" else rgb
    else:
        raise ValueError(
            f"ImageDecoder pixel_format must be RGB, BGR or Grayscale, got {pixel_format!r}"
        )
    return np.ascontiguousarray(result, dtype=np.uint8)


@kernel("ImageDecoder", since=20)
def image_decoder(encoded_stream, *, pixel_format):
    """Decode an encoded image (1-D uint8) to (H, W, C) uint8 in RGB, BGR or Grayscale."""
    stream = np.asarray(encoded_stream)
    if stream.dtype != np.uint8 or stream.ndim != 1:
        raise TypeError(
            f"ImageDecoder expects a 1-D uint8 tensor, got {stream.dtype} {stream.shape}"
        )
    if pixel_format not in ("RGB", "BGR", "Grayscale"):
        raise ValueError(
            f"ImageDecoder pixel_format must be RGB, BGR or Grayscale, got {pixel_format!r}"
        )
    return convert_pixels(decode_image(stream.tobytes()), pixel_format)
