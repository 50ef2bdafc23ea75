"""Tensor creation: Constant, ConstantOfShape, Range, EyeLike.

Small integer results are recorded as data (``Constant`` always; ``Range`` and
``ConstantOfShape`` when their size is known), so shape computations that start
from them keep propagating.
"""

from __future__ import annotations

import numpy as np

from ferry.ir import DataType, SparseTensorType
from ferry.ir.attribute import CONSTANT_VALUE_ATTRIBUTES, constant_attribute_array
from ferry.ir.dtypes import from_numpy_dtype
from ferry.ir.tensor import SparseTensor
from ferry.shapes.context import SYMBOLIC_LIMIT, InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule
from ferry.shapes.rules._common import symbolic_ints

__all__: list[str] = []

@shape_rule("Constant", since=1)
def constant(ctx: InferenceContext) -> None:
    """The output is the one value attribute: ``value`` (a tensor), ``sparse_value``, or
    from opset 12 ``value_float(s)``, ``value_int(s)``, ``value_string(s)``."""
    present = [name for name in CONSTANT_VALUE_ATTRIBUTES if ctx.has_attr(name)]
    if len(present) != 1:
        ctx.error(f"Constant needs exactly one value attribute, found {present or 'none'}")
        return
    name = present[0]
    if name == "sparse_value":
        sparse = ctx.node.attributes[name].value
        if isinstance(sparse, SparseTensor):
            ctx.set_output_type(0, SparseTensorType(sparse.dtype, list(sparse.shape)))
        else:
            ctx.error("sparse_value does not hold a sparse tensor")
        return
    ctx.set_output_value(0, constant_attribute_array(name, ctx.attr(name)))


def _fill_dtype(ctx: InferenceContext) -> tuple[DataType, np.ndarray | None]:
    value = ctx.attr("value")
    if value is None:
        return DataType.FLOAT, None
    array = np.asarray(value)
    return from_numpy_dtype(array.dtype), array


@shape_rule("ConstantOfShape", since=9)
def constant_of_shape(ctx: InferenceContext) -> None:
    """Output dims are input 0's elements; its type is that of the ``value`` attribute."""
    dtype, fill = _fill_dtype(ctx)
    dims = symbolic_ints(ctx, 0)
    if dims is None:
        length = ctx.input_shape(0)
        if length is not None and len(length) == 1 and length[0] is not None and length[0].is_const:
            ctx.set_output(0, dtype, [None] * length[0].value)
        else:
            ctx.set_output(0, dtype, None)
        return
    if any(d is not None and d.is_const and d.value < 0 for d in dims):
        ctx.error(f"the shape {[str(d) for d in dims]} has a negative dim")
        return
    ctx.set_output(0, dtype, dims)
    if len(dims) == 1 and dims[0] is not None and dims[0].is_const and dims[0].value <= SYMBOLIC_LIMIT:
        element = fill.reshape(-1)[0] if fill is not None and fill.size else 0
        if dtype == DataType.BOOL or np.asarray(element).dtype.kind in "iu":
            ctx.set_output_symbolic(0, [Expr.const(int(element))] * dims[0].value)


@shape_rule("Range", since=11)
def range_(ctx: InferenceContext) -> None:
    """max(ceil((limit - start) / delta), 0) elements."""
    dtype = ctx.input_dtype(0) or ctx.input_dtype(1) or ctx.input_dtype(2)
    values = [ctx.input_value(i) for i in range(3)]
    if all(v is not None and v.size == 1 for v in values):
        start, limit, delta = (v.reshape(-1)[0] for v in values)  # type: ignore[union-attr]
        if delta == 0:
            ctx.error("delta is 0")
            return
        count = max(int(np.ceil((limit - start) / delta)), 0)
        if dtype is not None and dtype.numpy.kind in "iu" and count <= SYMBOLIC_LIMIT:
            ctx.set_output_value(0, np.arange(start, limit, delta, dtype=dtype.numpy)[:count])
        else:
            ctx.set_output(0, dtype, [count])
        return
    ctx.set_output(0, dtype, [_symbolic_count(ctx)])


def _symbolic_count(ctx: InferenceContext) -> Expr | None:
    parts = [symbolic_ints(ctx, i) for i in range(3)]
    if any(p is None or len(p) != 1 or p[0] is None for p in parts):
        return None
    start, limit, delta = (p[0] for p in parts)  # type: ignore[index]
    if not delta.is_const or delta.value == 0:
        return None
    step = delta.value
    span = limit - start if step > 0 else start - limit
    return (span + (abs(step) - 1)) // abs(step)


@shape_rule("EyeLike", since=9)
def eye_like(ctx: InferenceContext) -> None:
    to = ctx.attr("dtype")
    dtype = DataType(to) if to is not None else ctx.input_dtype(0)
    dims = ctx.input_shape(0)
    if dims is not None and len(dims) != 2:
        ctx.error(f"the input must be 2-D, found rank {len(dims)}")
        return
    ctx.set_output(0, dtype, dims if dims is not None else [None, None])
