"""Execution plans: a graph compiled once into steps that ``run`` only executes.

Compiling resolves each node to a kernel (or a model-local function), binds its
attributes with the schema's defaults, compiles subgraphs, and records for every step
the values whose last reader it is, so the run can free them early.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ferry import opset as schemas
from ferry.errors import ExecutionError, FerryError, KernelNotFoundError
from ferry.ir import Attribute, AttributeType, Function, Graph, Model, Node, SparseTensor, Tensor
from ferry.runtime.inplace import assign_in_place
from ferry.runtime.profiling import Profiler
from ferry.runtime.registry import RUN_TIME, Kernel, lookup, lookup_preparer

__all__ = ["GraphPlan", "Step", "compile_graph", "compile_node"]


@dataclass
class Step:
    """One node, ready to run: kernel, argument names, bound attributes, values to free."""

    node: Node
    call: Callable
    inputs: tuple[str | None, ...]
    outputs: tuple[str | None, ...]
    attributes: dict[str, object]
    subgraph_kwargs: tuple[str, ...] = ()
    frees: tuple[str, ...] = ()
    label: str = ""  # how profiles name the step: the node's name, else op type and position
    kernel: Kernel | None = None  # None for model-local functions and Gradient


@dataclass
class GraphPlan:
    """A compiled graph: constants, steps, and the outer-scope names its nodes read."""

    graph: Graph
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    constants: dict[str, object]
    steps: list[Step]
    free_names: frozenset[str] = field(default_factory=frozenset)

    def run(self, env: dict[str, object], profiler: Profiler | None = None, run_index: int = 0) -> list[object]:
        """Execute with ``env`` holding the inputs (and outer values); returns the outputs.
        With a ``profiler``, every step's wall time is recorded."""
        clock = time.perf_counter if profiler is not None else None
        for step in self.steps:
            started = clock() if clock else 0.0
            args = [env[name] if name is not None else None for name in step.inputs]
            kwargs = step.attributes
            if step.subgraph_kwargs:
                kwargs = dict(kwargs, _run_graph=_subgraph_runner(env))
            try:
                results = step.call(*args, **kwargs)
            except FerryError:
                raise
            except Exception as error:
                raise ExecutionError(
                    f"{step.node.describe()} failed: {type(error).__name__}: {error}"
                ) from error
            if clock:
                profiler.record(step.label, step.node.op_type, started, clock(), run_index)
            if type(results) is np.ndarray and len(step.outputs) == 1 and step.outputs[0] is not None:
                env[step.outputs[0]] = results  # the common case, without _store's checks
            else:
                _store(env, step, results)
            for name in step.frees:
                env.pop(name, None)
        return [env[name] for name in self.outputs]


def _subgraph_runner(env: Mapping[str, object]) -> Callable:
    def run_graph(plan: GraphPlan, *inputs: object) -> list[object]:
        local = {name: env[name] for name in plan.free_names if name in env}
        local.update(plan.constants)
        if len(inputs) > len(plan.inputs):
            raise ValueError(f"subgraph {plan.graph.name!r} takes {len(plan.inputs)} inputs, got {len(inputs)}")
        local.update(zip(plan.inputs, inputs))
        return plan.run(local)

    return run_graph


def _store(env: dict[str, object], step: Step, results: object) -> None:
    outputs = step.outputs
    if not isinstance(results, tuple):
        results = (results,)
    if len(results) < sum(1 for name in outputs if name is not None) and len(results) < len(outputs):
        raise ExecutionError(
            f"{step.node.describe()}: kernel returned {len(results)} outputs, node declares {len(outputs)}"
        )
    for name, value in zip(outputs, results):
        if name is not None:
            # numpy reductions and casts of 0-d arrays return numpy scalars: keep arrays
            env[name] = np.asarray(value) if isinstance(value, np.generic) else value


