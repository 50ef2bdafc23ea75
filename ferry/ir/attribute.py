"""Node attributes: a name, an ONNX attribute type and a Python value."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ferry.ir.tensor import ArrayTensor, SparseTensor, Tensor
from ferry.ir.types import Type

__all__ = ["CONSTANT_VALUE_ATTRIBUTES", "Attribute", "AttributeType", "constant_attribute_array"]


class AttributeType(enum.IntEnum):
    """ONNX ``AttributeProto.AttributeType`` codes."""

    UNDEFINED = 0
    FLOAT = 1
    INT = 2
    STRING = 3
    TENSOR = 4
    GRAPH = 5
    FLOATS = 6
    INTS = 7
    STRINGS = 8
    TENSORS = 9
    GRAPHS = 10
    SPARSE_TENSOR = 11
    SPARSE_TENSORS = 12
    TYPE_PROTO = 13
    TYPE_PROTOS = 14

    @property
    def is_list(self) -> bool:
        return self in _LIST_TYPES


_LIST_TYPES = {
    AttributeType.FLOATS,
    AttributeType.INTS,
    AttributeType.STRINGS,
    AttributeType.TENSORS,
    AttributeType.GRAPHS,
    AttributeType.SPARSE_TENSORS,
    AttributeType.TYPE_PROTOS,
}


@dataclass
class Attribute:
    """One attribute of a node or a function.

    Values by type: FLOAT float, INT int, STRING str (bytes when not valid UTF-8),
    TENSOR :class:`Tensor`, GRAPH :class:`~ferry.ir.Graph`, SPARSE_TENSOR
    :class:`SparseTensor`, TYPE_PROTO a type of :mod:`ferry.ir.types`; the plural
    types hold lists of those. ``ref_attr_name`` is set (and ``value`` is None) for an
    attribute inside a function body that refers to the function's own attribute.
    """

    name: str
    type: AttributeType
    value: object
    doc_string: str | None = None
    ref_attr_name: str | None = None
    _proto_extras: bytes = field(default=b"", repr=False, compare=False)

    @classmethod
    def infer(cls, name: str, value: object) -> Attribute:
        """Build an attribute, choosing its type from the Python value."""
        return cls(name, _infer_type(name, value), _normalize(value))

    def __str__(self) -> str:
        if self.ref_attr_name is not None:
            return f"{self.name}=@{self.ref_attr_name}"
        return f"{self.name}={_format_value(self.value)}"


def _infer_type(name: str, value: object) -> AttributeType:
    from ferry.ir.graph import Graph

    scalar = {
        bool: AttributeType.INT,
        int: AttributeType.INT,
        float: AttributeType.FLOAT,
        str: AttributeType.STRING,
        bytes: AttributeType.STRING,
    }
    for python_type, attr_type in scalar.items():
        if isinstance(value, python_type):
            return attr_type
    if isinstance(value, (np.integer, np.floating)):
        return AttributeType.INT if isinstance(value, np.integer) else AttributeType.FLOAT
    if isinstance(value, (Tensor, np.ndarray)):
        return AttributeType.TENSOR
    if isinstance(value, Graph):
        return AttributeType.GRAPH
    if isinstance(value, SparseTensor):
        return AttributeType.SPARSE_TENSOR
    if _is_type(value):
        return AttributeType.TYPE_PROTO
    if isinstance(value, Sequence) and value:
        element = _infer_type(name, value[0])
        plural = AttributeType[element.name + "S"]
        for item in value[1:]:
            if _infer_type(name, item) != element and {element, _infer_type(name, item)} != {
                AttributeType.INT,
                AttributeType.FLOAT,
            }:
                raise TypeError(f"attribute {name!r}: list mixes {element.name} and {item!r}")
        if any(isinstance(v, float) for v in value) and element == AttributeType.INT:
            return AttributeType.FLOATS
        return plural
    raise TypeError(
        f"attribute {name!r}: cannot infer an ONNX attribute type for {type(value).__name__} "
        f"(an empty list needs an explicit type)"
    )


def _is_type(value: object) -> bool:
    return isinstance(value, Type.__args__)


def _normalize(value: object) -> object:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return ArrayTensor(value)
    if isinstance(value, (list, tuple)):
        return [_normalize(v) for v in value]
    return value


def _format_value(value: object, limit: int = 8) -> str:
    if isinstance(value, list):
        shown = ", ".join(_format_value(v) for v in value[:limit])
        more = f", ... (+{len(value) - limit})" if len(value) > limit else ""
        return f"[{shown}{more}]"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Tensor):
        if value.size <= limit and value.dtype.numpy.names is None:
            return (
                f"{value.dtype.short_name}{list(value.shape)}{value.numpy().reshape(-1).tolist()}"
            )
        return f"{value.dtype.short_name}{list(value.shape)}"
    from ferry.ir.graph import Graph

    if isinstance(value, Graph):
        return f"<graph {value.name or ''}>"
    return str(value)


_CONSTANT_LITERALS = {
    "value_float": np.float32,
    "value_floats": np.float32,
    "value_int": np.int64,
    "value_ints": np.int64,
    "value_string": object,
    "value_strings": object,
}

CONSTANT_VALUE_ATTRIBUTES = ("value", "sparse_value", *_CONSTANT_LITERALS)
"""The attributes of which a Constant node sets exactly one."""


def constant_attribute_array(name: str, value: object) -> np.ndarray:
    """The tensor a Constant node produces from its value attribute ``name``: ``value`` (a
    :class:`Tensor` or an array), ``sparse_value`` (densified), or ``value_float(s)`` /
    ``value_int(s)`` / ``value_string(s)`` as float32 / int64 / object scalars or 1-D arrays."""
    if name == "value":
        return value.numpy() if isinstance(value, Tensor) else np.asarray(value)
    if name == "sparse_value":
        if not isinstance(value, SparseTensor):
            raise TypeError(f"Constant sparse_value must be a ferry SparseTensor, got {type(value).__name__}")
        return value.to_dense()
    if name not in _CONSTANT_LITERALS:
        raise ValueError(f"{name!r} is not a Constant value attribute; expected one of {CONSTANT_VALUE_ATTRIBUTES}")
    return np.array(list(value) if isinstance(value, (list, tuple)) else value, dtype=_CONSTANT_LITERALS[name])
