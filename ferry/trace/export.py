"""``ferry.export``: trace a PyTorch program into an ONNX model (torch.onnx.export's signature)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils import _pytree as pytree

from ferry.errors import ExportError
from ferry.ir import Model, Shape, TensorType, Value
from ferry.opset import latest_opset
from ferry.trace.builder import GraphBuilder
from ferry.trace.dtypes import to_data_type
from ferry.trace.tracer import Specialization, Tracer

__all__ = ["ExportedModel", "export"]

# the IR version each opset first shipped with (the standard's release table)
_IR_FOR_OPSET = [(28, 14), (25, 13), (24, 12), (23, 11), (21, 10), (19, 9), (15, 8)]

# A dynamic axis of size n is probed at n + 8k for the k-th axis name: a multiple of 8 keeps
# the divisibility sizes often need (pixel_unshuffle, heads, windows), and distinct steps keep
# the (traced, probe) size pairs of different axis names apart.
PROBE_STEP = 8


class ExportedModel(Model):
    """A :class:`ferry.Model` from the tracer, with what the export found out."""

    specializations: list[Specialization]
    max_difference: float | None
    checked_sizes: list[dict[str, int]]


@dataclasses.dataclass
class _Input:
    name: str
    tensor: torch.Tensor
    axes: dict[int, str]


def export(
    model: torch.nn.Module | Any,
    args: Any,
    f: str | os.PathLike | None = None,
    *,
    kwargs: Mapping[str, Any] | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_axes: Mapping[str, Mapping[int, str] | Sequence[int]] | None = None,
    opset_version: int | None = None,
    check: bool = True,
    strict: bool = False,
) -> ExportedModel:
    """Run ``model(*args, **kwargs)`` once, recording every tensor operation as ONNX.

    ``dynamic_axes`` follows torch.onnx: ``{"x": {0: "batch"}}`` or ``{"x": [0]}``. With
    ``check``, the result is checked, run in ferry's runtime against the program, and
    (with dynamic axes) run again at other sizes of those axes. ``strict`` turns every
    specialization (a Python decision on a tensor's value or a dynamic size) into an error.
    """
    return trace_program(
        model,
        args,
        f,
        kwargs=kwargs,
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic_axes,
        opset_version=opset_version,
        check=check,
        strict=strict,
    )


def trace_program(
    model,
    args,
    f=None,
    *,
    kwargs=None,
    input_names=None,
    output_names=None,
    dynamic_axes=None,
    opset_version=None,
    check=True,
    strict=False,
    capture: dict | None = None,
) -> ExportedModel:
    """:func:`export`, plus ``capture``: a dict that receives the real data of every traced
    value (keyed by ``id(value)``), for :func:`ferry.verify`."""
    opset = opset_version or latest_opset("")
    args = args if isinstance(args, tuple) else (args,)
    kwargs = dict(kwargs or {})
    leaves, spec = pytree.tree_flatten((args, kwargs))
    inputs = _inputs(leaves, input_names, dynamic_axes or {})
    probe_leaves = _probe_leaves(leaves, inputs)
    tracer, outputs = _trace(model, leaves, spec, inputs, probe_leaves, opset, strict, capture)
    result = _model(tracer, outputs, output_names, dynamic_axes or {}, opset)
    result.specializations = tracer.specializations
    result.max_difference = None
    result.checked_sizes = []
    if check:
        from ferry.trace.check import check_export

        check_export(result, model, args, kwargs, leaves, spec, inputs, probe_leaves)
    if f is not None:
        from ferry.format import save

        save(result, f)
    return result


def _inputs(leaves, names, dynamic_axes) -> list[_Input]:
    tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
    names = list(names or [])
    if len(names) > len(tensors):
        raise ExportError(f"input_names has {len(names)} names for {len(tensors)} tensor inputs")
    names += [f"input_{i}" for i in range(len(names), len(tensors))]
    inputs = [_Input(name, tensor, {}) for name, tensor in zip(names, tensors)]
    by_name = {i.name: i for i in inputs}
    for name, axes in dynamic_axes.items():
        if name in by_name:
            target = by_name[name]
            if isinstance(axes, Mapping):
                target.axes = {
                    int(a) % max(target.tensor.dim(), 1): str(n) for a, n in axes.items()
                }
            else:
                target.axes = {
                    int(a) % max(target.tensor.dim(), 1): f"{name}_dim_{int(a)}" for a in axes
                }
    return inputs


def _probe_leaves(leaves, inputs: list[_Input]) -> list:
    """The inputs at other sizes of their dynamic axes: each axis grown by repeating data,
    so indices and masks stay valid."""
    names = sorted({n for i in inputs for n in i.axes.values()})
    extra = {name: PROBE_STEP * (k + 1) for k, name in enumerate(names)}
    by_tensor = {id(i.tensor): i for i in inputs}
    probes = []
    for leaf in leaves:
        info = by_tensor.get(id(leaf)) if isinstance(leaf, torch.Tensor) else None
        if info is None or not info.axes:
            probes.append(leaf)
            continue
        grown = leaf
        for axis, name in info.axes.items():
            grown = _grow(grown, axis, grown.shape[axis] + extra[name])
        probes.append(grown)
    return probes


def _grow(tensor: torch.Tensor, axis: int, size: int) -> torch.Tensor:
    if tensor.shape[axis] == 0:
        raise ExportError("a dynamic axis of size 0 in the example inputs cannot be probed")
    repeats = -(-size // tensor.shape[axis])
    return torch.cat([tensor] * repeats, dim=axis).narrow(axis, 0, size).contiguous()


@contextlib.contextmanager
def _module_scopes(model: Any, tracer: Tracer) -> Iterator[None]:
    if not isinstance(model, torch.nn.Module):
        yield
        return
    names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}

    def push(module, _inputs):
        name = names.get(id(module))
        if name:
            tracer.scopes.append(name)

    def pop(module, _inputs, _output):
        if names.get(id(module)):
            tracer.scopes.pop()

    hooks = [
        torch.nn.modules.module.register_module_forward_pre_hook(push),
        torch.nn.modules.module.register_module_forward_hook(pop, always_call=True),
    ]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def _parameter_names(model: Any) -> dict[int, str]:
    if not isinstance(model, torch.nn.Module):
        return {}
    names: dict[int, str] = {}
    for name, tensor in [*model.named_parameters(remove_duplicate=False), *model.named_buffers()]:
        names.setdefault(id(tensor), name)
    return names


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    modes = []
    if isinstance(model, torch.nn.Module):
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.train(training)


def _trace(model, leaves, spec, inputs, probe_leaves, opset, strict, capture):
    builder = GraphBuilder(opset, lambda: tracer.node_context())
    tracer = Tracer(builder, params=_parameter_names(model), strict=strict)
    tracer.capture = capture
    for info, probe in zip(
        inputs, [p for p, leaf in zip(probe_leaves, leaves) if isinstance(leaf, torch.Tensor)]
    ):
        dims = [info.axes.get(axis, size) for axis, size in enumerate(info.tensor.shape)]
        value = tracer.builder.add_input(info.name, to_data_type(info.tensor.dtype), dims)
        for axis, name in info.axes.items():
            tracer.axis_names[(int(info.tensor.shape[axis]), int(probe.shape[axis]))] = name
        tracer.bind(info.tensor, value, probe)
        value.type = TensorType(to_data_type(info.tensor.dtype), Shape(dims))
    call_args, call_kwargs = pytree.tree_unflatten(leaves, spec)
    from ferry.trace.control_flow import patched_cond

    with (
        torch.no_grad(),
        _eval_mode(model),
        _module_scopes(model, tracer),
        patched_cond(tracer),
        tracer,
    ):
        outputs = model(*call_args, **call_kwargs)
    tracer.active = False
    return tracer, outputs


def _model(tracer: Tracer, outputs, output_names, dynamic_axes, opset) -> ExportedModel:
    builder = tracer.builder
    graph = builder.graph
    tensors = [leaf for leaf in pytree.tree_leaves(outputs)]
    for leaf in tensors:
        if not isinstance(leaf, torch.Tensor):
            raise ExportError(
                f"the program returned a {type(leaf).__name__}; only tensors can be model outputs"
            )
    names = list(output_names or [])
    names += [f"output_{i}" for i in range(len(names), len(tensors))]
    boundary = {id(v) for v in graph.inputs} | {id(v) for v in graph.initializers.values()}
    seen: set[int] = set()
    for name, tensor in zip(names, tensors):
        value = tracer.value_of_tensor(tensor)
        if id(value) in boundary or id(value) in seen or value.producer() is None:
            value = builder.op("Identity", value)
            tracer.bind(
                tensor,
                value,
                tracer.records.get(id(tensor)).probe if id(tensor) in tracer.records else None,
            )
        seen.add(id(value))
        builder.names.used.discard(value.name)
        value.name = builder.names.fresh(name)
        _name_output_axes(value, dynamic_axes.get(name))
        graph.outputs.append(value)
    model = ExportedModel(
        graph,
        ir_version=_ir_version(opset),
        opset_imports={"": opset},
        producer_name="ferry",
        producer_version=_version(),
    )
    _drop_dead_nodes(graph)
    return model


def _name_output_axes(value: Value, axes) -> None:
    if not axes or not isinstance(value.type, TensorType) or value.type.shape is None:
        return
    dims = list(value.type.shape)
    items = (
        axes.items() if isinstance(axes, Mapping) else [(a, f"{value.name}_dim_{a}") for a in axes]
    )
    for axis, name in items:
        dims[int(axis)] = str(name)
    value.type.shape = Shape(dims)


def _drop_dead_nodes(graph) -> None:
    live = {id(v) for v in graph.outputs}
    for node in reversed(graph.nodes):
        if any(v is not None and id(v) in live for v in node.outputs):
            for value in node.inputs:
                if value is not None:
                    live.add(id(value))
            for sub in node.subgraphs():
                for inner in sub.all_nodes():
                    live.update(id(v) for v in inner.inputs if v is not None)
                live.update(id(v) for v in sub.outputs)
        else:
            graph.remove(node, safe=False)
    used = set(live)
    for name in [n for n, v in graph.initializers.items() if id(v) not in used]:
        del graph.initializers[name]


def _ir_version(opset: int) -> int:
    for first_opset, ir_version in _IR_FOR_OPSET:
        if opset >= first_opset:
            return ir_version
    return 7


def _version() -> str:
    from ferry import __version__

    return __version__
