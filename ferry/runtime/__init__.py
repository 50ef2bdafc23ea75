"""The inference runtime: an onnxruntime-shaped session over numpy kernels."""

from __future__ import annotations

from ferry.runtime.session import InferenceSession, NodeArg

__all__ = ["InferenceSession", "NodeArg"]