# -- compilation ---------------------------------------------------------------------------
class _Compiler:
    def __init__(self, model: Model) -> None:
        self.model = model

    def graph(self, graph: Graph, opsets: Mapping[str, int], bindings: Mapping[str, Attribute] | None = None) -> GraphPlan:
        constants = {name: _tensor_value(v.const_value) for name, v in graph.initializers.items()}
        constants.update({s.name: s.to_dense() for s in graph.sparse_initializers if s.name})
        steps = [self.step(node, opsets, bindings) for node in graph]
        fed = {v.name for v in graph.inputs}  # initializers that are also inputs can be fed
        fixed = {name: value for name, value in constants.items() if name not in fed}
        for position, step in enumerate(steps):
            step.label = step.node.name or f"{step.node.op_type}_{position}"
            _prepare(step, fixed)
        defined = {v.name for v in graph.inputs} | set(constants)
        defined |= {v.name for n in graph for v in n.outputs if v is not None}
        read = _names_read(graph)
        plan = GraphPlan(
            graph,
            tuple(v.name for v in graph.inputs),
            tuple(v.name for v in graph.outputs),
            constants,
            steps,
            frozenset(read - defined),
        )
        _assign_frees(plan, keep=set(plan.outputs) | set(constants))
        assign_in_place(plan)
        return plan

    def step(self, node: Node, opsets: Mapping[str, int], bindings) -> Step:
        if (node.domain, node.op_type) == ("ai.onnx.preview.training", "Gradient"):
            from ferry.runtime.gradient import gradient_step  # imports this module

            return gradient_step(self, node, opsets, bindings)
        attributes = {name: _bind(attr, bindings) for name, attr in node.attributes.items()}
        attributes = {k: v for k, v in attributes.items() if v is not None}
        function = self.model.function_for(node)
        if function is not None:
            call = self.function_call(function, attributes)
            bound: dict[str, object] = {}
        else:
            domain = node.domain if node.domain != "ai.onnx" else ""
            version = opsets.get(domain)
            if version is None:
                raise KernelNotFoundError(f"{node.describe()}: domain {domain or 'ai.onnx'!r} is not imported by the model")
            kernel = lookup(domain, node.op_type, version)
            bound = self.arguments(node, kernel, attributes, opsets, version)
            call = kernel.function
        return Step(
            node,
            call,
            tuple(v.name if v is not None else None for v in node.inputs),
            tuple(v.name if v is not None else None for v in node.outputs),
            bound,
            ("_run_graph",) if "_run_graph" in bound else (),
            kernel=kernel if function is None else None,
        )

    def arguments(self, node: Node, kernel: Kernel, attributes: dict[str, Attribute], opsets, version: int) -> dict[str, object]:
        kwargs: dict[str, object] = {}
        try:
            schema = schemas.get_schema(node.op_type, kernel.domain, version)
            declared = schema.attributes
        except FerryError:
            declared = {}
        for name, spec in declared.items():
            if name in attributes:
                kwargs[name] = self.value(attributes[name], opsets)
            elif spec.default is not None:
                kwargs[name] = _default(spec.default)
            else:
                kwargs[name] = None
        for name, attribute in attributes.items():
            if name not in declared:
                kwargs[name] = self.value(attribute, opsets)
        context = {"_num_outputs": len(node.outputs), "_opset": version, "_run_graph": None}
        kwargs.update({name: context[name] for name in kernel.context})
        return kwargs

    def value(self, attribute: Attribute, opsets) -> object:
        value = attribute.value
        kind = attribute.type
        if kind == AttributeType.TENSOR:
            return _tensor_value(value)
        if kind == AttributeType.TENSORS:
            return [_tensor_value(t) for t in value]
        if kind == AttributeType.GRAPH:
            return self.graph(value, opsets)
        if kind == AttributeType.GRAPHS:
            return [self.graph(g, opsets) for g in value]
        if kind in (AttributeType.INTS, AttributeType.FLOATS, AttributeType.STRINGS):
            return list(value)
        return value

    def function_call(self, function: Function, attributes: dict[str, Attribute]) -> Callable:
        bindings = dict(function.attribute_defaults)
        bindings.update(attributes)
        opsets = {**self.model.opset_imports, **function.opset_imports}
        plan = self.graph(function.graph, opsets, bindings)

        def call(*inputs: object) -> tuple:
            env = dict(plan.constants)
            env.update(zip(plan.inputs, inputs))
            return tuple(plan.run(env))

        return call


def _prepare(step: Step, constants: Mapping[str, object]) -> None:
    """Let the kernel's preparer (if any) specialise the step for its constant inputs."""
    prepare = lookup_preparer(step.kernel) if step.kernel is not None else None
    if prepare is None:
        return
    values = tuple(None if name is None else constants.get(name, RUN_TIME) for name in step.inputs)
    if all(value is None or value is RUN_TIME for value in values):
        return
    shapes = tuple(_static_dims(value) for value in step.node.inputs)
    try:
        call = prepare(values, _input_shapes=shapes, **step.attributes)
    except FerryError:
        raise
    except Exception as error:
        raise ExecutionError(f"{step.node.describe()}: preparing its constant inputs failed: "
                             f"{type(error).__name__}: {error}") from error
    if call is not None:
        step.call = call


def _static_dims(value) -> tuple[int | None, ...] | None:
    """A node input's declared dims (None for unknown or symbolic ones), or None."""
    shape = getattr(getattr(value, "type", None), "shape", None)
    if shape is None:
        return None
    return tuple(d if isinstance(d, int) else None for d in shape.dims)


def _bind(attribute: Attribute, bindings: Mapping[str, Attribute] | None) -> Attribute | None:
    """Resolve ``ref_attr_name`` against the calling node's attributes (None: not given)."""
    if attribute.ref_attr_name is None:
        return attribute
    if bindings is None or attribute.ref_attr_name not in bindings:
        return None
    target = bindings[attribute.ref_attr_name]
    return Attribute(attribute.name, target.type, target.value)


def _tensor_value(tensor: Tensor | SparseTensor) -> object:
    if isinstance(tensor, SparseTensor):
        return tensor
    return tensor.numpy()


def _default(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _names_read(graph: Graph) -> set[str]:
    names = set()
    for node in graph.all_nodes():
        names.update(v.name for v in node.inputs if v is not None)
    for inner in (g for node in graph.all_nodes() for g in node.subgraphs()):
        names.update(v.name for v in inner.outputs)
    names.update(v.name for v in graph.outputs)
    return names


def _assign_frees(plan: GraphPlan, keep: set[str]) -> None:
    last_reader: dict[str, int] = {}
    for index, step in enumerate(plan.steps):
        for name in step.inputs:
            if name is not None:
                last_reader[name] = index
        for inner in step.node.subgraphs():
            for name in _names_read(inner):
                last_reader[name] = index
    frees: dict[int, list[str]] = {}
    for name, index in last_reader.items():
        if name not in keep:
            frees.setdefault(index, []).append(name)
    for index, step in enumerate(plan.steps):
        step.frees = tuple(frees.get(index, ()))


def compile_graph(model: Model) -> GraphPlan:
    """Compile ``model``'s main graph."""
    return _Compiler(model).graph(model.graph, model.opset_imports)


def compile_node(model: Model, node: Node) -> Step:
    """One node of ``model``'s main graph bound to its kernel, as the session would run it."""
    return _Compiler(model).step(node, model.opset_imports, None)
