"""Type conversion: Cast (to the ``to`` attribute), CastLike (to input 1's type) and
BitCast (same bit width, same shape). Shape data survives integer-to-integer casts."""

from __future__ import annotations

from ferry.ir import DataType
from ferry.shapes.context import InferenceContext
from ferry.shapes.registry import shape_rule

__all__: list[str] = []


def _integer(dtype: DataType | None) -> bool:
    return dtype is not None and dtype != DataType.STRING and not dtype.is_exotic and dtype.numpy.kind in "iu"


def _convert(ctx: InferenceContext, target: DataType | None) -> None:
    ctx.set_output(0, target, ctx.input_shape(0))
    elements = ctx.input_symbolic(0)
    if elements is not None and _integer(target) and _integer(ctx.input_dtype(0)):
        ctx.set_output_symbolic(0, elements)


@shape_rule("Cast", since=1)
def cast(ctx: InferenceContext) -> None:
    to = ctx.attr("to")
    if isinstance(to, str):  # Cast-1 names the type
        try:
            target = DataType[to.upper()]
        except KeyError:
            ctx.error(f"unknown element type {to!r} in attribute 'to'")
            return
    elif to is None:
        ctx.error("Cast needs the 'to' attribute")
        return
    else:
        target = DataType(to)
    _convert(ctx, target)


@shape_rule("CastLike", since=15)
def cast_like(ctx: InferenceContext) -> None:
    _convert(ctx, ctx.input_dtype(1))


@shape_rule("BitCast", since=26)
def bit_cast(ctx: InferenceContext) -> None:
    target = DataType(ctx.attr("to"))
    source = ctx.input_dtype(0)
    if target == DataType.STRING:
        ctx.error("BitCast cannot produce strings")
        return
    if source is not None and source.bitwidth != target.bitwidth:
        ctx.error(f"{target.name} is {target.bitwidth} bits wide but the input's "
                  f"{source.name} is {source.bitwidth}; they must match")
        return
    ctx.set_output(0, target, ctx.input_shape(0))
