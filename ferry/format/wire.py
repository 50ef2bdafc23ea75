"""Finding the main graph's initializer bytes in a serialized ModelProto.

Protobuf's parser copies every ``bytes`` field, and reading ``TensorProto.raw_data``
copies it again, so a model's weights would pass through memory three times. This
module walks the protobuf wire format (a field is a varint key ``number << 3 | wire
type`` then its payload; wire type 2 payloads are length-prefixed) along ModelProto
field 7 (``graph``) -> GraphProto field 5 (``initializer``) -> TensorProto field 9
(``raw_data``), reads each large raw_data straight into its own array, and returns the
model's bytes with those fields cut out (enclosing lengths re-encoded) for protobuf to
parse. Every other byte is kept in its original order. Anything the walk does not
expect (groups, a repeated ``graph`` or ``raw_data`` field, a length running past its
message) raises :class:`WireMismatch`; the caller then parses the file the plain way.

The source is read with ordinary reads (never memory-mapped: saving over the model's
file later must not change arrays already loaded from it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FileReader", "MemoryReader", "StrippedModel", "WireMismatch", "strip_initializer_data"]

_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_TENSOR_RAW_DATA = 9
_VARINT, _FIXED64, _LENGTH, _GROUP_START, _GROUP_END, _FIXED32 = range(6)
MIN_STRIPPED = 1024  # smaller raw_data stays in the message: copying it costs nothing
_WINDOW = 1 << 16


class WireMismatch(Exception):
    """The bytes do not follow the layout this scan expects (the caller falls back)."""


class MemoryReader:
    """Random access to a serialized model held in memory (arrays are views of it)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def bytes_at(self, offset: int, count: int) -> bytes:
        return self.data[offset : offset + count]

    def array_at(self, offset: int, count: int) -> np.ndarray:
        return np.frombuffer(self.data, dtype=np.uint8, count=count, offset=offset)

    def read_all(self) -> bytes:
        return self.data


class FileReader:
    """Random access to a model file by plain reads through a small window."""

    def __init__(self, path: str) -> None:
        self.handle = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self.size = os.fstat(self.handle.fileno()).st_size
        self._window_start = 0
        self._window = b""

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> FileReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def bytes_at(self, offset: int, count: int) -> bytes:
        start = offset - self._window_start
        if start >= 0 and start + count <= len(self._window):
            return self._window[start : start + count]
        if count < _WINDOW:
            self._window_start = offset
            self._window = self._read(offset, min(_WINDOW, self.size - offset))
            return self._window[:count]
        return self._read(offset, count)

    def array_at(self, offset: int, count: int) -> np.ndarray:
        array = self._fill(np.empty(count, dtype=np.uint8), offset)
        array.flags.writeable = False  # like bytes-backed arrays
        return array

    def read_all(self) -> bytes:
        self.handle.seek(0)
        return self.handle.readall()

    def _read(self, offset: int, count: int) -> bytes:
        self.handle.seek(offset)
        parts = [self.handle.read(count)]
        done = len(parts[0])
        while done < count:
            part = self.handle.read(count - done)
            if not part:
                raise WireMismatch(f"file ends at byte {offset + done}, before {offset + count}")
            parts.append(part)
            done += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _fill(self, array: np.ndarray, offset: int) -> np.ndarray:
        view = memoryview(array)
        self.handle.seek(offset)
        done = 0
        while done < len(view):
            count = self.handle.readinto(view[done:])
            if not count:
                raise WireMismatch(f"file ends at byte {offset + done}, before {offset + len(view)}")
            done += count
        return array


@dataclass
class StrippedModel:
    """The model's bytes without the main graph's large ``raw_data`` fields, and those
    fields' bytes by initializer index (uint8 arrays, read-only)."""

    data: bytes
    raw_data: dict[int, np.ndarray] = field(default_factory=dict)
    initializer_count: int = 0


