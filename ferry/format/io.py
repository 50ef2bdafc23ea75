"""Reading and writing ``.onnx`` models and ``.pb`` value files."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Union

import numpy as np
from google.protobuf.message import DecodeError, Message

from ferry.errors import FormatError
from ferry.format import ferry_onnx_pb2 as pb
from ferry.format.decode import Decoder
from ferry.format.encode import Encoder
from ferry.format.tensors import array_from_proto, to_raw_bytes
from ferry.format.wire import (
    FileReader,
    MemoryReader,
    StrippedModel,
    WireMismatch,
    strip_initializer_data,
)
from ferry.ir import ArrayTensor, DataType, Model, Tensor, from_numpy_dtype

__all__ = [
    "load",
    "load_map",
    "load_optional",
    "load_sequence",
    "load_tensor",
    "model_from_bytes",
    "model_to_bytes",
    "save",
    "save_map",
    "save_optional",
    "save_sequence",
    "save_tensor",
]

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]

PROTOBUF_LIMIT = 2**31 - 1
_ALIGN_SMALL = 64
_ALIGN_LARGE = 4096
_LARGE = 1 << 20


def _read(source: Source) -> tuple[bytes, str, str | None]:
    """(bytes, description for errors, folder of the file or None)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>", None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            with open(path, "rb") as handle:
                return handle.read(), repr(path), os.path.dirname(os.path.abspath(path))
        except OSError as error:
            raise FormatError(f"cannot read {path!r}: {error.strerror}") from None
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        folder = os.path.dirname(os.path.abspath(name)) if isinstance(name, str) else None
        return source.read(), repr(name) if name else "<file object>", folder
    raise TypeError(f"expected a path, bytes or a binary file object, got {type(source).__name__}")


def _parse(message: Message, data: bytes, what: str, kind: str) -> None:
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise FormatError(
            f"{what} is not a valid {kind} ({len(data)} bytes; truncated or not a protobuf "
            f"file): {error}"
        ) from None


def _check_model_proto(proto: pb.ModelProto, what: str, size: int) -> None:
    if not proto.HasField("ir_version") or not proto.HasField("graph"):
        missing = "ir_version" if not proto.HasField("ir_version") else "graph"
        raise FormatError(
            f"{what} is not an ONNX model: expected a ModelProto with ir_version and a graph, "
            f"found no {missing} in {size} bytes (truncated, or another kind of file?)"
        )
    if proto.ir_version >= 3 and not proto.opset_import:
        raise FormatError(
            f"{what} is not a complete ONNX model: ir_version {proto.ir_version} requires "
            "opset_import, which is missing (truncated file?)"
        )


