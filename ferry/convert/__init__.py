"""Opset version conversion: express a model at another ai.onnx opset.

    >>> converted = convert_version(model, 13)   # raises ConversionError if impossible

:func:`convert_version` walks the opset one version at a time (see
:mod:`ferry.convert.ladder`); the adapters for operators whose signature or meaning
changed live in one module per operator family and register themselves on import.
"""

from __future__ import annotations

from ferry.convert import (  # noqa: F401  (importing registers the adapters)
    axes,
    inputs,
    operators,
    reduce_split,
    resize,
    shape_cast,
)
from ferry.convert.ladder import MIN_OPSET, convert_version, ir_version_for
from ferry.errors import ConversionError

__all__ = ["MIN_OPSET", "ConversionError", "convert_version", "ir_version_for"]
