"""Padding and spatial rearrangement: Pad, CenterCropPad, DepthToSpace, SpaceToDepth,
ReverseSequence (Col2Im is with the image operators)."""

from __future__ import annotations

from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule
from ferry.shapes.rules._common import const_ints, normalize_axes, symbolic_ints

__all__: list[str] = []


@shape_rule("Pad", since=1)
def pad(ctx: InferenceContext) -> None:
    """Each padded dim grows by its begin and end pads (``pads`` lists all begins first)."""
    dtype, dims = ctx.input_dtype(0), ctx.input_shape(0)
    if ctx.opset < 11:
        pads: list[Expr | None] | None = [Expr.const(p) for p in ctx.attr("pads" if ctx.opset >= 2 else "paddings", [])]
    else:
        pads = symbolic_ints(ctx, 1)
    if dims is None:
        ctx.set_output(0, dtype, None)
        return
    axes = list(range(len(dims)))
    if ctx.opset >= 18 and ctx.has_input(3):
        given = const_ints(ctx, 3)
        if given is None:
            ctx.set_output(0, dtype, [None] * len(dims))
            return
        axes = normalize_axes(ctx, given, len(dims))  # type: ignore[assignment]
        if axes is None:
            return
    if pads is None:
        ctx.set_output(0, dtype, [None if i in axes else d for i, d in enumerate(dims)])
        return
    if len(pads) != 2 * len(axes):
        ctx.error(f"pads has {len(pads)} values; expected {2 * len(axes)} (begin and end for "
                  f"each of {len(axes)} axes)")
        return
    out = list(dims)
    for k, axis in enumerate(axes):
        begin, end = pads[k], pads[k + len(axes)]
        out[axis] = None if dims[axis] is None or begin is None or end is None else dims[axis] + begin + end
    ctx.set_output(0, dtype, out)


@shape_rule("CenterCropPad", since=18)
def center_crop_pad(ctx: InferenceContext) -> None:
    dtype, dims = ctx.input_dtype(0), ctx.input_shape(0)
    target = symbolic_ints(ctx, 1)
    if dims is None:
        ctx.set_output(0, dtype, None)
        return
    axes_given = ctx.attr("axes")
    axes = normalize_axes(ctx, axes_given, len(dims)) if axes_given is not None else list(range(len(dims)))
    if axes is None:
        return
    if target is None:
        ctx.set_output(0, dtype, [None if i in axes else d for i, d in enumerate(dims)])
        return
    if len(target) != len(axes):
        ctx.error(f"shape gives {len(target)} sizes for {len(axes)} axes")
        return
    out = list(dims)
    for axis, size in zip(axes, target):
        out[axis] = size
    ctx.set_output(0, dtype, out)


def _blocks(ctx: InferenceContext) -> tuple[list[Expr | None], int] | None:
    dims = ctx.input_shape(0)
    block = int(ctx.attr("blocksize"))
    if dims is None:
        ctx.set_output(0, ctx.input_dtype(0), [None] * 4)
        return None
    if len(dims) != 4:
        ctx.error(f"the input must be 4-D [N,C,H,W], found rank {len(dims)}")
        return None
    return dims, block


@shape_rule("DepthToSpace", since=1)
def depth_to_space(ctx: InferenceContext) -> None:
    found = _blocks(ctx)
    if found is None:
        return
    (n, c, h, w), b = found
    if c is not None and c.is_const and c.value % (b * b):
        ctx.error(f"channels {c} are not a multiple of blocksize^2 = {b * b}")
        return
    ctx.set_output(0, ctx.input_dtype(0), [n, _scaled(c, 1, b * b), _scaled(h, b, 1), _scaled(w, b, 1)])


@shape_rule("SpaceToDepth", since=1)
def space_to_depth(ctx: InferenceContext) -> None:
    found = _blocks(ctx)
    if found is None:
        return
    (n, c, h, w), b = found
    for name, d in (("height", h), ("width", w)):
        if d is not None and d.is_const and d.value % b:
            ctx.error(f"{name} {d} is not a multiple of blocksize {b}")
            return
    ctx.set_output(0, ctx.input_dtype(0), [n, _scaled(c, b * b, 1), _scaled(h, 1, b), _scaled(w, 1, b)])


def _scaled(d: Expr | None, times: int, divided_by: int) -> Expr | None:
    return None if d is None else d * times // divided_by


@shape_rule("ReverseSequence", since=10)
def reverse_sequence(ctx: InferenceContext) -> None:
    ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0))
