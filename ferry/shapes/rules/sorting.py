"""Shape rules for TopK and Unique.

Unique's output count is data dependent: one fresh dim shared by Y (along the unique
axis), indices and counts, which always have the same length.
"""

from __future__ import annotations

from ferry.ir import DataType
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule
from ferry.shapes.rules.indexing import normalize_axis


def _k(ctx: InferenceContext) -> Expr | None:
    if ctx.opset < 10:
        k = ctx.attr("k")
        if k is None:
            ctx.error("TopK before opset 10 needs the 'k' attribute")
            return None
        return Expr.const(int(k))
    elements = ctx.input_symbolic(1)
    if elements is not None and len(elements) == 1 and elements[0] is not None:
        return elements[0]
    return ctx.fresh("TopK's k is not a known constant")


@shape_rule("TopK", since=1)
def top_k(ctx: InferenceContext) -> None:
    """Values and int64 indices: the input's shape with k along ``axis``."""
    dims, dtype = ctx.input_shape(0), ctx.input_dtype(0)
    if dims is None:
        ctx.set_output(0, dtype, None)
        ctx.set_output(1, DataType.INT64, None)
        return
    if not dims:
        ctx.error("the input must have rank >= 1, got a scalar")
        return
    axis = normalize_axis(ctx, ctx.attr("axis", -1), len(dims))
    k = _k(ctx)
    if axis is None or k is None:
        return
    size = dims[axis]
    if k.is_const and size is not None and size.is_const and not 0 <= k.value <= size.value:
        ctx.error(f"k = {k.value} is outside [0, {size.value}] (the length of axis {axis})")
        return
    dims[axis] = k
    ctx.set_output(0, dtype, dims)
    ctx.set_output(1, DataType.INT64, dims)


@shape_rule("Unique", since=11)
def unique(ctx: InferenceContext) -> None:
    """Y: unique values (flattened, or slices along ``axis``); indices, counts: [u];
    inverse_indices: one entry per input element (or per slice along ``axis``)."""
    dims, dtype = ctx.input_shape(0), ctx.input_dtype(0)
    axis = ctx.attr("axis")
    count = ctx.fresh("how many unique values there are depends on the input's data")
    if axis is None:
        total = None
        if dims is not None and all(d is not None for d in dims):
            total = Expr.const(1)
            for dim in dims:
                total = total * dim
        ctx.set_output(0, dtype, [count])
        ctx.set_output(2, DataType.INT64, [total])
    elif dims is None:
        ctx.set_output(0, dtype, None)
        ctx.set_output(2, DataType.INT64, [None])
    else:
        axis = normalize_axis(ctx, axis, len(dims))
        if axis is None:
            return
        ctx.set_output(2, DataType.INT64, [dims[axis]])
        dims[axis] = count
        ctx.set_output(0, dtype, dims)
    ctx.set_output(1, DataType.INT64, [count])
    ctx.set_output(3, DataType.INT64, [count])
