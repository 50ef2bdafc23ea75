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


def assert_similar(got, want, rtol: float, atol: float, where: str = "") -> None:
    """onnx's backend-runner comparison: same structure, shape and dtype; allclose for
    numbers, equality for strings and exotic types (compared bit for bit)."""
    if isinstance(want, list):
        assert isinstance(got, list), f"{where}: expected a sequence, got {type(got).__name__}"
        assert len(got) == len(want), f"{where}: sequence of {len(got)}, expected {len(want)}"
        for g, w in zip(got, want):
            assert_similar(g, w, rtol, atol, where)
        return
    if want is None:
        assert got is None, f"{where}: expected an empty optional, got {type(got).__name__}"
        return
    assert isinstance(got, np.ndarray), f"{where}: expected an array, got {type(got).__name__}"
    assert got.shape == want.shape, f"{where}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{where}: dtype {got.dtype}, expected {want.dtype}"
    if want.dtype == DataType.BFLOAT16.numpy:  # as onnx's runner: float32, two bfloat16 ULPs
        widen = lambda a: (a.view(np.uint16).astype(np.uint32) << 16).view(np.float32)  # noqa: E731
        np.testing.assert_allclose(widen(got), widen(want), rtol=max(rtol, 2**-6), atol=atol, err_msg=where)
    elif want.dtype == object or want.dtype.names:
        np.testing.assert_array_equal(got, want, err_msg=where)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=where)
