"""Helpers shared by the core rule modules: reading integer lists given as attributes,
constant inputs or propagated shape data, normalising axes, and dim products."""

from __future__ import annotations

from collections.abc import Sequence

from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr

__all__ = ["const_ints", "dims_product", "normalize_axes", "symbolic_ints"]


def const_ints(ctx: InferenceContext, index: int) -> list[int] | None:
    """Input ``index`` as a list of Python ints, when its data is known and constant."""
    if not ctx.has_input(index):
        return None
    elements = ctx.input_symbolic(index)
    if elements is not None and all(e is not None and e.is_const for e in elements):
        return [e.value for e in elements]  # type: ignore[union-attr]
    value = ctx.input_value(index)
    if value is not None and value.dtype.kind in "iu":
        return [int(v) for v in value.reshape(-1)]
    return None


def symbolic_ints(ctx: InferenceContext, index: int) -> list[Expr | None] | None:
    """Input ``index`` as expressions (constants or propagated shape data)."""
    if not ctx.has_input(index):
        return None
    return ctx.input_symbolic(index)


def normalize_axes(
    ctx: InferenceContext, axes: Sequence[int], rank: int, what: str = "axes"
) -> list[int] | None:
    """Axes made non-negative; records an error and returns None when out of range."""
    normalized = []
    for axis in axes:
        axis = int(axis)
        if not -rank <= axis < rank:
            ctx.error(f"{what} {list(axes)} has {axis}, outside [-{rank}, {rank - 1}] for rank {rank}")
            return None
        normalized.append(axis + rank if axis < 0 else axis)
    return normalized


def dims_product(dims: Sequence[Expr | None]) -> Expr | None:
    """The product of dims (1 for none), or None if any is unknown."""
    result = Expr.const(1)
    for dim in dims:
        if dim is None:
            return None
        result = result * dim
    return result
