"""Helpers shared by the neural-network shape rule modules (nn, linalg, reduce, rnn,
attention, resize, quantize, activations).

Rules registered with :func:`rule` may call :func:`fail`, which records the diagnostic on
the node and abandons the rule (its outputs stay unknown).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NoReturn

from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule

__all__ = [
    "RuleFailed", "Shape", "copy_input", "fail", "format_shape", "int_list", "known",
    "normalize_axis", "require_rank", "rule", "same_dim",
]

Shape = list[Expr | None]


class RuleFailed(Exception):
    """Raised by :func:`fail` after the error is recorded; :func:`rule` swallows it."""


def rule(op_type: str, since: int | tuple[int, ...], *, domain: str = "") -> Callable:
    """Register the decorated function like ``shape_rule``, ending it quietly on
    :class:`RuleFailed` (its error is already recorded)."""

    def register(function: Callable[[InferenceContext], None]) -> Callable:
        @functools.wraps(function)
        def run(ctx: InferenceContext) -> None:
            try:
                function(ctx)
            except RuleFailed:
                return

        shape_rule(op_type, since, domain=domain)(run)
        return function

    return register


def fail(ctx: InferenceContext, message: str) -> NoReturn:
    """Record ``message`` as an error on the node and raise :class:`RuleFailed`."""
    ctx.error(message)
    raise RuleFailed(message)


def format_shape(shape: Sequence[Expr | None] | None) -> str:
    if shape is None:
        return "(unknown rank)"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def known(dim: Expr | None) -> int | None:
    """The value of a constant dim, else None."""
    return dim.value if dim is not None and dim.is_const else None


def copy_input(ctx: InferenceContext, index: int = 0, output: int = 0) -> None:
    """Output ``output`` gets the element type and shape of input ``index``."""
    ctx.set_output(output, ctx.input_dtype(index), ctx.input_shape(index))


def require_rank(ctx: InferenceContext, index: int, name: str, low: int,
                 high: int | None = None) -> Shape | None:
    """Input ``index``'s shape (None if its rank is unknown), failing unless
    ``low <= rank <= high`` (``high`` None: no upper bound)."""
    shape = ctx.input_shape(index)
    if shape is None:
        return None
    if len(shape) < low or (high is not None and len(shape) > high):
        if high == low:
            expected = f"rank {low}"
        elif high is None:
            expected = f"rank >= {low}"
        else:
            expected = f"rank {low} to {high}"
        fail(ctx, f"input {index} ({name}) must have {expected}, found rank {len(shape)} "
                  f"{format_shape(shape)}")
    return shape


def int_list(ctx: InferenceContext, name: str, length: int, default: int) -> list[int]:
    """A per-axis INTS attribute of ``length`` values (``default`` repeated when absent)."""
    values = ctx.attr(name)
    if values is None or len(values) == 0:
        return [default] * length
    if len(values) != length:
        fail(ctx, f"attribute {name} must have {length} values, found {list(values)}")
    return [int(v) for v in values]


def same_dim(ctx: InferenceContext, a: Expr | None, b: Expr | None, what: str) -> Expr | None:
    """The dim known to equal both ``a`` and ``b``, preferring a constant; fails when two
    constants differ."""
    if a is None or b is None:
        return b if a is None else a
    if a.is_const and b.is_const and a.value != b.value:
        fail(ctx, f"{what}: expected {a}, found {b}")
    return b if b.is_const and not a.is_const else a


def normalize_axis(ctx: InferenceContext, axis: int, rank: int, name: str = "axis") -> int:
    """``axis`` in [0, rank), failing when it is outside [-rank, rank)."""
    if not -rank <= axis < rank:
        fail(ctx, f"{name} {axis} is out of range for a rank-{rank} input "
                  f"(expected {-rank} to {rank - 1})")
    return axis + rank if axis < 0 else axis
