"""torch dtypes <-> ONNX element types."""

from __future__ import annotations

import torch

from ferry.ir import DataType

__all__ = ["to_data_type", "to_torch_dtype"]

_TABLE = {
    torch.float32: DataType.FLOAT,
    torch.float64: DataType.DOUBLE,
    torch.float16: DataType.FLOAT16,
    torch.bfloat16: DataType.BFLOAT16,
    torch.int8: DataType.INT8,
    torch.int16: DataType.INT16,
    torch.int32: DataType.INT32,
    torch.int64: DataType.INT64,
    torch.uint8: DataType.UINT8,
    torch.uint16: DataType.UINT16,
    torch.uint32: DataType.UINT32,
    torch.uint64: DataType.UINT64,
    torch.bool: DataType.BOOL,
    torch.complex64: DataType.COMPLEX64,
    torch.complex128: DataType.COMPLEX128,
    torch.float8_e4m3fn: DataType.FLOAT8E4M3FN,
    torch.float8_e4m3fnuz: DataType.FLOAT8E4M3FNUZ,
    torch.float8_e5m2: DataType.FLOAT8E5M2,
    torch.float8_e5m2fnuz: DataType.FLOAT8E5M2FNUZ,
}
_BACK = {v: k for k, v in _TABLE.items()}


def to_data_type(dtype: torch.dtype) -> DataType:
    """The ONNX element type of a torch dtype."""
    try:
        return _TABLE[dtype]
    except KeyError:
        raise TypeError(f"torch dtype {dtype} has no ONNX element type") from None


def to_torch_dtype(dtype: DataType) -> torch.dtype:
    return _BACK[DataType(dtype)]
