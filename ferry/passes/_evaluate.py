"""Evaluate one node with ferry's own kernels, bound exactly as the runtime binds them.

The runtime's plan compiler resolves a node to the kernel in force at the model's opset
and completes its attributes with the schema's defaults; this module reuses that step
for a single node, so a folded constant is what the session would have computed.
"""

from __future__ import annotations

import numpy as np

from ferry.errors import FerryError
from ferry.ir import Model, Node
from ferry.runtime.plan import compile_node

__all__ = ["run_node"]


def run_node(model: Model, node: Node, args: list) -> list | None:
    """The node's outputs (an array, or None for an omitted output) computed from
    ``args``, or None when the node cannot be evaluated here: no kernel, a subgraph,
    a model-local function, a failing kernel, or a result that is not a tensor."""
    if model.function_for(node) is not None or any(True for _ in node.subgraphs()):
        return None
    try:
        step = compile_node(model, node)
    except FerryError:
        return None
    if step.subgraph_kwargs:
        return None
    try:
        with np.errstate(all="ignore"):
            results = step.call(*args, **step.attributes)
    except Exception:  # the runtime will report it when the model runs
        return None
    if not isinstance(results, tuple):
        results = (results,)
    outputs: list = []
    for value, result in zip(node.outputs, results):
        if value is None:
            outputs.append(None)
            continue
        if isinstance(result, np.generic):
            result = np.asarray(result)
        if not isinstance(result, np.ndarray):
            return None
        outputs.append(result)
    if len(outputs) < len(node.outputs):
        return None
    return outputs
