"""Checks of data and types: tensors (initializers, attribute values), sparse tensors,
the declared types of a main graph's inputs and outputs, and attribute payloads.

Each function returns a list of problems as sentences (empty when all is well); the
caller decides the rule and location.
"""

from __future__ import annotations

import numbers

import numpy as np

from ferry.ir import (
    Attribute,
    AttributeType,
    DataType,
    Graph,
    LazyTensor,
    MapType,
    OpaqueType,
    OptionalType,
    SequenceType,
    SparseTensor,
    SparseTensorType,
    Tensor,
    TensorType,
    UnsetType,
)
from ferry.ir.types import Type

__all__ = [
    "attribute_payload_problems",
    "attribute_value_problem",
    "sparse_problems",
    "tensor_problems",
    "type_problem",
]


def type_problem(type_: Type | None) -> str | None:
    """Why a main graph input or output type is incomplete, or None.

    Mirrors what ONNX requires there: a type; tensors with an element type and a
    shape (possibly of unknown dims); sequences and optionals with an element type;
    maps with key and value types; opaque types with a name. Nested types are not
    required to be complete.
    """
    if type_ is None:
        return "has no type"
    if isinstance(type_, UnsetType):
        return "has a type that sets no kind (tensor, sequence, map, optional, ...)"
    if isinstance(type_, TensorType):
        kind = "sparse tensor" if isinstance(type_, SparseTensorType) else "tensor"
        if type_.dtype is None:
            return f"is a {kind} without an element type"
        if type_.shape is None:
            return f"is a {kind} without a shape (a shape with unknown dims is fine)"
        return None
    if isinstance(type_, (SequenceType, OptionalType)):
        if type_.elem_type is None:
            kind = "a sequence" if isinstance(type_, SequenceType) else "an optional"
            return f"is {kind} without an element type"
        return None
    if isinstance(type_, MapType):
        if type_.key_type is None:
            return "is a map without a key type"
        if type_.value_type is None:
            return "is a map without a value type"
        return None
    if isinstance(type_, OpaqueType) and not type_.name:
        return "is an opaque type without a name"
    return None


def tensor_problems(tensor: Tensor) -> list[str]:
    """Element type set, dims non-negative, data size matching shape and type.

    External data is checked by its declared byte length (it is not read); a lazily
    loaded tensor that is not loaded yet is not loaded for this.
    """
    problems = []
    if tensor.dtype == DataType.UNDEFINED:
        problems.append("has element type UNDEFINED; expected a concrete type")
        return problems
    if any(d < 0 for d in tensor.shape):
        problems.append(f"has a negative dimension in shape {list(tensor.shape)}")
        return problems
    length = getattr(tensor, "length", None)
    if length is not None and hasattr(tensor, "location"):
        if length != tensor.nbytes:
            problems.append(
                f"keeps {length} bytes of external data in {tensor.location!r}, but "
                f"{tensor.dtype.name}{list(tensor.shape)} needs {tensor.nbytes}"
            )
        return problems
    if isinstance(tensor, LazyTensor) and not tensor.is_loaded:
        return problems
    found = np.asarray(tensor.numpy()).size
    if found != tensor.size:
        problems.append(
            f"holds {found} elements, but its shape {list(tensor.shape)} needs {tensor.size}"
        )
    return problems


def sparse_problems(sparse: SparseTensor) -> list[str]:
    """A COO sparse tensor: valid values and indices, indices in range and ascending."""
    values = sparse.values
    problems = [f"values {p}" for p in tensor_problems(values)]
    if problems:
        return problems
    if any(d < 0 for d in sparse.dims):
        return [f"has a negative dimension in dims {list(sparse.dims)}"]
    if len(values.shape) != 1:
        return [f"values must be a 1-D tensor [NNZ], found shape {list(values.shape)}"]
    if sparse.indices is None:
        return [] if values.size == 0 else ["has values but no indices"]
    return _indices_problems(sparse.indices, values.size, sparse.dims)


def _indices_problems(indices: Tensor, nnz: int, dims: tuple[int, ...]) -> list[str]:
    if indices.dtype != DataType.INT64:
        return [f"indices have element type {indices.dtype.name}; expected INT64"]
    problems = [f"indices {p}" for p in tensor_problems(indices)]
    if problems:
        return problems
    if nnz == 0:
        return []
    array = np.asarray(indices.numpy()).astype(np.int64)
    if array.ndim == 2 and array.shape == (nnz, len(dims)):
        if any(np.any((array[:, k] < 0) | (array[:, k] >= d)) for k, d in enumerate(dims)):
            return [f"has an index out of range for dims {list(dims)}"]
        flat = np.ravel_multi_index(tuple(array.T), dims)
    elif array.ndim == 1 and array.shape[0] == nnz:
        size = int(np.prod(dims, dtype=np.int64))
        if np.any((array < 0) | (array >= size)):
            return [f"has a linear index out of range [0, {size}) for dims {list(dims)}"]
        flat = array
    else:
        return [
            f"indices have shape {list(array.shape)}; expected [{nnz}] or [{nnz}, {len(dims)}] "
            f"for {nnz} values of a rank-{len(dims)} tensor"
        ]
    if np.any(np.diff(flat) <= 0):
        return ["indices are not in strictly ascending (row-major) order"]
    return []


def _is_type(value: object) -> bool:
    return isinstance(value, Type.__args__)


_SCALAR_CHECKS = {
    AttributeType.FLOAT: lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool),
    AttributeType.INT: lambda v: isinstance(v, numbers.Integral),
    AttributeType.STRING: lambda v: isinstance(v, (str, bytes)),
    AttributeType.TENSOR: lambda v: isinstance(v, Tensor),
    AttributeType.GRAPH: lambda v: isinstance(v, Graph),
    AttributeType.SPARSE_TENSOR: lambda v: isinstance(v, SparseTensor),
    AttributeType.TYPE_PROTO: _is_type,
}


def attribute_value_problem(attr: Attribute) -> str | None:
    """Whether the Python value fits the attribute's declared type (None when it does)."""
    kind = attr.type
    if attr.value is None:
        return f"has no value (type {kind.name})"
    if kind.is_list:
        single = AttributeType[kind.name[:-1]]
        if not isinstance(attr.value, (list, tuple)):
            return f"is declared {kind.name} but holds {type(attr.value).__name__}, not a list"
        bad = [v for v in attr.value if not _SCALAR_CHECKS[single](v)]
        if bad:
            return f"is declared {kind.name} but holds an item of type {type(bad[0]).__name__}"
        return None
    check = _SCALAR_CHECKS.get(kind)
    if check is not None and not check(attr.value):
        return f"is declared {kind.name} but holds {type(attr.value).__name__}"
    return None


def attribute_payload_problems(attr: Attribute) -> list[str]:
    """Problems of the tensors an attribute holds (graphs are checked by the walker)."""
    if attr.type == AttributeType.TENSOR:
        return [f"tensor {p}" for p in tensor_problems(attr.value)]
    if attr.type == AttributeType.TENSORS:
        return [f"tensor {i} {p}" for i, t in enumerate(attr.value) for p in tensor_problems(t)]
    if attr.type == AttributeType.SPARSE_TENSOR:
        return [f"sparse tensor {p}" for p in sparse_problems(attr.value)]
    if attr.type == AttributeType.SPARSE_TENSORS:
        return [
            f"sparse tensor {i} {p}" for i, s in enumerate(attr.value) for p in sparse_problems(s)
        ]
    return []