def load(source: Source, *, base_dir: str | os.PathLike | None = None) -> Model:
    """Load a model from a path, bytes or a binary file object.

    External data is located relative to the model's folder (or ``base_dir``) and
    memory-mapped when first used. Inline weights are read once, straight into their
    arrays (see :mod:`ferry.format.wire`).
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            reader = FileReader(path)
        except OSError as error:
            raise FormatError(f"cannot read {path!r}: {error.strerror}") from None
        folder = os.path.dirname(os.path.abspath(path))
        with reader:
            return _decode_model(reader, base_dir if base_dir is not None else folder, repr(path))
    data, what, folder = _read(source)
    return model_from_bytes(data, base_dir=base_dir if base_dir is not None else folder, what=what)


def model_from_bytes(
    data: bytes, *, base_dir: str | os.PathLike | None = None, what: str = "<bytes>"
) -> Model:
    """Decode a serialized ModelProto."""
    return _decode_model(MemoryReader(bytes(data)), base_dir, what)


def _decode_model(
    reader: MemoryReader | FileReader, base_dir: str | os.PathLike | None, what: str
) -> Model:
    """Parse with the main graph's weights taken off the wire first; the plain protobuf
    parse when that scan does not line up (it then also reports any corruption)."""
    proto = pb.ModelProto()
    stripped = _stripped_proto(reader, proto)
    if stripped is None:
        proto = pb.ModelProto()
        _parse(proto, reader.read_all(), what, "ONNX model")
    _check_model_proto(proto, what, reader.size)
    raw_data = stripped.raw_data if stripped is not None else None
    try:
        decoder = Decoder(os.fspath(base_dir) if base_dir is not None else None, raw_data)
        return decoder.model(proto)
    except FormatError as error:
        raise FormatError(f"{what}: {error}") from None


def _stripped_proto(reader: MemoryReader | FileReader, proto: pb.ModelProto) -> StrippedModel | None:
    """Fill ``proto`` from the stripped bytes; None when the scan does not line up."""
    try:
        stripped = strip_initializer_data(reader)
        proto.ParseFromString(stripped.data)
    except (WireMismatch, DecodeError, RuntimeError, ValueError):
        return None
    initializers = proto.graph.initializer
    if len(initializers) != stripped.initializer_count or any(
        initializers[index].HasField("raw_data") for index in stripped.raw_data
    ):
        return None
    return stripped


def model_to_bytes(model: Model) -> bytes:
    """Serialize ``model`` with every tensor inline (fails beyond protobuf's 2 GiB limit)."""
    _check_inline_size(model)
    return Encoder().model(model).SerializeToString()


def _check_inline_size(model: Model) -> None:
    total = sum(v.const_value.nbytes for g in model.all_graphs() for v in g.initializers.values())
    if total > PROTOBUF_LIMIT:
        raise FormatError(
            f"the model's initializers hold {total / 2**30:.2f} GiB, over protobuf's 2 GiB "
            "limit for one file; save with external_data=True"
        )


def save(
    model: Model,
    path: str | os.PathLike | IO[bytes],
    *,
    external_data: bool = False,
    size_threshold: int = 1024,
    location: str | None = None,
) -> None:
    """Write ``model`` to ``path``.

    With ``external_data``, every initializer of at least ``size_threshold`` bytes goes
    to one file ``location`` (default: the model's file name + ``.data``) beside the
    model; the data file is written to a temporary name and swapped in, so saving over
    the file a model was loaded from is safe.
    """
    if not external_data:
        data = model_to_bytes(model)
        if hasattr(path, "write"):
            path.write(data)  # type: ignore[union-attr]
            return
        _write_atomically(os.fspath(path), data)
        return
    if hasattr(path, "write"):
        raise TypeError("external_data=True needs a file path, not a file object")
    path = os.fspath(path)
    location = location or os.path.basename(path) + ".data"
    folder = os.path.dirname(os.path.abspath(path))
    from ferry.format.external import resolve_location

    data_path = resolve_location(folder, location, "<save location>")
    writer = _ExternalWriter(data_path, location, size_threshold)
    with writer:
        proto = Encoder(external=writer).model(model)
    data = proto.SerializeToString()
    if len(data) > PROTOBUF_LIMIT:
        raise FormatError(f"model graph is {len(data)} bytes even with external data; over 2 GiB")
    _write_atomically(path, data)
    writer.commit()


def _write_atomically(path: str, data: bytes) -> None:
    temporary = path + ".ferry-tmp"
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


class _ExternalWriter:
    """Appends large initializers to one data file; decides per tensor."""

    def __init__(self, path: str, location: str, threshold: int) -> None:
        self.path = path
        self.location = location
        self.threshold = threshold
        self.temporary = path + ".ferry-tmp"
        self.handle: IO[bytes] | None = None
        self.offset = 0
        self.used = False

    def __enter__(self) -> _ExternalWriter:
        self.handle = open(self.temporary, "wb")
        return self

    def __exit__(self, *exc) -> None:
        assert self.handle is not None
        self.handle.close()
        if exc[0] is not None:
            os.remove(self.temporary)

    def __call__(self, tensor: Tensor, proto: pb.TensorProto) -> bool:
        if tensor.dtype == DataType.STRING or tensor.nbytes < self.threshold:
            return False
        assert self.handle is not None
        align = _ALIGN_LARGE if tensor.nbytes >= _LARGE else _ALIGN_SMALL
        padding = -self.offset % align
        self.handle.write(b"\0" * padding)
        self.offset += padding
        raw = to_raw_bytes(tensor.numpy(), tensor.dtype)
        self.handle.write(raw)
        proto.dims.extend(tensor.shape)
        proto.data_type = int(tensor.dtype)
        proto.data_location = pb.TensorProto.EXTERNAL
        for key, value in (
            ("location", self.location),
            ("offset", str(self.offset)),
            ("length", str(len(raw))),
        ):
            proto.external_data.add(key=key, value=value)
        if tensor.doc_string is not None:
            proto.doc_string = tensor.doc_string
        self.offset += len(raw)
        self.used = True
        return True

    def commit(self) -> None:
        if self.used:
            os.replace(self.temporary, self.path)
        else:
            os.remove(self.temporary)


# -- value files (.pb) ------------------------------------------------------------------
def _tensor_value(proto: pb.TensorProto, base_dir: str | None) -> np.ndarray:
    if proto.data_location == pb.TensorProto.EXTERNAL:
        return Decoder(base_dir).tensor(proto).numpy()
    return array_from_proto(proto)


def load_tensor(source: Source) -> np.ndarray:
    """Read a serialized TensorProto (the format of the official test data)."""
    data, what, folder = _read(source)
    proto = pb.TensorProto()
    _parse(proto, data, what, "TensorProto")
    return _tensor_value(proto, folder)


def save_tensor(
    array: np.ndarray | Tensor, path: str | os.PathLike | IO[bytes], *, name: str | None = None
) -> None:
    """Write ``array`` as a serialized TensorProto."""
    from ferry.format.tensors import tensor_to_proto

    tensor = array if isinstance(array, Tensor) else ArrayTensor(array)
    _write_value(tensor_to_proto(tensor, name=name), path)


def _write_value(proto: Message, path: str | os.PathLike | IO[bytes]) -> None:
    data = proto.SerializeToString()
    if hasattr(path, "write"):
        path.write(data)  # type: ignore[union-attr]
    else:
        _write_atomically(os.fspath(path), data)


def _sequence_value(proto: pb.SequenceProto, base_dir: str | None) -> list:
    kinds: dict[int, Callable[[], list]] = {
        pb.SequenceProto.TENSOR: lambda: [_tensor_value(t, base_dir) for t in proto.tensor_values],
        pb.SequenceProto.SEQUENCE: lambda: [
            _sequence_value(s, base_dir) for s in proto.sequence_values
        ],
        pb.SequenceProto.MAP: lambda: [_map_value(m, base_dir) for m in proto.map_values],
        pb.SequenceProto.OPTIONAL: lambda: [
            _optional_value(o, base_dir) for o in proto.optional_values
        ],
    }
    if proto.elem_type == pb.SequenceProto.UNDEFINED:
        return []
    if proto.elem_type not in kinds:
        raise FormatError(f"sequence {proto.name!r}: unsupported elem_type {proto.elem_type}")
    return kinds[proto.elem_type]()


def _map_value(proto: pb.MapProto, base_dir: str | None) -> dict:
    keys = (
        list(proto.keys)
        if proto.key_type != DataType.STRING
        else [k.decode() for k in proto.string_keys]
    )
    values = _sequence_value(proto.values, base_dir)
    if len(keys) != len(values):
        raise FormatError(f"map {proto.name!r} has {len(keys)} keys but {len(values)} values")
    return dict(zip(keys, values))


def _optional_value(proto: pb.OptionalProto, base_dir: str | None):
    kinds = {
        pb.OptionalProto.TENSOR: lambda: _tensor_value(proto.tensor_value, base_dir),
        pb.OptionalProto.SEQUENCE: lambda: _sequence_value(proto.sequence_value, base_dir),
        pb.OptionalProto.MAP: lambda: _map_value(proto.map_value, base_dir),
        pb.OptionalProto.OPTIONAL: lambda: _optional_value(proto.optional_value, base_dir),
    }
    if proto.elem_type == pb.OptionalProto.UNDEFINED:
        return None
    if proto.elem_type not in kinds:
        raise FormatError(f"optional {proto.name!r}: unsupported elem_type {proto.elem_type}")
    return kinds[proto.elem_type]()


def _load_value(source: Source, message: Message, kind: str, convert):
    data, what, folder = _read(source)
    _parse(message, data, what, kind)
    return convert(message, folder)


def load_sequence(source: Source) -> list:
    """Read a serialized SequenceProto as a list (of arrays, lists, dicts or None)."""
    return _load_value(source, pb.SequenceProto(), "SequenceProto", _sequence_value)


def load_map(source: Source) -> dict:
    """Read a serialized MapProto as a dict."""
    return _load_value(source, pb.MapProto(), "MapProto", _map_value)


def load_optional(source: Source):
    """Read a serialized OptionalProto: None when empty, else its value."""
    return _load_value(source, pb.OptionalProto(), "OptionalProto", _optional_value)


def _encode_element(value: object, proto: Message, field_prefix: str, kinds) -> int:
    """Store one sequence element or optional payload; returns its elem_type code."""
    from ferry.format.tensors import tensor_to_proto

    if isinstance(value, list):
        _sequence_proto(value, _target(proto, field_prefix, "sequence"))
        return kinds.SEQUENCE
    if isinstance(value, dict):
        _map_proto(value, _target(proto, field_prefix, "map"))
        return kinds.MAP
    tensor = value if isinstance(value, Tensor) else ArrayTensor(np.asarray(value))
    tensor_to_proto(tensor, _target(proto, field_prefix, "tensor"))
    return kinds.TENSOR


def _target(proto: Message, prefix: str, kind: str) -> Message:
    if prefix == "values":  # SequenceProto: repeated <kind>_values
        return getattr(proto, f"{kind}_values").add()
    return getattr(proto, f"{kind}_value")  # OptionalProto: <kind>_value


def _sequence_proto(values: list, proto: pb.SequenceProto) -> pb.SequenceProto:
    kinds = {_encode_element(v, proto, "values", pb.SequenceProto) for v in values}
    if len(kinds) > 1:
        raise TypeError("a sequence's elements must all be tensors, all sequences or all maps")
    proto.elem_type = kinds.pop() if kinds else pb.SequenceProto.TENSOR
    return proto


def _map_proto(mapping: dict, proto: pb.MapProto) -> pb.MapProto:
    keys = list(mapping)
    if all(isinstance(k, str) for k in keys):
        proto.key_type = DataType.STRING
        proto.string_keys.extend(k.encode("utf-8") for k in keys)
    else:
        key_array = np.asarray(keys)
        proto.key_type = int(from_numpy_dtype(key_array.dtype))
        proto.keys.extend(int(k) for k in keys)
    _sequence_proto(list(mapping.values()), proto.values)
    return proto


def save_sequence(values: list, path: str | os.PathLike | IO[bytes], *, name: str | None = None) -> None:
    """Write a list of arrays (or lists, or dicts) as a serialized SequenceProto."""
    proto = _sequence_proto(values, pb.SequenceProto())
    if name is not None:
        proto.name = name
    _write_value(proto, path)


def save_map(mapping: dict, path: str | os.PathLike | IO[bytes], *, name: str | None = None) -> None:
    """Write a dict (integer or string keys) as a serialized MapProto."""
    proto = _map_proto(mapping, pb.MapProto())
    if name is not None:
        proto.name = name
    _write_value(proto, path)


def save_optional(value: object, path: str | os.PathLike | IO[bytes], *, name: str | None = None) -> None:
    """Write ``value`` (None for an empty optional) as a serialized OptionalProto."""
    proto = pb.OptionalProto()
    if name is not None:
        proto.name = name
    if value is not None:
        proto.elem_type = _encode_element(value, proto, "value", pb.OptionalProto)
    _write_value(proto, path)
