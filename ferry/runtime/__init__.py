"""The inference runtime: an onnxruntime-shaped session over numpy kernels."""

from __future__ import annotations

from ferry.runtime.options import GraphOptimizationLevel, SessionOptions
from ferry.runtime.session import InferenceSession, NodeArg

__all__ = ["GraphOptimizationLevel", "InferenceSession", "NodeArg", "SessionOptions"]
