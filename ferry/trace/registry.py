"""The table of symbolic functions: torch callables -> ONNX nodes, per opset.

A symbolic function takes the graph context ``g`` and the torch call's arguments, with
each traced tensor replaced by a :class:`~ferry.trace.tracer.Var` (its graph value,
dtype and shape). It returns the graph value(s) matching the torch result's structure.
Built-in symbolics live in :mod:`ferry.trace.symbolics`; users add or override one with
:func:`register_symbolic`, which takes precedence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["key_of", "lookup_symbolic", "register_symbolic", "symbolic"]

_BUILTIN: dict[Any, dict[int, Callable]] = {}
_USER: dict[Any, dict[int, Callable]] = {}


def key_of(func: Any) -> Any:
    """The registry key of a callable seen by the tracer.

    Tensor properties reach ``__torch_function__`` as the bound ``__get__`` of their
    descriptor: they are keyed by the descriptor (``torch.Tensor.shape``).
    """
    owner = getattr(func, "__self__", None)
    if type(owner).__name__ == "getset_descriptor":
        return owner
    return func


def _register(table, funcs, fn, opset):
    for func in funcs:
        table.setdefault(key_of(func), {})[opset] = fn


def symbolic(*funcs: Any, opset: int = 1) -> Callable:
    """Decorator registering a built-in symbolic for ``funcs`` from ``opset`` on."""

    def decorate(fn: Callable) -> Callable:
        _register(_BUILTIN, funcs, fn, opset)
        return fn

    return decorate


def register_symbolic(torch_op: Any, fn: Callable, *, opset: int = 1) -> None:
    """Add or override the symbolic function of ``torch_op`` for models at ``opset`` and
    above. ``fn(g, *args, **kwargs)`` receives the call's arguments with traced tensors as
    ``Var`` objects and returns graph value(s); see docs/tracer.md."""
    _register(_USER, [torch_op], fn, opset)


def unregister_symbolic(torch_op: Any) -> None:
    """Remove the user symbolics of ``torch_op`` (the built-in one applies again)."""
    _USER.pop(key_of(torch_op), None)


def lookup_symbolic(func: Any, opset: int) -> Callable | None:
    """The symbolic in force for ``func`` at ``opset``: user ones first, then built-in."""
    _load_builtins()
    key = key_of(func)
    for table in (_USER, _BUILTIN):
        versions = table.get(key)
        if versions:
            usable = [v for v in versions if v <= opset]
            if usable:
                return versions[max(usable)]
    return None


_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from ferry.trace import symbolics  # noqa: F401  (registers on import)


Tensor = torch.Tensor