def strip_initializer_data(reader: MemoryReader | FileReader) -> StrippedModel:
    """Split ``reader``'s ModelProto as described in the module docstring."""
    builder = _Builder(reader)
    graphs = 0
    for number, wire_type, start, payload, end in _fields(reader, 0, reader.size):
        if number == _MODEL_GRAPH and wire_type == _LENGTH:
            graphs += 1
            if graphs > 1:
                raise WireMismatch("graph field appears more than once (merged messages)")
            builder.nested(start, payload, _graph, reader, builder, payload, end)
        else:
            builder.keep(start, end)
    data = builder.materialize()
    arrays = {index: reader.array_at(offset, size) for index, (offset, size) in builder.raw.items()}
    return StrippedModel(data, arrays, builder.initializers)


def _graph(reader, builder: _Builder, start: int, end: int) -> None:
    for number, wire_type, header, payload, stop in _fields(reader, start, end):
        if number == _GRAPH_INITIALIZER:
            if wire_type != _LENGTH:
                raise WireMismatch(f"initializer field with wire type {wire_type}")
            _tensor(reader, builder, header, payload, stop)
            builder.initializers += 1
        else:
            builder.keep(header, stop)


def _tensor(reader, builder: _Builder, header: int, start: int, end: int) -> None:
    raw = [(p, e) for n, w, _, p, e in _fields(reader, start, end) if n == _TENSOR_RAW_DATA]
    if len(raw) > 1:
        raise WireMismatch("raw_data appears more than once in one tensor")
    if not raw or raw[0][1] - raw[0][0] < MIN_STRIPPED:
        builder.keep(header, end)
        return

    def rest() -> None:
        for number, _, field_start, _, field_end in _fields(reader, start, end):
            if number != _TENSOR_RAW_DATA:
                builder.keep(field_start, field_end)

    builder.raw[builder.initializers] = (raw[0][0], raw[0][1] - raw[0][0])
    builder.nested(header, start, rest)


class _Builder:
    """Collects the stripped message as source byte ranges and re-encoded headers."""

    def __init__(self, reader) -> None:
        self.reader = reader
        self.pieces: list[bytes | list[int]] = []
        self.raw: dict[int, tuple[int, int]] = {}
        self.initializers = 0

    def keep(self, start: int, end: int) -> None:
        last = self.pieces[-1] if self.pieces else None
        if isinstance(last, list) and last[1] == start:
            last[1] = end
        else:
            self.pieces.append([start, end])

    def nested(self, header: int, payload: int, fill, *args) -> None:
        """A length-delimited field whose payload ``fill(*args)`` rebuilds: its key bytes
        are kept, its length is written once the new payload is known."""
        key = _key_end(self.reader, header)
        self.keep(header, key)
        slot = len(self.pieces)
        self.pieces.append(b"")
        fill(*args)
        length = sum(p[1] - p[0] if isinstance(p, list) else len(p) for p in self.pieces[slot + 1 :])
        self.pieces[slot] = _encode_varint(length)

    def materialize(self) -> bytes:
        return b"".join(
            self.reader.bytes_at(p[0], p[1] - p[0]) if isinstance(p, list) else p for p in self.pieces
        )


def _fields(reader, start: int, end: int):
    """(number, wire type, field start, payload start, field end) of each field in
    ``[start, end)``."""
    offset = start
    while offset < end:
        key, payload = _varint(reader, offset, end)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireMismatch(f"field number 0 at byte {offset}")
        if wire_type == _VARINT:
            stop = _varint(reader, payload, end)[1]
        elif wire_type == _FIXED64:
            stop = payload + 8
        elif wire_type == _FIXED32:
            stop = payload + 4
        elif wire_type == _LENGTH:
            length, payload = _varint(reader, payload, end)
            stop = payload + length
        else:
            raise WireMismatch(f"wire type {wire_type} (groups) at byte {offset}")
        if stop > end:
            raise WireMismatch(f"field at byte {offset} runs past its message's end {end}")
        yield number, wire_type, offset, payload, stop
        offset = stop


def _key_end(reader, header: int) -> int:
    return _varint(reader, header, reader.size)[1]


def _varint(reader, offset: int, end: int) -> tuple[int, int]:
    """The varint at ``offset`` and the offset after it."""
    chunk = reader.bytes_at(offset, min(10, end - offset))
    value = 0
    for index, byte in enumerate(chunk):
        value |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            return value, offset + index + 1
    raise WireMismatch(f"unterminated varint at byte {offset}")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
