"""ONNX element types and their numpy representation.

numpy has no bfloat16, float8, float6, float4, int4 or int2. ferry represents tensors
of those types as numpy arrays of a one-field *structured* dtype whose field name is
the ONNX type name (``np.dtype([("bfloat16", "<u2")])``): one element per array item
(4-, 2- and 6-bit types take one byte per element, unpacked). Float types hold their bit
pattern; int4/uint4/int2/uint2 hold their value (int4 and int2 sign-extended). Such arrays move, slice, concatenate and compare like any numpy array but
refuse arithmetic, so nothing computes on raw bits by accident. ``to_float32`` and
``from_float32`` (in :mod:`ferry.ir.minifloat`) convert them.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["DataType", "from_numpy_dtype", "EXOTIC_DTYPES"]


class DataType(enum.IntEnum):
    """ONNX ``TensorProto.DataType`` codes."""

    UNDEFINED = 0
    FLOAT = 1
    UINT8 = 2
    INT8 = 3
    UINT16 = 4
    INT16 = 5
    INT32 = 6
    INT64 = 7
    STRING = 8
    BOOL = 9
    FLOAT16 = 10
    DOUBLE = 11
    UINT32 = 12
    UINT64 = 13
    COMPLEX64 = 14
    COMPLEX128 = 15
    BFLOAT16 = 16
    FLOAT8E4M3FN = 17
    FLOAT8E4M3FNUZ = 18
    FLOAT8E5M2 = 19
    FLOAT8E5M2FNUZ = 20
    UINT4 = 21
    INT4 = 22
    FLOAT4E2M1 = 23
    FLOAT8E8M0 = 24
    UINT2 = 25
    INT2 = 26
    FLOAT6E2M3 = 27
    FLOAT6E3M2 = 28

    @property
    def numpy(self) -> np.dtype:
        """The numpy dtype that holds this element type (see module doc)."""
        try:
            return _TO_NUMPY[self]
        except KeyError:
            raise TypeError(f"element type {self.name} has no numpy representation") from None

    @property
    def bitwidth(self) -> int:
        """Bits per element in the packed wire format (strings: 0)."""
        return _BITWIDTH.get(self, 0) or (0 if self == DataType.STRING else self.numpy.itemsize * 8)

    @property
    def short_name(self) -> str:
        """The name onnxruntime uses inside ``tensor(...)``: float, int64, bfloat16, ..."""
        return _SHORT_NAMES.get(self, self.name.lower())

    @property
    def is_floating(self) -> bool:
        return self in _FLOATING

    @property
    def is_exotic(self) -> bool:
        """True for types numpy lacks, stored as one-field structured dtypes."""
        return self in EXOTIC_DTYPES


def _exotic(name: str, storage: str) -> np.dtype:
    return np.dtype([(name, storage)])


EXOTIC_DTYPES: dict[DataType, np.dtype] = {
    DataType.BFLOAT16: _exotic("bfloat16", "<u2"),
    DataType.FLOAT8E4M3FN: _exotic("float8e4m3fn", "u1"),
    DataType.FLOAT8E4M3FNUZ: _exotic("float8e4m3fnuz", "u1"),
    DataType.FLOAT8E5M2: _exotic("float8e5m2", "u1"),
    DataType.FLOAT8E5M2FNUZ: _exotic("float8e5m2fnuz", "u1"),
    DataType.FLOAT8E8M0: _exotic("float8e8m0", "u1"),
    DataType.UINT4: _exotic("uint4", "u1"),
    DataType.INT4: _exotic("int4", "i1"),
    DataType.FLOAT4E2M1: _exotic("float4e2m1", "u1"),
    DataType.UINT2: _exotic("uint2", "u1"),
    DataType.INT2: _exotic("int2", "i1"),
    DataType.FLOAT6E2M3: _exotic("float6e2m3", "u1"),
    DataType.FLOAT6E3M2: _exotic("float6e3m2", "u1"),
}

_TO_NUMPY: dict[DataType, np.dtype] = {
    DataType.FLOAT: np.dtype(np.float32),
    DataType.UINT8: np.dtype(np.uint8),
    DataType.INT8: np.dtype(np.int8),
    DataType.UINT16: np.dtype(np.uint16),
    DataType.INT16: np.dtype(np.int16),
    DataType.INT32: np.dtype(np.int32),
    DataType.INT64: np.dtype(np.int64),
    DataType.STRING: np.dtype(object),
    DataType.BOOL: np.dtype(np.bool_),
    DataType.FLOAT16: np.dtype(np.float16),
    DataType.DOUBLE: np.dtype(np.float64),
    DataType.UINT32: np.dtype(np.uint32),
    DataType.UINT64: np.dtype(np.uint64),
    DataType.COMPLEX64: np.dtype(np.complex64),
    DataType.COMPLEX128: np.dtype(np.complex128),
    **EXOTIC_DTYPES,
}

_FROM_NUMPY: dict[np.dtype, DataType] = {dtype: code for code, dtype in _TO_NUMPY.items()}
_FROM_NUMPY[np.dtype(np.str_)] = DataType.STRING
_FROM_NUMPY[np.dtype(np.bytes_)] = DataType.STRING

_BITWIDTH = {
    DataType.UINT4: 4,
    DataType.INT4: 4,
    DataType.FLOAT4E2M1: 4,
    DataType.UINT2: 2,
    DataType.INT2: 2,
    DataType.FLOAT6E2M3: 6,
    DataType.FLOAT6E3M2: 6,
}

_SHORT_NAMES = {
    DataType.FLOAT: "float",
    DataType.DOUBLE: "double",
    DataType.BOOL: "bool",
}

_FLOATING = {
    DataType.FLOAT,
    DataType.DOUBLE,
    DataType.FLOAT16,
    DataType.BFLOAT16,
    DataType.FLOAT8E4M3FN,
    DataType.FLOAT8E4M3FNUZ,
    DataType.FLOAT8E5M2,
    DataType.FLOAT8E5M2FNUZ,
    DataType.FLOAT8E8M0,
    DataType.FLOAT4E2M1,
    DataType.FLOAT6E2M3,
    DataType.FLOAT6E3M2,
}


def from_numpy_dtype(dtype: np.dtype | type) -> DataType:
    """The ONNX element type of a numpy dtype (including ferry's structured exotic dtypes)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "US":
        return DataType.STRING
    try:
        return _FROM_NUMPY[dtype.newbyteorder("=") if dtype.byteorder == ">" else dtype]
    except KeyError:
        raise TypeError(f"numpy dtype {dtype} has no ONNX element type") from None
