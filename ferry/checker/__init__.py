"""The model checker: does a model follow the ONNX rules?

    >>> from ferry.checker import check_model
    >>> notes = check_model("model.onnx")  # raises CheckError listing every error

It checks the IR version and opset imports; that every operator exists at the
imported opset (or is a model-local function) and is not deprecated; input and output
counts; attribute names, types and required attributes; that every value is defined
once and before it is read, in graphs, subgraphs (with their enclosing scopes) and
function bodies; graph inputs, outputs and initializers (data size against shape and
type). See :func:`check_model` and :class:`Diagnostic`.
"""

from __future__ import annotations

from ferry.checker.diagnostics import Diagnostic, Location, Severity
from ferry.checker.model import check_model

__all__ = ["Diagnostic", "Location", "Severity", "check_model"]
