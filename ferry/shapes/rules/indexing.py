"""Shape rules for indexing operators: GatherElements, GatherND, the scatters, Compress,
NonZero, OneHot and Trilu (Gather is a core shape operator).

Data-dependent sizes (how many elements Compress keeps, how many NonZero finds) are
computed when the deciding input is a known constant and are fresh unknown dims otherwise.
"""

from __future__ import annotations

import numpy as np

from ferry.ir import DataType
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule


def copy_input(ctx: InferenceContext, index: int = 0) -> None:
    """Output 0 has the element type and shape of input ``index``."""
    ctx.set_output(0, ctx.input_dtype(index), ctx.input_shape(index))


def normalize_axis(ctx: InferenceContext, axis: int, rank: int, name: str = "axis") -> int | None:
    """``axis`` made non-negative; records an error and returns None when out of range."""
    if not -rank <= axis < rank:
        ctx.error(f"{name} {axis} is outside [{-rank}, {rank - 1}] for rank {rank}")
        return None
    return axis + rank if axis < 0 else axis


def common_dim(a: Expr | None, b: Expr | None) -> Expr | None:
    """A dim known to equal both ``a`` and ``b``: the constant one if any, else ``a``."""
    if a is None or (b is not None and b.is_const and not a.is_const):
        return b
    return a


def _check_rank(ctx: InferenceContext, index: int, rank: int, what: str) -> bool:
    found = ctx.input_rank(index)
    if found is not None and found != rank:
        ctx.error(f"input {index} ({what}) has rank {found}, expected {rank}")
        return False
    return True


@shape_rule("GatherElements", since=11)
def gather_elements(ctx: InferenceContext) -> None:
    """The indices' shape with the data's element type."""
    data, indices = ctx.input_shape(0), ctx.input_shape(1)
    if data is not None:
        if normalize_axis(ctx, ctx.attr("axis", 0), len(data)) is None:
            return
        if not _check_rank(ctx, 1, len(data), "indices, the data's rank"):
            return
    ctx.set_output(0, ctx.input_dtype(0), indices)


@shape_rule("GatherND", since=11)
def gather_nd(ctx: InferenceContext) -> None:
    """indices.shape[:-1] + data.shape[batch_dims + m:], m = indices.shape[-1]."""
    data, indices, dtype = ctx.input_shape(0), ctx.input_shape(1), ctx.input_dtype(0)
    batch = int(ctx.attr("batch_dims", 0) or 0)
    if indices is None or data is None:
        ctx.set_output(0, dtype, None)
        return
    if not indices or batch >= min(len(indices), len(data)):
        ctx.error(f"batch_dims {batch} must be less than the ranks of data ({len(data)}) and "
                  f"indices ({len(indices)}), which must be >= 1")
        return
    depth = indices[-1]
    if depth is None or not depth.is_const:
        ctx.set_output(0, dtype, None)
        return
    if batch + depth.value > len(data):
        ctx.error(f"index tuples of length {depth.value} after {batch} batch dims exceed the "
                  f"data's rank {len(data)}")
        return
    leading = [common_dim(i, d) for i, d in zip(indices[:batch], data[:batch])]
    ctx.set_output(0, dtype, [*leading, *indices[batch:-1], *data[batch + depth.value :]])


def _scatter(ctx: InferenceContext, element_wise: bool) -> None:
    data = ctx.input_shape(0)
    if data is not None and element_wise:
        if normalize_axis(ctx, ctx.attr("axis", 0), len(data)) is None:
            return
        for index, what in ((1, "indices"), (2, "updates")):
            if not _check_rank(ctx, index, len(data), f"{what}, the data's rank"):
                return
    copy_input(ctx, 0)


@shape_rule("Scatter", since=9)
def scatter(ctx: InferenceContext) -> None:
    """The data's type and shape."""
    _scatter(ctx, element_wise=True)


@shape_rule("ScatterElements", since=11)
def scatter_elements(ctx: InferenceContext) -> None:
    """The data's type and shape."""
    _scatter(ctx, element_wise=True)


