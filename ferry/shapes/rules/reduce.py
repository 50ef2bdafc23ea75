"""Shape rules for reductions (Reduce*, ArgMax/ArgMin), running totals (CumSum/CumProd)
and the losses built on reductions (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss).

Reduce* read ``axes`` from the attribute before the opset where it became an input
(13 for ReduceSum, 18 for the others). No axes means every axis, or none at all when
``noop_with_empty_axes`` is set; reduced axes become 1 with keepdims and disappear
without. When the axes input is not a known constant the result keeps only its rank.
Sum, product, max and min of a 1-D integer tensor known as expressions (shape data)
are propagated.
"""

from __future__ import annotations

from collections.abc import Callable

from ferry.ir.dtypes import DataType
from ferry.shapes import expr as dims
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.rules._nn_common import (
    Shape,
    copy_input,
    fail,
    format_shape,
    known,
    normalize_axis,
    require_rank,
    rule,
    same_dim,
)

# op -> the opset from which axes is an input rather than an attribute
_REDUCTIONS: dict[str, int] = {
    "ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18, "ReduceProd": 18,
    "ReduceL1": 18, "ReduceL2": 18, "ReduceSumSquare": 18, "ReduceLogSum": 18,
    "ReduceLogSumExp": 18,
}


def reduced_shape(ctx: InferenceContext, shape: Shape, axes: list[int], keepdims: bool) -> Shape:
    """``shape`` with ``axes`` (possibly negative) set to 1, or removed without keepdims."""
    chosen = set()
    for axis in axes:
        normalized = normalize_axis(ctx, int(axis), len(shape), "reduction axis")
        if normalized in chosen:
            fail(ctx, f"reduction axes {list(axes)} repeat axis {normalized}")
        chosen.add(normalized)
    if keepdims:
        return [1 if i in chosen else d for i, d in enumerate(shape)]
    return [d for i, d in enumerate(shape) if i not in chosen]


def _axes_input(ctx: InferenceContext) -> tuple[list[int] | None, int | None]:
    """(the axes input's values or None if unknown, how many there are or None)."""
    if not ctx.has_input(1):
        return [], 0
    value = ctx.input_value(1)
    if value is not None:
        return [int(v) for v in value.reshape(-1)], int(value.size)
    length = ctx.input_shape(1)
    return None, known(length[0]) if length is not None and len(length) == 1 else None


def reduce(ctx: InferenceContext) -> None:
    """Reduce*: see the module docs."""
    dtype, shape = ctx.input_dtype(0), ctx.input_shape(0)
    keepdims = bool(ctx.attr("keepdims", 1))
    axes_as_input = ctx.opset >= _REDUCTIONS[ctx.node.op_type]
    if axes_as_input:
        axes, count = _axes_input(ctx)
    else:
        axes = [int(a) for a in ctx.attr("axes") or []]
        count = len(axes)
    noop = axes_as_input and bool(ctx.attr("noop_with_empty_axes", 0))
    if shape is None:  # reducing every axis without keepdims still gives a scalar
        ctx.set_output(0, dtype, [] if count == 0 and not noop and not keepdims else None)
        return
    if count == 0:
        axes = [] if noop else list(range(len(shape)))
    if axes is None:  # axes not known: only the rank is
        rank = len(shape) if keepdims else (len(shape) - count if count is not None else None)
        ctx.set_output(0, dtype, None if rank is None else [None] * rank)
        return
    out = reduced_shape(ctx, shape, axes, keepdims)
    ctx.set_output(0, dtype, out)
    if len(shape) == 1 and axes:
        _propagate_data(ctx)


_COMBINE: dict[str, Callable[[Expr, Expr], Expr]] = {
    "ReduceSum": lambda a, b: a + b,
    "ReduceProd": lambda a, b: a * b,
    "ReduceMax": dims.max,
    "ReduceMin": dims.min,
}


