"""Slicing and joining: Slice, Gather, Concat, Split — also on propagated shape data
(``Shape -> Slice/Gather -> Concat``).

Slice sizes with symbolic dims assume a valid slice: ``x[s:]`` of a dim ``d`` is
``d-s``, ``x[:e]`` is ``min(d,e)``, ``x[-k:]`` is ``k`` when ``d`` is known to be at
least ``k`` and ``min(d,k)`` otherwise.
"""

from __future__ import annotations

from ferry.shapes import expr as dim_ops
from ferry.shapes.context import SYMBOLIC_LIMIT, InferenceContext, is_unknown
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule
from ferry.shapes.rules._common import const_ints, normalize_axes, symbolic_ints

__all__: list[str] = []

_HUGE = 1 << 30  # a bound at least this large means "to the end"


# -- Concat -----------------------------------------------------------------------------------
@shape_rule("Concat", since=1)
def concat(ctx: InferenceContext) -> None:
    """Inputs joined along ``axis``: what any input proves is kept (see _concat_dims);
    1-D shape data is concatenated too."""
    given = [i for i in range(ctx.num_inputs()) if ctx.has_input(i)]
    dtype = next((ctx.input_dtype(i) for i in given if ctx.input_dtype(i) is not None), None)
    shapes = [ctx.input_shape(i) for i in given]
    known = [s for s in shapes if s is not None]
    if not known:
        ctx.set_output(0, dtype, None)
        return
    rank = len(known[0])
    if any(len(s) != rank for s in known):
        ctx.error(f"inputs have different ranks: {[len(s) for s in known]}")
        return
    axis = ctx.attr("axis", 1 if ctx.opset < 4 else None)
    if axis is None:
        ctx.error("Concat needs the axis attribute")
        return
    axes = normalize_axes(ctx, [axis], rank, "axis")
    if axes is None:
        return
    out = _concat_dims(ctx, shapes, rank, axes[0])
    if out is None:
        return
    ctx.set_output(0, dtype, out)
    parts = [_elements(ctx, i) for i in given]
    if rank == 1 and all(p is not None for p in parts):
        elements = [e for p in parts for e in p]  # type: ignore[union-attr]
        if any(e is not None for e in elements):
            ctx.set_output_symbolic(0, elements)


def _elements(ctx: InferenceContext, index: int) -> list[Expr | None] | None:
    """Input ``index``'s shape data; unknown elements are None when only its length is
    known (so the known parts keep their positions in a concatenation)."""
    elements = ctx.input_symbolic(index)
    if elements is not None:
        return elements
    dims = ctx.input_shape(index)
    length = dims[0] if dims is not None and len(dims) == 1 else None
    if length is not None and length.is_const and length.value <= SYMBOLIC_LIMIT:
        return [None] * length.value
    return None


def _concat_dims(ctx, shapes, rank: int, axis: int) -> list[Expr | None] | None:
    """Rank from any input that knows it; each non-axis dim from any input that knows it
    (a constant over a symbol); the axis dim is the sum when every part is known."""
    out: list[Expr | None] = []
    for k in range(rank):
        column = [s[k] if s is not None else None for s in shapes]
        if k == axis:
            out.append(None if any(d is None for d in column) else sum(column[1:], column[0]))
            continue
        merged = None
        for d in column:
            if d is None or (merged is not None and not is_unknown(merged) and not d.is_const):
                continue
            if merged is not None and merged.is_const and d.is_const and merged != d:
                ctx.error(f"inputs differ in dim {k} ({merged} and {d}) outside the axis {axis}")
                return None
            merged = d
        out.append(merged)
    return out


# -- Split ------------------------------------------------------------------------------------
@shape_rule("Split", since=1)
def split(ctx: InferenceContext) -> None:
    dtype, dims = ctx.input_dtype(0), ctx.input_shape(0)
    count = ctx.num_outputs()
    if dims is None:
        for i in range(count):
            ctx.set_output(i, dtype, None)
        return
    axes = normalize_axes(ctx, [ctx.attr("axis", 0)], len(dims), "axis")
    if axes is None:
        return
    axis = axes[0]
    sizes = _split_sizes(ctx, dims[axis], count)
    if sizes is None:
        return
    for i in range(count):
        out = list(dims)
        out[axis] = sizes[i] if sizes is not None and i < len(sizes) else None
        ctx.set_output(i, dtype, out)
    elements = ctx.input_symbolic(0)
    if len(dims) == 1 and elements is not None and all(s is not None and s.is_const for s in sizes):
        start = 0
        for i, size in enumerate(sizes):
            ctx.set_output_symbolic(i, elements[start:start + size.value])  # type: ignore[union-attr]
            start += size.value  # type: ignore[union-attr]


