"""Linear quantization kernels: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
QLinearMatMul, MatMulInteger.

Quantized tensors may be ordinary integers (int8, uint8, int16, uint16, int32) or
exotic types (int4/uint4/int2/uint2 and the float8/float6/float4 formats), converted
with :mod:`ferry.ir.minifloat`.
"""

from __future__ import annotations

import numpy as np

from ferry.ir.dtypes import DataType, from_numpy_dtype
from ferry.ir.minifloat import FLOAT_FORMATS, INT_RANGES, from_float32, to_float32
from ferry.runtime.kernels._axes import normalize_axis
from ferry.runtime.registry import kernel

_NUMPY_FLOATS = {
    DataType.FLOAT: np.float32,
    DataType.FLOAT16: np.float16,
    DataType.DOUBLE: np.float64,
}


def _type_of(array: np.ndarray) -> DataType:
    return from_numpy_dtype(np.asarray(array).dtype)


def _real(array: np.ndarray) -> np.ndarray:
    """Numbers of any (possibly exotic) array: integers stay integers, the rest float."""
    array = np.asarray(array)
    if array.dtype.names is not None:
        values = to_float32(array)
        return values.astype(np.int64) if _type_of(array) in INT_RANGES else values
    return array


def _in_precision(values: np.ndarray, precision: DataType) -> np.ndarray:
    """``values`` rounded to a float type, returned as that numpy type (bfloat16: float32)."""
    if precision in _NUMPY_FLOATS:
        return np.asarray(values).astype(_NUMPY_FLOATS[precision])
    if precision == DataType.BFLOAT16:
        return to_float32(from_float32(np.asarray(values, dtype=np.float32), precision))
    return np.asarray(values).astype(np.float32)  # int32 / e8m0 scales: float32 arithmetic


def _as_output(values: np.ndarray, out_type: DataType) -> np.ndarray:
    """Float results in the float output type (bfloat16 encoded)."""
    if out_type in _NUMPY_FLOATS:
        return np.asarray(values).astype(_NUMPY_FLOATS[out_type])
    if out_type == DataType.BFLOAT16:
        return from_float32(values, out_type)
    raise TypeError(f"expected a float output type, got {out_type.name}")


def _spread(param: np.ndarray, shape: tuple[int, ...], axis: int | None, block_size: int | None):
    """A scale or zero point made broadcastable against an input of ``shape``.

    A one-element parameter is per tensor; a 1-D one with ``block_size`` unset is per
    axis; otherwise (blocked) it has the input's rank and each entry covers
    ``block_size`` consecutive elements along ``axis``.
    """
    param = np.asarray(param)
    blocked = bool(block_size) and block_size > 0
    if param.size == 1 and not blocked:
        return param.reshape(())
    rank = len(shape)
    if rank == 1 and axis in (None, 1):  # the default axis 1 does not exist in 1-D
        axis = 0
    axis = normalize_axis(1 if axis is None else axis, max(rank, 1))
    if not blocked:
        if param.ndim != 1 or param.shape[0] != shape[axis]:
            raise ValueError(
                f"per-axis scale/zero point must be 1-D of length {shape[axis]} (axis {axis} "
                f"of input shape {shape}), got shape {param.shape}"
            )
        return param.reshape([-1 if i == axis else 1 for i in range(rank)])
    if param.ndim != rank:
        raise ValueError(
            f"blocked scale/zero point must have the input's rank {rank}, got shape {param.shape}"
        )
    expanded = np.repeat(param, block_size, axis=axis)
    if expanded.shape[axis] < shape[axis]:
        raise ValueError(
            f"block_size {block_size} with {param.shape[axis]} blocks cannot cover "
            f"{shape[axis]} elements along axis {axis}"
        )
    return np.take(expanded, np.arange(shape[axis]), axis=axis)


# --------------------------------------------------------------------------- quantize


def _quantize(values: np.ndarray, zero_point, out_type: DataType, saturate: bool) -> np.ndarray:
    """``values`` (= x / scale) plus ``zero_point``, rounded and saturated into ``out_type``."""
    if out_type in FLOAT_FORMATS:
        shifted = np.asarray(values, dtype=np.float64) + np.asarray(zero_point, dtype=np.float64)
        return from_float32(shifted, out_type, saturate=saturate)
    shifted = np.rint(np.asarray(values, dtype=np.float64)) + zero_point
    if out_type in INT_RANGES:
        return from_float32(shifted, out_type, saturate=True)
    target = np.dtype(out_type.numpy)
    info = np.iinfo(target)
    with np.errstate(invalid="ignore"):
        return np.clip(shifted, info.min, info.max).astype(target)


def _quantized_type(zero_point, output_dtype) -> DataType:
    if zero_point is not None:
        declared = _type_of(zero_point)
        if output_dtype and DataType(output_dtype) != declared:
            raise ValueError(
                f"output_dtype {DataType(output_dtype).name} differs from the zero point's "
                f"type {declared.name}"
            )
        return declared
    return DataType(output_dtype) if output_dtype else DataType.UINT8


