"""Shape rules for linear quantization: QuantizeLinear, DequantizeLinear and
DynamicQuantizeLinear (the quantized matmul and convolution rules live in linalg and nn).

Outputs keep x's shape. QuantizeLinear's element type is y_zero_point's when given,
else the output_dtype attribute (opset 21+) when set, else uint8; the two must agree
when both are given. DequantizeLinear gives output_dtype (opset 23+) when set, else the
scale's type (float, float16 or bfloat16; float for any other scale type). The scale
and zero point are one value (per tensor), a [C] vector along ``axis`` (per axis), or
x's rank with ``block_size`` elements per entry along ``axis`` (blocked).
"""

from __future__ import annotations

from ferry.ir.dtypes import DataType
from ferry.shapes.context import InferenceContext
from ferry.shapes.rules._nn_common import (
    Shape,
    fail,
    format_shape,
    known,
    normalize_axis,
    rule,
    same_dim,
)

_FLOAT_OUTPUTS = (DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16)


def _check_param(ctx: InferenceContext, x: Shape | None, index: int, name: str) -> None:
    """A scale or zero point must be per tensor, per axis or blocked (see the module docs)."""
    param = ctx.input_shape(index) if ctx.has_input(index) else None
    if x is None or param is None or all(known(d) == 1 for d in param):
        return
    block = int(ctx.attr("block_size", 0) or 0) if ctx.opset >= 21 else 0
    axis = int(ctx.attr("axis", 1))
    if len(x) == 1 and axis == 1:  # the default axis 1 does not exist in 1-D
        axis = 0
    axis = normalize_axis(ctx, axis, max(len(x), 1))
    where = f"{name} {format_shape(param)} for x {format_shape(x)}"
    if block <= 0:
        if len(param) != 1:
            fail(ctx, f"{where}: a per-axis {name} must be 1-D")
        same_dim(ctx, x[axis], param[0], f"{where}: per-axis length along axis {axis}")
        return
    if len(param) != len(x):
        fail(ctx, f"{where}: a blocked {name} must have x's rank {len(x)}")
    size, blocks = known(x[axis]), known(param[axis])
    if size is not None and blocks is not None and blocks * block < size:
        fail(ctx, f"{where}: {blocks} blocks of block_size {block} cannot cover the {size} "
                  f"elements along axis {axis} (expected {-(-size // block)} blocks)")


@rule("QuantizeLinear", since=10)
def quantize_linear(ctx: InferenceContext) -> None:
    """QuantizeLinear: y like x, of the quantized type (see the module docs)."""
    x = ctx.input_shape(0)
    _check_param(ctx, x, 1, "y_scale")
    _check_param(ctx, x, 2, "y_zero_point")
    output_dtype = int(ctx.attr("output_dtype", 0) or 0) if ctx.opset >= 21 else 0
    zero_type = ctx.input_dtype(2) if ctx.has_input(2) else None
    if zero_type is not None and output_dtype and DataType(output_dtype) != zero_type:
        fail(ctx, f"output_dtype {DataType(output_dtype).name} differs from y_zero_point's "
                  f"type {zero_type.name}")
    if ctx.has_input(2):
        dtype = zero_type
    else:
        dtype = DataType(output_dtype) if output_dtype else DataType.UINT8
    ctx.set_output(0, dtype, x)


@rule("DequantizeLinear", since=10)
def dequantize_linear(ctx: InferenceContext) -> None:
    """DequantizeLinear: y like x, of the dequantized float type (see the module docs)."""
    x = ctx.input_shape(0)
    _check_param(ctx, x, 1, "x_scale")
    _check_param(ctx, x, 2, "x_zero_point")
    output_dtype = int(ctx.attr("output_dtype", 0) or 0) if ctx.opset >= 23 else 0
    scale_type = ctx.input_dtype(1)
    if output_dtype:
        dtype = DataType(output_dtype)
    elif scale_type is None:
        dtype = None
    else:
        dtype = scale_type if scale_type in _FLOAT_OUTPUTS else DataType.FLOAT
    ctx.set_output(0, dtype, x)


@rule("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(ctx: InferenceContext) -> None:
    """DynamicQuantizeLinear: y uint8 like x; y_scale a float scalar, y_zero_point uint8."""
    ctx.set_output(0, DataType.UINT8, ctx.input_shape(0))
    ctx.set_output(1, DataType.FLOAT, [])
    ctx.set_output(2, DataType.UINT8, [])
