"""What a shape rule receives: :class:`InferenceContext`, one node's view of the inference.

Rules read input types, shapes (lists of :class:`~ferry.shapes.expr.Expr`, ``None`` for
an unknown dim), constant values and propagated symbolic data, and write output types.
Everything else (merging with declared types, fresh unknown dims, diagnostics) is the
driver's job (:mod:`ferry.shapes.infer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ferry.ir import DataType, Graph, Node, TensorType, Type
from ferry.ir.attribute import AttributeType
from ferry.ir.tensor import Tensor
from ferry.shapes.expr import Expr, from_dim
from ferry.shapes.expr import max as dim_max

if TYPE_CHECKING:
    from ferry.shapes.infer import Fact, GraphRun

__all__ = ["InferenceContext", "SYMBOLIC_LIMIT", "broadcast_dims"]

SYMBOLIC_LIMIT = 64
"""The most elements a tensor may have for its data to be propagated symbolically."""

_MISSING = object()


class InferenceContext:
    """One node's inputs and outputs during shape inference (see the package docs)."""

    def __init__(self, run: GraphRun, node: Node, opset: int) -> None:
        self._run = run
        self.node = node
        self.opset = opset

    # -- inputs ---------------------------------------------------------------------------
    def num_inputs(self) -> int:
        return len(self.node.inputs)

    def num_outputs(self) -> int:
        return len(self.node.outputs)

    def has_input(self, i: int) -> bool:
        inputs = self.node.inputs
        return i < len(inputs) and inputs[i] is not None and inputs[i].name != ""

    def has_output(self, i: int) -> bool:
        outputs = self.node.outputs
        return i < len(outputs) and outputs[i] is not None and outputs[i].name != ""

    def _fact(self, i: int) -> Fact | None:
        if not self.has_input(i):
            return None
        return self._run.fact(self.node.inputs[i])

    def input_type(self, i: int) -> Type | None:
        fact = self._fact(i)
        return fact.type if fact is not None else None

    def input_dtype(self, i: int) -> DataType | None:
        type_ = self.input_type(i)
        return type_.dtype if isinstance(type_, TensorType) else None

    def input_shape(self, i: int) -> list[Expr | None] | None:
        fact = self._fact(i)
        if fact is None or fact.shape is None:
            return None
        return list(fact.shape)

    def input_rank(self, i: int) -> int | None:
        shape = self.input_shape(i)
        return len(shape) if shape is not None else None

    def input_value(self, i: int) -> np.ndarray | None:
        fact = self._fact(i)
        return fact.value if fact is not None else None

    def input_symbolic(self, i: int) -> list[Expr | None] | None:
        """The elements of a small 0-d/1-d integer input as expressions, when known."""
        fact = self._fact(i)
        if fact is None:
            return None
        if fact.symbolic is not None:
            return list(fact.symbolic)
        return symbolic_of_value(fact.value)

    # -- attributes -------------------------------------------------------------------------
    def attr(self, name: str, default: object = None) -> object:
        """The attribute as a Python value (TENSOR: numpy array, lists: lists); the schema
        default when absent and the schema has one, else ``default``."""
        attribute = self._run.attribute(self.node, name)
        if attribute is not None:
            return _python_value(attribute.type, attribute.value)
        schema_default = self._run.schema_default(self.node, name, self.opset)
        if schema_default is not None:
            return list(schema_default) if isinstance(schema_default, tuple) else schema_default
        return default

    def has_attr(self, name: str) -> bool:
        return self._run.attribute(self.node, name) is not None

    # -- outputs ----------------------------------------------------------------------------
    def set_output(
        self, i: int, dtype: DataType | None, shape: Sequence[int | Expr | None] | None
    ) -> None:
        """Set output ``i`` to a tensor of ``dtype`` and ``shape`` (None: rank unknown)."""
        if not self.has_output(i):
            return
        exprs = None if shape is None else [_as_expr(d) for d in shape]
        self._run.set_tensor(self.node, i, DataType(dtype) if dtype is not None else None, exprs)

    def set_output_type(self, i: int, type_: Type | None) -> None:
        """Set output ``i`` to any type (sequences, optionals, maps; tensors too)."""
        if not self.has_output(i):
            return
        if isinstance(type_, TensorType):
            shape = None if type_.shape is None else [from_dim(d) for d in type_.shape]
            self._run.set_tensor(self.node, i, type_.dtype, shape, sparse=type(type_) is not TensorType)
        else:
            self._run.set_other(self.node, i, type_)

    def set_output_symbolic(self, i: int, elements: Sequence[int | Expr | None]) -> None:
        """Record the data of output ``i`` (a small integer tensor) as expressions."""
        if self.has_output(i) and self._run.data_propagation:
            self._run.set_symbolic(self.node, i, [_as_expr(e) for e in elements])

    def set_output_value(self, i: int, value: np.ndarray) -> None:
        """Record the constant data of output ``i`` (its type and shape follow from it)."""
        if self.has_output(i):
            self._run.set_value(self.node, i, np.asarray(value))

    # -- helpers ----------------------------------------------------------------------------
    def fresh(self, reason: str | None = None) -> Expr:
        """A new unknown dim ``unk__N``; ``reason`` says why it is unknown (for explain)."""
        return self._run.fresh(self.node, reason or "its size depends on input data")

    def error(self, message: str) -> None:
        """Record an error naming this node; the rule then usually returns."""
        self._run.report(self.node, "error", message)

    def warning(self, message: str) -> None:
        self._run.report(self.node, "warning", message)

    def infer_graph(self, graph: Graph, input_types: Sequence[Type | None]) -> list[Type | None]:
        """Infer a subgraph with the given formal-input types; returns its output types."""
        return self._run.infer_subgraph(self.node, graph, list(input_types))

    def graph_output_symbolic(self, graph: Graph, index: int) -> list[Expr | None] | None:
        """The shape data (see :meth:`input_symbolic`) of output ``index`` of ``graph`` as
        the latest :meth:`infer_graph` of that graph left it."""
        value = graph.outputs[index] if index < len(graph.outputs) else None
        fact = self._run.facts.get(value) if value is not None else None
        if fact is None:
            return None
        if fact.symbolic is not None:
            return list(fact.symbolic)
        return symbolic_of_value(fact.value)

    def broadcast(self, *shapes: Sequence[Expr | None] | None) -> list[Expr | None] | None:
        """Multidirectional (numpy) broadcast; None if a rank is unknown; on a conflict,
        records an error and returns None."""
        if any(shape is None for shape in shapes):
            return None
        try:
            return broadcast_dims(*shapes)  # type: ignore[arg-type]
        except ValueError as error:
            shown = ", ".join(_shape_text(s) for s in shapes)
            self.error(f"inputs do not broadcast: {error} (shapes {shown})")
            return None


