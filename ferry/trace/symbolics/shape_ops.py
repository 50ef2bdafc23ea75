"""Shape manipulation: view/reshape, (un)squeeze, permutations, expand/repeat, cat/stack,
split/chunk/unbind, narrow, flip, roll. Sizes read from dynamic axes (SymInts) become
graph values, so the exported shapes follow the inputs."""

from __future__ import annotations

import math

import torch

from ferry.errors import UnsupportedOperatorError
from ferry.trace.registry import symbolic
from ferry.trace.symbolics._helpers import as_value, promote
from ferry.trace.symint import SymInt, concrete, probe_value
from ferry.trace.tracer import Var

__all__ = ["INT_MAX", "INT_MIN", "dim_of", "dims_value", "reshape", "size_args", "squeeze", "unsqueeze"]

T = torch.Tensor
INT_MAX = 2**63 - 1
INT_MIN = -(2**63)


# -- helpers shared with indexing/creation --------------------------------------------------
def size_args(sizes) -> list:
    """``f(2, 3)`` and ``f((2, 3))`` / ``f(x.shape)`` alike: the list of sizes."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list, torch.Size)):
        return list(sizes[0])
    return list(sizes)


def dim_of(dim: int, rank: int) -> int:
    """A dimension index made non-negative (``rank`` is the number of dims it indexes)."""
    return dim + rank if dim < 0 else dim


def dims_value(g, dims):
    """An int64 1-D value from ints, SymInts and 0-d/1-element integer tensors (Vars)."""
    if not any(isinstance(d, Var) for d in dims):
        return g.shape_value(dims)
    parts = [
        g.op("Reshape", as_value(g, d, torch.int64), g.int64([1])) if isinstance(d, Var) else g.shape_value([d])
        for d in dims
    ]
    return parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=0)


def unsqueeze(g, x, axes):
    return g.op("Unsqueeze", x, g.int64(list(axes)))


def squeeze(g, x, axes):
    return g.op("Squeeze", x, g.int64(list(axes)))


def reshape(g, x: Var, dims):
    """Reshape ``x`` to ``dims`` (ints, SymInts, one -1). A dimension kept from ``x`` at
    the same place becomes 0 (copy), so no size needs to be computed for it."""
    dims = list(dims)
    if any(not isinstance(d, SymInt) and not isinstance(d, Var) and d == 0 for d in dims):
        return g.op("Reshape", x, dims_value(g, dims), allowzero=1)  # a real size 0
    dims = [
        0 if isinstance(d, SymInt) and i < x.rank and x.shape[i] is d else d
        for i, d in enumerate(dims)
    ]
    return g.op("Reshape", x, dims_value(g, dims))


# -- views and reshapes ---------------------------------------------------------------------
@symbolic(T.view, T.reshape, torch.reshape)
def view(g, x, *shape, **kwargs):
    """x.view(*sizes) / reshape(sizes): -1 is inferred, dynamic sizes stay dynamic."""
    shape = size_args(shape) if shape else size_args((kwargs.get("shape", kwargs.get("size")),))
    if len(shape) == 1 and isinstance(shape[0], torch.dtype):
        if shape[0] == x.dtype:
            return x.value
        raise UnsupportedOperatorError(
            "Tensor.view(dtype) reinterprets the tensor's bits; the tracer does not support it "
            "(use .to(dtype) to convert values)"
        )
    return reshape(g, x, shape)


@symbolic(T.view_as, T.reshape_as)
def view_as(g, x, other):
    return g.op("Reshape", x, g.op("Shape", other))


@symbolic(torch.flatten, T.flatten, torch.ravel, T.ravel)
def flatten(g, x, start_dim=0, end_dim=-1):
    """Merge dims start_dim..end_dim into one."""
    if x.rank == 0:
        return reshape(g, x, [1])
    start, end = dim_of(start_dim, x.rank), dim_of(end_dim, x.rank)
    if start == end:
        return x.value
    return reshape(g, x, [*x.shape[:start], -1, *x.shape[end + 1:]])


@symbolic(T.unflatten, torch.unflatten)
def unflatten(g, x, dim, sizes):
    """Split dim into ``sizes`` (one may be -1)."""
    d = dim_of(dim, x.rank)
    return reshape(g, x, [*x.shape[:d], *size_args((sizes,)), *x.shape[d + 1:]])


@symbolic(torch.squeeze, T.squeeze, T.squeeze_)
def squeeze_op(g, x, dim=None):
    """Remove size-1 dims: all of them, or those of ``dim`` (int or tuple) that have size 1."""
    if dim is None:
        dims = range(x.rank)
    else:
        dims = [dim_of(d, x.rank) for d in (dim if isinstance(dim, (tuple, list)) else [dim])]
    axes = [d for d in dims if concrete(x.shape[d]) == 1]
    for d in axes:
        if isinstance(x.shape[d], SymInt):
            g.tracer.specialize("dynamic-size", "squeeze removed a dynamic dimension of size 1")
    return squeeze(g, x, axes) if axes else x.value


@symbolic(torch.unsqueeze, T.unsqueeze, T.unsqueeze_)
def unsqueeze_op(g, x, dim):
    return unsqueeze(g, x, [dim_of(dim, x.rank + 1)])


# -- permutations -----------------------------------------------------------------------------
def _transpose(g, x, perm):
    perm = [dim_of(p, x.rank) for p in perm]
    return x.value if perm == list(range(x.rank)) else g.op("Transpose", x, perm=perm)


@symbolic(torch.permute, T.permute)
def permute(g, x, *dims, **kwargs):
    return _transpose(g, x, size_args(dims) if dims else list(kwargs["dims"]))


def _swapped(rank, a, b):
    perm = list(range(rank))
    a, b = dim_of(a, rank), dim_of(b, rank)
    perm[a], perm[b] = perm[b], perm[a]
    return perm


@symbolic(torch.transpose, T.transpose, T.transpose_, torch.swapaxes, T.swapaxes, torch.swapdims, T.swapdims)
def transpose(g, x, dim0, dim1):
    return _transpose(g, x, _swapped(x.rank, dim0, dim1))


@symbolic(torch.t, T.t, T.t_)
def t(g, x):
    """Transpose of a 2-D tensor; 0-D and 1-D tensors are returned as they are."""
    return x.value if x.rank < 2 else _transpose(g, x, [1, 0])


@symbolic(T.T, T.H)
def reversed_dims(g, x):
    """x.T: all dims reversed (x.H for a real tensor is the same)."""
    return _transpose(g, x, list(range(x.rank))[::-1])


@symbolic(T.mT, T.mH, torch.adjoint, T.adjoint)
def matrix_transpose(g, x):
    """x.mT: the last two dims swapped."""
    return _transpose(g, x, _swapped(x.rank, -1, -2))


@symbolic(torch.movedim, T.movedim, torch.moveaxis, T.moveaxis)
def movedim(g, x, source, destination):
    source = [source] if isinstance(source, int) else list(source)
    destination = [destination] if isinstance(destination, int) else list(destination)
    src = [dim_of(d, x.rank) for d in source]
    dst = [dim_of(d, x.rank) for d in destination]
    rest = iter(d for d in range(x.rank) if d not in src)
    placed = dict(zip(dst, src))
    return _transpose(g, x, [placed[i] if i in placed else next(rest) for i in range(x.rank)])


# -- broadcasting and repetition ------------------------------------------------------------
@symbolic(T.expand, torch.broadcast_to, T.broadcast_to)
def expand(g, x, *sizes, implicit=False, **kwargs):
    """x.expand(*sizes): -1 keeps a dim; ONNX Expand broadcasts, so -1 becomes 1."""
    sizes = size_args(sizes) if sizes else size_args((kwargs.get("size", kwargs.get("shape")),))
    sizes = [1 if isinstance(s, int) and s == -1 else s for s in sizes]
    return g.op("Expand", x, dims_value(g, sizes))


@symbolic(T.expand_as)
def expand_as(g, x, other):
    return g.op("Expand", x, g.op("Shape", other))


def _tile(g, x, repeats):
    extra = len(repeats) - x.rank
    value = unsqueeze(g, x, range(extra)) if extra > 0 else x.value
    if all(isinstance(r, int) and r == 1 for r in repeats):
        return value
    return g.op("Tile", value, dims_value(g, repeats))


@symbolic(T.repeat)
def repeat(g, x, *repeats):
    """x.repeat(*sizes): tile, adding leading dims when there are more sizes than dims."""
    return _tile(g, x, size_args(repeats))


@symbolic(torch.tile, T.tile)
def tile(g, x, dims):
    dims = size_args((dims,))
    return _tile(g, x, [1] * (x.rank - len(dims)) + dims)


@symbolic(torch.repeat_interleave, T.repeat_interleave)
def repeat_interleave(g, x, repeats=None, dim=None, *, output_size=None):
    """Each element repeated ``repeats`` (an int) times along ``dim`` (flattened if None)."""
    if not isinstance(repeats, (int, SymInt)):
        raise UnsupportedOperatorError(
            "repeat_interleave with a tensor of repeats has a data-dependent shape; the tracer "
            "supports an int number of repeats"
        )
    if dim is None:
        value, shape = reshape(g, x, [-1]), [math.prod(x.shape) if x.shape else 1]
    else:
        value, shape = x.value, list(x.shape)
    d = dim_of(dim or 0, len(shape))
    reps = [1] * (d + 1) + [repeats] + [1] * (len(shape) - d - 1)
    wide = g.op("Expand", unsqueeze(g, value, [d + 1]), dims_value(g, reps))
    return g.op("Reshape", wide, dims_value(g, [0] * d + [-1] + shape[d + 1:]))


# -- joining --------------------------------------------------------------------------------
def _joined(tensors):
    """cat's legacy rule: 1-D empty tensors are skipped next to higher-rank ones."""
    keep = [t for t in tensors if not (isinstance(t, Var) and t.rank == 1 and concrete(t.shape[0]) == 0)]
    return keep or list(tensors)


