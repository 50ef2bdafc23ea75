"""Indexing: ``x[...]`` and ``x[...] = v``, index_select, gather, scatter, masked_fill, where.

``x[idx]`` follows torch: ints select (a dim goes), slices narrow, None adds a dim,
Ellipsis stands for the untouched dims; integer tensors (and lists) are advanced indices,
broadcast together, whose result dims replace the indexed ones when those are adjacent
and come first otherwise. Boolean masks select a data-dependent number of elements and
are not supported when reading. ``x[idx] = v`` is functional: the new value of ``x`` is
a ScatterElements of ``v`` over the flat positions ``x[idx]`` would read.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ferry.errors import UnsupportedOperatorError
from ferry.ir import Value
from ferry.trace.registry import symbolic
from ferry.trace.symbolics._helpers import as_value, promote
from ferry.trace.symbolics.shape_ops import INT_MAX, dim_of, dims_value, unsqueeze
from ferry.trace.symint import SymInt
from ferry.trace.tracer import Var

__all__ = ["index_value"]

T = torch.Tensor
_MASK_DTYPES = (torch.bool, torch.uint8)
_MASK_HELP = (
    "indexing with a boolean mask selects a data-dependent number of elements, which the "
    "tracer does not support; use torch.where(mask, x, other) or x.masked_fill(mask, value), "
    "or index with integer positions"
)


@dataclasses.dataclass
class _Index:
    """An advanced index: int64 positions and their shape."""

    value: Value
    shape: tuple


def _is_mask(item) -> bool:
    if isinstance(item, Var):
        return item.dtype in _MASK_DTYPES
    if isinstance(item, bool):
        return True
    return isinstance(item, list) and any(isinstance(v, bool) for v in np.ravel(np.asarray(item, dtype=object)))


def _items(idx, rank: int) -> list:
    """The index as a list of entries, Ellipsis expanded into full slices."""
    items = list(idx) if isinstance(idx, tuple) else [idx]
    for item in items:
        if _is_mask(item):
            raise UnsupportedOperatorError(_MASK_HELP)
        if isinstance(item, list) and any(isinstance(v, (Var, SymInt)) for v in np.ravel(np.asarray(item, dtype=object))):
            raise UnsupportedOperatorError("indexing with a list holding tensors or dynamic sizes is not supported")
    used = sum(1 for item in items if item is not None and item is not Ellipsis)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at : at + 1] = [slice(None)] * (rank - used)
    return items + [slice(None)] * (rank - sum(1 for item in items if item is not None))


def _advanced(g, item) -> _Index:
    if isinstance(item, Var):
        return _Index(as_value(g, item, torch.int64), item.shape)
    array = np.asarray(item, dtype=np.int64)
    return _Index(g.int64(array), array.shape)


def _is_full(item: slice) -> bool:
    def unset(bound, default: int) -> bool:  # (no == on a SymInt: that would specialize it)
        return bound is None or (type(bound) is int and bound == default)

    return unset(item.start, 0) and item.stop is None and unset(item.step, 1)


def _basic(g, value, items):
    """Apply slices, int selections and None; returns the value and the advanced indices
    with their positions in it."""
    starts, ends, axes, steps, selects, news, advanced = [], [], [], [], [], [], []
    position = axis = 0
    for item in items:
        if item is None:
            news.append(position)
            position += 1
            continue
        if isinstance(item, slice):
            if not _is_full(item):
                starts.append(0 if item.start is None else item.start)
                ends.append(INT_MAX if item.stop is None else item.stop)
                steps.append(1 if item.step is None else item.step)
                axes.append(axis)
            position += 1
        elif isinstance(item, (int, SymInt)) or (isinstance(item, Var) and item.rank == 0):
            selects.append((axis, item))  # torch treats a 0-d tensor index as an int
        else:
            advanced.append((position, _advanced(g, item)))
            position += 1
        axis += 1
    if axes:
        value = g.op("Slice", value, dims_value(g, starts), dims_value(g, ends), g.int64(axes), dims_value(g, steps))
    for axis, item in reversed(selects):
        index = g.int_value(item) if not isinstance(item, Var) else as_value(g, item, torch.int64)
        value = g.op("Gather", value, index, axis=axis)
    if news:
        value = unsqueeze(g, value, news)
    return value, advanced, position


def _broadcast(g, indices: list[_Index]) -> list[Value]:
    shapes = [tuple(i.shape) for i in indices]
    if all(isinstance(d, int) for shape in shapes for d in shape):
        if len(set(shapes)) == 1:
            return [i.value for i in indices]
        common = g.int64(list(np.broadcast_shapes(*shapes)))
        return [g.op("Expand", i.value, common) for i in indices]
    total = indices[0].value
    for index in indices[1:]:
        total = g.op("Add", total, index.value)
    shape = g.op("Shape", total)
    return [g.op("Expand", i.value, shape) for i in indices]


def _gather_nd(g, value, rank, advanced):
    """Advanced indexing on ``value`` (of ``rank`` dims) by (position, _Index) pairs."""
    if len(advanced) == 1:
        position, index = advanced[0]
        return g.op("Gather", value, index.value, axis=position)
    positions = [p for p, _ in advanced]
    others = [d for d in range(rank) if d not in positions]
    if positions + others != list(range(rank)):
        value = g.op("Transpose", value, perm=positions + others)
    stacked = [unsqueeze(g, v, [-1]) for v in _broadcast(g, [i for _, i in advanced])]
    out = g.op("GatherND", value, g.op("Concat", *stacked, axis=-1))
    first = positions[0]
    adjacent = positions == list(range(first, first + len(positions)))
    if adjacent and first > 0:  # the indexed dims' result stays where they were
        nb = max(len(i.shape) for _, i in advanced)
        perm = [nb + i for i in range(first)] + list(range(nb)) + [nb + i for i in range(first, len(others))]
        out = g.op("Transpose", out, perm=perm)
    return out


def index_value(g, value, rank: int, idx):
    """``value[idx]`` for a value of ``rank`` dims, following torch's indexing rules."""
    items = _items(idx, rank)
    value, advanced, basic_rank = _basic(g, value, items)
    return _gather_nd(g, value, basic_rank, advanced) if advanced else value


