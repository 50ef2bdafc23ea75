"""ferry: move neural networks between frameworks through the ONNX format.

The public API, shaped after the ecosystem: ``ferry.load`` / ``ferry.save`` read and
write ``.onnx`` files into ferry's IR (:mod:`ferry.ir`), ``ferry.check_model``
validates a model, ``ferry.printer.to_text`` (or ``str(model)``) renders it.
"""

from __future__ import annotations

from ferry import ir, printer
from ferry.errors import (
    CheckError,
    ConversionError,
    ExecutionError,
    ExportError,
    FerryError,
    FormatError,
    InvalidArgument,
    KernelNotFoundError,
    SchemaNotFoundError,
    ShapeInferenceError,
    TracerWarning,
    UnsupportedOperatorError,
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
    "ConversionError",
    "ExecutionError",
    "ExportError",
    "FerryError",
    "FormatError",
    "InferenceSession",
    "InvalidArgument",
    "KernelNotFoundError",
    "Model",
    "SchemaNotFoundError",
    "ShapeInferenceError",
    "TracerWarning",
    "UnsupportedOperatorError",
    "__version__",
    "check_model",
    "convert_version",
    "explain_shape",
    "export",
    "infer_shapes",
    "ir",
    "load",
    "load_map",
    "load_optional",
    "load_sequence",
    "load_tensor",
    "model_from_bytes",
    "model_to_bytes",
    "optimize",
    "printer",
    "register_symbolic",
    "save",
    "save_map",
    "save_optional",
    "save_sequence",
    "save_tensor",
    "verify",
]

# Needing torch, the tracer loads on first use: ferry works without it.
_TRACER_NAMES = ("export", "register_symbolic", "verify")


def __getattr__(name: str) -> object:
    # The checker imports the schema table; load it on first use only.
    if name == "optimize":
        from ferry.passes import optimize

        return optimize
    if name == "InferenceSession":
        from ferry.runtime import InferenceSession

        return InferenceSession
    if name in _TRACER_NAMES:
        import ferry.trace

        return getattr(ferry.trace, name)
    if name == "convert_version":
        from ferry.convert import convert_version

        return convert_version
    if name in ("infer_shapes", "explain_shape"):
        import ferry.shapes

        return getattr(ferry.shapes, name)
    if name == "check_model":
        from ferry.checker import check_model

        return check_model
    raise AttributeError(f"module 'ferry' has no attribute {name!r}")
