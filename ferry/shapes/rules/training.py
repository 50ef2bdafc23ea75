"""Shape rules for the ai.onnx.preview.training domain: Gradient, Adagrad, Momentum, Adam.

The optimizers take R, T, then groups of variadic inputs (tensors, their gradients, one
group per optimizer state) and return the new tensors followed by the new states, each
shaped like the input it replaces.
"""

from __future__ import annotations

from ferry.shapes.context import InferenceContext
from ferry.shapes.registry import shape_rule

TRAINING_DOMAIN = "ai.onnx.preview.training"


def _optimizer(ctx: InferenceContext, groups: int) -> None:
    """Outputs: group 0 (the tensors), then groups 2.. (the states); group 1 is gradients."""
    variadic = ctx.num_inputs() - 2
    if variadic <= 0 or variadic % groups:
        ctx.error(f"expected R, T and {groups} groups of equally many tensors (tensors, "
                  f"gradients, states), got {ctx.num_inputs()} inputs")
        return
    count = variadic // groups
    if ctx.num_outputs() > count * (groups - 1):
        ctx.error(f"has {ctx.num_outputs()} outputs, expected at most {count * (groups - 1)}")
        return
    for group, source in enumerate(g for g in range(groups) if g != 1):
        for k in range(count):
            index = 2 + source * count + k
            ctx.set_output(group * count + k, ctx.input_dtype(index), ctx.input_shape(index))


@shape_rule("Adagrad", since=1, domain=TRAINING_DOMAIN)
def adagrad(ctx: InferenceContext) -> None:
    """New tensors, then new accumulated squared gradients."""
    _optimizer(ctx, 3)


@shape_rule("Momentum", since=1, domain=TRAINING_DOMAIN)
def momentum(ctx: InferenceContext) -> None:
    """New tensors, then new momentums."""
    _optimizer(ctx, 3)


@shape_rule("Adam", since=1, domain=TRAINING_DOMAIN)
def adam(ctx: InferenceContext) -> None:
    """New tensors, then new first moments, then new second moments."""
    _optimizer(ctx, 4)


@shape_rule("Gradient", since=1, domain=TRAINING_DOMAIN)
def gradient(ctx: InferenceContext) -> None:
    """The gradient with respect to each of ``xs`` is shaped like that x (the first inputs)."""
    xs = ctx.attr("xs") or []
    if ctx.num_outputs() != len(xs) or ctx.num_inputs() < len(xs):
        ctx.error(f"expects one output per name in xs ({len(xs)}) and the xs values first "
                  f"among its {ctx.num_inputs()} inputs; it has {ctx.num_outputs()} outputs")
        return
    for index in range(len(xs)):
        ctx.set_output(index, ctx.input_dtype(index), ctx.input_shape(index))
