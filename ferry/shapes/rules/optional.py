"""Shape rules for Optional, OptionalHasElement and OptionalGetElement."""

from __future__ import annotations

from ferry.ir import DataType, OptionalType, TensorType
from ferry.shapes.context import InferenceContext
from ferry.shapes.registry import shape_rule
from ferry.shapes.rules.control_flow import tensor_dims


@shape_rule("Optional", since=15)
def optional(ctx: InferenceContext) -> None:
    """An optional of the input's type, or of the ``type`` attribute when empty."""
    if ctx.has_input(0):
        ctx.set_output_type(0, OptionalType(ctx.input_type(0)))
        return
    declared = ctx.attr("type")
    if declared is None:
        ctx.error("an Optional without an input needs the 'type' attribute")
        return
    ctx.set_output_type(0, OptionalType(declared))


@shape_rule("OptionalHasElement", since=15)
def optional_has_element(ctx: InferenceContext) -> None:
    """A bool scalar."""
    ctx.set_output(0, DataType.BOOL, [])


@shape_rule("OptionalGetElement", since=15)
def optional_get_element(ctx: InferenceContext) -> None:
    """The optional's element type; from opset 18 a plain tensor or sequence passes as is."""
    type_ = ctx.input_type(0)
    if isinstance(type_, OptionalType):
        element = type_.elem_type
    elif type_ is not None and ctx.opset < 18:
        ctx.error(f"input 0 must be an optional before opset 18, got a {type_}")
        return
    else:
        element = type_
    if isinstance(element, TensorType):
        ctx.set_output(0, element.dtype, tensor_dims(element))
    elif element is not None:
        ctx.set_output_type(0, element)
