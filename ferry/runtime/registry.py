"""The kernel registry: numpy implementations keyed by (domain, op_type, since_version).

A kernel is a plain function. Its positional parameters are the node's inputs in
schema order (``None`` for an omitted optional input; a variadic input arrives as
the remaining positional arguments). Its keyword-only parameters are the schema's
attributes, by their ONNX names: the session passes every attribute the schema
declares at that version, with the node's value or else the schema default (or
``None`` when the schema has no default). Keyword-only parameters whose names start
with an underscore ask the session for context instead:

``_num_outputs``  how many outputs the node declares (Split, TopK-like ops)
``_opset``        the opset version of the kernel's domain in the running model
``_run_graph``    callable(graph_attribute, *inputs) -> list of outputs, for subgraphs

A kernel returns one value or a tuple/list of values, one per output.
Versions are chosen as "highest registered since_version <= the model's opset".

A kernel may also have a *preparer* (``@preparer``, same op and versions): called once
when the session compiles its plan, with one entry per node input — the value of a
constant input (weights), ``RUN_TIME`` for an input known only when the model runs, ``None``
for an omitted optional input — and the bound attributes, it returns a callable that
replaces the kernel for that node (weights packed, work done once), or ``None`` to run the
plain kernel.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from ferry.errors import KernelNotFoundError

__all__ = ["RUN_TIME", "Kernel", "kernel", "lookup", "lookup_preparer", "preparer", "registered_ops"]

ONNX_DOMAIN = ""
_DOMAIN_ALIASES = {"ai.onnx": ""}


@dataclass(frozen=True)
class Kernel:
    """A registered implementation and what the session must pass it."""

    function: Callable
    domain: str
    op_type: str
    since_version: int
    context: frozenset[str] = field(default_factory=frozenset)

    def __call__(self, *args, **kwargs):
        return self.function(*args, **kwargs)


_KERNELS: dict[tuple[str, str], dict[int, Kernel]] = {}


def _normalize_domain(domain: str) -> str:
    return _DOMAIN_ALIASES.get(domain, domain)


def kernel(op_type: str, since: int | tuple[int, ...], *, domain: str = ONNX_DOMAIN):
    """Register the decorated function for ``op_type`` from opset ``since`` (or several)."""
    versions = (since,) if isinstance(since, int) else tuple(since)
    domain = _normalize_domain(domain)

    def register(function: Callable) -> Callable:
        parameters = inspect.signature(function).parameters.values()
        context = frozenset(
            p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.name.startswith("_")
        )
        table = _KERNELS.setdefault((domain, op_type), {})
        for version in versions:
            if version in table:
                raise ValueError(
                    f"kernel {domain or 'ai.onnx'}::{op_type} since {version} registered twice "
                    f"({table[version].function.__qualname__} and {function.__qualname__})"
                )
            table[version] = Kernel(function, domain, op_type, version, context)
        return function

    return register


_PREPARERS: dict[tuple[str, str, int], Callable] = {}


class _RunTime:
    def __repr__(self) -> str:
        return "RUN_TIME"


RUN_TIME = _RunTime()
"""What a preparer sees for an input whose value is known only when the model runs."""


def preparer(op_type: str, since: int | tuple[int, ...], *, domain: str = ONNX_DOMAIN):
    """Register the decorated ``prepare(constants, _input_shapes, **attributes) -> callable |
    None`` for the kernel versions ``since`` of ``op_type``. ``constants`` has each input's
    constant value, ``RUN_TIME`` for a fed one, None for an absent one; ``_input_shapes`` each
    input's declared dims (None where unknown or symbolic), or None without a shape."""
    versions = (since,) if isinstance(since, int) else tuple(since)
    domain = _normalize_domain(domain)

    def register(function: Callable) -> Callable:
        for version in versions:
            _PREPARERS[(domain, op_type, version)] = function
        return function

    return register


def lookup_preparer(kernel: Kernel) -> Callable | None:
    """The preparer registered for exactly this kernel's version, if any."""
    _load_builtin_kernels()
    return _PREPARERS.get((kernel.domain, kernel.op_type, kernel.since_version))


def lookup(domain: str, op_type: str, opset: int) -> Kernel:
    """The kernel in force for ``op_type`` at ``opset``: the highest since_version <= opset."""
    domain = _normalize_domain(domain)
    _load_builtin_kernels()
    versions = _KERNELS.get((domain, op_type), {})
    usable = [v for v in versions if v <= opset]
    if not usable:
        have = sorted(versions) or "none"
        raise KernelNotFoundError(
            f"no kernel for {domain or 'ai.onnx'}::{op_type} at opset {opset}; "
            f"registered versions: {have}"
        )
    return versions[max(usable)]


def registered_ops() -> dict[tuple[str, str], list[int]]:
    """Every registered (domain, op_type) with its sorted since_versions."""
    _load_builtin_kernels()
    return {key: sorted(table) for key, table in sorted(_KERNELS.items())}


_loaded = False


def _load_builtin_kernels() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from ferry.runtime import kernels  # noqa: F401  (registers on import)
