"""Conversions between onnx's (ml_dtypes) arrays and ferry's representation, for tests only."""

from __future__ import annotations

import numpy as np

from ferry.ir.dtypes import DataType

ML_DTYPE_TO_FERRY = {
    "bfloat16": DataType.BFLOAT16,
    "float8_e4m3fn": DataType.FLOAT8E4M3FN,
    "float8_e4m3fnuz": DataType.FLOAT8E4M3FNUZ,
    "float8_e5m2": DataType.FLOAT8E5M2,
    "float8_e5m2fnuz": DataType.FLOAT8E5M2FNUZ,
    "float8_e8m0fnu": DataType.FLOAT8E8M0,
    "int4": DataType.INT4,
    "uint4": DataType.UINT4,
    "float4_e2m1fn": DataType.FLOAT4E2M1,
    "int2": DataType.INT2,
    "uint2": DataType.UINT2,
    "float6_e2m3fn": DataType.FLOAT6E2M3,
    "float6_e3m2fn": DataType.FLOAT6E3M2,
}


def to_ferry_array(array):
    """onnx's reading of a value (ml_dtypes for exotic types) in ferry's representation."""
    if isinstance(array, list):
        return [to_ferry_array(a) for a in array]
    if not isinstance(array, np.ndarray):
        return array
    code = ML_DTYPE_TO_FERRY.get(array.dtype.name)
    if code is None:
        return array
    storage = code.numpy.fields[code.numpy.names[0]][0]
    if code in (DataType.INT4, DataType.INT2):  # signed values, sign-extended into int8
        return array.astype(np.int8).view(code.numpy)
    return array.view(storage).view(code.numpy)
