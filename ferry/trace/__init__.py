"""The PyTorch tracer: ``ferry.export`` records a program's tensor operations as ONNX.

Needs the optional ``torch`` dependency (``pip install ferry-onnx[torch]``).
"""

from __future__ import annotations

from ferry.errors import TracerWarning, UnsupportedOperatorError
from ferry.trace.export import ExportedModel, export
from ferry.trace.registry import register_symbolic, unregister_symbolic
from ferry.trace.tracer import Specialization, Var
from ferry.trace.verify import Divergence, verify

__all__ = [
    "Divergence",
    "ExportedModel",
    "Specialization",
    "TracerWarning",
    "UnsupportedOperatorError",
    "Var",
    "export",
    "register_symbolic",
    "unregister_symbolic",
    "verify",
]
