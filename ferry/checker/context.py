"""State shared while walking one model: the opsets in force, the function being
checked (if any), and notes gathered across nodes (custom domains, missing imports)
that are reported once at the end rather than once per node.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

from ferry.checker.diagnostics import Location, Reporter
from ferry.ir import Function, Model
from ferry.opset import known_domains, latest_opset

__all__ = [
    "MAX_IR_VERSION",
    "STRICT_DOMAINS",
    "Context",
    "canonical_domain",
    "function_label",
    "is_known_domain",
    "latest",
    "show_domain",
]

MAX_IR_VERSION = 14
"""The newest IR version ferry knows (onnx 1.23's IR_VERSION)."""

STRICT_DOMAINS = frozenset({"", "ai.onnx.ml"})
"""Domains whose every operator must have a schema. The preview domains ferry knows
are checked against their schemas when one exists, but an operator they lack is only
a warning (ONNX's checker treats them like custom domains)."""


def canonical_domain(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


def show_domain(domain: str) -> str:
    return domain or "ai.onnx"


def is_known_domain(domain: str) -> bool:
    return canonical_domain(domain) in known_domains()


def latest(domain: str) -> int:
    return latest_opset(canonical_domain(domain))


@dataclass
class _Tally:
    """Nodes sharing one note: where the first is, and how many of each op type."""

    first: Location
    ops: Counter = field(default_factory=Counter)


@dataclass
class Context:
    """What the walk of a graph needs besides the graph itself."""

    model: Model
    report: Reporter
    ir_version: int
    model_opsets: dict[str, int]
    opsets: dict[str, int]
    function: Function | None = None
    custom: dict[str, _Tally] = field(default_factory=dict)
    unimported: dict[tuple[str | None, str], _Tally] = field(default_factory=dict)

    def for_function(self, function: Function, opsets: dict[str, int]) -> Context:
        return dataclasses.replace(self, opsets=opsets, function=function)

    @property
    def importer(self) -> str:
        """Who imports the opsets in force, for messages."""
        if self.function is None:
            return "the model"
        return f"function {function_label(self.function)!r}"

    def note_custom(self, domain: str, op_type: str, where: Location) -> None:
        self.custom.setdefault(domain, _Tally(where)).ops[op_type] += 1

    def note_unimported(self, domain: str, op_type: str, where: Location) -> None:
        key = (where.function, domain)
        self.unimported.setdefault(key, _Tally(where)).ops[op_type] += 1

    def flush(self) -> None:
        """Report the notes gathered over all nodes, one diagnostic per domain."""
        for (function, domain), tally in self.unimported.items():
            who = "the model" if function is None else f"function {function!r}"
            self.report.error(
                "opset-import",
                f"{_count(tally)} of domain {show_domain(domain)!r} ({_ops(tally)}), but "
                f"{who} does not import that domain; expected an opset_import entry for it",
                tally.first,
            )
        for domain, tally in self.custom.items():
            self.report.info(
                "custom-domain",
                f"{_count(tally)} of custom domain {domain!r} ({_ops(tally)}); ferry has no "
                "schemas for it, so their inputs, outputs and attributes are not checked",
                tally.first,
            )


def function_label(function: Function) -> str:
    overload = f":{function.overload}" if function.overload else ""
    return f"{function.domain}::{function.name}{overload}"


def _count(tally: _Tally) -> str:
    total = sum(tally.ops.values())
    return f"{total} node{'s use' if total != 1 else ' uses'} operators"


def _ops(tally: _Tally) -> str:
    shown = [f"{op} x{n}" if n > 1 else op for op, n in tally.ops.most_common(8)]
    more = len(tally.ops) - len(shown)
    return ", ".join(shown) + (f", and {more} more" if more > 0 else "")