def _split_sizes(ctx: InferenceContext, total: Expr | None, count: int) -> list[Expr | None] | None:
    """The size of each part: given explicitly, or equal parts (the last one smaller
    when ``num_outputs`` does not divide the dim, from opset 18)."""
    explicit: list[int] | None | list = None
    if ctx.opset < 13 and ctx.has_attr("split"):
        explicit = list(ctx.attr("split"))
    elif ctx.opset >= 2 and ctx.opset < 13 and ctx.has_input(1):
        explicit = const_ints(ctx, 1)
        if explicit is None:
            return [None] * count
    elif ctx.opset >= 13 and ctx.has_input(1):
        given = symbolic_ints(ctx, 1)
        if given is None:
            return [None] * count
        if len(given) != count:
            ctx.error(f"split has {len(given)} sizes but the node has {count} outputs")
            return None
        return given
    if explicit is not None:
        if len(explicit) != count:
            ctx.error(f"split has {len(explicit)} sizes but the node has {count} outputs")
            return None
        return [Expr.const(s) for s in explicit]
    if total is None:
        return [None] * count
    if total.is_const and ctx.opset < 18 and total.value % count:
        ctx.error(f"dim {total} does not split into {count} equal parts")
        return None
    if ctx.opset >= 18:
        chunk = (total + (count - 1)) // count
        return [chunk] * (count - 1) + [total - chunk * (count - 1)]
    return [total // count] * count


# -- Gather -----------------------------------------------------------------------------------
@shape_rule("Gather", since=1)
def gather(ctx: InferenceContext) -> None:
    """data[:axis] + indices.shape + data[axis+1:]; picks shape-data elements."""
    dtype, dims, indices = ctx.input_dtype(0), ctx.input_shape(0), ctx.input_shape(1)
    if dims is None or indices is None:
        ctx.set_output(0, dtype, None)
        return
    axes = normalize_axes(ctx, [ctx.attr("axis", 0)], len(dims), "axis")
    if axes is None:
        return
    axis = axes[0]
    ctx.set_output(0, dtype, dims[:axis] + indices + dims[axis + 1:])
    elements, picks = ctx.input_symbolic(0), const_ints(ctx, 1)
    if len(dims) == 1 and elements is not None and picks is not None and len(indices) <= 1:
        size = len(elements)
        if all(-size <= p < size for p in picks):
            ctx.set_output_symbolic(0, [elements[p] for p in picks])
        else:
            ctx.error(f"indices {picks} are out of range for {size} elements")


# -- Slice ------------------------------------------------------------------------------------
@shape_rule("Slice", since=1)
def slice_(ctx: InferenceContext) -> None:
    dtype, dims = ctx.input_dtype(0), ctx.input_shape(0)
    if ctx.opset < 10:
        starts = [Expr.const(v) for v in ctx.attr("starts", [])]
        ends = [Expr.const(v) for v in ctx.attr("ends", [])]
        axes_given = ctx.attr("axes")
        axes: list[int] | None = list(axes_given) if axes_given is not None else None
        steps: list[int] | None = None
    else:
        starts, ends = symbolic_ints(ctx, 1), symbolic_ints(ctx, 2)
        axes = const_ints(ctx, 3) if ctx.has_input(3) else None
        steps = const_ints(ctx, 4) if ctx.has_input(4) else None
        if (ctx.has_input(3) and axes is None) or (ctx.has_input(4) and steps is None):
            starts = None  # unknown axes or steps: nothing is known per axis
    if dims is None:
        ctx.set_output(0, dtype, None)
        return
    if starts is None or ends is None:
        known_axes = None if axes is None and ctx.has_input(3) else axes
        ctx.set_output(0, dtype, _unknown_axes(ctx, dims, known_axes))
        return
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps):
        ctx.error(f"starts, ends, axes and steps have different lengths "
                  f"({len(starts)}, {len(ends)}, {len(axes)}, {len(steps)})")
        return
    normalized = normalize_axes(ctx, axes, len(dims))
    if normalized is None:
        return
    out = list(dims)
    for axis, start, end, step in zip(normalized, starts, ends, steps):
        if step == 0:
            ctx.error("a slice step is 0")
            return
        out[axis] = _slice_length(dims[axis], start, end, step)
    ctx.set_output(0, dtype, out)
    _slice_data(ctx, len(dims), normalized, starts, ends, steps)


def _unknown_axes(ctx: InferenceContext, dims, axes: list[int] | None) -> list[Expr | None]:
    if axes is None:
        return [None] * len(dims)
    normalized = normalize_axes(ctx, axes, len(dims)) or []
    return [None if i in normalized else d for i, d in enumerate(dims)]


def _slice_length(size: Expr | None, start: Expr | None, end: Expr | None, step: int) -> Expr | None:
    if size is None or start is None or end is None:
        return None
    if size.is_const and start.is_const and end.is_const:
        return Expr.const(len(range(*slice(start.value, end.value, step).indices(size.value))))
    if step > 0:
        first = start if start.is_const and 0 <= start.value < _HUGE else _bound(size, start, 0)
        last = _bound(size, end, 0)
        if first is None or last is None:
            return None
        return (last - first + (step - 1)) // step
    first, last = _bound(size, start, -1), _bound(size, end, -1)
    if first is None or last is None:
        return None
    return (first - last + (-step - 1)) // -step


def _bound(size: Expr, index: Expr, low: int) -> Expr | None:
    """A slice bound made non-negative and clamped to the dim (``low`` is 0 for forward
    slices, -1 for backward ones, whose upper clamp is ``size-1``)."""
    high = size if low == 0 else size - 1
    if not index.is_const:
        return dim_ops.min(index, high)  # a symbolic bound is taken as non-negative
    value = index.value
    if value >= _HUGE:
        return high
    if value <= -_HUGE:
        return Expr.const(low)
    if value < 0:
        return size + value  # assumes the dim is at least -value long
    return dim_ops.min(Expr.const(value), high)


def _slice_data(ctx: InferenceContext, rank: int, axes, starts, ends, steps) -> None:
    elements = ctx.input_symbolic(0)
    if rank != 1 or elements is None:
        return
    bounds = [starts[0], ends[0]]
    if any(b is None or not b.is_const for b in bounds):
        return
    ctx.set_output_symbolic(0, elements[slice(starts[0].value, ends[0].value, steps[0])])
