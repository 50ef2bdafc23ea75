"""The exceptions ferry raises. Every one derives from :class:`FerryError`.

Each message names the model element at fault (file, graph, node, op type, input)
and says what was expected and what was found.
"""

from __future__ import annotations

__all__ = [
    "CheckError",
    "ConversionError",
    "ExecutionError",
    "ExportError",
    "FerryError",
    "FormatError",
    "InvalidArgument",
    "KernelNotFoundError",
    "SchemaNotFoundError",
    "ShapeInferenceError",
    "TracerWarning",
    "UnsupportedOperatorError",
]


class FerryError(Exception):
    """Base class of every error ferry raises on purpose."""


class FormatError(FerryError):
    """A file or byte string is not a valid ONNX protobuf, or its external data is unsafe."""


class SchemaNotFoundError(FerryError, KeyError):
    """No schema for an operator at the requested domain and opset version."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckError(FerryError):
    """The checker found one or more problems; ``diagnostics`` lists each of them."""

    def __init__(self, message: str, diagnostics: list | None = None) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics or [])


class ConversionError(FerryError):
    """A model cannot be expressed at the requested opset; nothing was converted.

    ``blocking`` lists every (node description, reason) pair that stands in the way.
    """

    def __init__(self, message: str, blocking: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.blocking = list(blocking or [])


class ShapeInferenceError(FerryError):
    """Strict shape inference found conflicts; ``diagnostics`` lists each of them."""

    def __init__(self, message: str, diagnostics: list | None = None) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics or [])


class KernelNotFoundError(FerryError):
    """No kernel implements an operator at the model's opset version."""


class InvalidArgument(FerryError, ValueError):
    """A caller passed inputs that do not match what the model declares."""


class ExecutionError(FerryError):
    """A kernel failed while running a node."""


class UnsupportedOperatorError(FerryError):
    """The tracer met a torch operation it has no symbolic function for."""


class ExportError(FerryError):
    """An export failed: tracing, strict mode, or the exported model's check."""


class TracerWarning(UserWarning):
    """A trace specialized on a value: a tensor's data or a dynamic size became a Python
    constant, so the exported graph holds only the path taken."""