@symbolic(T.__getitem__)
def getitem(g, x, idx):
    """x[idx]: ints, negative ints, slices (with steps, dynamic bounds), None, Ellipsis,
    integer tensors/lists (advanced indexing)."""
    return index_value(g, x.value, x.rank, idx)


# -- writing --------------------------------------------------------------------------------
def _single_mask(x, idx):
    items = list(idx) if isinstance(idx, tuple) else [idx]
    items = [i for i in items if i is not Ellipsis] if items and items[0] is Ellipsis else items
    if len(items) == 1 and isinstance(items[0], Var) and items[0].dtype in _MASK_DTYPES:
        return items[0]
    if any(_is_mask(i) for i in items):
        raise UnsupportedOperatorError(
            "x[idx] = v with a boolean mask among other indices is not supported; use "
            "x.masked_fill(mask, v) or torch.where"
        )
    return None


def _masked_write(g, x, mask: Var, value):
    """x[mask] = v for a one-element v: where(mask, v, x) (mask over x's leading dims)."""
    if isinstance(value, Var) and value.tensor.numel() != 1:
        raise UnsupportedOperatorError(
            "x[mask] = tensor takes a data-dependent number of values; the tracer supports a "
            "scalar (or one-element tensor) there; use torch.where(mask, other, x)"
        )
    condition = as_value(g, mask, torch.bool)
    if mask.rank < x.rank:
        condition = unsqueeze(g, condition, range(mask.rank, x.rank))
    fill = as_value(g, value, x.dtype)
    if isinstance(value, Var) and value.rank > 0:
        fill = g.op("Reshape", fill, g.int64([]))
    return g.op("Where", condition, fill, x)


def scatter_positions(g, x: Var, idx, updates, reduction=None):
    """The new value of x after writing ``updates`` (broadcast) at ``x[idx]``."""
    shape = g.op("Shape", x)
    flat_positions = g.op("Range", g.int64(0), g.op("Size", x), g.int64(1))
    positions = index_value(g, g.op("Reshape", flat_positions, shape), x.rank, idx)
    updates = g.op("Expand", as_value(g, updates, x.dtype), g.op("Shape", positions))
    flat = g.int64([-1])
    written = g.op(
        "ScatterElements",
        g.op("Reshape", x, flat),
        g.op("Reshape", positions, flat),
        g.op("Reshape", updates, flat),
        axis=0,
        reduction=reduction,
    )
    return g.op("Reshape", written, shape)


