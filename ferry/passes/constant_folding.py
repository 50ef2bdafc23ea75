"""Constant folding: evaluate nodes whose inputs are all known and keep the results."""

from __future__ import annotations

import math

import numpy as np

from ferry.ir import DataType, Node
from ferry.ir.dtypes import from_numpy_dtype
from ferry.passes._context import Context, is_standard
from ferry.passes.base import Pass

__all__ = ["RANDOM_OPS", "ConstantFolding"]

RANDOM_OPS = frozenset(
    {
        "Bernoulli",
        "Dropout",
        "Multinomial",
        "RandomNormal",
        "RandomNormalLike",
        "RandomUniform",
        "RandomUniformLike",
    }
)
"""Operators whose results are draws (or, for Dropout, may be): never folded or merged."""

# Operators that read only their input's shape: foldable when that shape is static.
_SHAPE_READERS = frozenset({"Shape", "Size"})


class ConstantFolding(Pass):
    """Replace a node whose inputs are all constants (initializers that are not
    overridable inputs, or Constant outputs) by its results, computed with ferry's own
    kernels: initializers in the main graph, Constant nodes for main-graph outputs (the
    output keeps its name) and inside subgraphs. ``Shape`` and ``Size`` fold when their
    input's declared shape is fully static, so shape computations built on them fold too.

    Not folded: random operators (and Dropout), nodes with subgraphs, model-local
    functions, operators outside the default domain, sequence/optional results, results
    whose type disagrees with the declared one, and results of more than
    ``max_elements`` elements (one million by default) unless no larger than the node's
    largest input (a transposed or cast weight folds whatever its size: folding it does not
    grow the model).
    """

    name = "constant-folding"

    def __init__(self, max_elements: int = 1_000_000) -> None:
        self.max_elements = max_elements

    def run(self, context: Context) -> int:
        folded = 0
        for graph in context.graphs:
            for node in graph:
                if self._fold(context, node):
                    folded += 1
        return folded

    def _fold(self, context: Context, node: Node) -> bool:
        if not _foldable(node):
            return False
        args = _arguments(context, node)
        if args is None:
            return False
        limit = max([self.max_elements, *(np.size(a) for a in args if isinstance(a, np.ndarray))])
        if _predicted_size(node, args) > limit:
            return False
        results = context.evaluate(node, args)
        if results is None or not _acceptable(node, results, limit):
            return False
        for value, result in zip(node.outputs, results):
            if value is not None:
                context.fold(node, value, result)
        context.remove(node)
        return True


def _foldable(node: Node) -> bool:
    return (
        is_standard(node)
        and node.op_type not in RANDOM_OPS
        and node.op_type != "Constant"
        and not any(True for _ in node.subgraphs())
        and any(v is not None for v in node.outputs)
    )


def _arguments(context: Context, node: Node) -> list | None:
    """The constant inputs (None for omitted ones), or None if one is not constant."""
    if node.op_type in _SHAPE_READERS and node.inputs and context.constant(node.inputs[0]) is None:
        value = node.inputs[0]
        shape = context.static_shape(value)
        if shape is None:
            return None
        dtype = value.dtype.numpy if value.dtype not in (None, DataType.UNDEFINED) else np.float32
        return [np.broadcast_to(np.zeros((), dtype), shape)]  # no memory: only the shape counts
    args = []
    for value in node.inputs:
        if value is None:
            args.append(None)
            continue
        data = context.constant(value)
        if data is None:
            return None
        args.append(data)
    return args


def _predicted_size(node: Node, args: list) -> int:
    """An estimate of the largest output, to skip huge results before computing them."""
    try:
        if node.op_type == "ConstantOfShape":
            return math.prod(int(d) for d in args[0].reshape(-1))
        if node.op_type == "Expand":
            shape = np.broadcast_shapes(args[0].shape, tuple(int(d) for d in args[1].reshape(-1)))
            return math.prod(shape)
        if node.op_type == "Tile":
            return args[0].size * math.prod(int(r) for r in args[1].reshape(-1))
    except (ValueError, TypeError, IndexError, AttributeError):
        return 0  # malformed: let the kernel decline
    declared = [v.shape.numel() for v in node.outputs if v is not None and v.shape is not None]
    return max((n for n in declared if n is not None), default=0)


def _acceptable(node: Node, results: list, max_elements: int) -> bool:
    """Small enough, and of the element type and static shape the model declares."""
    for value, result in zip(node.outputs, results):
        if value is None or result is None:
            continue
        if result.size > max_elements:
            return False
        try:
            dtype = from_numpy_dtype(result.dtype)
        except TypeError:
            return False
        if value.dtype not in (None, DataType.UNDEFINED) and value.dtype != dtype:
            return False
        shape = value.shape
        if shape is not None and shape.is_static() and tuple(shape) != result.shape:
            return False
    return True
