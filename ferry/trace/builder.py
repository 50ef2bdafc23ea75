"""GraphBuilder: how symbolic functions add ONNX nodes to the graph being traced."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ferry.ir import ArrayTensor, Attribute, DataType, Graph, Node, TensorType, Value
from ferry.ir.graph import fresh_name

__all__ = ["GraphBuilder"]


class _Names:
    """Unique names across a model and its subgraphs."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def fresh(self, base: str) -> str:
        return fresh_name(base, self.used)


class GraphBuilder:
    """Builds one ferry graph; ``op`` adds a node named after the current module scope.

    ``context`` returns ``(scope, source)``: the module path (``/blocks.0/attn``) and the
    user's source line of the operation being traced, recorded on every node.
    """

    def __init__(
        self,
        opset: int,
        context: Callable[[], tuple[str, str | None]],
        *,
        name: str = "main_graph",
        names: _Names | None = None,
    ) -> None:
        self.opset = opset
        self.graph = Graph(name=name)
        self.context = context
        self.names = names or _Names()
        self.names.used.add(name)

    def subgraph(self, name: str) -> GraphBuilder:
        """A builder for a subgraph (If branch) sharing this builder's naming."""
        return GraphBuilder(self.opset, self.context, name=self.names.fresh(name), names=self.names)

    # -- nodes ---------------------------------------------------------------------------
    def op(
        self,
        op_type: str,
        *inputs: object,
        num_outputs: int = 1,
        domain: str = "",
        **attributes: object,
    ) -> Value | tuple[Value, ...]:
        """Add ``op_type`` reading ``inputs`` (Values, None for omitted, or constants)."""
        scope, source = self.context()
        name = self.names.fresh(f"{scope}/{op_type}")
        values = [self.value_of(v) for v in inputs]
        while values and values[-1] is None:  # omitted trailing optional inputs: leave them out
            values.pop()
        attrs = [_attribute(k, v) for k, v in attributes.items() if v is not None]
        outputs = [Value(self.names.fresh(f"{name}_output_{i}")) for i in range(num_outputs)]
        node = Node(op_type, values, attrs, domain=domain, outputs=outputs, name=name)
        if source:
            node.metadata_props["source"] = source
        if scope:
            node.metadata_props["module"] = scope
        self.graph.append(node)
        return outputs[0] if num_outputs == 1 else tuple(outputs)

    def value_of(self, value: object) -> Value | None:
        if value is None or isinstance(value, Value):
            return value
        var = getattr(value, "var", None)  # SymInt or Var
        if isinstance(var, Value):
            return var
        return self.const(value)

    def const(self, value: object, dtype: np.dtype | type | None = None) -> Value:
        """A Constant node holding ``value`` (Python number, list or array)."""
        array = np.asarray(value, dtype=dtype)
        if array.dtype == np.float64 and dtype is None and not isinstance(value, np.ndarray):
            array = array.astype(np.float32)
        scope, _ = self.context()
        out = self.op("Constant", value=ArrayTensor(array))
        out.type = TensorType(_dtype(array), list(array.shape))
        return out

    def int64(self, values: Sequence[int] | int) -> Value:
        return self.const(np.asarray(values, dtype=np.int64))

    # -- graph boundary ------------------------------------------------------------------
    def add_input(self, name: str, dtype: DataType, shape: Sequence[int | str | None]) -> Value:
        value = Value(self.names.fresh(name), TensorType(dtype, list(shape)))
        self.graph.inputs.append(value)
        return value

    def add_initializer(self, name: str, array: np.ndarray) -> Value:
        value = Value(self.names.fresh(name), const_value=ArrayTensor(array))
        value.const_value.name = value.name
        value.type = TensorType(_dtype(array), list(array.shape))
        self.graph.register_initializer(value)
        return value


def _dtype(array: np.ndarray) -> DataType:
    from ferry.ir import from_numpy_dtype

    return from_numpy_dtype(array.dtype)


def _attribute(name: str, value: object) -> Attribute:
    if isinstance(value, Attribute):
        return value
    if isinstance(value, GraphBuilder):
        value = value.graph
    return Attribute.infer(name, value)
