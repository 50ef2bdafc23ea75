"""In-place elementwise steps: reuse the buffer of an operand that dies at the step.

When a float ``Add``/``Sub``/``Mul``/``Div`` or ``Relu`` reads a value for the last time, the
value has no other reader, and it was made by a step known to return a fresh buffer (so no
feed, constant or view of a live value can share its memory), the step writes its result
into that operand instead of allocating. Shapes and dtypes are checked at run time: when the
result would not fit the operand (broadcasting enlarges it, types differ) the plain kernel
runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ferry.runtime.kernels.fused import INTERNAL_DOMAIN

if TYPE_CHECKING:
    from ferry.runtime.plan import GraphPlan, Step

__all__ = ["assign_in_place"]

FRESH_PRODUCERS = frozenset({
    ("", "Conv"), ("", "MatMul"), ("", "Gemm"), ("", "Add"), ("", "Sub"), ("", "Mul"), ("", "Div"),
    ("", "Relu"), (INTERNAL_DOMAIN, "FusedConv"), (INTERNAL_DOMAIN, "FusedMatMul"),
    (INTERNAL_DOMAIN, "Gelu"),
})
"""Kernels whose outputs are always buffers of their own (never an input, a constant or a view
of one)."""

_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}
_MIN_VERSION = 7  # before opset 7 the arithmetic ops have the legacy broadcast attributes


def assign_in_place(plan: GraphPlan) -> None:
    """Swap eligible steps of ``plan`` (already given their frees) for in-place calls."""
    producer = {name: step for step in plan.steps for name in step.outputs if name is not None}
    readers = Counter(name for step in plan.steps for name in step.inputs if name is not None)
    for step in plan.steps:
        call = _in_place_call(step, producer, readers)
        if call is not None:
            step.call = call


def _in_place_call(step: Step, producer: dict, readers: Counter) -> Callable | None:
    kernel = step.kernel
    if kernel is None or kernel.domain != "" or kernel.since_version < _MIN_VERSION:
        return None
    op = kernel.op_type
    if op not in _BINARY and op != "Relu":
        return None
    for index, name in enumerate(step.inputs):
        source = producer.get(name)
        if (name is None or name not in step.frees or readers[name] != 1 or source is None
                or source.kernel is None
                or (source.kernel.domain, source.kernel.op_type) not in FRESH_PRODUCERS):
            continue
        if op == "Relu":
            return _relu_in_place(step.call)
        return _binary_in_place(_BINARY[op], index, step.call)
    return None


def _fits(target: np.ndarray, other: np.ndarray) -> bool:
    return (target.dtype.kind == "f" and other.dtype == target.dtype and target.flags.writeable
            and np.broadcast_shapes(target.shape, other.shape) == target.shape)


def _binary_in_place(ufunc: np.ufunc, index: int, plain: Callable) -> Callable:
    def run(a, b, **attributes):
        target, other = (a, b) if index == 0 else (b, a)
        if isinstance(target, np.ndarray) and isinstance(other, np.ndarray) and _fits(target, other):
            with np.errstate(all="ignore"):
                return ufunc(a, b, out=target)
        return plain(a, b, **attributes)

    return run


def _relu_in_place(plain: Callable) -> Callable:
    def run(x, **attributes):
        if isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.flags.writeable:
            return np.maximum(x, 0, out=x)
        return plain(x, **attributes)

    return run