@kernel("QuantizeLinear", since=(10, 13, 19, 21, 23, 24, 25, 28))
def quantize_linear(
    x,
    y_scale,
    y_zero_point=None,
    *,
    axis=None,
    saturate=None,
    block_size=None,
    output_dtype=None,
    precision=None,
):
    """y = saturate(round_half_even(x / y_scale) + y_zero_point), per tensor, axis or block."""
    x = np.asarray(x)
    out_type = _quantized_type(y_zero_point, output_dtype)
    compute = DataType(precision) if precision else _type_of(y_scale)
    scale = _spread(_in_precision(_real(y_scale), compute), x.shape, axis, block_size)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = _in_precision(_in_precision(_real(x), compute) / scale, compute)
    zero = 0
    if y_zero_point is not None:
        zero = _spread(_real(y_zero_point), x.shape, axis, block_size)
    saturate = True if saturate is None else bool(saturate)
    return _quantize(ratio, zero, out_type, saturate)


@kernel("DequantizeLinear", since=(10, 13, 19, 21, 23, 24, 25, 28))
def dequantize_linear(
    x, x_scale, x_zero_point=None, *, axis=None, block_size=None, output_dtype=None
):
    """y = (x - x_zero_point) * x_scale, per tensor, axis or block, in the output precision."""
    x = np.asarray(x)
    scale_type = _type_of(x_scale)
    if output_dtype:
        out_type = DataType(output_dtype)
    else:
        out_type = (
            scale_type if scale_type in (*_NUMPY_FLOATS, DataType.BFLOAT16) else DataType.FLOAT
        )
    values = _real(x)
    if x_zero_point is not None:
        zero = _spread(_real(x_zero_point), x.shape, axis, block_size)
        if values.dtype.kind in "iu":
            values = values.astype(np.int64) - np.asarray(zero).astype(np.int64)
        else:
            values = values - _in_precision(zero, out_type)
    scale = _spread(_in_precision(_real(x_scale), out_type), x.shape, axis, block_size)
    product = _in_precision(values, out_type) * scale
    return _as_output(product, out_type)


@kernel("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(x):
    """uint8 quantization of x with scale and zero point spanning [min(x, 0), max(x, 0)]."""
    x = np.asarray(x, dtype=np.float32)
    low = np.float32(min(0.0, x.min())) if x.size else np.float32(0)
    high = np.float32(max(0.0, x.max())) if x.size else np.float32(0)
    scale = np.float32((high - low) / np.float32(255))
    if scale == 0:
        zero_point = np.uint8(0)
        y = np.zeros(x.shape, dtype=np.uint8)
    else:
        zero_point = np.uint8(np.clip(np.rint((np.float32(0) - low) / scale), 0, 255))
        y = np.clip(np.rint(x / scale) + np.float32(zero_point), 0, 255).astype(np.uint8)
    return y, np.asarray(scale, dtype=np.float32), np.asarray(zero_point, dtype=np.uint8)


# --------------------------------------------------------------------------- matmul


def _per_row(param, operand: np.ndarray) -> np.ndarray:
    """A per-row parameter of the left operand (an M-vector) as a column [M, 1]."""
    param = np.asarray(param)
    if param.ndim == 1 and param.size > 1 and operand.ndim >= 2:
        return param.reshape(-1, 1)
    return param.reshape(()) if param.size == 1 else param


def _centered(operand, zero_point, left: bool) -> np.ndarray:
    """Integer operand minus its zero point, exactly, as int64."""
    values = np.asarray(operand).astype(np.int64)
    if zero_point is None:
        return values
    zero = _per_row(zero_point, values) if left else np.asarray(zero_point)
    if zero.size == 1:
        zero = zero.reshape(())
    return values - zero.astype(np.int64)


@kernel("MatMulInteger", since=10)
def matmul_integer(A, B, a_zero_point=None, b_zero_point=None):
    """int32 matmul of (A - a_zero_point) and (B - b_zero_point), accumulated exactly."""
    product = np.matmul(_centered(A, a_zero_point, True), _centered(B, b_zero_point, False))
    return product.astype(np.int32)


def _dequantized(operand, scale, zero_point, left: bool) -> np.ndarray:
    """Float64 real values of a quantized matmul operand."""
    operand = np.asarray(operand)
    arrange = (lambda p: _per_row(p, operand)) if left else np.asarray
    scale = arrange(np.asarray(_real(scale), dtype=np.float64))
    if operand.dtype.names is None:
        return _centered(operand, zero_point, left).astype(np.float64) * scale
    return (
        _real(operand).astype(np.float64) - arrange(_real(zero_point)).astype(np.float64)
    ) * scale


@kernel("QLinearMatMul", since=(10, 21))
def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    """Quantized matmul: dequantize a and b, multiply, requantize with y_scale/y_zero_point."""
    real = np.matmul(
        _dequantized(a, a_scale, a_zero_point, True),
        _dequantized(b, b_scale, b_zero_point, False),
    )
    out_type = _type_of(y_zero_point)
    ratio = real / np.asarray(_real(y_scale), dtype=np.float64)
    return _quantize(ratio, np.asarray(_real(y_zero_point)).astype(np.float64), out_type, True)