def _as_expr(dim: int | Expr | None) -> Expr | None:
    if dim is None or isinstance(dim, Expr):
        return dim
    if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool):
        return Expr.const(int(dim))
    if isinstance(dim, str):
        return from_dim(dim)
    raise TypeError(f"a dim must be an int, an Expr or None, not {dim!r}")


def _shape_text(shape: Sequence[Expr | None] | None) -> str:
    if shape is None:
        return "?"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def is_unknown(dim: Expr | None) -> bool:
    """True for None and for a fresh unknown name (``unk__N``)."""
    return dim is None or (dim.is_symbol and str(dim).startswith("unk__"))


def _broadcast_pair(a: Expr | None, b: Expr | None) -> Expr | None:
    if a is None or b is None:
        known = a if b is None else b
        return None if known is None or known == 1 else known
    if a == b or b == 1:
        return a
    if a == 1:
        return b
    if a.is_const and b.is_const:
        raise ValueError(f"dims {a} and {b} differ and neither is 1")
    if b.is_const or (is_unknown(a) and not is_unknown(b)):
        return b  # a symbolic dim broadcast against a size > 1 must be 1 or equal to it
    if a.is_const or is_unknown(b):
        return a
    return dim_max(a, b)


def broadcast_dims(*shapes: Sequence[Expr | None]) -> list[Expr | None]:
    """numpy broadcasting of known-rank shapes; ValueError on two different sizes > 1."""
    rank = max((len(s) for s in shapes), default=0)
    result: list[Expr | None] = [Expr.const(1)] * rank
    for shape in shapes:
        padded = [Expr.const(1)] * (rank - len(shape)) + list(shape)
        result = [_broadcast_pair(x, y) for x, y in zip(result, padded)]
    return result


def symbolic_of_value(value: np.ndarray | None) -> list[Expr | None] | None:
    """A small 0-d/1-d integer constant as a list of constant expressions."""
    if value is None or value.ndim > 1 or value.size > SYMBOLIC_LIMIT:
        return None
    if value.dtype.kind not in "iub":
        return None
    return [Expr.const(int(v)) for v in value.reshape(-1)]


def _python_value(kind: AttributeType, value: object) -> object:
    if kind == AttributeType.TENSOR and isinstance(value, Tensor):
        return value.numpy()
    if kind == AttributeType.TENSORS:
        return [t.numpy() if isinstance(t, Tensor) else t for t in value]  # type: ignore[union-attr]
    if kind.is_list:
        return list(value)  # type: ignore[call-overload]
    return value
