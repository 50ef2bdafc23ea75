"""``ferry.verify``: find the first node of an exported model that disagrees with the program.

The program is traced again, keeping the real value of every recorded tensor; the model
then runs step by step in ferry's runtime, and each node's outputs are compared with the
program's values for the node of the same name. The first mismatch is reported with the
node, its operator and the user's source line it came from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.utils import _pytree as pytree

from ferry.errors import ExportError
from ferry.ir import Model

__all__ = ["Divergence", "verify"]


@dataclasses.dataclass(frozen=True)
class Divergence:
    """Where the model first departs from the program (``node`` None: nowhere)."""

    node: str | None
    op_type: str | None
    source: str | None
    max_difference: float
    compared: int

    @property
    def ok(self) -> bool:
        return self.node is None

    def __str__(self) -> str:
        if self.ok:
            return f"all {self.compared} compared node outputs match the program"
        return (
            f"node {self.node!r} ({self.op_type}) from {self.source or 'unknown source'} "
            f"differs from the program by up to {self.max_difference:.3g}"
        )


def _program_values(model: Model, program, args, kwargs) -> dict[tuple[str, int], np.ndarray]:
    """Trace ``program`` again, keeping every recorded tensor's data by (node name, output)."""
    from ferry.trace.export import trace_program

    captured: dict[int, torch.Tensor] = {}
    input_names = [v.name for v in model.graph.inputs if v.name not in model.graph.initializers]
    retraced = trace_program(
        program, args, kwargs=kwargs, input_names=input_names, check=False, capture=captured
    )
    values = {}
    for node in retraced.graph:
        for index, value in enumerate(node.outputs):
            if value is not None and id(value) in captured:
                values[(node.name, index)] = captured[id(value)].cpu().numpy()
    return values


def verify(
    model: Model,
    program: Any,
    args: Any,
    *,
    kwargs: Mapping[str, Any] | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-5,
) -> Divergence:
    """Run ``model`` node by node against ``program(*args)``; report the first divergence."""
    from ferry.runtime.plan import compile_graph

    args = args if isinstance(args, tuple) else (args,)
    expected = _program_values(model, program, args, dict(kwargs or {}))
    plan = compile_graph(model)
    tensors = [
        t for t in pytree.tree_leaves((args, dict(kwargs or {}))) if isinstance(t, torch.Tensor)
    ]
    inputs = [v.name for v in model.graph.inputs if v.name not in model.graph.initializers]
    if len(tensors) != len(inputs):
        raise ExportError(
            f"the model takes {len(inputs)} inputs, the arguments hold {len(tensors)} tensors"
        )
    env = dict(plan.constants)
    env.update({name: t.detach().cpu().numpy() for name, t in zip(inputs, tensors)})
    compared = 0
    for step in plan.steps:
        args_ = [env[name] if name is not None else None for name in step.inputs]
        results = step.call(*args_, **step.attributes)
        results = results if isinstance(results, tuple) else (results,)
        for index, (name, result) in enumerate(zip(step.outputs, results)):
            if name is None:
                continue
            env[name] = np.asarray(result) if isinstance(result, np.generic) else result
            want = expected.get((step.node.name, index))
            if want is None or not isinstance(result, np.ndarray):
                continue
            compared += 1
            difference = _difference(want, result)
            if difference is not None and not _close(want, result, rtol, atol):
                return Divergence(
                    step.node.name,
                    step.node.op_type,
                    step.node.metadata_props.get("source"),
                    difference,
                    compared,
                )
    return Divergence(None, None, None, 0.0, compared)


def _difference(want: np.ndarray, got: np.ndarray) -> float | None:
    if want.shape != got.shape:
        return float("inf")
    if want.size == 0:
        return None
    if want.dtype.kind in "fc" or got.dtype.kind in "fc":
        return float(np.max(np.abs(want.astype(np.float64) - got.astype(np.float64))))
    return 0.0 if np.array_equal(want, got) else float("inf")


def _close(want: np.ndarray, got: np.ndarray, rtol: float, atol: float) -> bool:
    if want.shape != got.shape:
        return False
    if want.dtype.kind in "fc" or got.dtype.kind in "fc":
        return bool(
            np.allclose(
                got.astype(np.float64),
                want.astype(np.float64),
                rtol=rtol,
                atol=atol,
                equal_nan=True,
            )
        )
    return bool(np.array_equal(want, got))
