"""Models and model-local functions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from ferry.ir.attribute import Attribute
from ferry.ir.graph import Graph, Node

__all__ = ["Function", "Model"]


class Function:
    """A model-local function (ONNX ``FunctionProto``): a named, reusable graph.

    ``graph`` holds the body (its inputs and outputs are the function's formal
    parameters, it has no initializers); ``attributes`` lists the attribute parameters
    nodes may refer to with ``ref_attr_name``, each with its default when it has one.
    """

    def __init__(
        self,
        domain: str,
        name: str,
        graph: Graph,
        *,
        attributes: Iterable[Attribute | str] = (),
        opset_imports: dict[str, int] | None = None,
        overload: str | None = None,
        doc_string: str | None = None,
        metadata_props: dict[str, str] | None = None,
    ) -> None:
        self.domain = domain
        self.name = name
        self.overload = overload
        self.graph = graph
        self.attribute_names: list[str] = []
        self.attribute_defaults: dict[str, Attribute] = {}
        for attribute in attributes:
            if isinstance(attribute, Attribute):
                self.attribute_defaults[attribute.name] = attribute
            else:
                self.attribute_names.append(attribute)
        self.opset_imports = dict(opset_imports or {})
        self.doc_string = doc_string
        self.metadata_props = dict(metadata_props or {})
        self._proto_extras = b""
        self._wire_defaults: tuple[str, ...] = ()

    @property
    def identifier(self) -> tuple[str, str, str]:
        """(domain, name, overload): how nodes refer to this function."""
        return (self.domain, self.name, self.overload or "")

    def __repr__(self) -> str:
        return f"<Function {self.domain}::{self.name} with {len(self.graph)} nodes>"


class Model:
    """A graph with the opsets it imports, its functions and its metadata."""

    def __init__(
        self,
        graph: Graph,
        *,
        ir_version: int = 10,
        opset_imports: dict[str, int] | None = None,
        producer_name: str | None = None,
        producer_version: str | None = None,
        domain: str | None = None,
        model_version: int | None = None,
        doc_string: str | None = None,
        functions: Sequence[Function] = (),
        metadata_props: dict[str, str] | None = None,
    ) -> None:
        self.graph = graph
        self.ir_version = ir_version
        self.opset_imports = dict(opset_imports if opset_imports is not None else {"": 21})
        self.producer_name = producer_name
        self.producer_version = producer_version
        self.domain = domain
        self.model_version = model_version
        self.doc_string = doc_string
        self.functions: dict[tuple[str, str, str], Function] = {f.identifier: f for f in functions}
        self.metadata_props = dict(metadata_props or {})
        self._proto_extras = b""
        self._wire_defaults: tuple[str, ...] = ()

    @property
    def opset(self) -> int:
        """The imported version of the default (ai.onnx) domain."""
        return self.opset_imports.get("", self.opset_imports.get("ai.onnx", 0))

    def function_for(self, node: Node) -> Function | None:
        """The model-local function that ``node`` calls, if any."""
        return self.functions.get((node.domain, node.op_type, node.overload or ""))

    def all_graphs(self) -> Iterator[Graph]:
        """The main graph, function bodies and every subgraph within them."""
        roots = [self.graph, *(f.graph for f in self.functions.values())]
        for root in roots:
            yield root
            for node in root.all_nodes():
                yield from node.subgraphs()

    def __str__(self) -> str:
        from ferry.ir.printer import to_text

        return to_text(self)

    def __repr__(self) -> str:
        opsets = ", ".join(f"{d or 'ai.onnx'}:{v}" for d, v in self.opset_imports.items())
        return f"<Model ir_version={self.ir_version} opsets=[{opsets}] graph={self.graph.name!r}>"
