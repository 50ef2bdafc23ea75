"""Shape rules for Resize and Upsample.

A scaled axis has ``floor(size * scale)`` elements; for a symbolic size this is written
``size*p//q`` when the (float32) scale is exactly the fraction p/q with a small q, and is
unknown otherwise. With ``sizes`` (Resize 11+) the output takes them as given, except
under keep_aspect_ratio_policy not_larger/not_smaller (18+), where one common scale
``min``/``max(sizes[i] / size[i])`` is applied and each axis rounds to nearest. ``axes``
(18+) names the axes that scales/sizes cover; the others keep their size.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.rules._nn_common import Shape, fail, format_shape, known, normalize_axis, rule

_MAX_DENOMINATOR = 1024


def scaled_dim(size: Expr | None, scale: float) -> Expr | None:
    """floor(size * scale) as an expression (None when it cannot be written exactly)."""
    if size is None:
        return None
    if size.is_const:
        return Expr.const(math.floor(size.value * scale))
    fraction = Fraction(scale)
    if fraction.denominator > _MAX_DENOMINATOR or fraction < 0:
        return None
    return size * fraction.numerator // fraction.denominator


def _apply_scales(ctx: InferenceContext, shape: Shape, axes: list[int], scales) -> Shape:
    scales = [float(s) for s in np.asarray(scales, dtype=np.float64).reshape(-1)]
    if len(scales) != len(axes):
        fail(ctx, f"expected {len(axes)} scales (one per resized axis of the rank-{len(shape)} "
                  f"input), found {len(scales)}")
    if any(not s > 0 for s in scales):
        fail(ctx, f"scales must be positive, found {scales}")
    out = list(shape)
    for axis, scale in zip(axes, scales):
        out[axis] = scaled_dim(shape[axis], scale)
    return out


@rule("Upsample", since=1)
def upsample(ctx: InferenceContext) -> None:
    """Upsample: every axis scaled (opset 1: height_scale/width_scale on the last two;
    7: the scales attribute; 9: the scales input)."""
    dtype, shape = ctx.input_dtype(0), ctx.input_shape(0)
    if shape is None:
        ctx.set_output(0, dtype, None)
        return
    if ctx.opset < 7:
        if len(shape) < 2:
            fail(ctx, f"X must have rank >= 2, found {format_shape(shape)}")
        scales = [1.0] * (len(shape) - 2) + [ctx.attr("height_scale"), ctx.attr("width_scale")]
    else:
        scales = ctx.attr("scales") if ctx.opset < 9 else ctx.input_value(1)
    if scales is None:
        ctx.set_output(0, dtype, [None] * len(shape))
        return
    ctx.set_output(0, dtype, _apply_scales(ctx, shape, list(range(len(shape))), scales))


def _given(ctx: InferenceContext, index: int) -> bool | None:
    """Whether an optional input is present and non-empty (None: cannot tell)."""
    if not ctx.has_input(index):
        return False
    shape = ctx.input_shape(index)
    if shape is not None and len(shape) == 1 and known(shape[0]) is not None:
        return known(shape[0]) > 0
    value = ctx.input_value(index)
    return None if value is None else value.size > 0


def _sizes(ctx: InferenceContext, shape: Shape, axes: list[int]) -> Shape:
    """The output shape from the sizes input (and keep_aspect_ratio_policy)."""
    sizes = ctx.input_symbolic(3)
    out: Shape = list(shape)
    if sizes is None:
        for axis in axes:
            out[axis] = None
        return out
    if len(sizes) != len(axes):
        fail(ctx, f"expected {len(axes)} sizes (one per resized axis), found {len(sizes)}")
    policy = ctx.attr("keep_aspect_ratio_policy", "stretch") if ctx.opset >= 18 else "stretch"
    if policy not in ("stretch", "not_larger", "not_smaller"):
        fail(ctx, f"unsupported keep_aspect_ratio_policy {policy!r}")
    if policy == "stretch":
        for axis, size in zip(axes, sizes):
            out[axis] = size
        return out
    known_in = [known(shape[a]) for a in axes]
    known_sizes = [known(s) for s in sizes]
    if None in known_in or None in known_sizes or 0 in known_in:
        for axis in axes:
            out[axis] = None
        return out
    ratios = [s / n for s, n in zip(known_sizes, known_in)]
    ratio = min(ratios) if policy == "not_larger" else max(ratios)
    for axis, n in zip(axes, known_in):
        out[axis] = Expr.const(math.floor(ratio * n + 0.5))
    return out


@rule("Resize", since=10)
def resize(ctx: InferenceContext) -> None:
    """Resize: scales or sizes (see the module docs); opset 10 has scales only."""
    dtype, shape = ctx.input_dtype(0), ctx.input_shape(0)
    if shape is None:
        ctx.set_output(0, dtype, None)
        return
    if ctx.opset < 11:
        scales = ctx.input_value(1)
        if scales is None:
            ctx.set_output(0, dtype, [None] * len(shape))
        else:
            ctx.set_output(0, dtype, _apply_scales(ctx, shape, list(range(len(shape))), scales))
        return
    axes_attr = ctx.attr("axes") if ctx.opset >= 18 else None
    axes = list(range(len(shape)))
    if axes_attr:
        axes = [normalize_axis(ctx, int(a), len(shape), "axes entry") for a in axes_attr]
        if len(set(axes)) != len(axes):
            fail(ctx, f"axes {list(axes_attr)} repeat an axis")
    has_scales, has_sizes = _given(ctx, 2), _given(ctx, 3)
    if has_scales and has_sizes:
        fail(ctx, "only one of scales and sizes may be given")
    if has_sizes:
        ctx.set_output(0, dtype, _sizes(ctx, shape, axes))
        return
    scales = ctx.input_value(2) if has_scales else None
    if scales is not None:
        ctx.set_output(0, dtype, _apply_scales(ctx, shape, axes, scales))
        return
    if has_scales is False and has_sizes is False:
        fail(ctx, "one of scales and sizes must be given")
    ctx.set_output(0, dtype, [d if i not in axes else None for i, d in enumerate(shape)])
