"""ferry: move neural networks between frameworks through the ONNX format.

The public API, shaped after the ecosystem: ``ferry.load`` / ``ferry.save`` read and
write ``.onnx`` files into ferry's IR (:mod:`ferry.ir`), ``ferry.check_model``
validates a model, ``ferry.printer.to_text`` (or ``str(model)``) renders it.
"""

from __future__ import annotations

from ferry import ir, printer
from ferry.errors import (
    CheckError,
    ExecutionError,
    FerryError,
    FormatError,
    InvalidArgument,
    KernelNotFoundError,
    SchemaNotFoundError,
)
from ferry.format import (
    load,
    load_map,
    load_optional,
    load_sequence,
    load_tensor,
    model_from_bytes,
    model_to_bytes,
    save,
    save_map,
    save_optional,
    save_sequence,
    save_tensor,
)
from ferry.ir import Model

__version__ = "0.1.0"

__all__ = [
    "CheckError",
    "ExecutionError",
    "FerryError",
    "FormatError",
    "InferenceSession",
    "InvalidArgument",
    "KernelNotFoundError",
    "Model",
    "SchemaNotFoundError",
    "__version__",
    "check_model",
    "ir",
    "load",
    "load_map",
    "load_optional",
    "load_sequence",
    "load_tensor",
    "model_from_bytes",
    "model_to_bytes",
    "printer",
    "save",
    "save_map",
    "save_optional",
    "save_sequence",
    "save_tensor",
]


def __getattr__(name: str) -> object:
    # The checker imports the schema table; load it on first use only.
    if name == "InferenceSession":
        from ferry.runtime import InferenceSession

        return InferenceSession
    if name == "check_model":
        from ferry.checker import check_model

        return check_model
    raise AttributeError(f"module 'ferry' has no attribute {name!r}")