@symbolic(T.__setitem__)
def setitem(g, x, idx, value):
    """x[idx] = value (tensor or scalar): the tracer rebinds x to the returned value."""
    mask = _single_mask(x, idx)
    if mask is not None:
        return _masked_write(g, x, mask, value)
    return scatter_positions(g, x, idx, value)


@symbolic(torch.index_put, T.index_put, T.index_put_, torch.index_put_)
def index_put(g, x, indices, values, accumulate=False):
    """x[indices] = values (``+=`` with accumulate); None in ``indices`` means a whole dim."""
    idx = tuple(slice(None) if i is None else i for i in indices)
    mask = _single_mask(x, idx)
    if mask is not None and not accumulate:
        return _masked_write(g, x, mask, values)
    if mask is not None:
        raise UnsupportedOperatorError("index_put with a boolean mask and accumulate=True is not supported")
    return scatter_positions(g, x, idx, values, reduction="add" if accumulate else None)


def _along(dim: int, index):
    """The index ``[:, ..., :, index]`` with ``index`` on dim ``dim``."""
    return (slice(None),) * dim + (index,)


@symbolic(torch.index_fill, T.index_fill, T.index_fill_)
def index_fill(g, x, dim, index, value):
    """x with the entries ``index`` of dim ``dim`` set to ``value``."""
    return scatter_positions(g, x, _along(dim_of(dim, x.rank), index), value)


@symbolic(torch.index_copy, T.index_copy, T.index_copy_)
def index_copy(g, x, dim, index, source):
    """x with entry ``index[i]`` of dim ``dim`` replaced by ``source``'s entry i."""
    return scatter_positions(g, x, _along(dim_of(dim, x.rank), index), source)


@symbolic(torch.index_add, T.index_add, T.index_add_)
def index_add(g, x, dim, index, source, *, alpha=1):
    """x with ``alpha * source``'s entry i added to entry ``index[i]`` of dim ``dim``."""
    if alpha != 1:
        scaled = g.op("Mul", *promote(g, source, alpha, dtype=x.dtype))
        source = Var(scaled, source.tensor.to(x.dtype), source.shape)
    return scatter_positions(g, x, _along(dim_of(dim, x.rank), index), source, reduction="add")


@symbolic(torch.masked_scatter, T.masked_scatter, T.masked_scatter_)
def masked_scatter(g, x, mask, source):
    """x with the elements where ``mask`` is True replaced, in order, by ``source``'s first
    elements: position k of a True element is the count of Trues before it (CumSum)."""
    shape = g.op("Shape", x)
    flat = g.int64([-1])
    chosen = g.op("Reshape", g.op("Expand", as_value(g, mask, torch.bool), shape), flat)
    order = g.op("CumSum", g.op("Cast", chosen, to=7), g.int64(0))
    order = g.op("Max", g.op("Sub", order, g.int64(1)), g.int64(0))
    taken = g.op("Gather", g.op("Reshape", as_value(g, source, x.dtype), flat), order)
    return g.op("Reshape", g.op("Where", chosen, taken, g.op("Reshape", x, flat)), shape)


@symbolic(torch.masked_select, T.masked_select)
def masked_select(g, x, mask):
    raise UnsupportedOperatorError(
        "masked_select returns a data-dependent number of elements, which the tracer does not "
        "support; use torch.where(mask, x, other) or x.masked_fill(mask, value)"
    )


# -- gather / scatter -----------------------------------------------------------------------
@symbolic(torch.index_select, T.index_select)
def index_select(g, x, dim, index, *, out=None):
    """Entries ``index`` (1-D) of dim ``dim``."""
    positions = as_value(g, index, torch.int64)
    if index.rank == 0:
        positions = g.op("Reshape", positions, g.int64([1]))
    return g.op("Gather", x, positions, axis=dim_of(dim, x.rank))


def _crop(g, value, like: Var, shape: tuple, skip: int | None = None):
    """``value`` (of ``shape``) cut to ``like``'s shape where they differ (torch lets an
    index be smaller than the tensor it indexes)."""
    axes = [d for d in range(len(shape)) if d != skip and not _same_size(shape[d], like.shape[d])]
    if not axes:
        return value
    ends = g.op("Gather", g.op("Shape", like), g.int64(axes))
    return g.op("Slice", value, g.int64([0] * len(axes)), ends, g.int64(axes))


