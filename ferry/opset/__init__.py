"""ONNX operator schemas: which operators exist, at which opset versions, with what
inputs, outputs, attributes and type constraints.

The facts come from a table extracted from the ONNX standard (``tools/extract_schemas.py``)
and shipped as ``schemas.json.gz``; it is loaded lazily, once. The default domain is
``""`` and ``"ai.onnx"`` is accepted as its alias.

    >>> get_schema("Add", opset=12).since_version
    7
"""

from __future__ import annotations

from ferry.errors import SchemaNotFoundError
from ferry.opset.schema import (
    UNBOUNDED,
    AttributeSchema,
    FormalParameter,
    OpSchema,
    TypeConstraint,
)
from ferry.opset.table import (
    all_schemas,
    get_schema,
    has_schema,
    known_domains,
    latest_opset,
    onnx_version,
    schema_versions,
)

__all__ = [
    "ONNX_VERSION",
    "UNBOUNDED",
    "AttributeSchema",
    "FormalParameter",
    "OpSchema",
    "SchemaNotFoundError",
    "TypeConstraint",
    "all_schemas",
    "get_schema",
    "has_schema",
    "known_domains",
    "latest_opset",
    "schema_versions",
]

ONNX_VERSION: str  # the onnx version the table was taken from; read lazily from the table


def __getattr__(name: str) -> object:
    if name == "ONNX_VERSION":
        return onnx_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
