"""The shape-inference driver: ``infer_shapes`` walks a model's graphs node by node,
calls each operator's rule (:mod:`ferry.shapes.rules`), merges the results with declared
types and writes them on the IR values (so they are saved as ``value_info``).

Subgraphs are inferred when their node's rule asks (``ctx.infer_graph``); calls of
model-local functions are inferred through the function body with the caller's input
types, once per call site.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ferry.checker.diagnostics import Diagnostic, Location, Severity
from ferry.errors import FerryError, ShapeInferenceError
from ferry.ir import DataType, Function, Graph, Model, Node, TensorType, Type, Value
from ferry.ir.attribute import Attribute
from ferry.ir.dtypes import from_numpy_dtype
from ferry.shapes.context import SYMBOLIC_LIMIT, InferenceContext, symbolic_of_value
from ferry.shapes.expr import Expr, from_dim
from ferry.shapes.merge import merge_tensor, tensor_type
from ferry.shapes.registry import lookup_rule

__all__ = ["Fact", "GraphRun", "Inference", "ShapeInference", "infer", "infer_shapes"]

CONSTANT_LIMIT = 1 << 16
"""Initializers with at most this many elements are visible to rules as constant data."""

_MAX_FUNCTION_DEPTH = 32


@dataclass
class Fact:
    """What inference knows of one value."""

    type: Type | None = None
    shape: list[Expr | None] | None = None  # tensor shape as expressions
    value: np.ndarray | None = None  # constant data
    symbolic: list[Expr | None] | None = None  # propagated data of a small int tensor
    producer: Node | None = None


@dataclass
class ShapeInference:
    """The result of :func:`infer`: the inferred copy of the model and the findings."""

    model: Model
    diagnostics: list[Diagnostic]
    inference: Inference

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def infer_shapes(model: Model, *, strict: bool = False, data_propagation: bool = True) -> Model:
    """Infer the element type and shape of every value of ``model``.

    Returns a new model (``model`` is not changed) whose values carry their types, saved
    as ``value_info``. Conflicts are diagnostics (see :func:`infer`); with ``strict=True``
    any error raises :class:`~ferry.errors.ShapeInferenceError` listing them.
    """
    result = infer(model, data_propagation=data_propagation)
    if strict and result.errors:
        raise ShapeInferenceError(_summary(result.errors), result.errors)
    return result.model


def infer(model: Model, *, data_propagation: bool = True, copy: bool = True) -> ShapeInference:
    """Run shape inference and return the inferred model with every diagnostic."""
    if not isinstance(model, Model):
        raise TypeError(f"infer_shapes expects a ferry.ir.Model, not {type(model).__name__}")
    target = _copy(model) if copy else model
    inference = Inference(target, data_propagation=data_propagation)
    inference.run()
    return ShapeInference(target, inference.sorted_diagnostics(), inference)


def _copy(model: Model) -> Model:
    from ferry.format import model_from_bytes, model_to_bytes

    return model_from_bytes(model_to_bytes(model))


def _summary(errors: list[Diagnostic]) -> str:
    count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
    return f"shape inference found {count}:\n" + "\n".join(f"  {d}" for d in errors)


@functools.lru_cache(maxsize=4096)
def _schema_default(domain: str, op_type: str, opset: int, name: str) -> object:
    from ferry.opset import get_schema, has_schema

    if not has_schema(op_type, domain, opset):
        return None
    attribute = get_schema(op_type, domain, opset).attributes.get(name)
    return attribute.default if attribute is not None else None


class Inference:
    """State of one inference run over a model."""

    def __init__(self, model: Model, *, data_propagation: bool = True) -> None:
        self.model = model
        self.data_propagation = data_propagation
        self.diagnostics: list[Diagnostic] = []
        self.unknown_reasons: dict[str, tuple[str | None, str]] = {}
        self.aliases: dict[str, Expr] = {}
        self.facts: dict[Value, Fact] = {}
        self.declared: dict[Value, Type | None] = {}
        self.missing: dict[tuple[str, str], tuple[Location, set[int], str]] = {}
        self.call_site_types: dict[tuple[str, str, str], list[dict[Value, Type | None]]] = {}
        self._used_names = _dim_names(model)
        self._counter = 0
        self.function_depth = 0
        self.muted = 0  # > 0 while a subgraph is re-inferred: its findings were reported

    def run(self) -> None:
        model = self.model
        main = GraphRun(self, model.graph, dict(model.opset_imports),
                        Location(graph=model.graph.name or ""), {}, self.facts, write=True)
        main.infer(None)
        self._write_function_types()
        for (domain, op_type), (where, nodes_seen, why) in self.missing.items():
            count = len(nodes_seen)
            nodes = f"{count} node{'s' if count != 1 else ''}"
            shown = f"{domain}::{op_type}" if domain else op_type
            self.report(where, "info", "no-shape-rule",
                        f"no shape rule for {shown} ({nodes}){why}; their outputs keep "
                        "only the types the model declares")

    # -- names and findings -------------------------------------------------------------------
    def fresh(self, node: Node | None, reason: str) -> Expr:
        while f"unk__{self._counter}" in self._used_names:
            self._counter += 1
        name = f"unk__{self._counter}"
        self._counter += 1
        self.unknown_reasons[name] = (node.describe() if node is not None else None, reason)
        return Expr.sym(name)

    def report(self, where: Location, severity: Severity, rule: str, message: str) -> None:
        if self.muted:
            return
        self.diagnostics.append(Diagnostic(
            rule=rule, message=message, severity=severity, graph=where.graph,
            node_index=where.node_index, node_name=where.node_name, op_type=where.op_type,
            domain=where.domain, function=where.function, parent=where.parent))

    def sorted_diagnostics(self) -> list[Diagnostic]:
        order = {"error": 0, "warning": 1, "info": 2}
        return sorted(self.diagnostics, key=lambda d: order[d.severity])

    def _write_function_types(self) -> None:
        """Write on function bodies the types all call sites agree on."""
        for identifier, sites in self.call_site_types.items():
            function = self.model.functions[identifier]
            boundary = {id(v) for v in function.graph.inputs} | {id(v) for v in function.graph.outputs}
            for value in function.graph.values():
                types = [site.get(value) for site in sites]
                if id(value) in boundary or value.type is not None or not types:
                    continue
                if all(t is not None and t == types[0] for t in types):
                    value.type = types[0]


def _dim_names(model: Model) -> set[str]:
    names: set[str] = set()
    for graph in model.all_graphs():
        for value in graph.values():
            if isinstance(value.type, TensorType) and value.type.shape is not None:
                names.update(d for d in value.type.shape if isinstance(d, str))
    return names


class GraphRun:
    """Inference over one graph (main graph, subgraph, or a function body at a call)."""

    def __init__(
        self,
        inference: Inference,
        graph: Graph,
        opsets: dict[str, int],
        location: Location,
        bindings: dict[str, Attribute],
        facts: dict[Value, Fact],
        *,
        write: bool,
    ) -> None:
        self.inference = inference
        self.graph = graph
        self.opsets = {("" if k == "ai.onnx" else k): v for k, v in opsets.items()}
        self.location = location
        self.bindings = bindings
        self.facts = facts
        self.write = write
        self.data_propagation = inference.data_propagation
        self._positions = {id(node): i for i, node in enumerate(graph)}
        self._outputs = {id(v) for v in graph.outputs}
        self._inferred_subgraphs: set[int] = set()  # by the rule running now

    # -- walking --------------------------------------------------------------------------------
    def infer(self, inputs: Sequence[Fact | None] | None) -> list[Fact]:
        for index, value in enumerate(self.graph.inputs):
            given = inputs[index] if inputs is not None and index < len(inputs) else None
            self._init_input(value, given)
        for node in self.graph:
            self.infer_node(node)
        return [self.fact(value) for value in self.graph.outputs]

    def _init_input(self, value: Value, given: Fact | None) -> None:
        if given is None or given.type is None:
            self.facts.pop(value, None)
            self.fact(value)
            return
        if isinstance(given.type, TensorType):
            merged = merge_tensor(self._declared(value), given.type.dtype, given.shape, boundary=True)
            self._record_merge(None, value, merged, f"graph input {value.name!r}")
            shape = self._complete(merged.shape, None, f"graph input {value.name!r}")
            fact = Fact(tensor_type(merged.dtype, shape), shape, given.value, given.symbolic)
        else:
            fact = Fact(given.type)
        self.facts[value] = fact
        if self.write and (value.type is None or not isinstance(given.type, TensorType)):
            value.type = value.type if value.type is not None else given.type
        elif self.write and isinstance(given.type, TensorType):
            value.type = merge_tensor(self._declared(value), given.type.dtype, fact.shape,
                                      boundary=True).ir_type

    def infer_node(self, node: Node) -> None:
        domain = "" if node.domain == "ai.onnx" else node.domain
        opset = self.opsets.get(domain)
        for value in node.outputs:
            if value is not None:
                self._declared(value)
                self.facts[value] = Fact(producer=node)
        function = self.inference.model.function_for(node)
        rule = lookup_rule(domain, node.op_type, opset) if opset is not None else None
        if function is not None:
            self._call_function(node, function)
        elif rule is not None:
            self._inferred_subgraphs = set()
            try:
                rule(InferenceContext(self, node, opset))
            except FerryError as error:
                self.report(node, "error", f"shape rule failed: {error}")
            except Exception as error:  # a rule bug must not hide the rest of the model
                self.report(node, "error", f"shape rule failed: {type(error).__name__}: {error}",
                            rule="shape-rule-crash")
        else:
            self._note_missing(node, domain, opset)
        for value in node.outputs:
            if value is not None and self.facts[value].type is None:
                self._from_declared(value, node)

    def _note_missing(self, node: Node, domain: str, opset: int | None) -> None:
        from ferry.opset import get_schema, has_schema

        why = ""
        if opset is None:
            why = f" (domain {domain or 'ai.onnx'!r} is not imported)"
        elif has_schema(node.op_type, domain, opset) and get_schema(node.op_type, domain, opset).has_function:
            why = " (a function-defined operator whose body ferry does not ship)"
        key = (domain, node.op_type)
        where, nodes_seen, _ = self.inference.missing.get(key, (self.where(node), set(), why))
        nodes_seen.add(id(node))
        self.inference.missing[key] = (where, nodes_seen, why)
        for index, value in enumerate(node.outputs):
            if value is not None:
                self._from_declared(value, node, f"{node.describe()} has no shape rule "
                                    f"(output {index})")

    # -- facts ------------------------------------------------------------------------------------
    def fact(self, value: Value) -> Fact:
        fact = self.facts.get(value)
        if fact is None:
            fact = self._fact_of_source(value)
            self.facts[value] = fact
        return fact

    def _fact_of_source(self, value: Value) -> Fact:
        tensor = value.const_value
        declared = self._declared(value)
        if tensor is not None and not hasattr(tensor, "to_dense"):
            shape = [Expr.const(d) for d in tensor.shape]
            data = tensor.numpy() if tensor.size <= CONSTANT_LIMIT else None
            if isinstance(declared, TensorType) and declared.shape is not None and value in self.graph.inputs:
                data = None  # an input with a default: callers may override it
            return Fact(tensor_type(tensor.dtype, shape), shape, data)
        if isinstance(declared, TensorType):
            what = f"graph input {value.name!r}" if value.producer() is None else f"value {value.name!r}"
            shape = None
            if declared.shape is not None:
                shape = self._complete([from_dim(d) for d in declared.shape], None, what)
            return Fact(tensor_type(declared.dtype, shape), shape)
        return Fact(declared)

    def _from_declared(self, value: Value, node: Node, reason: str | None = None) -> None:
        declared = self._declared(value)
        fact = self.facts[value]
        if isinstance(declared, TensorType):
            shape = None
            if declared.shape is not None:
                why = reason or f"the shape rule of {node.describe()} could not determine it"
                shape = [from_dim(d) for d in declared.shape]
                shape = [d if d is not None else self.inference.fresh(node, why) for d in shape]
            fact.type, fact.shape = tensor_type(declared.dtype, shape), shape
        else:
            fact.type = declared

    def _declared(self, value: Value) -> Type | None:
        """The type the model declared for ``value`` before inference touched it."""
        if value not in self.inference.declared:
            self.inference.declared[value] = value.type
        return self.inference.declared[value]

    def _complete(self, shape: list[Expr | None] | None, node: Node | None, what: str) -> list[Expr | None] | None:
        """Replace unknown dims by fresh names and apply learnt aliases."""
        if shape is None:
            return None
        aliases = self.inference.aliases
        done: list[Expr | None] = []
        for index, dim in enumerate(shape):
            if dim is None:
                dim = self.inference.fresh(node, f"{what} has no size for dim {index}")
            elif aliases and dim.symbols() & aliases.keys():
                dim = dim.substitute(aliases)
            done.append(dim)
        return done

    # -- outputs (called through InferenceContext) ----------------------------------------------
    def set_tensor(self, node: Node, i: int, dtype: DataType | None, shape: list[Expr | None] | None, *, sparse: bool = False) -> None:
        value = node.outputs[i]
        assert value is not None
        what = f"output {i}"
        if shape is not None and self.inference.aliases:
            shape = [d.substitute(self.inference.aliases) if d is not None else None for d in shape]
        boundary = id(value) in self._outputs
        merged = merge_tensor(self._declared(value), dtype, shape, boundary=boundary, sparse=sparse)
        self._record_merge(node, value, merged, what)
        full = self._complete(merged.shape, node, f"the shape rule of {node.describe()} (output {i})")
        fact = self.facts[value]
        fact.type, fact.shape = tensor_type(merged.dtype, full, sparse=sparse), full
        if self.write:
            if boundary:
                value.type = merge_tensor(self._declared(value), merged.dtype, full, boundary=True, sparse=sparse).ir_type
            else:
                value.type = fact.type
                self._list_value_info(value)

    def _record_merge(self, node: Node | None, value: Value, merged, what: str) -> None:
        self.inference.aliases.update(merged.aliases)
        for conflict in merged.conflicts:
            message = f"{what} ({value.name!r}): {conflict}"
            if node is not None:
                self.report(node, "error", message, rule="shape-conflict")
            else:
                self.inference.report(self.location, "error", "shape-conflict", message)

    def set_other(self, node: Node, i: int, type_: Type | None) -> None:
        value = node.outputs[i]
        assert value is not None
        declared = self._declared(value)
        if declared is not None and type_ is not None and type(declared) is not type(type_):
            self.report(node, "error", f"output {i} ({value.name!r}): the model declares a "
                        f"{declared}, inference gives a {type_}", rule="shape-conflict")
        self.facts[value].type = type_
        if self.write and type_ is not None and (declared is None or id(value) not in self._outputs):
            value.type = type_
            if id(value) not in self._outputs:
                self._list_value_info(value)

    def set_symbolic(self, node: Node, i: int, elements: list[Expr | None]) -> None:
        value = node.outputs[i]
        assert value is not None
        fact = self.facts[value]
        fact.symbolic = elements
        dtype = fact.type.dtype if isinstance(fact.type, TensorType) else None
        if fact.value is None and dtype is not None and all(e is not None and e.is_const for e in elements):
            data = np.array([e.value for e in elements], dtype=dtype.numpy)
            fact.value = data.reshape(()) if fact.shape == [] else data

    def set_value(self, node: Node, i: int, data: np.ndarray) -> None:
        dtype = from_numpy_dtype(data.dtype)
        self.set_tensor(node, i, dtype, [Expr.const(d) for d in data.shape])
        value = node.outputs[i]
        fact = self.facts[value]  # type: ignore[index]
        fact.value = data
        if data.ndim <= 1 and data.size <= SYMBOLIC_LIMIT:
            fact.symbolic = symbolic_of_value(data)

    def _list_value_info(self, value: Value) -> None:
        if value.name and value.name not in self.graph.value_info_order:
            self.graph.value_info_order.append(value.name)

    # -- helpers for the context -----------------------------------------------------------------
    def fresh(self, node: Node, reason: str) -> Expr:
        return self.inference.fresh(node, reason)

    def where(self, node: Node) -> Location:
        index = self._positions.get(id(node))
        return self.location.at_node(index if index is not None else -1, node)

    def report(self, node: Node, severity: Severity, message: str, rule: str = "shape-inference") -> None:
        self.inference.report(self.where(node), severity, rule, message)

    def attribute(self, node: Node, name: str) -> Attribute | None:
        attribute = node.attributes.get(name)
        if attribute is not None and attribute.ref_attr_name is not None:
            return self.bindings.get(attribute.ref_attr_name)
        return attribute

    def schema_default(self, node: Node, name: str, opset: int) -> object:
        domain = "" if node.domain == "ai.onnx" else node.domain
        try:
            return _schema_default(domain, node.op_type, opset, name)
        except FerryError:
            return None

    def infer_subgraph(self, node: Node, graph: Graph, input_types: list[Type | None]) -> list[Type | None]:
        attribute = next((name for name, a in node.attributes.items()
                          if a.value is graph or (isinstance(a.value, list) and any(g is graph for g in a.value))), "?")
        child = GraphRun(self.inference, graph, self.opsets,
                         self.where(node).subgraph(graph.name, attribute),
                         self.bindings, self.facts, write=self.write)
        facts = [_fact_of_type(t) for t in input_types]
        again = id(graph) in self._inferred_subgraphs  # Loop/Scan iterating to a fixed point
        self._inferred_subgraphs.add(id(graph))
        self.inference.muted += again
        try:
            return [fact.type for fact in child.infer(facts)]
        finally:
            self.inference.muted -= again

    # -- model-local functions --------------------------------------------------------------------
    def _call_function(self, node: Node, function: Function) -> None:
        inference = self.inference
        if inference.function_depth >= _MAX_FUNCTION_DEPTH:
            self.report(node, "error", f"function calls nest deeper than {_MAX_FUNCTION_DEPTH}"
                        " levels (recursive function?); outputs left unknown")
            return
        bindings = dict(function.attribute_defaults)
        for name in node.attributes:
            bound = self.attribute(node, name)
            if bound is not None:
                bindings[name] = bound
        opsets = {**inference.model.opset_imports, **function.opset_imports}
        label = f"{function.domain}::{function.name}"
        facts: dict[Value, Fact] = {}
        child = GraphRun(inference, function.graph, opsets, Location(function=label),
                         bindings, facts, write=False)
        inputs = [self.fact(v) if v is not None else None for v in node.inputs]
        inference.function_depth += 1
        try:
            results = child.infer(inputs)
        finally:
            inference.function_depth -= 1
        inference.call_site_types.setdefault(function.identifier, []).append(
            {value: fact.type for value, fact in facts.items()})
        for index, result in enumerate(results):
            if index < len(node.outputs) and node.outputs[index] is not None:
                self._adopt(node, index, result)

    def _adopt(self, node: Node, index: int, result: Fact) -> None:
        if isinstance(result.type, TensorType):
            self.set_tensor(node, index, result.type.dtype, result.shape)
            fact = self.facts[node.outputs[index]]  # type: ignore[index]
            fact.value, fact.symbolic = result.value, result.symbolic
        elif result.type is not None:
            self.set_other(node, index, result.type)


def _fact_of_type(type_: Type | None) -> Fact | None:
    if type_ is None:
        return None
    if isinstance(type_, TensorType):
        shape = None if type_.shape is None else [from_dim(d) for d in type_.shape]
        return Fact(type_, shape)
    return Fact(type_)
