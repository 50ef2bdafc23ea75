"""What the checker reports: :class:`Diagnostic` (one finding, with its location) and the
:class:`Reporter` that collects them while the model is walked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ferry.ir import Node

__all__ = ["Diagnostic", "Location", "Reporter", "Severity"]

Severity = Literal["error", "warning", "info"]

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Location:
    """Where in the model a finding is: a graph (or function body), maybe one node.

    ``parent`` says how a subgraph hangs from its enclosing graph, e.g.
    ``attribute 'then_branch' of graph 'main', node 2 'if0' (If)``.
    """

    graph: str | None = None
    function: str | None = None
    parent: str | None = None
    node_index: int | None = None
    node_name: str | None = None
    op_type: str | None = None
    domain: str | None = None

    def at_node(self, index: int, node: Node) -> Location:
        # the constructor directly: dataclasses.replace costs more than the whole node check
        return Location(
            self.graph,
            self.function,
            self.parent,
            index,
            node.name or None,
            node.op_type,
            node.domain or None,
        )

    def subgraph(self, graph_name: str | None, attribute: str) -> Location:
        """The location of a graph held by attribute ``attribute`` of the node here."""
        owner = self.describe(with_function=False)
        return Location(
            graph=graph_name,
            function=self.function,
            parent=f"attribute {attribute!r} of {owner}",
        )

    def describe(self, *, with_function: bool = True) -> str:
        parts = []
        if self.function is not None and with_function:
            parts.append(f"function {self.function!r}")
        if self.graph is not None:  # "" is an unnamed graph; None: no graph (model, function)
            label = f"graph {self.graph!r}" if self.graph else "graph <unnamed>"
            parts.append(f"{label} ({self.parent})" if self.parent else label)
        if self.node_index is not None:
            parts.append(self.node_label())
        return ", ".join(parts) or "model"

    def node_label(self) -> str:
        op = self.op_type or "<no op_type>"
        if self.domain not in (None, "", "ai.onnx"):
            op = f"{self.domain}::{op}"
        name = f" {self.node_name!r}" if self.node_name else ""
        return f"node {self.node_index}{name} ({op})"


MODEL = Location()


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the checker.

    ``rule`` is a short stable identifier (``unknown-op``, ``attribute-type``, ...),
    ``message`` says what was expected and what was found; the other fields locate it.
    ``function`` is ``domain::name`` inside a model-local function body and ``parent``
    says which node attribute holds a subgraph. Fields that do not apply are None.
    """

    rule: str
    message: str
    severity: Severity = "error"
    graph: str | None = None
    node_index: int | None = None
    node_name: str | None = None
    op_type: str | None = None
    domain: str | None = None
    function: str | None = None
    parent: str | None = None

    @property
    def location(self) -> Location:
        return Location(
            graph=self.graph,
            function=self.function,
            parent=self.parent,
            node_index=self.node_index,
            node_name=self.node_name,
            op_type=self.op_type,
            domain=self.domain,
        )

    def __str__(self) -> str:
        where = self.location.describe()
        prefix = "" if self.severity == "error" else f"{self.severity}: "
        return f"{prefix}{where}: {self.message} [{self.rule}]"


class Reporter:
    """Collects diagnostics in the order they are found."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def add(self, rule: str, message: str, where: Location, severity: Severity = "error") -> None:
        self.diagnostics.append(
            Diagnostic(
                rule=rule,
                message=message,
                severity=severity,
                graph=where.graph,
                node_index=where.node_index,
                node_name=where.node_name,
                op_type=where.op_type,
                domain=where.domain,
                function=where.function,
                parent=where.parent,
            )
        )

    def error(self, rule: str, message: str, where: Location) -> None:
        self.add(rule, message, where, "error")

    def warning(self, rule: str, message: str, where: Location) -> None:
        self.add(rule, message, where, "warning")

    def info(self, rule: str, message: str, where: Location) -> None:
        self.add(rule, message, where, "info")

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def sorted(self) -> list[Diagnostic]:
        """Errors first, then warnings, then notes; discovery order within each."""
        return sorted(self.diagnostics, key=lambda d: _SEVERITY_ORDER[d.severity])
