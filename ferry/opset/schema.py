"""Immutable descriptions of ONNX operator schemas, decoded from ferry's schema table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = ["AttributeSchema", "FormalParameter", "OpSchema", "TypeConstraint"]

#: ``max_input`` / ``max_output`` value meaning "no upper bound".
UNBOUNDED = 2147483647


@dataclass(frozen=True)
class FormalParameter:
    """One declared input or output of an operator."""

    name: str
    type_str: str  # a type-constraint name ("T") or a concrete type ("tensor(int64)")
    option: str  # "single" | "optional" | "variadic"
    is_homogeneous: bool  # variadic only: all values share one type
    min_arity: int  # variadic only: fewest values accepted


@dataclass(frozen=True)
class AttributeSchema:
    """One declared attribute: its AttributeProto type name and default, if any.

    ``default`` is ``None`` when there is none; lists are tuples, STRING values str and
    TENSOR defaults read-only numpy arrays.
    """

    name: str
    type: str
    required: bool
    default: object | None


@dataclass(frozen=True)
class TypeConstraint:
    """A type variable and the type strings it may bind to."""

    name: str
    allowed: tuple[str, ...]


@dataclass(frozen=True)
class OpSchema:
    """One version of one operator (in force from ``since_version`` until the next)."""

    domain: str  # "" for ai.onnx
    name: str
    since_version: int
    deprecated: bool
    inputs: tuple[FormalParameter, ...]
    outputs: tuple[FormalParameter, ...]
    attributes: Mapping[str, AttributeSchema]
    type_constraints: Mapping[str, TypeConstraint]
    min_input: int
    max_input: int  # UNBOUNDED (2**31 - 1) when variadic
    min_output: int
    max_output: int
    has_function: bool  # a function body (possibly context-dependent) defines it

    def __hash__(self) -> int:
        return hash((self.domain, self.name, self.since_version))

    @property
    def domain_name(self) -> str:
        """The domain as written in messages (``ai.onnx`` for the default domain)."""
        return self.domain or "ai.onnx"


def _tensor_from_json(data: Mapping[str, Any]) -> np.ndarray:
    """Rebuild a TENSOR default stored as ``{"dtype", "dims", "values"}``."""
    from ferry.ir.dtypes import EXOTIC_DTYPES, DataType

    code = DataType(int(data["dtype"]))
    dims = tuple(int(d) for d in data["dims"])
    target = code.numpy
    if code in EXOTIC_DTYPES:  # bit patterns (4-/2-bit integers: values) in the field's storage
        storage = target.fields[target.names[0]][0]
        array = np.array(data["values"], dtype=storage).view(target)
    elif code in (DataType.COMPLEX64, DataType.COMPLEX128):  # interleaved (re, im)
        array = np.array(data["values"], dtype=target.char.lower()).view(target)
    else:
        array = np.array(data["values"], dtype=target)
    array = array.reshape(dims)
    array.setflags(write=False)
    return array


def _default_from_json(attr_type: str, value: Any) -> object | None:
    if value is None:
        return None
    if attr_type == "TENSOR":
        return _tensor_from_json(value)
    if attr_type == "TENSORS":
        return tuple(_tensor_from_json(v) for v in value)
    if attr_type == "FLOAT":
        return float(value)
    if attr_type == "FLOATS":
        return tuple(float(v) for v in value)
    if isinstance(value, list):
        return tuple(value)
    return value


def _parameter_from_json(data: Mapping[str, Any]) -> FormalParameter:
    return FormalParameter(
        name=data["name"],
        type_str=data["type_str"],
        option=data["option"],
        is_homogeneous=bool(data["is_homogeneous"]),
        min_arity=int(data["min_arity"]),
    )


def schema_from_json(data: Mapping[str, Any]) -> OpSchema:
    """Decode one schema entry of the table."""
    attributes = {
        a["name"]: AttributeSchema(
            name=a["name"],
            type=a["type"],
            required=bool(a["required"]),
            default=_default_from_json(a["type"], a["default"]),
        )
        for a in data["attributes"]
    }
    constraints = {
        c["name"]: TypeConstraint(name=c["name"], allowed=tuple(c["allowed"]))
        for c in data["type_constraints"]
    }
    return OpSchema(
        domain=data["domain"],
        name=data["name"],
        since_version=int(data["since_version"]),
        deprecated=bool(data["deprecated"]),
        inputs=tuple(_parameter_from_json(p) for p in data["inputs"]),
        outputs=tuple(_parameter_from_json(p) for p in data["outputs"]),
        attributes=MappingProxyType(attributes),
        type_constraints=MappingProxyType(constraints),
        min_input=int(data["min_input"]),
        max_input=int(data["max_input"]),
        min_output=int(data["min_output"]),
        max_output=int(data["max_output"]),
        has_function=bool(data["has_function"]),
    )
