"""``optimize``: the standard passes, run in order until none changes the model."""

from __future__ import annotations

from collections.abc import Sequence

from ferry.errors import InvalidArgument
from ferry.ir import Model
from ferry.passes.base import Pass
from ferry.passes.batchnorm import FuseBatchNorm
from ferry.passes.constant_folding import ConstantFolding
from ferry.passes.cse import CommonSubexpressionElimination
from ferry.passes.dead_code import DeadCodeElimination
from ferry.passes.gemm import FuseMatMulAdd
from ferry.passes.identity import IdentityElimination
from ferry.passes.reshape import FuseReshapes
from ferry.passes.squeeze import CancelSqueezeUnsqueeze
from ferry.passes.transpose import FuseTransposes

__all__ = ["MAX_ITERATIONS", "optimize", "standard_passes"]

MAX_ITERATIONS = 10
"""How many rounds of the whole pass list ``optimize`` runs at most."""


def standard_passes() -> list[Pass]:
    """The passes of level 1, in the order ``optimize`` runs them (fresh instances)."""
    return [
        IdentityElimination(),
        ConstantFolding(),
        FuseTransposes(),
        FuseReshapes(),
        CancelSqueezeUnsqueeze(),
        FuseMatMulAdd(),
        FuseBatchNorm(),
        CommonSubexpressionElimination(),
        DeadCodeElimination(),
    ]


def optimize(
    model: Model,
    level: int = 1,
    *,
    passes: Sequence[Pass] | None = None,
    max_iterations: int = MAX_ITERATIONS,
    stats: dict[str, int] | None = None,
) -> Model:
    """Optimize ``model`` in place and return it.

    Level 0 changes nothing; level 1 runs :func:`standard_passes` (or ``passes``) in
    order, round after round, until a round changes nothing or ``max_iterations`` rounds
    have run. ``stats``, when given, receives each pass's rewrite count (added to what
    it already holds).

    A model using ``ai.onnx.preview.training`` operators is left as it is: ``Gradient``
    names the values it differentiates in attributes, which the passes cannot see as uses.
    """
    if level not in (0, 1):
        raise InvalidArgument(f"optimization level must be 0 or 1, got {level!r}")
    if level == 0 or _names_values_in_attributes(model):
        return model
    passes = list(passes) if passes is not None else standard_passes()
    for _ in range(max_iterations):
        changed = False
        for pass_ in passes:
            result = pass_(model)
            changed |= result.modified
            if stats is not None:
                stats[pass_.name] = stats.get(pass_.name, 0) + result.rewrites
        if not changed:
            break
    return model


def _names_values_in_attributes(model: Model) -> bool:
    return any(
        node.domain == "ai.onnx.preview.training"
        for graph in model.all_graphs()
        for node in graph
    )
