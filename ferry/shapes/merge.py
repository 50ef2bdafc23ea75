"""Merging an inferred tensor type with the type a model declares for the same value.

Declared information wins where it is more precise (a concrete size over an expression,
a user's name over a fresh ``unk__N``); the inferred one wins otherwise. Two different
concrete sizes, ranks or element types are conflicts, reported by the driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ferry.ir import DataType, Shape, SparseTensorType, TensorType, Type, UnsetType
from ferry.shapes.context import is_unknown
from ferry.shapes.expr import Expr, from_dim, to_dim

__all__ = ["Merged", "merge_tensor", "shape_text", "tensor_type"]


@dataclass
class Merged:
    """The outcome of a merge: what flows downstream (``dtype``, ``shape``), what is
    written on the IR value (``ir_type``), aliases learnt and conflicts found."""

    dtype: DataType | None
    shape: list[Expr | None] | None
    ir_type: Type | None = None
    aliases: dict[str, Expr] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)


def shape_text(shape: list[Expr | None] | None) -> str:
    if shape is None:
        return "(unknown rank)"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def tensor_type(
    dtype: DataType | None, shape: list[Expr | None] | None, *, sparse: bool = False
) -> TensorType:
    """An IR tensor type with ``shape`` written as dims (ints or expression text)."""
    dims = None if shape is None else Shape([to_dim(d) for d in shape])
    return (SparseTensorType if sparse else TensorType)(dtype, dims)


def _declared_shape(declared: TensorType) -> list[Expr | None] | None:
    if declared.shape is None:
        return None
    return [from_dim(d) for d in declared.shape]


def _merge_dim(
    index: int, declared: Expr | None, inferred: Expr | None, merged: Merged
) -> Expr | None:
    if declared is None:
        return inferred
    if inferred is None:
        return declared
    if declared == inferred:
        return inferred
    if declared.is_const and inferred.is_const:
        merged.conflicts.append(
            f"dim {index}: the model declares {declared}, inference gives {inferred}"
        )
        return inferred
    if declared.is_const or (is_unknown(inferred) and not is_unknown(declared)):
        if inferred.is_symbol:
            merged.aliases[str(inferred)] = declared
        return declared
    return inferred


def merge_tensor(
    declared: Type | None,
    dtype: DataType | None,
    shape: list[Expr | None] | None,
    *,
    boundary: bool,
    sparse: bool = False,
) -> Merged:
    """Merge an inferred tensor (``dtype``, ``shape``) into the ``declared`` type.

    ``boundary``: the value is a graph output, whose declared type is kept and only
    completed where it says nothing."""
    if declared is None or isinstance(declared, UnsetType):
        merged = Merged(dtype, shape)
        merged.ir_type = tensor_type(dtype, shape, sparse=sparse)
        return merged
    if not isinstance(declared, TensorType):
        merged = Merged(dtype, shape, ir_type=declared)
        merged.conflicts.append(f"the model declares a {declared}, inference gives a tensor")
        return merged
    merged = Merged(dtype if dtype is not None else declared.dtype, None)
    if dtype is not None and declared.dtype is not None and dtype != declared.dtype:
        merged.conflicts.append(
            f"the model declares element type {declared.dtype.name}, inference gives {dtype.name}"
        )
    known = _declared_shape(declared)
    if known is None or shape is None:
        merged.shape = shape if shape is not None else known
    elif len(known) != len(shape):
        merged.conflicts.append(
            f"the model declares rank {len(known)} {shape_text(known)}, inference gives "
            f"rank {len(shape)} {shape_text(shape)}"
        )
        merged.shape = shape
    else:
        merged.shape = [_merge_dim(k, d, e, merged) for k, (d, e) in enumerate(zip(known, shape))]
    merged.ir_type = _written_type(declared, merged, boundary, sparse)
    return merged


def _written_type(declared: TensorType, merged: Merged, boundary: bool, sparse: bool) -> TensorType:
    if not boundary:
        written = tensor_type(merged.dtype, merged.shape, sparse=sparse)
        written.denotation = declared.denotation
        if declared.shape is not None and written.shape is not None and len(declared.shape) == len(written.shape):
            written.shape = Shape(written.shape.dims, declared.shape.denotations)
        return written
    dtype = declared.dtype if declared.dtype is not None else merged.dtype
    if declared.shape is None:
        dims = None if merged.shape is None else Shape([to_dim(d) for d in merged.shape])
    elif merged.shape is not None and len(merged.shape) == len(declared.shape):
        dims = Shape(
            [d if d is not None else to_dim(e) for d, e in zip(declared.shape, merged.shape)],
            declared.shape.denotations,
        )
    else:
        dims = declared.shape
    return type(declared)(dtype, dims, declared.denotation)
