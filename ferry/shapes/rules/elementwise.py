"""Elementwise operators: unary math, binary math with broadcasting, logic and
comparisons, Where, and the variadic Sum/Mean/Max/Min.

Since opset 7 (8 for the variadic ops) inputs broadcast multidirectionally (numpy
rules). Before that, ``broadcast=1`` lets the second input broadcast onto the first
(aligned at ``axis``), and the output has the first input's shape. Integer arithmetic
on small tensors (shape data) is propagated symbolically.
"""

from __future__ import annotations

from collections.abc import Callable

from ferry.ir import DataType
from ferry.shapes import expr as dim
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule

__all__: list[str] = []

_SAME_TYPE_UNARY = (
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Cos", "Cosh", "Erf",
    "Exp", "Floor", "Log", "Neg", "Reciprocal", "Round", "Sign", "Sin", "Sinh", "Sqrt", "Tan",
    "Tanh", "Not", "BitwiseNot",
)
_BOOL_UNARY = ("IsInf", "IsNaN")
_ARITHMETIC = ("Add", "Sub", "Mul", "Div", "Pow", "Mod", "BitShift", "BitwiseAnd", "BitwiseOr",
               "BitwiseXor")
_COMPARISONS = ("Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor")
_VARIADIC = ("Sum", "Mean", "Max", "Min")


def _unary(ctx: InferenceContext) -> None:
    ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0))
    if ctx.node.op_type == "Neg":
        _propagate(ctx, lambda x: -x)
    elif ctx.node.op_type == "Abs":
        _propagate(ctx, lambda x: Expr.const(abs(x.value)) if x.is_const else x)


def _unary_bool(ctx: InferenceContext) -> None:
    ctx.set_output(0, DataType.BOOL, ctx.input_shape(0))


for _op in _SAME_TYPE_UNARY:
    shape_rule(_op, since=1)(_unary)
for _op in _BOOL_UNARY:
    shape_rule(_op, since=1)(_unary_bool)


def _binary_shape(ctx: InferenceContext) -> list[Expr | None] | None:
    """The output shape of a two-input elementwise op, by the opset's broadcast rule."""
    first, second = ctx.input_shape(0), ctx.input_shape(1)
    if ctx.opset >= 7:
        return ctx.broadcast(first, second)
    if ctx.attr("broadcast", 0):
        if first is not None and second is not None and len(second) > len(first):
            ctx.error(f"with broadcast=1 the second input (rank {len(second)}) must not "
                      f"have a higher rank than the first (rank {len(first)})")
            return None
        return first
    if first is None or second is None:
        return first if first is not None else second
    if len(first) != len(second):
        ctx.error(f"without broadcast=1 both inputs need the same shape; found ranks "
                  f"{len(first)} and {len(second)}")
        return None
    return [a if a is not None and (a.is_const or b is None or not b.is_const) else b
            for a, b in zip(first, second)]


_SYMBOLIC_OPS: dict[str, Callable[[Expr, Expr], Expr | None]] = {
    "Add": lambda a, b: a + b,
    "Sub": lambda a, b: a - b,
    "Mul": lambda a, b: a * b,
    "Div": lambda a, b: a // b if not (b.is_const and b.value <= 0) else None,
    "Mod": lambda a, b: a % b if not (b.is_const and b.value <= 0) else None,
    "Equal": lambda a, b: _truth(a, b, lambda d: d == 0),
    "Greater": lambda a, b: _truth(a, b, lambda d: d > 0),
    "Less": lambda a, b: _truth(a, b, lambda d: d < 0),
    "GreaterOrEqual": lambda a, b: _truth(a, b, lambda d: d >= 0),
    "LessOrEqual": lambda a, b: _truth(a, b, lambda d: d <= 0),
}


def _truth(a: Expr, b: Expr, test: Callable[[int], bool]) -> Expr | None:
    """A comparison of two dims as 0/1, when decidable: constant difference, or a
    non-negative dim against a negative constant (``shape == -1`` patterns)."""
    difference = a - b
    if difference.is_const:
        return Expr.const(int(test(difference.value)))
    if b.is_const and b.value < 0:
        return Expr.const(int(test(1)))  # a is a dim (>= 0), so a - b > 0
    if a.is_const and a.value < 0:
        return Expr.const(int(test(-1)))
    return None


def _binary(ctx: InferenceContext) -> None:
    shape = _binary_shape(ctx)
    op = ctx.node.op_type
    dtype = DataType.BOOL if op in _COMPARISONS else ctx.input_dtype(0)
    ctx.set_output(0, dtype, shape)
    combine = _SYMBOLIC_OPS.get(op)
    if combine is not None:
        _propagate(ctx, combine)


for _op in (*_ARITHMETIC, *_COMPARISONS):
    shape_rule(_op, since=1)(_binary)


@shape_rule("Where", since=9)
def _where(ctx: InferenceContext) -> None:
    shape = ctx.broadcast(ctx.input_shape(0), ctx.input_shape(1), ctx.input_shape(2))
    ctx.set_output(0, ctx.input_dtype(1) or ctx.input_dtype(2), shape)
    _propagate(ctx, lambda c, x, y: (x if c.value else y) if c.is_const else None)


def _variadic(ctx: InferenceContext) -> None:
    given = [i for i in range(ctx.num_inputs()) if ctx.has_input(i)]
    shapes = [ctx.input_shape(i) for i in given]
    if ctx.opset >= 8:
        shape = ctx.broadcast(*shapes)
    else:
        shape = next((s for s in shapes if s is not None), None)
    dtype = next((ctx.input_dtype(i) for i in given if ctx.input_dtype(i) is not None), None)
    ctx.set_output(0, dtype, shape)
    op = ctx.node.op_type
    if op in ("Max", "Min"):
        pick = dim.max if op == "Max" else dim.min
        _propagate(ctx, lambda *xs: _fold(pick, xs))
    elif op == "Sum":
        _propagate(ctx, lambda *xs: _fold(lambda a, b: a + b, xs))


def _fold(combine: Callable[[Expr, Expr], Expr], values: tuple[Expr, ...]) -> Expr:
    result = values[0]
    for value in values[1:]:
        result = combine(result, value)
    return result


for _op in _VARIADIC:
    shape_rule(_op, since=1)(_variadic)


def _propagate(ctx: InferenceContext, combine: Callable[..., Expr | None]) -> None:
    """Apply ``combine`` to the symbolic elements of every input (0-d or 1-d, broadcast
    like numpy) and record the result as the output's symbolic data."""
    given = [i for i in range(ctx.num_inputs()) if ctx.has_input(i)]
    columns = [ctx.input_symbolic(i) for i in given]
    ranks = [ctx.input_rank(i) for i in given]
    if any(c is None for c in columns) or any(r is None or r > 1 for r in ranks):
        return
    lengths = {len(c) for c, r in zip(columns, ranks) if r == 1 and len(c) != 1}  # type: ignore[arg-type]
    if len(lengths) > 1:
        return
    length = lengths.pop() if lengths else 1
    rows = [[c[k] if len(c) > 1 else c[0] for c in columns] for k in range(length)]  # type: ignore[index]
    elements: list[Expr | None] = []
    for row in rows:
        try:
            elements.append(None if any(v is None for v in row) else combine(*row))
        except (ZeroDivisionError, ValueError, TypeError):
            elements.append(None)
    ctx.set_output_symbolic(0, elements)
