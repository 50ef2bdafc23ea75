"""The graph optimizer: passes that rewrite a model in place, keeping what it computes.

    >>> from ferry.passes import optimize
    >>> model = optimize(ferry.load("model.onnx"))       # level 1: every standard pass

Each pass is a :class:`Pass` (``pass_(model) -> PassResult(model, modified)``);
:func:`optimize` runs the standard ones to a fixed point. Rewritten models hold only
standard ONNX operators and keep their graph inputs and output names.
"""

from __future__ import annotations

from ferry.passes.base import Pass, PassResult
from ferry.passes.batchnorm import FuseBatchNorm
from ferry.passes.constant_folding import ConstantFolding
from ferry.passes.cse import CommonSubexpressionElimination
from ferry.passes.dead_code import DeadCodeElimination
from ferry.passes.gemm import FuseMatMulAdd
from ferry.passes.identity import IdentityElimination
from ferry.passes.pipeline import optimize, standard_passes
from ferry.passes.reshape import FuseReshapes
from ferry.passes.squeeze import CancelSqueezeUnsqueeze
from ferry.passes.transpose import FuseTransposes

__all__ = [
    "CancelSqueezeUnsqueeze",
    "CommonSubexpressionElimination",
    "ConstantFolding",
    "DeadCodeElimination",
    "FuseBatchNorm",
    "FuseMatMulAdd",
    "FuseReshapes",
    "FuseTransposes",
    "IdentityElimination",
    "Pass",
    "PassResult",
    "optimize",
    "standard_passes",
]