@symbolic(torch.cat, torch.concat, torch.concatenate)
def cat(g, tensors, dim=0, *, axis=None, out=None):
    """Concatenate along ``dim``, operands cast to the result dtype."""
    tensors = _joined(tensors)
    rank = tensors[0].rank
    values = promote(g, *tensors)
    if len(values) == 1:
        return g.op("Identity", values[0])
    return g.op("Concat", *values, axis=dim_of(dim if axis is None else axis, rank))


@symbolic(torch.stack)
def stack(g, tensors, dim=0, *, out=None):
    """Join along a new dim ``dim``."""
    d = dim_of(dim, tensors[0].rank + 1)
    values = [unsqueeze(g, v, [d]) for v in promote(g, *tensors)]
    return values[0] if len(values) == 1 else g.op("Concat", *values, axis=d)


@symbolic(torch.hstack)
def hstack(g, tensors, *, out=None):
    """cat along dim 1, or dim 0 when the tensors are 1-D (0-D ones become 1-D)."""
    values = [g.op("Reshape", v, g.int64([1])) if t.rank == 0 else v for t, v in zip(tensors, promote(g, *tensors))]
    axis = 0 if all(t.rank <= 1 for t in tensors) else 1
    return g.op("Concat", *values, axis=axis)


@symbolic(torch.vstack, torch.row_stack)
def vstack(g, tensors, *, out=None):
    """cat along dim 0 after making each tensor at least 2-D (a row)."""
    values = [
        g.op("Reshape", v, g.int64([1, -1])) if t.rank < 2 else v
        for t, v in zip(tensors, promote(g, *tensors))
    ]
    return g.op("Concat", *values, axis=0)


