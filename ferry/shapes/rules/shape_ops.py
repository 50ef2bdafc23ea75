"""Shape manipulation: Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
Expand, Tile, Identity.

These operators also carry *shape data*: ``Shape(x)`` gives the dims of ``x`` as
symbolic elements, and Reshape/Squeeze/Unsqueeze/Identity pass them on, so that the
Shape -> Gather -> Concat -> Reshape chains exporters emit resolve to symbolic shapes.
Slicing and joining (Slice, Gather, Concat, Split) are in :mod:`.slicing`.
"""

from __future__ import annotations

from ferry.ir import DataType, TensorType
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule
from ferry.shapes.rules._common import const_ints, dims_product, normalize_axes, symbolic_ints

__all__: list[str] = []


def _pass_data(ctx: InferenceContext) -> None:
    """Output 0 holds the same elements as input 0 (reshaped)."""
    elements = ctx.input_symbolic(0)
    if elements is not None:
        ctx.set_output_symbolic(0, elements)


@shape_rule("Shape", since=1)
def shape(ctx: InferenceContext) -> None:
    """1-D int64 of the input's dims; from opset 15, ``start``/``end`` slice them."""
    dims = ctx.input_shape(0)
    if dims is None:
        ctx.set_output(0, DataType.INT64, [None])
        return
    start, end = 0, len(dims)
    if ctx.opset >= 15:
        start = ctx.attr("start", 0)
        end = ctx.attr("end", len(dims))
    picked = dims[slice(*slice(start, end).indices(len(dims))[:2])]
    ctx.set_output(0, DataType.INT64, [len(picked)])
    ctx.set_output_symbolic(0, picked)


@shape_rule("Size", since=1)
def size(ctx: InferenceContext) -> None:
    ctx.set_output(0, DataType.INT64, [])
    dims = ctx.input_shape(0)
    if dims is not None:
        ctx.set_output_symbolic(0, [dims_product(dims)])


@shape_rule("Identity", since=1)
def identity(ctx: InferenceContext) -> None:
    type_ = ctx.input_type(0)
    if isinstance(type_, TensorType) or type_ is None:
        ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0))
        value = ctx.input_value(0)
        if value is not None:
            ctx.set_output_value(0, value)
        _pass_data(ctx)
    else:
        ctx.set_output_type(0, type_)


@shape_rule("Reshape", since=1)
def reshape(ctx: InferenceContext) -> None:
    """Target dims: 0 copies the input dim (unless ``allowzero``), one -1 is inferred."""
    dtype = ctx.input_dtype(0)
    if ctx.opset < 5:
        target: list[Expr | None] | None = [Expr.const(d) for d in ctx.attr("shape", [])]
    else:
        target = symbolic_ints(ctx, 1)
    if target is None:
        length = ctx.input_shape(1) if ctx.has_input(1) else None
        if length is not None and len(length) == 1 and length[0] is not None and length[0].is_const:
            ctx.set_output(0, dtype, [None] * length[0].value)
        else:
            ctx.set_output(0, dtype, None)
        return
    allowzero = ctx.opset >= 14 and bool(ctx.attr("allowzero", 0))
    dims = ctx.input_shape(0)
    out = _reshape_dims(ctx, dims, target, allowzero)
    if out is None:
        return
    ctx.set_output(0, dtype, out)
    _pass_data(ctx)


def _reshape_dims(
    ctx: InferenceContext, dims: list[Expr | None] | None, target: list[Expr | None], allowzero: bool
) -> list[Expr | None] | None:
    out: list[Expr | None] = []
    inferred = None
    for index, wanted in enumerate(target):
        if wanted is not None and wanted == 0 and not allowzero:
            if dims is not None and index >= len(dims):
                ctx.error(f"shape element {index} is 0 (copy the input dim) but the input has "
                          f"rank {len(dims)}")
                return None
            out.append(dims[index] if dims is not None else None)
        elif wanted is not None and wanted == -1:
            if inferred is not None:
                ctx.error(f"shape {_text(target)} has more than one -1")
                return None
            inferred = index
            out.append(None)
        elif wanted is not None and wanted.is_const and wanted.value < -1:
            ctx.error(f"shape {_text(target)} has {wanted.value}; only -1 may be negative")
            return None
        else:
            out.append(wanted)
    if inferred is not None and dims is not None:
        total = dims_product(dims)
        others = dims_product([d for i, d in enumerate(out) if i != inferred])
        if total is not None and others is not None and others != 0:
            out[inferred] = _divide(ctx, total, others)
    return out


def _divide(ctx: InferenceContext, total: Expr, part: Expr) -> Expr | None:
    if total.is_const and part.is_const and total.value % part.value:
        ctx.error(f"cannot infer the -1 dim: {total.value} elements do not divide into "
                  f"parts of {part.value}")
        return None
    return total // part


def _text(elements: list[Expr | None]) -> str:
    return "[" + ",".join("?" if e is None else str(e) for e in elements) + "]"


