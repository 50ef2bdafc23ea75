"""Session-time fusions: standard-op patterns replaced by ``ferry.internal`` fused steps.

They run on an ``InferenceSession``'s own copy of the model after the standard optimizer
(at ``ORT_ENABLE_EXTENDED`` and above, as onnxruntime's fusions do) and produce ops that exist
only inside the session (:mod:`ferry.runtime.kernels.fused`): ``FusedConv`` (Conv + residual
Add + activation), ``Gelu`` (the erf pattern exporters emit for GELU) and ``FusedMatMul``
(MatMul + bias + activation), ``MaskedSoftmax`` (Add of a mask, Softmax, and the NaN clean-up
exporters add). A pattern is fused only where its intermediate values have a
single reader and are not graph outputs, so nothing observable changes.
"""

from __future__ import annotations

from ferry.ir import Model
from ferry.passes.base import Pass
from ferry.runtime.fusions.conv import FuseConvEpilogue
from ferry.runtime.fusions.gelu import FuseGelu
from ferry.runtime.fusions.matmul import FuseMatMulEpilogue
from ferry.runtime.fusions.softmax import FuseMaskedSoftmax
from ferry.runtime.kernels.fused import INTERNAL_DOMAIN

__all__ = ["INTERNAL_DOMAIN", "fuse", "fusion_passes"]


def fusion_passes() -> list[Pass]:
    """The fusions, in the order they run (GELU first, so MatMul can absorb it)."""
    return [FuseGelu(), FuseConvEpilogue(), FuseMatMulEpilogue(), FuseMaskedSoftmax()]


def fuse(model: Model, stats: dict[str, int] | None = None) -> Model:
    """Apply every fusion to ``model`` in place; returns it. ``stats`` receives counts."""
    total = 0
    for fusion in fusion_passes():
        rewrites = fusion(model).rewrites
        total += rewrites
        if stats is not None:
            stats[fusion.name] = stats.get(fusion.name, 0) + rewrites
    if total and INTERNAL_DOMAIN not in model.opset_imports:
        model.opset_imports[INTERNAL_DOMAIN] = 1
    return model