# -- splitting ------------------------------------------------------------------------------
def _split(g, x, sizes, axis):
    if len(sizes) == 1:
        return (x.value,)
    return g.op("Split", x, dims_value(g, sizes), axis=axis, num_outputs=len(sizes))


def _even_pieces(g, x, axis, size, count):
    """``count`` pieces of ``size`` along ``axis``, the last one holding the rest."""
    total = x.shape[axis]
    if isinstance(total, SymInt):
        probe_size = probe_value(size)
        if probe_size and -(-total.probe // probe_size) != count:
            g.tracer.specialize(
                "dynamic-size", f"splitting a dynamic dimension gave {count} pieces; other sizes give other counts"
            )
    return _split(g, x, [size] * (count - 1) + [total - size * (count - 1)], axis)


@symbolic(torch.split, T.split, T.split_with_sizes, torch.split_with_sizes)
def split(g, x, split_size_or_sections=None, dim=0, *, split_size=None, split_sizes=None):
    """Pieces of ``split_size`` (an int) or of the listed sizes along ``dim``."""
    sizes = next(s for s in (split_size_or_sections, split_size, split_sizes) if s is not None)
    axis = dim_of(dim, x.rank)
    if isinstance(sizes, (list, tuple)):
        return _split(g, x, list(sizes), axis)
    return _even_pieces(g, x, axis, sizes, len(g.out))


@symbolic(torch.chunk, T.chunk)
def chunk(g, x, chunks, dim=0):
    """``chunks`` pieces of ceil(size / chunks) along ``dim`` (fewer if the size runs out)."""
    axis = dim_of(dim, x.rank)
    size = (x.shape[axis] + (chunks - 1)) // chunks
    return _even_pieces(g, x, axis, size, len(g.out))


@symbolic(torch.unbind, T.unbind)
def unbind(g, x, dim=0):
    """One tensor per index of ``dim`` (that dim removed)."""
    axis = dim_of(dim, x.rank)
    if isinstance(x.shape[axis], SymInt):
        g.tracer.specialize("dynamic-size", "unbind over a dynamic dimension returns a fixed number of tensors")
    return tuple(g.op("Gather", x, g.int64(i), axis=axis) for i in range(concrete(x.shape[axis])))


@symbolic(torch.narrow, T.narrow, torch.narrow_copy, T.narrow_copy)
def narrow(g, x, dim, start, length):
    """x[..., start : start + length] along ``dim`` (negative ``start`` counts from the end)."""
    axis = dim_of(dim, x.rank)
    if isinstance(start, int) and start < 0:
        start = x.shape[axis] + start
    if isinstance(start, Var):
        begin = dims_value(g, [start])
        end = g.op("Add", begin, g.shape_value([length]))
    else:
        begin, end = g.shape_value([start]), g.shape_value([start + length])
    return g.op("Slice", x, begin, end, g.int64([axis]))


# -- copies, reversal, rotation ---------------------------------------------------------------
@symbolic(T.contiguous, T.clone, torch.clone)
def same_values(g, x, *args, **kwargs):
    """contiguous()/clone(): the same values (memory layout does not exist in ONNX)."""
    return x.value


def _flip(g, x, dims):
    axes = [dim_of(d, x.rank) for d in dims]
    n = len(axes)
    return g.op("Slice", x, g.int64([-1] * n), g.int64([INT_MIN] * n), g.int64(axes), g.int64([-1] * n))


@symbolic(torch.flip, T.flip)
def flip(g, x, *dims, **kwargs):
    """Reverse the order of elements along ``dims``."""
    return _flip(g, x, size_args(dims) if dims else size_args((kwargs["dims"],)))


@symbolic(torch.fliplr, T.fliplr)
def fliplr(g, x):
    return _flip(g, x, [1])


@symbolic(torch.flipud, T.flipud)
def flipud(g, x):
    return _flip(g, x, [0])


def _roll_one(g, value, size, shift, axis):
    """Rotate ``value`` by ``shift`` along ``axis`` of length ``size``: out[i] = in[i - shift]."""
    if isinstance(size, SymInt):
        kept = g.op("Sub", size.var, g.op("Mod", g.int_value(shift), size.var))
        point = g.op("Unsqueeze", kept, g.int64([0]))
    else:
        if size == 0 or shift % size == 0:
            return value
        point = g.int64([size - shift % size])
    axes = g.int64([axis])
    tail = g.op("Slice", value, point, g.int64([INT_MAX]), axes)
    head = g.op("Slice", value, g.int64([0]), point, axes)
    return g.op("Concat", tail, head, axis=axis)


@symbolic(torch.roll, T.roll)
def roll(g, x, shifts, dims=None):
    """Rotate along ``dims`` by ``shifts``; without dims the flattened tensor is rotated."""
    shifts = list(shifts) if isinstance(shifts, (tuple, list)) else [shifts]
    if dims is None:
        flat = reshape(g, x, [-1])
        total = math.prod(x.shape) if x.shape else 1
        rolled = _roll_one(g, flat, total, shifts[0], 0)
        return g.op("Reshape", rolled, g.op("Shape", x))
    dims = list(dims) if isinstance(dims, (tuple, list)) else [dims]
    value = x.value
    for shift, dim in zip(shifts, dims):
        axis = dim_of(dim, x.rank)
        value = _roll_one(g, value, x.shape[axis], shift, axis)
    return value