@shape_rule("Flatten", since=1)
def flatten(ctx: InferenceContext) -> None:
    dims = ctx.input_shape(0)
    if dims is None:
        ctx.set_output(0, ctx.input_dtype(0), [None, None])
        return
    axis = ctx.attr("axis", 1)
    if not -len(dims) <= axis <= len(dims):
        ctx.error(f"axis {axis} is outside [-{len(dims)}, {len(dims)}] for rank {len(dims)}")
        return
    axis = axis + len(dims) if axis < 0 else axis
    ctx.set_output(0, ctx.input_dtype(0), [dims_product(dims[:axis]), dims_product(dims[axis:])])


def _axes(ctx: InferenceContext, input_index: int) -> list[int] | None | str:
    """Axes from the attribute (before opset 13) or the input; "unknown" when an input
    is given but its data is not known."""
    if ctx.opset < 13:
        axes = ctx.attr("axes")
        return list(axes) if axes is not None else None
    if not ctx.has_input(input_index):
        return None
    axes = const_ints(ctx, input_index)
    return axes if axes is not None else "unknown"


def _axes_count(ctx: InferenceContext, input_index: int) -> int | None:
    """How many axes an axes input of unknown data lists, when its length is known."""
    length = ctx.input_shape(input_index)
    if length is not None and len(length) == 1 and length[0] is not None and length[0].is_const:
        return length[0].value
    return None


@shape_rule("Squeeze", since=1)
def squeeze(ctx: InferenceContext) -> None:
    dims, dtype = ctx.input_shape(0), ctx.input_dtype(0)
    axes = _axes(ctx, 1)
    if dims is None or axes == "unknown":
        count = _axes_count(ctx, 1) if dims is not None else None
        ctx.set_output(0, dtype, None if count is None else [None] * (len(dims) - count))
        return
    if axes is None:
        if any(d is None or not d.is_const for d in dims):
            ctx.set_output(0, dtype, None)  # which symbolic dims are 1 is unknown
            return
        ctx.set_output(0, dtype, [d for d in dims if d != 1])
    else:
        normalized = normalize_axes(ctx, axes, len(dims))
        if normalized is None:
            return
        for axis in normalized:
            if dims[axis] is not None and dims[axis].is_const and dims[axis] != 1:
                ctx.error(f"cannot squeeze axis {axis}: its size is {dims[axis]}, not 1")
                return
        ctx.set_output(0, dtype, [d for i, d in enumerate(dims) if i not in normalized])
    _pass_data(ctx)


@shape_rule("Unsqueeze", since=1)
def unsqueeze(ctx: InferenceContext) -> None:
    dims, dtype = ctx.input_shape(0), ctx.input_dtype(0)
    axes = _axes(ctx, 1)
    if axes is None:
        ctx.error("Unsqueeze needs axes")
        return
    if dims is None or axes == "unknown":
        count = _axes_count(ctx, 1) if dims is not None else None
        ctx.set_output(0, dtype, None if count is None else [None] * (len(dims) + count))
        return
    rank = len(dims) + len(axes)
    normalized = normalize_axes(ctx, axes, rank)
    if normalized is None:
        return
    if len(set(normalized)) != len(normalized):
        ctx.error(f"axes {axes} repeat an axis")
        return
    rest = iter(dims)
    ctx.set_output(0, dtype, [Expr.const(1) if i in normalized else next(rest) for i in range(rank)])
    _pass_data(ctx)


@shape_rule("Transpose", since=1)
def transpose(ctx: InferenceContext) -> None:
    dims, dtype = ctx.input_shape(0), ctx.input_dtype(0)
    perm = ctx.attr("perm")
    if dims is None:
        ctx.set_output(0, dtype, [None] * len(perm) if perm else None)
        return
    perm = list(perm) if perm else list(reversed(range(len(dims))))
    if sorted(perm) != list(range(len(dims))):
        ctx.error(f"perm {perm} is not a permutation of the input's {len(dims)} axes")
        return
    ctx.set_output(0, dtype, [dims[p] for p in perm])


@shape_rule("Expand", since=8)
def expand(ctx: InferenceContext) -> None:
    """numpy broadcast of the input shape and the target shape."""
    dtype, dims = ctx.input_dtype(0), ctx.input_shape(0)
    target = symbolic_ints(ctx, 1)
    if target is None:
        length = ctx.input_shape(1)
        if dims is not None and length is not None and len(length) == 1 and length[0] is not None and length[0].is_const:
            ctx.set_output(0, dtype, [None] * max(len(dims), length[0].value))
        else:
            ctx.set_output(0, dtype, None)
        return
    ctx.set_output(0, dtype, ctx.broadcast(dims, target))


@shape_rule("Tile", since=1)
def tile(ctx: InferenceContext) -> None:
    dtype, dims = ctx.input_dtype(0), ctx.input_shape(0)
    if ctx.opset < 6:  # Tile-1: tiles and axis inputs repeat one axis
        ctx.set_output(0, dtype, None if dims is None else [None] * len(dims))
        return
    repeats = symbolic_ints(ctx, 1)
    if dims is None:
        ctx.set_output(0, dtype, None if repeats is None else [None] * len(repeats))
        return
    if repeats is None:
        ctx.set_output(0, dtype, [None] * len(dims))
        return
    if len(repeats) != len(dims):
        ctx.error(f"repeats has {len(repeats)} elements but the input has rank {len(dims)}")
        return
    ctx.set_output(0, dtype, [d * r if d is not None and r is not None else None
                              for d, r in zip(dims, repeats)])
