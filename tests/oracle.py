"""Conversions between onnx's (ml_dtypes) arrays and ferry's representation, for tests only."""

from __future__ import annotations

import numpy as np

from ferry.backend import to_ferry
from ferry.ir.dtypes import DataType


def to_ferry_array(array):
    """onnx's reading of a value (ml_dtypes for exotic types) in ferry's representation."""
    return to_ferry(array)


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
