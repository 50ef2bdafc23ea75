"""Shape rules for activations, Clip, Shrink and the Softmax family.

Element-wise activations keep their input's element type and shape. PRelu's slope must
broadcast unidirectionally onto X (before opset 7 a [C] slope may also apply along axis
1); SwiGLU's two inputs have one shape. Softmax, LogSoftmax and Hardmax keep the shape
and check that ``axis`` lies in [-rank, rank).
"""

from __future__ import annotations

from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.rules._nn_common import (
    Shape,
    copy_input,
    fail,
    format_shape,
    known,
    normalize_axis,
    rule,
    same_dim,
)

# op -> its first version (the shape rule is the same at every later one)
_UNARY: dict[str, int] = {
    "Relu": 1, "LeakyRelu": 1, "Elu": 1, "Selu": 1, "Celu": 12, "ThresholdedRelu": 10,
    "HardSigmoid": 1, "HardSwish": 14, "Sigmoid": 1, "Softplus": 1, "Softsign": 1,
    "Gelu": 20, "Mish": 18, "Swish": 24, "Shrink": 9, "Clip": 1,
}


def unary(ctx: InferenceContext) -> None:
    """Element-wise activation: output like the input."""
    copy_input(ctx)


for _op, _since in _UNARY.items():
    rule(_op, since=_since)(unary)


@rule("PRelu", since=1)
def prelu(ctx: InferenceContext) -> None:
    """PRelu: Y like X; slope broadcasts unidirectionally onto X (or, before opset 7,
    is a [C] vector along axis 1)."""
    x, slope = ctx.input_shape(0), ctx.input_shape(1)
    if x is not None and slope is not None and not _slope_fits(x, slope, ctx.opset < 7):
        fail(ctx, f"slope {format_shape(slope)} does not broadcast to X {format_shape(x)}")
    copy_input(ctx)


def _slope_fits(x: Shape, slope: Shape, legacy: bool) -> bool:
    """False only when some constant slope dim provably cannot broadcast onto X."""
    if legacy and len(slope) == 1 and len(x) > 2 and _may_equal(slope[0], x[1]):
        return True
    if len(slope) > len(x):
        return False
    return all(known(s) == 1 or _may_equal(s, d) for s, d in zip(reversed(slope), reversed(x)))


def _may_equal(a: Expr | None, b: Expr | None) -> bool:
    return a is None or b is None or not (a.is_const and b.is_const) or a.value == b.value


@rule("SwiGLU", since=28)
def swiglu(ctx: InferenceContext) -> None:
    """SwiGLU: Y has the (common) shape of A and B."""
    a, b = ctx.input_shape(0), ctx.input_shape(1)
    if a is None or b is None:
        ctx.set_output(0, ctx.input_dtype(0), a if a is not None else b)
        return
    if len(a) != len(b):
        fail(ctx, f"A {format_shape(a)} and B {format_shape(b)} must have the same shape")
    shape = [same_dim(ctx, p, q, f"A {format_shape(a)} and B {format_shape(b)} must have "
                                 f"the same shape; axis {i}") for i, (p, q) in enumerate(zip(a, b))]
    ctx.set_output(0, ctx.input_dtype(0), shape)


@rule("Softmax", since=1)
@rule("LogSoftmax", since=1)
@rule("Hardmax", since=1)
def softmax(ctx: InferenceContext) -> None:
    """Softmax, LogSoftmax, Hardmax: output like the input; axis in [-rank, rank)."""
    shape = ctx.input_shape(0)
    default = 1 if ctx.opset < 13 else -1
    if shape is not None:
        normalize_axis(ctx, int(ctx.attr("axis", default)), max(len(shape), 1))
    copy_input(ctx)
