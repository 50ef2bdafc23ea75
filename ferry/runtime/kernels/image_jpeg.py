"""A JPEG decoder in numpy: Huffman-coded baseline, extended (8-bit) and progressive DCT.

Markers are parsed here and the entropy-coded scans decoded into per-component DCT
coefficient arrays; ``image_jpeg_pixels`` turns them into pixels. Lossless, hierarchical,
arithmetic-coded and 12-bit JPEGs raise a ``ValueError``.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

import numpy as np

from ferry.runtime.kernels.image_jpeg_pixels import (
    blocks_to_plane,
    idct_blocks,
    upsample,
    ycc_to_rgb,
)
from ferry.runtime.kernels.image_samples import check_size, cmyk_to_rgb

# natural (row-major) index of the k-th coefficient in zigzag order
ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48,
          41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15,
          23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63]  # fmt: skip
_UNSUPPORTED_SOF = {
    0xC3: "lossless",
    0xC5: "hierarchical",
    0xC6: "hierarchical progressive",
    0xC7: "hierarchical lossless",
    0xC9: "arithmetic-coded",
    0xCA: "arithmetic-coded progressive",
    0xCB: "arithmetic-coded lossless",
    0xCD: "hierarchical arithmetic-coded",
    0xCE: "hierarchical arithmetic-coded progressive",
    0xCF: "hierarchical arithmetic-coded lossless",
}


@dataclass
class Component:
    ident: int
    h: int
    v: int
    quant_id: int
    blocks: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # (rows, cols, 64)
    block_rows: int = 0  # blocks actually covering the component (before MCU padding)
    block_cols: int = 0
    width: int = 0  # samples covering the image (before block padding)
    height: int = 0


@dataclass
class Frame:
    width: int
    height: int
    progressive: bool
    components: list[Component]
    mcu_rows: int = 0
    mcu_cols: int = 0


def _huffman_table(counts: bytes, symbols: bytes) -> list[int]:
    """A 16-bit lookahead table: entry = (code length << 8) | symbol, 0 for invalid codes."""
    table = np.zeros(1 << 16, np.int32)
    code, k = 0, 0
    for length in range(1, 17):
        for _ in range(counts[length - 1]):
            lo = code << (16 - length)
            table[lo : lo + (1 << (16 - length))] = (length << 8) | symbols[k]
            code, k = code + 1, k + 1
        code <<= 1
    return table.tolist()


class BitReader:
    """MSB-first bits of one entropy-coded segment (byte stuffing already removed)."""

    def __init__(self, data: bytes):
        padded = np.frombuffer(data + b"\x00" * 4, np.uint8).astype(np.uint32)
        # the 32 bits starting at each byte; libjpeg pads a short segment with zero bits
        self.words = (
            (padded[:-3] << 24) | (padded[1:-2] << 16) | (padded[2:-1] << 8) | padded[3:]
        ).tolist()
        self.pos = 0

    def bits(self, n: int) -> int:
        if not n:
            return 0
        pos = self.pos
        try:
            word = self.words[pos >> 3]
        except IndexError:
            raise ValueError("JPEG: entropy-coded data is truncated") from None
        self.pos = pos + n
        return (word >> (32 - (pos & 7) - n)) & ((1 << n) - 1)

    def received(self, n: int) -> int:
        """Read an ``n``-bit magnitude category value and sign-extend it (JPEG EXTEND)."""
        value = self.bits(n)
        return value - (1 << n) + 1 if n and value < 1 << (n - 1) else value

    def symbol(self, table: list[int]) -> int:
        pos = self.pos
        try:
            entry = table[(self.words[pos >> 3] >> (16 - (pos & 7))) & 0xFFFF]
        except IndexError:
            raise ValueError("JPEG: entropy-coded data is truncated") from None
        if not entry:
            raise ValueError("JPEG: invalid Huffman code")
        self.pos = pos + (entry >> 8)
        return entry & 0xFF


def _segments(data: bytes, pos: int) -> tuple[list[bytes], int]:
    """The entropy-coded data from ``pos``, split at RST markers, stuffing removed."""
    end = pos
    while True:
        end = data.find(b"\xff", end)
        if end < 0 or end + 1 >= len(data):
            end = len(data)
            break
        nxt = data[end + 1]
        if nxt == 0 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
            end += 1 if nxt == 0xFF else 2
            continue
        break
    parts = re.split(rb"\xff[\xd0-\xd7]", data[pos:end])
    return [part.replace(b"\xff\x00", b"\xff") for part in parts], end


class _Scan:
    """Decodes the blocks of one scan; one method per kind of scan."""

    def __init__(self, components, dc_tables, ac_tables, ss, se, ah, al):
        self.components, self.ss, self.se, self.ah, self.al = components, ss, se, ah, al
        self.dc, self.ac = dc_tables, ac_tables
        self.pred: dict[int, int] = {}
        self.eobrun = 0

    def reset(self) -> None:
        self.pred = {c.ident: 0 for c in self.components}
        self.eobrun = 0

    def _dc_diff(self, reader: BitReader, comp: Component) -> int:
        self.pred[comp.ident] += reader.received(reader.symbol(self.dc[comp.ident]))
        return self.pred[comp.ident]

    def sequential(self, reader: BitReader, comp: Component, block: list[int]) -> None:
        block[0] = self._dc_diff(reader, comp)
        table, k = self.ac[comp.ident], 1
        while k < 64:
            rs = reader.symbol(table)
            r, s = rs >> 4, rs & 15
            if s:
                k += r
                if k > 63:
                    raise ValueError("JPEG: AC coefficient index out of range")
                block[ZIGZAG[k]] = reader.received(s)
                k += 1
            elif r == 15:
                k += 16
            else:
                break

    def dc_first(self, reader: BitReader, comp: Component, block: list[int]) -> None:
        block[0] = self._dc_diff(reader, comp) << self.al

    def dc_refine(self, reader: BitReader, comp: Component, block: list[int]) -> None:
        if reader.bits(1):
            block[0] |= 1 << self.al

    def ac_first(self, reader: BitReader, comp: Component, block: list[int]) -> None:
        if self.eobrun:
            self.eobrun -= 1
            return
        table, k = self.ac[comp.ident], self.ss
        while k <= self.se:
            rs = reader.symbol(table)
            r, s = rs >> 4, rs & 15
            if s:
                k += r
                if k > 63:
                    raise ValueError("JPEG: AC coefficient index out of range")
                block[ZIGZAG[k]] = reader.received(s) * (1 << self.al)
                k += 1
            elif r == 15:
                k += 16
            else:
                self.eobrun = (1 << r) - 1 + reader.bits(r)
                break

    def _refine(self, reader: BitReader, block: list[int], z: int) -> None:
        """A correction bit for an already nonzero coefficient."""
        if reader.bits(1) and not block[z] & (1 << self.al):
            block[z] += (1 << self.al) if block[z] >= 0 else -(1 << self.al)

    def ac_refine(self, reader: BitReader, comp: Component, block: list[int]) -> None:
        table, k, se = self.ac[comp.ident], self.ss, self.se
        while not self.eobrun and k <= se:
            rs = reader.symbol(table)
            r, s = rs >> 4, rs & 15
            value = 0
            if s:
                value = (1 << self.al) if reader.bits(1) else -(1 << self.al)
            elif r != 15:
                self.eobrun = (1 << r) + reader.bits(r)
                break
            while k <= se:  # skip r zero-history coefficients, refining the nonzero ones
                z = ZIGZAG[k]
                k += 1
                if block[z]:
                    self._refine(reader, block, z)
                elif r:
                    r -= 1
                else:
                    block[z] = value
                    break
        if self.eobrun:
            for z in ZIGZAG[k : se + 1]:
                if block[z]:
                    self._refine(reader, block, z)
            self.eobrun -= 1

    def method(self, progressive: bool):
        if not progressive:
            return self.sequential
        if self.ss == 0:
            return self.dc_refine if self.ah else self.dc_first
        return self.ac_refine if self.ah else self.ac_first


class _Decoder:
    """Marker-segment state: tables, the frame, and the decoded coefficients."""

    def __init__(self):
        self.quant: dict[int, np.ndarray] = {}
        self.dc_tables: dict[int, list[int]] = {}
        self.ac_tables: dict[int, list[int]] = {}
        self.latched: dict[int, np.ndarray] = {}  # component -> quant table at its first scan
        self.restart = 0
        self.frame: Frame | None = None
        self.jfif = False
        self.adobe: int | None = None  # Adobe APP14 color transform

    def define_quant(self, seg: bytes) -> None:
        pos = 0
        while pos < len(seg):
            precision, ident = seg[pos] >> 4, seg[pos] & 15
            size = 128 if precision else 64
            values = np.frombuffer(seg, ">u2" if precision else np.uint8, 64, pos + 1)
            table = np.zeros(64, np.int32)
            table[ZIGZAG] = values
            self.quant[ident] = table
            pos += 1 + size

    def define_huffman(self, seg: bytes) -> None:
        pos = 0
        while pos + 17 <= len(seg):
            kind, ident = seg[pos] >> 4, seg[pos] & 15
            counts = seg[pos + 1 : pos + 17]
            symbols = seg[pos + 17 : pos + 17 + sum(counts)]
            (self.ac_tables if kind else self.dc_tables)[ident] = _huffman_table(counts, symbols)
            pos += 17 + sum(counts)

    def start_frame(self, marker: int, seg: bytes) -> None:
        precision, height, width, count = struct.unpack_from(">BHHB", seg)
        if precision != 8:
            raise ValueError(f"JPEG: {precision}-bit samples are not supported")
        check_size(width, height, "JPEG")  # a zero height would need DNL: not supported
        comps = [
            Component(seg[6 + 3 * i], seg[7 + 3 * i] >> 4, seg[7 + 3 * i] & 15, seg[8 + 3 * i])
            for i in range(count)
        ]
        hmax, vmax = max(c.h for c in comps), max(c.v for c in comps)
        frame = Frame(width, height, marker == 0xC2, comps)
        frame.mcu_cols, frame.mcu_rows = -(-width // (8 * hmax)), -(-height // (8 * vmax))
        for c in comps:
            if not (1 <= c.h <= 4 and 1 <= c.v <= 4):
                raise ValueError(f"JPEG: bad sampling factors {c.h}x{c.v}")
            c.width, c.height = -(-width * c.h // hmax), -(-height * c.v // vmax)
            c.block_cols, c.block_rows = -(-c.width // 8), -(-c.height // 8)
            c.blocks = np.zeros((frame.mcu_rows * c.v, frame.mcu_cols * c.h, 64), np.int32)
        self.frame = frame

    def _mcus(self, comps: list[Component]):
        """Each MCU of a scan as a list of (component, block row, block column)."""
        if len(comps) == 1:
            c = comps[0]
            for r in range(c.block_rows):
                for col in range(c.block_cols):
                    yield [(c, r, col)]
            return
        frame = self.frame
        for mr in range(frame.mcu_rows):
            for mc in range(frame.mcu_cols):
                yield [
                    (c, mr * c.v + y, mc * c.h + x)
                    for c in comps
                    for y in range(c.v)
                    for x in range(c.h)
                ]

    def scan(self, seg: bytes, segments: list[bytes]) -> None:
        if self.frame is None:
            raise ValueError("JPEG: scan before the frame header")
        by_id = {c.ident: c for c in self.frame.components}
        count = seg[0]
        comps, dc, ac = [], {}, {}
        for i in range(count):
            ident, tables = seg[1 + 2 * i], seg[2 + 2 * i]
            if ident not in by_id:
                raise ValueError(f"JPEG: scan names unknown component {ident}")
            comps.append(by_id[ident])
            dc[ident], ac[ident] = self.dc_tables.get(tables >> 4), self.ac_tables.get(tables & 15)
            if self.latched.get(ident) is None:  # libjpeg latches the table at the first scan
                self.latched[ident] = self.quant.get(by_id[ident].quant_id)
        ss, se, approx = seg[1 + 2 * count : 4 + 2 * count]
        scan = _Scan(comps, dc, ac, ss, se, approx >> 4, approx & 15)
        decode = scan.method(self.frame.progressive)
        need_dc = ss == 0 and not (self.frame.progressive and approx >> 4)
        need_ac = se > 0 or not self.frame.progressive
        for ident in dc:
            if (need_dc and dc[ident] is None) or (need_ac and ac[ident] is None):
                raise ValueError(f"JPEG: scan uses an undefined Huffman table (component {ident})")
        self._run(scan, decode, comps, segments)

    def _run(self, scan: _Scan, decode, comps: list[Component], segments: list[bytes]) -> None:
        reader, index = None, 0
        for n, mcu in enumerate(self._mcus(comps)):
            if reader is None or (self.restart and n % self.restart == 0):
                if index >= len(segments):
                    raise ValueError("JPEG: missing restart interval data")
                reader, index = BitReader(segments[index]), index + 1
                scan.reset()
            for comp, r, col in mcu:
                block = comp.blocks[r, col].tolist()
                decode(reader, comp, block)
                comp.blocks[r, col] = block

    def parse(self, data: bytes) -> None:
        pos = 2
        while pos + 1 < len(data):
            if data[pos] != 0xFF:  # garbage between segments: resynchronize
                pos += 1
                continue
            marker = data[pos + 1]
            if marker == 0xD9:
                break
            if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD7:
                pos += 1 if marker == 0xFF else 2
                continue
            (length,) = struct.unpack_from(">H", data, pos + 2)
            seg, pos = data[pos + 4 : pos + 2 + length], pos + 2 + length
            if marker == 0xDA:
                segments, pos = _segments(data, pos)
                self.scan(seg, segments)
            else:
                self._segment(marker, seg)
        if self.frame is None:
            raise ValueError("JPEG: no frame header (SOF) found")

    def _segment(self, marker: int, seg: bytes) -> None:
        if marker in (0xC0, 0xC1, 0xC2):
            self.start_frame(marker, seg)
        elif marker in _UNSUPPORTED_SOF:
            raise ValueError(f"JPEG: {_UNSUPPORTED_SOF[marker]} JPEG is not supported")
        elif marker == 0xC4:
            self.define_huffman(seg)
        elif marker == 0xCC:
            raise ValueError("JPEG: arithmetic coding is not supported")
        elif marker == 0xDB:
            self.define_quant(seg)
        elif marker == 0xDD:
            (self.restart,) = struct.unpack_from(">H", seg)
        elif marker == 0xE0 and seg.startswith(b"JFIF\x00"):
            self.jfif = True
        elif marker == 0xEE and seg.startswith(b"Adobe") and len(seg) >= 12:
            self.adobe = seg[11]

    def plane(self, comp: Component) -> np.ndarray:
        """A component's samples, upsampled to the full image size."""
        quant = self.latched.get(comp.ident)
        if quant is None:
            raise ValueError(f"JPEG: component {comp.ident} has no scan or no quantization table")
        frame = self.frame
        plane = blocks_to_plane(idct_blocks(comp.blocks, quant))[: comp.height, : comp.width]
        hmax = max(c.h for c in frame.components)
        vmax = max(c.v for c in frame.components)
        if hmax % comp.h or vmax % comp.v:
            raise ValueError("JPEG: non-integral chroma sampling ratios are not supported")
        plane = upsample(plane, hmax // comp.h, vmax // comp.v)
        return plane[: frame.height, : frame.width]

    def pixels(self) -> np.ndarray:
        comps = self.frame.components
        planes = [self.plane(c) for c in comps]
        if len(comps) == 1:
            return planes[0][..., None]
        if len(comps) == 3:
            rgb_ids = [c.ident for c in comps] == [82, 71, 66]
            if self.adobe == 0 or (not self.jfif and self.adobe is None and rgb_ids):
                return np.stack(planes, axis=-1)
            return ycc_to_rgb(*planes)
        if len(comps) == 4:
            if self.adobe == 2:  # YCCK: inverted CMY stored as YCbCr
                planes[:3] = np.moveaxis(255 - ycc_to_rgb(*planes[:3]), -1, 0)
            return cmyk_to_rgb(np.stack(planes, axis=-1), inverted=self.adobe is not None)
        raise ValueError(f"JPEG: {len(comps)}-component images are not supported")


def decode_jpeg(data: bytes) -> np.ndarray:
    """Decode a JPEG stream to (H, W, 1) gray or (H, W, 3) RGB uint8."""
    decoder = _Decoder()
    decoder.parse(data)
    return decoder.pixels()
