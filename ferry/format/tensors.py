"""TensorProto <-> ferry tensors, following the standard's storage rules exactly.

``raw_data`` holds little-endian packed bytes. Without it, values sit in the typed
field for their type: ``float_data`` (FLOAT, COMPLEX64 as pairs), ``int32_data``
(INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16/BFLOAT16 and the float8 types as
bit patterns, 4- and 2-bit types as packed bytes, 6-bit types one per entry),
``int64_data``, ``uint64_data`` (UINT32, UINT64), ``double_data`` (DOUBLE,
COMPLEX128) and ``string_data``. A decoded tensor remembers which field it came
from, so saving writes it back the same way.
"""

from __future__ import annotations

import sys

import numpy as np

from ferry.errors import FormatError
from ferry.format import ferry_onnx_pb2 as pb
from ferry.format.packing import SIGNED_SUBBYTE, pack_bits, unpack_bits
from ferry.ir.dtypes import DataType
from ferry.ir.tensor import ArrayTensor, Tensor

__all__ = ["array_from_proto", "tensor_from_proto", "tensor_to_proto", "storage_field"]

_PACKED = {DataType.INT4, DataType.UINT4, DataType.FLOAT4E2M1, DataType.INT2, DataType.UINT2}
_SIX_BIT = {DataType.FLOAT6E2M3, DataType.FLOAT6E3M2}

_FIELD = {
    DataType.FLOAT: "float_data",
    DataType.COMPLEX64: "float_data",
    DataType.INT64: "int64_data",
    DataType.UINT32: "uint64_data",
    DataType.UINT64: "uint64_data",
    DataType.DOUBLE: "double_data",
    DataType.COMPLEX128: "double_data",
    DataType.STRING: "string_data",
}


def storage_field(dtype: DataType) -> str:
    """The typed TensorProto field that holds ``dtype`` when raw_data is not used."""
    return _FIELD.get(dtype, "int32_data")


def _storage_dtype(dtype: DataType) -> np.dtype:
    """The plain numpy dtype of the bits of one element (exotic types: their field)."""
    numpy_dtype = dtype.numpy
    return numpy_dtype.fields[numpy_dtype.names[0]][0] if numpy_dtype.names else numpy_dtype


def _from_raw(raw: bytes | np.ndarray, dtype: DataType, shape: tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    if dtype.bitwidth < 8 or dtype in _SIX_BIT:
        values = unpack_bits(raw, dtype.bitwidth, count, signed=dtype in SIGNED_SUBBYTE)
        return values.view(dtype.numpy).reshape(shape)
    storage = _storage_dtype(dtype).newbyteorder("<")
    expected = count * storage.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"raw_data has {len(raw)} bytes, {dtype.name}{list(shape)} needs {expected}"
        )
    array = np.frombuffer(raw, dtype=storage)
    if not array.flags.aligned:  # a view into a whole file's bytes may start anywhere
        array = array.copy()
        array.flags.writeable = False
    if sys.byteorder == "big":
        array = array.astype(storage.newbyteorder("="))
    return array.view(dtype.numpy).reshape(shape)


