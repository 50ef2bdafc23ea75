"""ferry's in-memory model: element types, tensors, values, nodes, graphs, functions.

The IR does no I/O; :mod:`ferry.format` reads and writes it.
"""

from __future__ import annotations

from ferry.ir.attribute import Attribute, AttributeType
from ferry.ir.dtypes import DataType, from_numpy_dtype
from ferry.ir.graph import Graph, Node, Value
from ferry.ir.model import Function, Model
from ferry.ir.tensor import ArrayTensor, LazyTensor, SparseTensor, Tensor
from ferry.ir.types import (
    Dim,
    MapType,
    OpaqueType,
    OptionalType,
    SequenceType,
    Shape,
    SparseTensorType,
    TensorType,
    Type,
    UnsetType,
)

__all__ = [
    "ArrayTensor",
    "Attribute",
    "AttributeType",
    "DataType",
    "Dim",
    "Function",
    "Graph",
    "LazyTensor",
    "MapType",
    "Model",
    "Node",
    "OpaqueType",
    "OptionalType",
    "SequenceType",
    "Shape",
    "SparseTensor",
    "SparseTensorType",
    "Tensor",
    "TensorType",
    "Type",
    "UnsetType",
    "Value",
    "from_numpy_dtype",
]
