"""The ``.onnx`` wire format: decoding protobuf into ferry's IR and encoding it back."""

from __future__ import annotations

from ferry.format.external import ExternalTensor
from ferry.format.io import (
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

__all__ = [
    "ExternalTensor",
    "load",
    "load_map",
    "load_optional",
    "load_sequence",
    "load_tensor",
    "model_from_bytes",
    "model_to_bytes",
    "save",
    "save_map",
    "save_optional",
    "save_sequence",
    "save_tensor",
]
