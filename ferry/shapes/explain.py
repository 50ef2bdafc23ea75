"""``explain_shape``: why each dim of a value is what it is.

The explanation names the node that produced the value and its inputs, then for each
dim: the input dim or shape-data element it was taken from, following the chain back
to the graph input that declares it; the symbols an expression is built from; or, for
an unknown dim (``unk__N``), which node introduced it and why.
"""

from __future__ import annotations

from ferry.errors import FerryError
from ferry.ir import Model, Node, TensorType, Value
from ferry.shapes.expr import Expr

__all__ = ["explain_shape"]


def explain_shape(model: Model, value_name: str) -> str:
    """Explain the inferred type of the value named ``value_name`` in ``model``."""
    from ferry.shapes.infer import infer

    result = infer(model)
    value = _find(result.model, value_name)
    if value is None:
        raise FerryError(f"explain_shape: the model has no value named {value_name!r}")
    explainer = _Explainer(result)
    return "\n".join(explainer.explain(value))


def _find(model: Model, name: str) -> Value | None:
    for graph in model.all_graphs():
        for value in graph.values():
            if value.name == name:
                return value
    return None


class _Explainer:
    def __init__(self, result) -> None:
        self.inference = result.inference
        self.facts = result.inference.facts
        self.diagnostics = result.diagnostics

    def fact_shape(self, value: Value | None) -> list[Expr | None] | None:
        fact = self.facts.get(value) if value is not None else None
        return fact.shape if fact is not None else None

    def explain(self, value: Value) -> list[str]:
        fact = self.facts.get(value)
        type_ = fact.type if fact is not None else value.type
        lines = [f"value {value.name!r}: {type_ if type_ is not None else 'unknown type'}"]
        producer = value.producer()
        if producer is None:
            kind = "an initializer" if value.const_value is not None else "a graph input"
            lines.append(f"  {kind}: its type is as the model declares it")
        else:
            inputs = ", ".join(f"{v.name!r} {self._type_text(v)}" for v in producer.inputs if v is not None)
            lines.append(f"  made by {producer.describe()} from {inputs or 'no inputs'}")
        if fact is None or fact.shape is None:
            lines.append(f"  the rank is unknown: {self._why_unknown(producer)}")
            return lines
        for index, dim in enumerate(fact.shape):
            lines.append(f"  dim {index} = {dim}: {self._dim(value, dim)}")
        if fact.symbolic is not None:
            shown = ", ".join("?" if e is None else str(e) for e in fact.symbolic)
            lines.append(f"  data (propagated shape elements): [{shown}]")
        return lines

    def _type_text(self, value: Value) -> str:
        fact = self.facts.get(value)
        type_ = fact.type if fact is not None else value.type
        return str(type_) if type_ is not None else "(unknown type)"

    def _why_unknown(self, node: Node | None) -> str:
        if node is None:
            return "the model does not declare it"
        notes = [d.message for d in self.diagnostics
                 if d.op_type == node.op_type and d.node_name == (node.name or None)]
        return "; ".join(notes) or f"the shape rule of {node.describe()} could not determine it"

    def _dim(self, value: Value, dim: Expr | None) -> str:
        if dim is None:
            return "unknown"
        if dim.is_symbol and str(dim) in self.inference.unknown_reasons:
            where, reason = self.inference.unknown_reasons[str(dim)]
            return f"unknown, introduced by {where or 'the driver'} because {reason}"
        source = self._source(value, dim)
        if source:
            return source
        if value.producer() is None:
            return "as the model declares it"
        return self._computed(value.producer(), dim)

    def _source(self, value: Value, dim: Expr) -> str:
        """Follow the dim back through producers that copied it from an input dim."""
        chain: list[str] = []
        current = value
        for _ in range(1000):
            node = current.producer()
            if node is None:
                break
            found = self._input_holding(node, dim)
            if found is None:
                break
            current, label = found
            chain.append(f"{label} of {node.describe()}")
        if not chain:
            return ""
        if current.producer() is None:
            kind = "the initializer" if current.const_value is not None else "graph input"
            return f"from {chain[0]}; declared by {kind} {current.name!r}"
        return f"from {chain[0]}; {self._computed(current.producer(), dim)}"

    def _computed(self, node: Node, dim: Expr) -> str:
        if dim.is_const:
            return f"computed by {node.describe()}"
        symbols = ", ".join(f"{s} ({self._symbol_origin(s)})" for s in sorted(dim.symbols()))
        return f"computed by {node.describe()} from {symbols}"

    def _input_holding(self, node: Node, dim: Expr) -> tuple[Value, str] | None:
        for value in node.inputs:
            if value is None:
                continue
            shape = self.fact_shape(value)
            if shape is not None and dim in shape:
                return value, f"input {value.name!r} dim {shape.index(dim)}"
            fact = self.facts.get(value)
            if fact is not None and fact.symbolic is not None and dim in fact.symbolic:
                return value, f"element {fact.symbolic.index(dim)} of the shape data {value.name!r}"
        return None

    def _symbol_origin(self, symbol: str) -> str:
        if symbol in self.inference.unknown_reasons:
            where, reason = self.inference.unknown_reasons[symbol]
            return f"unknown, from {where or 'the driver'}: {reason}"
        for value in self.inference.model.graph.inputs:
            if isinstance(value.type, TensorType) and value.type.shape is not None:
                for index, declared in enumerate(value.type.shape):
                    if declared == symbol:
                        return f"graph input {value.name!r} dim {index}"
        return "a name the model declares"
