"""``torch.cond`` exported as ONNX ``If``: both branches traced as subgraphs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch.utils import _pytree as pytree

from ferry.errors import ExportError
from ferry.ir import Shape, TensorType, Value
from ferry.trace.dtypes import to_data_type
from ferry.trace.tracer import Tracer

__all__ = ["patched_cond"]


@contextlib.contextmanager
def patched_cond(tracer: Tracer) -> Iterator[None]:
    """Route ``torch.cond`` calls made during the trace to :func:`_traced_cond`."""
    original = torch.cond

    def cond(pred, true_fn: Callable, false_fn: Callable, operands=(), *args, **kwargs):
        return _traced_cond(tracer, pred, true_fn, false_fn, tuple(operands))

    torch.cond = cond
    try:
        yield
    finally:
        torch.cond = original


def _branch(tracer: Tracer, name: str, fn: Callable, operands: tuple):
    """Trace ``fn(*operands)`` into a fresh subgraph; returns (graph builder, outputs)."""
    outer = tracer.builder
    sub = outer.subgraph(name)
    tracer.builder = sub
    try:
        outputs = fn(*operands)
        leaves = pytree.tree_leaves(outputs)
        for leaf in leaves:
            if not isinstance(leaf, torch.Tensor):
                raise ExportError(
                    f"torch.cond branch {fn.__name__} returned a {type(leaf).__name__}"
                )
            value = tracer.value_of_tensor(leaf)
            if value.producer() is None or value.producer().graph is not sub.graph:
                value = sub.op("Identity", value)
            sub.graph.outputs.append(value)
    finally:
        tracer.builder = outer
    return sub, outputs, leaves


def _traced_cond(tracer: Tracer, pred, true_fn, false_fn, operands):
    if not isinstance(pred, torch.Tensor) or not tracer.is_traced(pred):
        return (true_fn if bool(pred) else false_fn)(*operands)
    then_graph, then_out, then_leaves = _branch(tracer, "then_branch", true_fn, operands)
    else_graph, else_out, else_leaves = _branch(tracer, "else_branch", false_fn, operands)
    if len(then_leaves) != len(else_leaves):
        raise ExportError(
            f"torch.cond branches return {len(then_leaves)} and {len(else_leaves)} tensors; "
            "they must match"
        )
    condition = tracer.value_of_tensor(pred)
    if pred.dtype != torch.bool:
        condition = tracer.builder.op("Cast", condition, to=9)
    with tracer.paused():
        needs_reshape = pred.numel() == 1 and pred.dim() != 0
    if needs_reshape:
        condition = tracer.builder.op("Reshape", condition, tracer.builder.int64([]))
    results = tracer.builder.op(
        "If",
        condition,
        num_outputs=len(then_leaves),
        then_branch=then_graph.graph,
        else_branch=else_graph.graph,
    )
    results = (results,) if isinstance(results, Value) else results
    with tracer.paused():
        taken = bool(pred)
        chosen, other = (then_leaves, else_leaves) if taken else (else_leaves, then_leaves)
        record = tracer.records[id(pred)]
        probe_taken = bool(record.probe) if record.probe is not None else taken
        probe_side = then_leaves if probe_taken else else_leaves
        copies = {}
        for tensor, value, alternative, probe_tensor in zip(chosen, results, other, probe_side):
            probe_record = tracer.records.get(id(probe_tensor))
            copy = tensor.clone()  # the If output: a tensor of its own, bound to the If's value
            tracer.bind(copy, value, probe_record.probe if probe_record else None)
            if tuple(alternative.shape) != tuple(tensor.shape):  # branches disagree on a size
                same_rank = alternative.dim() == tensor.dim()
                dims = (
                    [
                        a if same_rank and a == b else None
                        for a, b in zip(tensor.shape, alternative.shape)
                    ]
                    if same_rank
                    else [None] * tensor.dim()
                )
                value.type = TensorType(to_data_type(tensor.dtype), Shape(dims))
            copies[id(tensor)] = copy
    out = then_out if taken else else_out
    return pytree.tree_map(
        lambda x: copies.get(id(x), x) if isinstance(x, torch.Tensor) else x, out
    )
