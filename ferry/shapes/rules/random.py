"""Shape rules for the random generators: RandomNormal, RandomUniform, their *Like forms,
Bernoulli and Multinomial."""

from __future__ import annotations

from ferry.ir import DataType
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule

_FLOATS = (DataType.FLOAT16, DataType.FLOAT, DataType.DOUBLE, DataType.BFLOAT16)


def _dtype(ctx: InferenceContext, default: DataType | None, allowed=_FLOATS) -> DataType | None:
    """The ``dtype`` attribute (else ``default``); an error names a type not allowed."""
    code = ctx.attr("dtype")
    if code is None:
        return default
    try:
        dtype = DataType(code)
    except ValueError:
        dtype = None
    if dtype not in allowed:
        names = ", ".join(d.name for d in allowed)
        ctx.error(f"dtype {dtype.name if dtype is not None else code} is not one of {names}")
        raise _BadDtype
    return dtype


class _BadDtype(Exception):
    """Raised by _dtype after reporting; the rules catch it and stop."""


def _generator(ctx: InferenceContext) -> None:
    shape = ctx.attr("shape")
    if shape is None:
        ctx.error("the required attribute 'shape' is missing")
        return
    if any(d < 0 for d in shape):
        ctx.error(f"shape {list(shape)} has a negative dim")
        return
    try:
        dtype = _dtype(ctx, DataType.FLOAT)
    except _BadDtype:
        return
    ctx.set_output(0, dtype, [Expr.const(int(d)) for d in shape])


def _like(ctx: InferenceContext) -> None:
    try:
        dtype = _dtype(ctx, ctx.input_dtype(0), allowed=tuple(DataType))
    except _BadDtype:
        return
    ctx.set_output(0, dtype, ctx.input_shape(0))


@shape_rule("RandomNormal", since=1)
def random_normal(ctx: InferenceContext) -> None:
    """A tensor of the ``shape`` attribute in the float ``dtype`` (default float)."""
    _generator(ctx)


@shape_rule("RandomUniform", since=1)
def random_uniform(ctx: InferenceContext) -> None:
    """A tensor of the ``shape`` attribute in the float ``dtype`` (default float)."""
    _generator(ctx)


@shape_rule("RandomNormalLike", since=1)
def random_normal_like(ctx: InferenceContext) -> None:
    """The input's shape, in ``dtype`` or else the input's element type."""
    _like(ctx)


@shape_rule("RandomUniformLike", since=1)
def random_uniform_like(ctx: InferenceContext) -> None:
    """The input's shape, in ``dtype`` or else the input's element type."""
    _like(ctx)


@shape_rule("Bernoulli", since=15)
def bernoulli(ctx: InferenceContext) -> None:
    """The input's shape, in ``dtype`` or else the input's element type."""
    _like(ctx)


@shape_rule("Multinomial", since=7)
def multinomial(ctx: InferenceContext) -> None:
    """[batch_size, sample_size] samples of a [batch_size, class_size] input, int32/int64."""
    dims = ctx.input_shape(0)
    if dims is not None and len(dims) != 2:
        ctx.error(f"the input must be [batch_size, class_size], got rank {len(dims)}")
        return
    try:
        dtype = _dtype(ctx, DataType.INT32, allowed=(DataType.INT32, DataType.INT64))
    except _BadDtype:
        return
    batch = dims[0] if dims is not None else None
    ctx.set_output(0, dtype, [batch, Expr.const(int(ctx.attr("sample_size", 1)))])
