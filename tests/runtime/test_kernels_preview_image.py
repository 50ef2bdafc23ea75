"""Preview-domain and image kernels: the optimizers (ai.onnx.preview.training),
FlexAttention (ai.onnx.preview) and ImageDecoder.

Image decoding is checked on the official cases, on images encoded here by hand (PNG with
zlib, BMP, PNM, TIFF with PackBits/LZW/Deflate) and on small JPEG fixtures whose expected
pixels (a SHA-256 of them) come from libjpeg-turbo through Pillow.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ferry.runtime.kernels.image_jpeg_pixels import idct_blocks, upsample
from tests.runtime.node_harness import cases_for, run_case, run_node

MINE = {"Adagrad", "Adam", "Momentum", "FlexAttention", "ImageDecoder"}
# ops of FlexAttention's modifier subgraphs and of its expanded (function body) cases
SUBGRAPH_OPS = {
    "Add", "Cast", "Concat", "Constant", "Div", "Expand", "Gather", "GreaterOrEqual",
    "Identity", "MatMul", "Mul", "Range", "Reshape", "Shape", "Softmax", "Sqrt", "Sub",
    "Tanh", "Transpose", "Unsqueeze", "Where",
}  # fmt: skip
CASES = sorted(
    set(cases_for(MINE))
    | {name for name in cases_for(MINE | SUBGRAPH_OPS) if name.startswith("test_flexattention")}
)

SKIPS = {
    "test_image_decoder_decode_jpeg2k_rgb": "JPEG 2000 decoding is not implemented",
    "test_image_decoder_decode_webp_rgb": "WebP (VP8 lossy) decoding is not implemented",
}

TRAINING = "ai.onnx.preview.training"
PREVIEW = "ai.onnx.preview"


@pytest.mark.parametrize("name", CASES)
def test_node_case(name):
    if name in SKIPS:
        pytest.skip(SKIPS[name])
    run_case(name)


def test_cases_cover_every_op():
    found = {op for op in MINE if any(op.lower() in name.replace("_", "") for name in CASES)}
    assert found >= {"Adagrad", "Adam", "FlexAttention"} and len(CASES) >= 35


def _run(op, domain, inputs: dict, outputs: list[str], **attributes):
    node = helper.make_node(op, list(inputs), outputs, domain=domain, **attributes)
    opsets = {domain: 1} if domain else {"": 20}
    if domain == PREVIEW:
        opsets[""] = 26
    return run_node(node, opsets, inputs)


# -- optimizers --------------------------------------------------------------------------------


def test_adagrad_decay_and_regularization():
    r, t = np.array(0.5, np.float64), np.array(3, np.int64)
    x, g, h = np.array([1.0, -2.0]), np.array([0.5, 0.25]), np.array([0.1, 0.2])
    got = _run(
        "Adagrad",
        TRAINING,
        dict(R=r, T=t, X=x, G=g, H=h),
        ["X_new", "H_new"],
        norm_coefficient=0.1,
        decay_factor=0.2,
        epsilon=1e-3,
    )
    rate = 0.5 / (1 + 3 * 0.2)
    g_reg = 0.1 * x + g
    h_new = h + g_reg**2
    np.testing.assert_allclose(got[0], x - rate * g_reg / (np.sqrt(h_new) + 1e-3))
    np.testing.assert_allclose(got[1], h_new)
    assert got[0].dtype == np.float64


def test_adam_bias_correction_and_post_decay_two_tensors():
    r, t = np.array(0.1, np.float32), np.array(2, np.int64)
    xs = [np.array([1.0], np.float32), np.array([2.0, -1.0], np.float32)]
    gs = [np.array([0.5], np.float32), np.array([-0.5, 1.0], np.float32)]
    vs = [np.array([0.1], np.float32), np.array([0.2, 0.3], np.float32)]
    hs = [np.array([0.4], np.float32), np.array([0.5, 0.6], np.float32)]
    names = ["X1", "X2", "G1", "G2", "V1", "V2", "H1", "H2"]
    feeds = dict(R=r, T=t, **dict(zip(names, xs + gs + vs + hs)))
    outputs = ["X1n", "X2n", "V1n", "V2n", "H1n", "H2n"]
    got = _run(
        "Adam",
        TRAINING,
        feeds,
        outputs,
        alpha=0.8,
        beta=0.7,
        epsilon=1e-4,
        norm_coefficient=0.01,
        norm_coefficient_post=0.05,
    )
    for i in range(2):
        g = 0.01 * xs[i] + gs[i]
        v = 0.8 * vs[i] + 0.2 * g
        h = 0.7 * hs[i] + 0.3 * g * g
        rate = 0.1 * np.sqrt(1 - 0.7**2) / (1 - 0.8**2)
        x = (xs[i] - rate * v / (np.sqrt(h) + 1e-4)) * 0.95
        np.testing.assert_allclose(got[i], x, rtol=1e-5)
        np.testing.assert_allclose(got[2 + i], v, rtol=1e-6)
        np.testing.assert_allclose(got[4 + i], h, rtol=1e-6)
        assert all(o.dtype == np.float32 for o in got)


@pytest.mark.parametrize("mode", ["standard", "nesterov"])
def test_momentum_after_first_step(mode):
    r, t = np.array(0.1, np.float32), np.array(5, np.int64)
    x, g, v = (np.array(a, np.float32) for a in ([1.0, 2.0], [0.5, -0.5], [0.2, 0.1]))
    got = _run(
        "Momentum",
        TRAINING,
        dict(R=r, T=t, X=x, G=g, V=v),
        ["X_new", "V_new"],
        alpha=0.9,
        beta=0.5,
        mode=mode,
        norm_coefficient=0.01,
    )
    g_reg = 0.01 * x + g
    v_new = 0.9 * v + 0.5 * g_reg  # T > 0: beta applies
    step = g_reg + 0.9 * v_new if mode == "nesterov" else v_new
    np.testing.assert_allclose(got[0], x - 0.1 * step, rtol=1e-6)
    np.testing.assert_allclose(got[1], v_new, rtol=1e-6)


def test_optimizer_input_count_is_checked():
    feeds = dict(R=np.array(0.1), T=np.array(0, np.int64), X=np.ones(2), G=np.ones(2))
    with pytest.raises(ValueError, match="3 variadic inputs per optimized tensor"):
        _run("Adagrad", TRAINING, feeds, ["X_new"])


def test_momentum_rejects_unknown_mode():
    feeds = dict(R=np.array(0.1), T=np.array(0, np.int64), X=np.ones(2), G=np.ones(2), V=np.ones(2))
    with pytest.raises(ValueError, match="nesterov"):
        _run(
            "Momentum",
            TRAINING,
            feeds,
            ["a", "b"],
            alpha=0.9,
            beta=1.0,
            mode="heavy",
            norm_coefficient=0.0,
        )


# -- FlexAttention -----------------------------------------------------------------------------


def _attention(q, k, v, scale=None, bias=None):
    group = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    s = q @ np.swapaxes(k, -1, -2) * (scale if scale is not None else 1 / np.sqrt(q.shape[-1]))
    if bias is not None:
        s = s + bias
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def _qkv(dtype, b=2, hq=4, hkv=2, lq=3, skv=5, e=8, ev=6, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(b, hq, lq, e), (b, hkv, skv, e), (b, hkv, skv, ev)]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _causal_score_mod() -> onnx.GraphProto:
    """scores + a bias of -inf above the diagonal, built from Trilu-free core ops."""
    scores = helper.make_tensor_value_info("s", TensorProto.FLOAT, ["B", "H", "L", "S"])
    out = helper.make_tensor_value_info("o", TensorProto.FLOAT, ["B", "H", "L", "S"])
    nodes = [
        helper.make_node("Shape", ["s"], ["shape"], start=2),
        helper.make_node("Gather", ["shape", "zero"], ["L"]),
        helper.make_node("Gather", ["shape", "one"], ["S"]),
        helper.make_node("Range", ["zero", "L", "one"], ["q"]),
        helper.make_node("Range", ["zero", "S", "one"], ["k"]),
        helper.make_node("Unsqueeze", ["q", "one"], ["q2"]),
        helper.make_node("GreaterOrEqual", ["q2", "k"], ["keep"]),
        helper.make_node("Where", ["keep", "s", "ninf"], ["o"]),
    ]
    inits = [
        helper.make_tensor("zero", TensorProto.INT64, [], [0]),
        helper.make_tensor("one", TensorProto.INT64, [], [1]),
        helper.make_tensor("ninf", TensorProto.FLOAT, [], [-np.inf]),
    ]
    return helper.make_graph(nodes, "causal", [scores], [out], inits)


def test_flex_attention_gqa_scale_and_causal_score_mod():
    q, k, v = _qkv(np.float32)
    (got,) = _run(
        "FlexAttention",
        PREVIEW,
        dict(Q=q, K=k, V=v),
        ["Y"],
        scale=0.3,
        score_mod=_causal_score_mod(),
    )
    lq, skv = q.shape[2], k.shape[2]
    bias = np.where(np.arange(lq)[:, None] >= np.arange(skv), 0.0, -np.inf)
    np.testing.assert_allclose(got, _attention(q, k, v, 0.3, bias), rtol=1e-5, atol=1e-6)
    assert got.dtype == np.float32 and got.shape == (2, 4, 3, 6)


def test_flex_attention_float16_with_double_softmax():
    q, k, v = _qkv(np.float16, hkv=4)
    (got,) = _run(
        "FlexAttention", PREVIEW, dict(Q=q, K=k, V=v), ["Y"], softmax_precision=TensorProto.DOUBLE
    )
    want = _attention(*(a.astype(np.float64) for a in (q, k, v)))
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=2e-3, atol=2e-3)


def test_flex_attention_checks_head_groups_and_ranks():
    q, k, v = _qkv(np.float32, hq=3, hkv=2)
    with pytest.raises(ValueError, match="multiple"):
        _run("FlexAttention", PREVIEW, dict(Q=q, K=k, V=v), ["Y"])
    q, k, v = _qkv(np.float32)
    with pytest.raises(ValueError, match="rank 4"):
        _run("FlexAttention", PREVIEW, dict(Q=q[0], K=k, V=v), ["Y"])


# -- ImageDecoder: helpers ---------------------------------------------------------------------


def decode(data: bytes, pixel_format: str = "RGB") -> np.ndarray:
    stream = np.frombuffer(data, np.uint8)
    (image,) = _run("ImageDecoder", "", {"data": stream}, ["image"], pixel_format=pixel_format)
    assert image.dtype == np.uint8 and image.ndim == 3
    return image


def gray_of(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[..., None]


def _pixels(h, w, c, seed=1, high=256):
    return (
        np.random.default_rng(seed)
        .integers(0, high, (h, w, c))
        .astype(np.uint16 if high > 256 else np.uint8)
    )


def _pack(samples: np.ndarray, depth: int) -> list[bytes]:
    """Rows of (h, w, c) samples packed MSB first at ``depth`` bits (16-bit big-endian)."""
    flat = samples.reshape(samples.shape[0], -1)
    if depth == 16:
        return [row.astype(">u2").tobytes() for row in flat]
    if depth == 8:
        return [row.astype(np.uint8).tobytes() for row in flat]
    bits = (flat[..., None] >> np.arange(depth - 1, -1, -1)) & 1
    return [np.packbits(row.reshape(-1)).tobytes() for row in bits.astype(np.uint8)]


# -- PNG ---------------------------------------------------------------------------------------


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def _paeth(a, b, c):
    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filtered(rows: list[bytes], bpp: int, first_filter: int) -> bytes:
    out, prior = bytearray(), bytes(len(rows[0]))
    for index, row in enumerate(rows):
        kind = (first_filter + index) % 5
        out.append(kind)
        for i, x in enumerate(row):
            a, b = (row[i - bpp] if i >= bpp else 0), prior[i]
            c = prior[i - bpp] if i >= bpp else 0
            out.append((x - [0, a, b, (a + b) // 2, _paeth(a, b, c)][kind]) & 0xFF)
        prior = row
    return bytes(out)


ADAM7 = (
    (0, 0, 8, 8),
    (0, 4, 8, 8),
    (4, 0, 8, 4),
    (0, 2, 4, 4),
    (2, 0, 4, 2),
    (0, 1, 2, 2),
    (1, 0, 2, 1),
)


def png(samples, ctype, depth, *, interlace=False, first_filter=0, palette=None, trns=None):
    h, w, c = samples.shape
    bpp = max(1, c * depth // 8)
    passes = ADAM7 if interlace else ((0, 0, 1, 1),)
    raw = b"".join(
        _filtered(_pack(samples[r0::dr, c0::dc], depth), bpp, first_filter)
        for r0, c0, dr, dc in passes
        if h > r0 and w > c0
    )
    body = _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, int(interlace)))
    if palette is not None:
        body += _chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    if trns is not None:
        body += _chunk(b"tRNS", trns)
    idat = zlib.compress(raw)
    body += _chunk(b"IDAT", idat[:10]) + _chunk(b"IDAT", idat[10:])  # split IDAT
    return b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IEND", b"")


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("first_filter", range(5))
def test_png_rgb_filters_and_interlace(first_filter, interlace):
    image = _pixels(11, 13, 3)
    data = png(image, 2, 8, interlace=interlace, first_filter=first_filter)
    np.testing.assert_array_equal(decode(data), image)
    np.testing.assert_array_equal(decode(data, "BGR"), image[..., ::-1])
    np.testing.assert_array_equal(decode(data, "Grayscale"), gray_of(image))


@pytest.mark.parametrize("depth", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("interlace", [False, True])
def test_png_gray_depths(depth, interlace):
    levels = _pixels(9, 10, 1, seed=depth, high=1 << depth)
    data = png(levels, 0, depth, interlace=interlace, first_filter=depth % 5)
    want = (levels >> 8) if depth == 16 else levels.astype(np.int64) * 255 // ((1 << depth) - 1)
    np.testing.assert_array_equal(decode(data, "Grayscale"), want.astype(np.uint8))
    np.testing.assert_array_equal(decode(data), np.repeat(want, 3, axis=2).astype(np.uint8))


@pytest.mark.parametrize(("ctype", "channels"), [(4, 2), (6, 4), (2, 3)])
def test_png_16_bit_and_alpha_are_reduced(ctype, channels):
    samples = _pixels(6, 7, channels, seed=3, high=65536)
    got = decode(png(samples, ctype, 16, first_filter=4))
    color = samples[..., :3] if channels >= 3 else np.repeat(samples[..., :1], 3, axis=2)
    np.testing.assert_array_equal(got, (color >> 8).astype(np.uint8))


@pytest.mark.parametrize("depth", [1, 2, 4, 8])
def test_png_palette_with_transparency(depth):
    palette = _pixels(1 << depth, 1, 3, seed=5)[:, 0]
    index = _pixels(8, 9, 1, seed=6, high=1 << depth)
    data = png(index, 3, depth, palette=palette, trns=bytes([0, 128]), interlace=depth == 4)
    np.testing.assert_array_equal(decode(data), palette[index[..., 0]])


def test_png_color_key_transparency_is_dropped():
    image = _pixels(5, 5, 3)
    key = struct.pack(">HHH", *image[0, 0])
    np.testing.assert_array_equal(decode(png(image, 2, 8, trns=key)), image)


def test_png_corruption_is_reported():
    data = bytearray(png(_pixels(4, 4, 3), 2, 8))
    data[40] ^= 0xFF  # inside a chunk: CRC mismatch
    with pytest.raises(ValueError, match="CRC"):
        decode(bytes(data))
    with pytest.raises(ValueError, match="PNG"):
        decode(png(_pixels(4, 4, 3), 2, 8)[:60])


# -- BMP ---------------------------------------------------------------------------------------


def _rows4(rows: list[bytes]) -> bytes:
    return b"".join(row + bytes(-len(row) % 4) for row in rows)


def bmp(pixels: bytes, width, height, bpp, *, compression=0, palette=None, masks=None, header=40):
    colors = 0 if palette is None else len(palette)
    if header == 12:
        dib = struct.pack("<IHHHH", 12, width, height, 1, bpp)
        table = b"" if palette is None else palette[:, ::-1].astype(np.uint8).tobytes()
    else:
        dib = struct.pack(
            "<IiiHHIIiiII",
            header,
            width,
            height,
            1,
            bpp,
            compression,
            len(pixels),
            2835,
            2835,
            colors,
            0,
        )
        if masks is not None:
            dib += struct.pack(f"<{len(masks)}I", *masks)
        dib += bytes(max(0, header - len(dib)))
        table = b""
        if palette is not None:
            bgrx = np.concatenate([palette[:, ::-1], np.zeros((colors, 1), int)], axis=1)
            table = bgrx.astype(np.uint8).tobytes()
    offset = 14 + len(dib) + len(table)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + dib + table + pixels


@pytest.mark.parametrize("top_down", [False, True])
def test_bmp_24_bit(top_down):
    image = _pixels(7, 5, 3)
    rows = [row[:, ::-1].tobytes() for row in (image if top_down else image[::-1])]
    data = bmp(_rows4(rows), 5, -7 if top_down else 7, 24)
    np.testing.assert_array_equal(decode(data), image)


def test_bmp_32_bit_plain_and_bitfields_with_alpha():
    image = _pixels(4, 6, 4, seed=2)
    bgra = np.ascontiguousarray(image[..., [2, 1, 0, 3]][::-1])
    np.testing.assert_array_equal(decode(bmp(bgra.tobytes(), 6, 4, 32)), image[..., :3])
    masks = (0xFF0000, 0xFF00, 0xFF, 0xFF000000)
    data = bmp(bgra.tobytes(), 6, 4, 32, compression=3, masks=masks, header=124)
    np.testing.assert_array_equal(decode(data), image[..., :3])


@pytest.mark.parametrize(("masks", "bits"), [(None, (5, 5, 5)), ((0xF800, 0x7E0, 0x1F), (5, 6, 5))])
def test_bmp_16_bit(masks, bits):
    levels = np.stack([_pixels(3, 5, 1, s, 1 << b)[..., 0] for s, b in enumerate(bits)], -1).astype(
        int
    )
    shifts = (bits[1] + bits[2], bits[2], 0)
    words = sum(levels[..., i].astype(np.uint16) << shifts[i] for i in range(3)).astype("<u2")
    data = bmp(
        _rows4([row.tobytes() for row in words[::-1]]),
        5,
        3,
        16,
        compression=0 if masks is None else 3,
        masks=masks,
    )
    want = [
        (levels[..., i] * 255 + ((1 << b) - 1) // 2) // ((1 << b) - 1) for i, b in enumerate(bits)
    ]
    np.testing.assert_array_equal(decode(data), np.stack(want, -1).astype(np.uint8))


@pytest.mark.parametrize(("bpp", "header"), [(1, 40), (4, 40), (8, 40), (8, 12)])
def test_bmp_palette(bpp, header):
    palette = _pixels(1 << bpp, 1, 3, seed=bpp)[:, 0].astype(int)
    index = _pixels(5, 11, 1, seed=9, high=1 << bpp)
    rows = _pack(index[::-1], bpp)
    data = bmp(_rows4(rows), 11, 5, bpp, palette=palette, header=header)
    np.testing.assert_array_equal(decode(data), palette[index[..., 0]].astype(np.uint8))


@pytest.mark.parametrize("four", [False, True])
def test_bmp_run_length_encoding(four):
    palette = _pixels(16, 1, 3, seed=4)[:, 0].astype(int)
    want = np.zeros((4, 8), int)  # stored bottom-up: row 0 is the last image row
    if four:  # run of 5 alternating (3, 4), absolute 3 indices (1, 2, 5), end of line
        stream = [5, 0x34, 0, 3, 0x12, 0x50, 0, 0]
        want[0, :8] = [3, 4, 3, 4, 3, 1, 2, 5]
    else:  # run of 4 x 7, absolute (1, 2, 3), end of line
        stream = [4, 7, 0, 3, 1, 2, 3, 0, 0, 0]
        want[0, :7] = [7, 7, 7, 7, 1, 2, 3]
    stream += [0, 2, 2, 1, 3, 9, 0, 1]  # delta (2 right, 1 up), run of 3 x 9, end of bitmap
    want[2, 2:5] = 9 if not four else [0, 9, 0]
    data = bmp(bytes(stream), 8, 4, 4 if four else 8, compression=2 if four else 1, palette=palette)
    np.testing.assert_array_equal(decode(data), palette[want[::-1]].astype(np.uint8))


# -- PNM ---------------------------------------------------------------------------------------


def test_pnm_ascii_formats_with_comments():
    bits = _pixels(3, 5, 1, high=2)[..., 0]
    p1 = b"P1\n# a comment\n5 3\n" + b"\n".join(b"".join(b"%d" % v for v in r) for r in bits)
    np.testing.assert_array_equal(decode(p1, "Grayscale")[..., 0], (1 - bits) * 255)
    gray = _pixels(3, 4, 1, high=16)[..., 0]
    p2 = b"P2 4 3 # width height\n15\n" + b" ".join(b"%d" % v for v in gray.ravel())
    np.testing.assert_array_equal(decode(p2, "Grayscale")[..., 0], gray * 17)
    rgb = _pixels(2, 3, 3)
    p3 = b"P3\n3 2\n255\n" + b"\n".join(b"%d" % v for v in rgb.ravel())
    np.testing.assert_array_equal(decode(p3), rgb)


def test_pnm_binary_formats():
    bits = _pixels(4, 10, 1, high=2)
    p4 = b"P4\n10 4\n" + b"".join(_pack(bits, 1))
    np.testing.assert_array_equal(decode(p4, "Grayscale"), ((1 - bits) * 255).astype(np.uint8))
    deep = _pixels(3, 4, 1, high=65536)
    p5 = b"P5\n4 3\n65535\n" + deep.astype(">u2").tobytes()
    want = ((deep.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)
    np.testing.assert_array_equal(decode(p5, "Grayscale"), want)
    rgb = _pixels(5, 6, 3)
    np.testing.assert_array_equal(decode(b"P6 6 5 255\n" + rgb.tobytes()), rgb)


def test_pam_rgb_alpha():
    rgba = _pixels(3, 4, 4)
    header = b"P7\nWIDTH 4\nHEIGHT 3\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n"
    np.testing.assert_array_equal(decode(header + rgba.tobytes()), rgba[..., :3])


# -- TIFF --------------------------------------------------------------------------------------


def _packbits(data: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(data):
        run = 1
        while i + run < len(data) and run < 128 and data[i + run] == data[i]:
            run += 1
        if run > 1:
            out += bytes([257 - run, data[i]])
            i += run
            continue
        j = i + 1
        while j < len(data) and j - i < 128 and (j + 1 >= len(data) or data[j + 1] != data[j]):
            j += 1
        out += bytes([j - i - 1]) + data[i:j]
        i = j
    return bytes(out)


def _lzw(data: bytes) -> bytes:
    """TIFF LZW (MSB-first codes, early change); small inputs only (no table reset)."""
    table, width, codes = {bytes([i]): i for i in range(256)}, 9, [(256, 9)]
    current = b""
    for value in data:
        extended = current + bytes([value])
        if extended in table:
            current = extended
            continue
        codes.append((table[current], width))
        table[extended] = len(table) + 2  # codes 256, 257 are Clear and EOI
        width += len(table) + 2 >= 1 << width
        current = bytes([value])
    codes.append((table[current], width))
    width += len(table) + 3 >= 1 << width
    codes.append((257, width))
    bits = "".join(format(code, f"0{n}b") for code, n in codes)
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


_COMPRESS = {1: lambda b: b, 5: _lzw, 8: zlib.compress, 32773: _packbits}


def tiff(chunks: list[bytes], tags: dict, *, tiled=False, big_endian=False) -> bytes:
    """A one-image TIFF: ``chunks`` (strips or tiles) then the tags ({tag: (type, values)})."""
    order = ">" if big_endian else "<"
    data = bytearray(b"MM\x00*" if big_endian else b"II*\x00") + bytes(4)
    offsets = []
    for chunk in chunks:
        offsets.append(len(data))
        data += chunk
    tags = dict(tags)
    tags[324 if tiled else 273] = (4, offsets)
    tags[325 if tiled else 279] = (4, [len(c) for c in chunks])
    entries = []
    for tag, (kind, values) in sorted(tags.items()):
        raw = struct.pack(f"{order}{len(values)}{'H' if kind == 3 else 'I'}", *values)
        if len(raw) > 4:
            where = len(data)
            data += raw
            raw = struct.pack(order + "I", where)
        entries.append(struct.pack(order + "HHI", tag, kind, len(values)) + raw.ljust(4, b"\x00"))
    data[4:8] = struct.pack(order + "I", len(data))
    data += struct.pack(order + "H", len(entries)) + b"".join(entries) + bytes(4)
    return bytes(data)


def _tags(width, height, spp, bits, photometric, compression, **extra) -> dict:
    tags = {256: (4, [width]), 257: (4, [height]), 258: (3, [bits] * spp), 259: (3, [compression]),
            262: (3, [photometric]), 277: (3, [spp])}  # fmt: skip
    tags.update({key: value for key, value in extra.items()})
    return {int(k) if isinstance(k, str) else k: v for k, v in tags.items()}


def _strips(samples, rows_per_strip, depth, compression, predictor=False, order=">"):
    if predictor:
        samples = samples.copy()
        samples[:, 1:] = samples[:, 1:] - samples[:, :-1]  # wraps modulo the sample size
    chunks = []
    for top in range(0, samples.shape[0], rows_per_strip):
        part = samples[top : top + rows_per_strip]
        raw = part.astype(order + "u2").tobytes() if depth == 16 else b"".join(_pack(part, depth))
        chunks.append(_COMPRESS[compression](raw))
    return chunks


@pytest.mark.parametrize("compression", [1, 5, 8, 32773])
@pytest.mark.parametrize("predictor", [False, True])
def test_tiff_rgb_strips(compression, predictor):
    image = _pixels(10, 7, 3) // 16 * 16  # some runs for PackBits
    tags = _tags(
        7, 10, 3, 8, 2, compression, **{"278": (3, [4]), "317": (3, [2 if predictor else 1])}
    )
    data = tiff(_strips(image, 4, 8, compression, predictor), tags)
    np.testing.assert_array_equal(decode(data), image)


def test_tiff_big_endian_16_bit_gray_and_white_is_zero():
    deep = _pixels(5, 6, 1, high=65536)
    data = tiff(_strips(deep, 5, 16, 8), _tags(6, 5, 1, 16, 1, 8), big_endian=True)
    np.testing.assert_array_equal(decode(data, "Grayscale"), (deep >> 8).astype(np.uint8))
    bits = _pixels(4, 9, 1, high=2)
    data = tiff(_strips(bits, 4, 1, 32773), _tags(9, 4, 1, 1, 0, 32773))
    np.testing.assert_array_equal(decode(data, "Grayscale"), ((1 - bits) * 255).astype(np.uint8))


def test_tiff_tiles_and_planar_configuration():
    image = _pixels(20, 18, 3)
    padded = np.zeros((32, 32, 3), np.uint8)
    padded[:20, :18] = image
    tiles = [padded[r : r + 16, c : c + 16].tobytes() for r in (0, 16) for c in (0, 16)]
    tags = _tags(18, 20, 3, 8, 2, 1, **{"322": (3, [16]), "323": (3, [16])})
    np.testing.assert_array_equal(decode(tiff(tiles, tags, tiled=True)), image)
    planes = [zlib.compress(image[..., i].tobytes()) for i in range(3)]
    tags = _tags(18, 20, 3, 8, 2, 8, **{"284": (3, [2])})
    np.testing.assert_array_equal(decode(tiff(planes, tags)), image)


def test_tiff_palette_alpha_and_cmyk():
    index = _pixels(3, 5, 1, high=16)
    cmap = _pixels(3, 16, 1, seed=8, high=65536)[..., 0]
    tags = _tags(5, 3, 1, 4, 3, 1, **{"320": (3, cmap.ravel().tolist())})
    want = (cmap[:, index[..., 0]] >> 8).transpose(1, 2, 0).astype(np.uint8)
    np.testing.assert_array_equal(decode(tiff(_strips(index, 3, 4, 1), tags)), want)
    rgba = _pixels(3, 5, 4)
    tags = _tags(5, 3, 4, 8, 2, 1, **{"338": (3, [2])})
    np.testing.assert_array_equal(decode(tiff([rgba.tobytes()], tags)), rgba[..., :3])
    cmyk = _pixels(3, 5, 4, seed=3).astype(np.int64)
    white = 255 - cmyk[..., 3:]
    product = cmyk[..., :3] * white + 128
    want = (white - (((product >> 8) + product) >> 8)).astype(np.uint8)
    data = tiff([cmyk.astype(np.uint8).tobytes()], _tags(5, 3, 4, 8, 5, 1))
    np.testing.assert_array_equal(decode(data), want)


def test_tiff_unsupported_compression_is_named():
    data = tiff([b"\x00" * 8], _tags(2, 2, 1, 8, 1, 7))
    with pytest.raises(ValueError, match="JPEG compression"):
        decode(data)


# -- JPEG --------------------------------------------------------------------------------------

# 19x13 images saved by Pillow (libjpeg-turbo) with SHA-256 of their RGB and L decodes
JPEGS = {
    "baseline_422_restart": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsj"
        "HBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgo"
        "KCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAANABMDASEAAhEBAxEB/8QAFwAAAwEAAAAAAAAAAAAAAAAA"
        "AAQGB//EACYQAAECBQQCAgMAAAAAAAAAAAECEQADBAUhBhIxQSKBFKEyUeH/xAAYAQACAwAAAAAAAAAAAAAAAAAD"
        "BAUGB//EAC0RAAECAgYIBwAAAAAAAAAAAAECAwAEBQYRITFBBzJCUWFxkfATIqGxwdHx/90ABAAC/9oADAMBAAIR"
        "AxEAPwCn1Jbae5aURU0UhpmxUwTJRKyBtHAw/HX76LRB6IvKp10Vba9W1O78ls2Dzk9kAjvLY4gFTZMKklhZsKL7"
        "e92PWBVmUZmTTRu0g3b/AN94o7hoL5VZNnSxThCleO9wSBh2BbPPvOYIErSfPpUQy2CnLynDLaGXAchDrEw620lA"
        "AuAGqN3KP//QU01fKlVYuhV5SVAkhan43+/v+r6ooU2uvo62mWtK6l1rSk7QSAk5bkeX16iScIouUcUyNdNnW7j3"
        "hZCxV4tbC2sXK+ifiNOtN5nKt0lw7Ah1FyWJGS0EZWaKayJi8LkmQoiz1j//2Q==",
        "96927f51938f17e1814a1235407cf8efe6d34521ed91eacb517bad2e45652e75",
        "5945bb99d5ccdd4e50b1ad4d5b3f14059305257bf510a545b465bf2837100243",
    ),
    "baseline_444_optimized": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZG"
        "NywtQFdBRkxOUlNSMj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09P"
        "T09PT09PT09PT09PT09PT09PT09PT09PT0//wAARCAANABMDAREAAhEBAxEB/8QAFwABAAMAAAAAAAAAAAAAAAAA"
        "BQMEBv/EACIQAAEEAgEEAwAAAAAAAAAAAAECAwQRACEFEhMx0UFh8P/EABgBAAMBAQAAAAAAAAAAAAAAAAAFBgQD"
        "/8QAKhEAAgADBQcFAQAAAAAAAAAAAQIAAwQFERIx8AYhQYGhwdETFCJRkbH/2gAMAwEAAhEDEQA/AEuQjNyeJDrD"
        "dKoqCkm60PWJLPQy5vy1nrlG9ag0Qwnr51+QJw80rlGK+aF+T4/ayvamVE9W+7tE5aEn3M3EmtCEH+A7ry1pDYBO"
        "urRP3o4mbaecpIlKCvDcfI/kNZDvLlhbukU+PnOl4xztBBNE346s3JSJgDxy2hclQ0R8kwIshl9pRBd2oA1ZFe8K"
        "2sZacShkd3L669sjBYIE7ErDIiNJFmLMdFi/iybOSppE4Q8eQgY7o//Z",
        "bc9e075ef17ebb0eb1b961cc83f899fe357256b7915a73376ff717ae3ca07294",
        "66ee7c97e00323163e3d160a79eb7d8b3ae99b7c836312856dd1da8a4117d577",
    ),
    "progressive_420": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAUDBAQEAwUEBAQFBQUGBwwIBwcHBw8LCwkMEQ8SEhEPERETFhwXExQa"
        "FRERGCEYGh0dHx8fExciJCIeJBweHx7/2wBDAQUFBQcGBw4ICA4eFBEUHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
        "Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh7/wgARCAANABMDASIAAhEBAxEB/8QAFwAAAwEAAAAAAAAAAAAAAAAA"
        "AAMFBv/EABYBAQEBAAAAAAAAAAAAAAAAAAMFBv/aAAwDAQACEAMQAAABr5tykKoWzP2P/8QAGhABAAIDAQAAAAAA"
        "AAAAAAAAAwIEBRITAf/aAAgBAQABBQK4UFo419mXGbpTsz6XT8FQeXL/xAAeEQABAwQDAAAAAAAAAAAAAAABAAIE"
        "AxIUFTEyQf/aAAgBAwEBPwGacuXrD18QhVWC0O4X/8QAGxEAAQQDAAAAAAAAAAAAAAAABQABAgQTU3H/2gAIAQIB"
        "AT8BH1oDq8svWTmDG1f/xAAfEAAABQQDAAAAAAAAAAAAAAAAAQIDERITIWEiQoH/2gAIAQEABj8CrbTmJkhZcBqK"
        "mNi1136EOoM+WTCR/8QAHBABAAMBAQADAAAAAAAAAAAAAQARITFBcdHh/9oACAEBAAE/IRVGwLfn5FV6L68lBCnO"
        "H5xiE9Vur5ACDkM3PuOyvzW5/9oADAMBAAIAAwAAABDT7//EABkRAQEAAwEAAAAAAAAAAAAAAAEhADGBQf/aAAgB"
        "AwEBPxAzSKuLyGHpY2+TP//EABwRAQAABwEAAAAAAAAAAAAAAAEAESExUXGBkf/aAAgBAgEBPxC6cllq2n3zcIVE"
        "aQOEqGI//8QAHRABAQEAAgIDAAAAAAAAAAAAAREhADFBUXGRwf/aAAgBAQABPxDY8tGEBDLY6vfhhxzu7Mw9xcqC"
        "TdTOue/6QgYRDZfe6rXltCoJ0dPJ9/tdS6ohAtnYnyp345WEgasYprNc5//Z",
        "856de75608ba78399c24a9cca0f5dabe7f24fe0ea2db3e052c761bcdb0fb12be",
        "6fe479a68f7e4b92871b397453cbd470f0ffcef783d0fd1bbaba3e526aae3473",
    ),
    "progressive_444_restart": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAUDBAQEAwUEBAQFBQUGBwwIBwcHBw8LCwkMEQ8SEhEPERETFhwXExQa"
        "FRERGCEYGh0dHx8fExciJCIeJBweHx7/2wBDAQUFBQcGBw4ICA4eFBEUHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
        "Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh7/wgARCAANABMDAREAAhEBAxEB/8QAFgAAAwAAAAAAAAAAAAAAAAAA"
        "AwUG/8QAGgEBAAEFAAAAAAAAAAAAAAAABgUAAQMEB//dAAQAA//aAAwDAQACEAMQAAABbmZWb6EOam53/9AG7hFa"
        "q8Ko/8QAGhABAAIDAQAAAAAAAAAAAAAAAwIEBRITAf/aAAgBAQABBQK4UFo419mXGbp//9CnZn0un4Kg8uX/xAAh"
        "EQACAgEDBQEAAAAAAAAAAAABAgADBAUGEhEUITGhwf/aAAgBAwEBPwFMo6aOJ+zVsfvLuaTGd6qlX8n/0N32EqHm"
        "1umRyVx6IlmNWGPif//EACYRAAEDAgMJAQAAAAAAAAAAAAEAAgMEBRMhQQYREiIxUYGhsdH/2gAIAQIBAT8BtMZi"
        "m5k+jbHHjb0/baoa4iFo4dMj+j4v/9COgjww9XK4PbSiBvQ5eO3tGhj0X//EAB8QAAAFBAMAAAAAAAAAAAAAAAAB"
        "AgMREhMhYSJCgf/aAAgBAQAGPwKttOYmSFlwGoqY2P/Qtdd+hDqDPlkwkf/EABwQAQADAQEAAwAAAAAAAAAAAAEA"
        "ESExQXHR4f/aAAgBAQABPyEVRsC35+RVei+vJQQpzh+cZ//QQnqt1fIAQchm59x2V+a3P//aAAwDAQACAAMAAAAQ"
        "m/8A/9Ab/wD/xAAfEQEAAgICAgMAAAAAAAAAAAABESExQQBRYZFxgbH/2gAIAQMBAT8QcqnhWruc3ueoWGeQ6yzo"
        "veM1EYp7c8OoUdHN5R+9TgCj/9BCbRr4nz+VL3R9QDcvVcOiF6YPXP/EAB0RAQEAAgMBAQEAAAAAAAAAAAERITEA"
        "QVGBYfD/2gAIAQIBAT8QBwtQzM5fnekrM4vFzgBVXWK3zH5iO98dOLFSh3ezyJrq8//QnJkZ9pVzG+THw4bEWvgu"
        "lzGnQmRTimpD+8nP/8QAHRABAQEAAgIDAAAAAAAAAAAAAREhADFBUXGRwf/aAAgBAQABPxDY8tGEBDLY6vfhhxzu"
        "7Mw9xcqCTdTOue/6QgYRDZfe6rXn/9C2hUE6Onk+/wBrqXVEIFs7E+VO/HKwkDVjFNZrnP/Z",
        "2faf816b3451272548144f5d5b0680662f7d0857c901a65cb5bd1a0a85f7774f",
        "cb1c52fdaf83f1e7a6b83795aef4893cb1ec6be5116368f2e3d45d4b7db74eac",
    ),
    "gray_progressive": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4R"
        "DgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/wgALCAANABMBAREA/8QAFwABAAMAAAAAAAAAAAAAAAAABgQFB//aAAgB"
        "AQAAAAFODR0sfT//xAAbEAADAQADAQAAAAAAAAAAAAADBAUBAgYSE//aAAgBAQABBQKkoNuVEf8AbR+s/Y02iTTV"
        "F8TOo/z1f//EACAQAAEDBAIDAAAAAAAAAAAAAAEAAgMREiFRBCIxgcH/2gAIAQEABj8CEkTO1C65uUeNMaDZTniy"
        "h2jB5Yd+1DNGSDJkgYTPq//EAB0QAQEAAgMAAwAAAAAAAAAAAAERACExQVFxkdH/2gAIAQEAAT8hgfgLQQ4+usXc"
        "B0z537LkqhtbinunvnHxoKjvGatSchSfuUIsJVXnP//aAAgBAQAAABDb/8QAGhABAQEBAQEBAAAAAAAAAAAAAREh"
        "MQBBYf/aAAgBAQABPxDZBRZEIIth67kQPPoGySB2ESgE3UwAH+O72YRAAR1iVWvqjvYjMTiWbH4ftTTqQAex0T7L"
        "QbM9cRpsERVmud9//9k=",
        "354d242bf9cf8ff619ce98904b2ae196ce97163d9ada439e8b0a0731df8c1d9c",
        "ac9cc1f09e021c3719108dff9b675003357c3c5e35cff56812cc1e5e0ee4c2ac",
    ),
    "gray_baseline": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4R"
        "DgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/wAALCAANABMBAREA/8QAFwABAAMAAAAAAAAAAAAAAAAABwUGCP/EACQQ"
        "AAICAQQCAgMBAAAAAAAAAAECAxEFBAYSIQAHIjEIE0Fh/9oACAEBAAA/AE/2TtPH7t9Uw5LE6HhqP1SahdTpXMrK"
        "vBQCoFE3xB+N/fVEAeA/pLf76/dEu28xIY4g9iWbiFoHtqYiuRUMCO+yOgAAi5/8Zjmszq9bCmiSGV/h+/kjso6D"
        "UrUAwHIfZoiyTZ8pnrX2PkpsxLgnuXRSq7sszlh8BNVfRF13R/g/24/2ht2LZmew2ax88sU2RLTTxxsY1ZlCHuj2"
        "CH/ouwDddead2lv3WSbd0XJS5VSnKRuTGmIsmuz19+f/2Q==",
        "354d242bf9cf8ff619ce98904b2ae196ce97163d9ada439e8b0a0731df8c1d9c",
        "ac9cc1f09e021c3719108dff9b675003357c3c5e35cff56812cc1e5e0ee4c2ac",
    ),
    "cmyk_adobe": (
        "/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwAKBwcIBwYKCAgICwoKCw4YEA4NDQ4dFRYRGCMfJSQiHyIhJis3LyYpNCkh"
        "IjBBMTQ5Oz4+PiUuRElDPEg3PT47/8AAFAgADQATBEMRAE0RAFkRAEsRAP/EABkAAAMBAQEAAAAAAAAAAAAAAAAF"
        "BgcDBP/EACwQAAEDAgUDAgYDAAAAAAAAAAECAxEEIQAFBhIxQVFhBxMVIjJxgZFCsfD/2gAOBEMATQBZAEsAAD8A"
        "ta6pbyDTwKEKbVtKvmWSokgXmxMxf9Ww21HlVPqbIE1VGyndsUsOsfNtAAFgPt0794xJ6dyhDSG3vYWtbiokwQee"
        "n6tydpxs2MWrSrUWovbC5lyx2DzJAnggA2wn0RqFVO8cprhCZF1GxvzfqT+bxbjGpZPQs0zblTV1JZQhKlKddWIa"
        "AEndxHE8Wvgxf0umqlqlbQ21T7Qm0tST5649mY+mtNX5g9VLcSguK4U5tMcAwDF4n+yTiUzH1ezn4i+Mmy6icy9C"
        "yincWw4orSLbvrTzExtETF4nBhL6k55UubEruhxe/bNhCVH/AH3OF3p5nFQa93LpKmigzvVNhujsR++35a6eyynV"
        "ToVsTG8pCVAkbkkySJvPbwO2DHLQdIy7VFxQIV7ySrbA3H6u3n79Zxy1xlycozOkzKmdWF1CFLUkEgSI5g35xx9R"
        "tQVGUado6CiSWkV7mx7aqApsJSVI4mD7g68Jjgxgxs7aWEpIDRACj/Pziny3UVarL2SohRCY3KgkxaSYucQ9JldO"
        "qmQUlwAzAUski/iMGP/Z",
        "c3ec05f2b25e96a520c12161bdf4830d278ef805791e7f81dc61db59c8b5f481",
        "a0af0770c463648f576659ad6a3c2ebfdc206bfae80ec03a338378744a35191f",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(JPEGS))
def test_jpeg_matches_libjpeg(name):
    *chunks, rgb_hash, gray_hash = JPEGS[name]
    data = base64.b64decode("".join(chunks))
    rgb, gray = decode(data), decode(data, "Grayscale")
    assert rgb.shape == (13, 19, 3) and gray.shape == (13, 19, 1)
    assert hashlib.sha256(rgb.tobytes()).hexdigest() == rgb_hash
    assert hashlib.sha256(gray.tobytes()).hexdigest() == gray_hash
    np.testing.assert_array_equal(decode(data, "BGR"), rgb[..., ::-1])


def test_jpeg_idct_is_close_to_the_exact_transform():
    rng = np.random.default_rng(0)
    coefficients = rng.integers(-60, 60, (50, 64)) * (rng.random((50, 64)) < 0.3)
    quant = rng.integers(1, 20, 64)
    n = np.arange(8)
    basis = np.cos((2 * n[:, None] + 1) * n[None, :] * np.pi / 16) * np.where(
        n == 0, np.sqrt(0.5), 1
    )
    blocks = (coefficients * quant).reshape(-1, 8, 8)
    exact = np.einsum("xu,nuv,yv->nxy", basis, blocks, basis) / 4 + 128
    got = idct_blocks(coefficients, quant).astype(float)
    assert np.abs(got - np.clip(exact, 0, 255)).max() <= 1


def test_jpeg_fancy_upsampling_follows_the_spec_formula():
    row = np.array([[10, 21, 40, 3]], np.uint8)
    got = upsample(row, 2, 1)[0].astype(int)
    a = np.r_[10, row[0, :-1]].astype(int)  # left neighbor, edge replicated
    b = row[0].astype(int)
    c = np.r_[row[0, 1:], 3].astype(int)
    np.testing.assert_array_equal(got[0::2], (a + 3 * b + 1) >> 2)  # round half down
    np.testing.assert_array_equal(got[1::2], (3 * b + c + 2) >> 2)  # round half up


def test_jpeg_unsupported_and_truncated_streams():
    sof3 = b"\xff\xd8\xff\xc3\x00\x0b\x08\x00\x02\x00\x02\x01\x01\x11\x00\xff\xd9"
    with pytest.raises(ValueError, match="lossless"):
        decode(sof3)
    *chunks, _, _ = JPEGS["progressive_420"]
    data = base64.b64decode("".join(chunks))
    with pytest.raises(ValueError, match="JPEG"):
        decode(data[: len(data) // 2])


# -- ImageDecoder: formats and arguments ------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"RIFF\x10\x00\x00\x00WEBPVP8 \x00\x00", "WebP"),
        (b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00", "JPEG 2000"),
        (b"GIF89a\x01\x00\x01\x00", "GIF"),
        (b"hello, world", "unrecognized"),
    ],
)
def test_unsupported_formats_are_named(data, message):
    with pytest.raises(ValueError, match=message):
        decode(data)


def test_bad_pixel_format_and_input_type():
    from ferry.runtime.kernels.image import image_decoder

    data = np.frombuffer(b"P6 1 1 255\n\x01\x02\x03", np.uint8)
    np.testing.assert_array_equal(image_decoder(data, pixel_format="RGB"), [[[1, 2, 3]]])
    with pytest.raises(ValueError, match="pixel_format"):
        image_decoder(data, pixel_format="YUV")
    with pytest.raises(TypeError, match="uint8"):
        image_decoder(data.astype(np.float32), pixel_format="RGB")
