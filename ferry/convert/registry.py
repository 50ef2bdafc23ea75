"""The adapter registry: which function rewrites which operator at which version step.

An adapter is keyed by (op_type, boundary, direction): ``boundary`` is the opset where
the operator's new version starts, ``up`` says whether the step enters it (upgrade) or
leaves it (downgrade). It receives the node, the :class:`Converter` and the
:class:`Step`, edits the node (or replaces it) so it means the same at the step's target,
or calls ``converter.block(node, reason)``.
"""

from __future__ import annotations

from collections.abc import Callable

from ferry.convert.context import Converter, Step
from ferry.ir import Node

__all__ = ["Adapter", "adapter", "find_adapter", "register"]

Adapter = Callable[[Node, Converter, Step], None]

_ADAPTERS: dict[tuple[str, int, bool], Adapter] = {}


def register(op_type: str, boundary: int, up: bool, function: Adapter) -> None:
    """Register ``function`` for ``op_type`` at ``boundary`` in one direction."""
    key = (op_type, boundary, up)
    if key in _ADAPTERS:
        raise ValueError(f"two adapters for {op_type} {'up to' if up else 'down from'} {boundary}")
    _ADAPTERS[key] = function


def adapter(op_types: str | tuple[str, ...], boundary: int, *, up: bool) -> Callable[[Adapter], Adapter]:
    """Decorator form of :func:`register` for one or several operators."""
    names = (op_types,) if isinstance(op_types, str) else op_types

    def decorate(function: Adapter) -> Adapter:
        for name in names:
            register(name, boundary, up, function)
        return function

    return decorate


def find_adapter(op_type: str, boundary: int, up: bool) -> Adapter | None:
    return _ADAPTERS.get((op_type, boundary, up))