def _same_size(a, b) -> bool:
    return a is b or (isinstance(a, int) and isinstance(b, int) and a == b)


@symbolic(torch.gather, T.gather)
def gather(g, x, dim, index, *, sparse_grad=False, out=None):
    """out[i][j] = x[index[i][j]][j] (dim 0): GatherElements."""
    axis = dim_of(dim, x.rank)
    data = _crop(g, x.value, index, x.shape, skip=axis)
    return g.op("GatherElements", data, as_value(g, index, torch.int64), axis=axis)


@symbolic(torch.take_along_dim, T.take_along_dim)
def take_along_dim(g, x, indices, dim=None, *, out=None):
    """gather along ``dim`` with x and indices broadcast in the other dims (flat if None)."""
    positions = as_value(g, indices, torch.int64)
    if dim is None:
        flat = g.int64([-1])
        return g.op("GatherElements", g.op("Reshape", x, flat), g.op("Reshape", positions, flat), axis=0)
    axis = dim_of(dim, x.rank)
    positions = g.op("Expand", positions, g.shape_value([1 if d == axis else n for d, n in enumerate(x.shape)]))
    sizes = [1 if d == axis else n for d, n in enumerate(indices.shape)]
    data = g.op("Expand", x, g.shape_value(sizes))
    return g.op("GatherElements", data, positions, axis=axis)


_REDUCTIONS = {"add": "add", "sum": "add", "multiply": "mul", "prod": "mul", "amax": "max", "amin": "min"}


def _scatter(g, x, dim, index, src, reduce=None):
    axis = dim_of(dim, x.rank)
    positions = as_value(g, index, torch.int64)
    if isinstance(src, Var):
        updates = _crop(g, as_value(g, src, x.dtype), index, src.shape)
    else:
        updates = g.op("Expand", as_value(g, src, x.dtype), g.op("Shape", positions))
    if reduce is not None and reduce not in _REDUCTIONS:
        raise UnsupportedOperatorError(f"scatter with reduce={reduce!r} is not supported by the tracer")
    reduction = _REDUCTIONS.get(reduce)
    if reduction is not None and g.opset < (18 if reduction in ("max", "min") else 16):
        raise UnsupportedOperatorError(f"scatter with reduce={reduce!r} needs opset 16 (18 for amax/amin)")
    return g.op("ScatterElements", x, positions, updates, axis=axis, reduction=reduction)


@symbolic(torch.scatter, T.scatter, T.scatter_)
def scatter(g, x, dim, index, src=None, value=None, *, reduce=None):
    """x with x[index[i][j]][j] = src[i][j] (dim 0); ``src`` may be a scalar ``value``."""
    return _scatter(g, x, dim, index, src if src is not None else value, reduce)


@symbolic(torch.scatter_add, T.scatter_add, T.scatter_add_)
def scatter_add(g, x, dim, index, src):
    return _scatter(g, x, dim, index, src, "add")


@symbolic(torch.scatter_reduce, T.scatter_reduce, T.scatter_reduce_)
def scatter_reduce(g, x, dim, index, src, reduce, *, include_self=True):
    """sum/prod/amax/amin reductions into x (include_self=True only)."""
    if not include_self:
        raise UnsupportedOperatorError("scatter_reduce with include_self=False is not supported by the tracer")
    return _scatter(g, x, dim, index, src, reduce)


# -- selection by condition -----------------------------------------------------------------
@symbolic(torch.masked_fill, T.masked_fill, T.masked_fill_)
def masked_fill(g, x, mask, value):
    """x where mask is False, ``value`` where it is True (mask broadcast to x)."""
    fill = as_value(g, value, x.dtype)
    return g.op("Where", as_value(g, mask, torch.bool), fill, x)


@symbolic(torch.where)
def where(g, condition, a=None, b=None, *, out=None):
    """where(cond, a, b): a where cond else b, operands promoted to the result dtype."""
    if a is None:
        raise UnsupportedOperatorError(
            "torch.where(condition) (the positions of nonzero elements) has a data-dependent "
            "shape; the tracer supports torch.where(condition, a, b)"
        )
    x, y = promote(g, a, b)
    return g.op("Where", as_value(g, condition, torch.bool), x, y)


@symbolic(T.where)
def tensor_where(g, x, condition, other):
    """x.where(cond, other) is torch.where(cond, x, other)."""
    return where(g, condition, x, other)