def _from_typed(proto: pb.TensorProto, dtype: DataType, shape: tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    field = storage_field(dtype)
    data = getattr(proto, field)
    if dtype == DataType.STRING:
        array = np.empty(len(data), dtype=object)
        array[:] = [_decode_string(s) for s in data]
    elif dtype in (DataType.COMPLEX64, DataType.COMPLEX128):
        base = np.float32 if dtype == DataType.COMPLEX64 else np.float64
        array = np.asarray(data, dtype=base).view(dtype.numpy)
    elif field == "int32_data" and (dtype.bitwidth < 8 or dtype in _SIX_BIT):
        raw = np.asarray(data, dtype=np.int64).astype(np.uint8)
        if dtype in _SIX_BIT:
            array = (raw & 0x3F).view(dtype.numpy)
        else:
            array = unpack_bits(raw, dtype.bitwidth, count, signed=dtype in SIGNED_SUBBYTE)
            array = array.view(dtype.numpy)
    elif field == "int32_data":
        storage = _storage_dtype(dtype)
        bits = np.asarray(data, dtype=np.int64)
        if storage.kind in "ub" or dtype.numpy.names or dtype == DataType.FLOAT16:
            bits = bits & ((1 << (8 * storage.itemsize)) - 1)
        array = bits.astype(storage if storage.kind != "f" else np.uint16)
        array = array.view(dtype.numpy) if storage.kind == "f" or dtype.numpy.names else array
    else:
        array = np.asarray(data, dtype=dtype.numpy)
    if array.size != count:
        raise ValueError(
            f"{field} holds {array.size} values, {dtype.name}{list(shape)} needs {count}"
        )
    return array.reshape(shape)


def _decode_string(value: bytes) -> str | bytes:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


def array_from_proto(proto: pb.TensorProto, raw_data: bytes | np.ndarray | None = None) -> np.ndarray:
    """Decode an in-memory (not external) TensorProto to a numpy array.

    ``raw_data``, when given, is the tensor's raw_data field taken off the wire by the
    caller (see :mod:`ferry.format.wire`); ``proto`` then lacks it.
    """
    try:
        dtype = DataType(proto.data_type)
    except ValueError:
        raise FormatError(f"tensor {proto.name!r}: unknown data_type {proto.data_type}") from None
    if dtype == DataType.UNDEFINED:
        raise FormatError(f"tensor {proto.name!r}: data_type is UNDEFINED")
    shape = tuple(proto.dims)
    if any(d < 0 for d in shape):
        raise FormatError(f"tensor {proto.name!r}: negative dimension in {list(shape)}")
    try:
        if raw_data is not None and dtype != DataType.STRING:
            return _from_raw(raw_data, dtype, shape)
        if proto.HasField("raw_data") and dtype != DataType.STRING:
            return _from_raw(proto.raw_data, dtype, shape)
        return _from_typed(proto, dtype, shape)
    except ValueError as error:
        raise FormatError(f"tensor {proto.name!r}: {error}") from None


class DecodedTensor(ArrayTensor):
    """A tensor read from a TensorProto; remembers the field its values came from."""

    def __init__(self, array: np.ndarray, dtype: DataType, wire_field: str, **kwargs) -> None:
        super().__init__(array, dtype, **kwargs)
        self.wire_field = wire_field


def tensor_from_proto(
    proto: pb.TensorProto, raw_data: bytes | np.ndarray | None = None
) -> DecodedTensor:
    """Decode a TensorProto held in memory (external data is the caller's business);
    ``raw_data`` as for :func:`array_from_proto`."""
    array = array_from_proto(proto, raw_data)
    dtype = DataType(proto.data_type)
    has_raw = raw_data is not None or proto.HasField("raw_data")
    wire_field = "raw_data" if has_raw else storage_field(dtype)
    return DecodedTensor(
        array,
        dtype,
        wire_field,
        name=proto.name if proto.HasField("name") else None,
        doc_string=proto.doc_string if proto.HasField("doc_string") else None,
        metadata_props={p.key: p.value for p in proto.metadata_props},
    )


def to_raw_bytes(array: np.ndarray, dtype: DataType) -> bytes:
    """The little-endian packed bytes of ``array`` (not for strings)."""
    if dtype.bitwidth < 8 or dtype in _SIX_BIT:
        bits = np.asarray(array).view(_storage_dtype(dtype)).astype(np.uint8)
        return pack_bits(bits & ((1 << dtype.bitwidth) - 1), dtype.bitwidth)
    storage = _storage_dtype(dtype)
    plain = np.ascontiguousarray(array).view(storage) if dtype.numpy.names else array
    return np.ascontiguousarray(plain, dtype=storage.newbyteorder("<")).tobytes()


def write_values(proto: pb.TensorProto, array: np.ndarray, dtype: DataType, field: str) -> None:
    """Store ``array`` into ``proto``'s ``field`` (raw_data or the typed field)."""
    if field == "raw_data":
        proto.raw_data = to_raw_bytes(array, dtype)
        return
    if dtype == DataType.STRING:
        proto.string_data.extend(
            s.encode("utf-8") if isinstance(s, str) else bytes(s) for s in array.flat
        )
    elif dtype in (DataType.COMPLEX64, DataType.COMPLEX128):
        getattr(proto, field).extend(
            np.ascontiguousarray(array).view(array.real.dtype).reshape(-1).tolist()
        )
    elif field == "int32_data" and (dtype.bitwidth < 8 and dtype not in _SIX_BIT):
        proto.int32_data.extend(np.frombuffer(to_raw_bytes(array, dtype), dtype=np.uint8).tolist())
    elif field == "int32_data":
        storage = _storage_dtype(dtype)
        plain = np.asarray(array).view(storage) if dtype.numpy.names else array
        if storage.kind == "f":
            plain = plain.view(np.uint16)
        proto.int32_data.extend(plain.astype(np.int64).reshape(-1).tolist())
    else:
        getattr(proto, field).extend(np.asarray(array).reshape(-1).tolist())


def tensor_to_proto(
    tensor: Tensor, proto: pb.TensorProto | None = None, *, name: str | None = None
) -> pb.TensorProto:
    """Encode ``tensor`` (its data loaded) into a TensorProto."""
    proto = pb.TensorProto() if proto is None else proto
    array = tensor.numpy()
    proto.dims.extend(tensor.shape)
    proto.data_type = int(tensor.dtype)
    name = tensor.name if name is None else name
    if name is not None:
        proto.name = name
    if tensor.doc_string is not None:
        proto.doc_string = tensor.doc_string
    for key, value in tensor.metadata_props.items():
        proto.metadata_props.add(key=key, value=value)
    default = "string_data" if tensor.dtype == DataType.STRING else "raw_data"
    write_values(proto, array, tensor.dtype, getattr(tensor, "wire_field", default))
    return proto