@shape_rule("ScatterND", since=11)
def scatter_nd(ctx: InferenceContext) -> None:
    """The data's type and shape (updates must be indices.shape[:-1] + data.shape[m:])."""
    data, indices, updates = ctx.input_shape(0), ctx.input_shape(1), ctx.input_shape(2)
    if data is not None and indices and indices[-1] is not None and indices[-1].is_const:
        depth = indices[-1].value
        if depth > len(data):
            ctx.error(f"index tuples of length {depth} exceed the data's rank {len(data)}")
            return
        expected = len(indices) - 1 + len(data) - depth
        if updates is not None and len(updates) != expected:
            ctx.error(f"updates have rank {len(updates)}, expected {expected}")
            return
    copy_input(ctx, 0)


@shape_rule("TensorScatter", since=24)
def tensor_scatter(ctx: InferenceContext) -> None:
    """The past cache's type and shape."""
    cache = ctx.input_shape(0)
    if cache is not None:
        if normalize_axis(ctx, ctx.attr("axis", -2), len(cache)) is None:
            return
        if not _check_rank(ctx, 1, len(cache), "update, the cache's rank"):
            return
    copy_input(ctx, 0)


def _kept(ctx: InferenceContext, size: Expr | None) -> Expr:
    """How many entries a constant condition keeps, else a fresh dim. (Entries past the
    axis' end must be false, so the count is the condition's number of true values.)"""
    condition = ctx.input_value(1)
    if condition is None:
        return ctx.fresh("how many entries Compress keeps depends on the condition's data")
    flags = condition.reshape(-1).astype(bool)
    if size is not None and size.is_const and flags[size.value :].any():
        ctx.error(f"the condition selects entries past the {size.value} of the axis")
    return Expr.const(int(flags.sum()))


@shape_rule("Compress", since=9)
def compress(ctx: InferenceContext) -> None:
    """The input with the selected axis (or the flattened input) shortened to the count kept."""
    dims, dtype = ctx.input_shape(0), ctx.input_dtype(0)
    if not _check_rank(ctx, 1, 1, "condition"):
        return
    axis = ctx.attr("axis")
    if axis is None:
        size = None
        if dims is not None and all(d is not None for d in dims):
            size = Expr.const(1)
            for dim in dims:
                size = size * dim
        ctx.set_output(0, dtype, [_kept(ctx, size)])
        return
    if dims is None:
        ctx.set_output(0, dtype, None)
        return
    axis = normalize_axis(ctx, axis, len(dims))
    if axis is None:
        return
    dims[axis] = _kept(ctx, dims[axis])
    ctx.set_output(0, dtype, dims)


@shape_rule("NonZero", since=9)
def non_zero(ctx: InferenceContext) -> None:
    """int64 [rank, count] (a scalar counts as rank 1); count known for constant input."""
    rank = ctx.input_rank(0)
    value = ctx.input_value(0)
    if value is not None and value.dtype.kind in "biuf":
        count: Expr = Expr.const(int(np.count_nonzero(value)))
    else:
        count = ctx.fresh("how many elements are non-zero depends on the input's data")
    ctx.set_output(0, DataType.INT64, [None if rank is None else max(rank, 1), count])


def _depth(ctx: InferenceContext) -> Expr:
    elements = ctx.input_symbolic(1)
    if elements is not None and len(elements) == 1 and elements[0] is not None:
        return elements[0]
    value = ctx.input_value(1)
    if value is not None and value.size == 1:
        return Expr.const(int(value.reshape(-1)[0]))
    return ctx.fresh("OneHot's depth is not a known constant")


@shape_rule("OneHot", since=9)
def one_hot(ctx: InferenceContext) -> None:
    """The indices' shape with the depth inserted at ``axis``; the values' element type."""
    indices, dtype = ctx.input_shape(0), ctx.input_dtype(2)
    if indices is None:
        ctx.set_output(0, dtype, None)
        return
    axis = normalize_axis(ctx, ctx.attr("axis", -1), len(indices) + 1)
    if axis is None:
        return
    depth = _depth(ctx)
    if depth.is_const and depth.value < 1:
        ctx.error(f"depth must be positive, got {depth.value}")
        return
    indices.insert(axis, depth)
    ctx.set_output(0, dtype, indices)


@shape_rule("Trilu", since=14)
def trilu(ctx: InferenceContext) -> None:
    """The input's type and shape (rank >= 2)."""
    rank = ctx.input_rank(0)
    if rank is not None and rank < 2:
        ctx.error(f"the input must have rank >= 2, got rank {rank}")
        return
    copy_input(ctx, 0)