def _propagate_data(ctx: InferenceContext) -> None:
    """Shape arithmetic: the sum/product/max/min of a 1-D integer tensor known as
    expressions (e.g. ReduceProd(Shape(x)) is the element count)."""
    combine = _COMBINE.get(ctx.node.op_type)
    elements = ctx.input_symbolic(0)
    if combine is None or not elements or any(e is None for e in elements):
        return
    total = elements[0]
    for element in elements[1:]:
        total = combine(total, element)
    ctx.set_output_symbolic(0, [total])


for _op in _REDUCTIONS:
    rule(_op, since=1)(reduce)


@rule("ArgMax", since=1)
@rule("ArgMin", since=1)
def arg_extreme(ctx: InferenceContext) -> None:
    """ArgMax, ArgMin: int64 indices; ``axis`` is reduced (kept as 1 with keepdims)."""
    shape = require_rank(ctx, 0, "data", 1)
    if shape is None:
        ctx.set_output(0, DataType.INT64, None)
        return
    out = reduced_shape(ctx, shape, [int(ctx.attr("axis", 0))], bool(ctx.attr("keepdims", 1)))
    ctx.set_output(0, DataType.INT64, out)


@rule("CumSum", since=11)
@rule("CumProd", since=26)
def cumulative(ctx: InferenceContext) -> None:
    """CumSum, CumProd: output like x; axis is a scalar (or one-element) constant."""
    shape = require_rank(ctx, 0, "x", 1)
    axis = ctx.input_value(1)
    if axis is not None and shape is not None:
        if axis.size != 1 or axis.ndim > 1:
            fail(ctx, f"axis must be a single integer, found shape {list(axis.shape)}")
        normalize_axis(ctx, int(axis.reshape(-1)[0]), len(shape))
    copy_input(ctx)


def _loss_shape(ctx: InferenceContext, scores: Shape | None, target: Shape | None) -> Shape | None:
    """The unreduced loss shape [N, d1..dk], checking target against scores [N, C, d1..dk]."""
    if scores is not None and target is not None:
        if len(target) != len(scores) - 1:
            fail(ctx, f"target {format_shape(target)} must have shape (N, d1..dk) for input "
                      f"{format_shape(scores)} of shape (N, C, d1..dk)")
        expected = [scores[0], *scores[2:]]
        return [same_dim(ctx, e, t, f"target {format_shape(target)} does not match input "
                                    f"{format_shape(scores)}") for e, t in zip(expected, target)]
    if target is not None:
        return target
    return None if scores is None else [scores[0], *scores[2:]]


def _loss(ctx: InferenceContext) -> Shape | None:
    scores = require_rank(ctx, 0, "input", 2)
    shape = _loss_shape(ctx, scores, ctx.input_shape(1))
    weight = ctx.input_shape(2) if ctx.has_input(2) else None
    if weight is not None and scores is not None:
        if len(weight) != 1:
            fail(ctx, f"weight must be 1-D [C], found {format_shape(weight)}")
        same_dim(ctx, scores[1], weight[0], "weight must have one value per class")
    reduction = ctx.attr("reduction", "mean")
    if reduction not in ("none", "sum", "mean"):
        fail(ctx, f"reduction must be 'none', 'sum' or 'mean', found {reduction!r}")
    return shape if reduction == "none" else []


@rule("NegativeLogLikelihoodLoss", since=12)
def negative_log_likelihood_loss(ctx: InferenceContext) -> None:
    """NegativeLogLikelihoodLoss: [N, d1..dk] with reduction 'none', else a scalar."""
    ctx.set_output(0, ctx.input_dtype(0), _loss(ctx))


@rule("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy_loss(ctx: InferenceContext) -> None:
    """SoftmaxCrossEntropyLoss: the loss as NLL's; log_prob like scores."""
    ctx.set_output(0, ctx.input_dtype(0), _loss(ctx))
    copy_input(ctx, 0, 1)
