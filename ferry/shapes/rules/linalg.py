"""Shape rules for MatMul (and its integer/quantized forms), Gemm, Einsum and Det.

MatMul follows numpy.matmul: a 1-D operand is promoted to a matrix (a row on the left,
a column on the right) and the promoted axis is removed from the result; the leading
batch axes broadcast. Einsum output dims come from the equation's labels; without an
explicit ``->`` the output is the broadcast ellipsis then every label used once, in
alphabetical order.
"""

from __future__ import annotations

from ferry.ir.dtypes import DataType
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.rules._nn_common import (
    RuleFailed,
    Shape,
    fail,
    format_shape,
    known,
    require_rank,
    rule,
    same_dim,
)


def matmul_shape(ctx: InferenceContext, a: Shape | None, b: Shape | None) -> Shape | None:
    """numpy.matmul's result shape (None when a rank is unknown); fails on a mismatch."""
    if a is None or b is None:
        return None
    if not a or not b:
        fail(ctx, f"MatMul operands must have rank >= 1, found {format_shape(a)} and "
                  f"{format_shape(b)}")
    left = [1, a[0]] if len(a) == 1 else a
    right = [b[0], 1] if len(b) == 1 else b
    same_dim(ctx, left[-1], right[-2],
             f"inner dimensions of {format_shape(a)} and {format_shape(b)} differ")
    batch = ctx.broadcast(left[:-2], right[:-2])
    if batch is None:
        raise RuleFailed("batch axes do not broadcast")  # the error is already recorded
    rows = [left[-2]] if len(a) > 1 else []
    cols = [right[-1]] if len(b) > 1 else []
    return [*batch, *rows, *cols]


@rule("MatMul", since=1)
def matmul(ctx: InferenceContext) -> None:
    """MatMul: numpy.matmul shape, A's element type."""
    ctx.set_output(0, ctx.input_dtype(0), matmul_shape(ctx, ctx.input_shape(0),
                                                       ctx.input_shape(1)))


@rule("MatMulInteger", since=10)
def matmul_integer(ctx: InferenceContext) -> None:
    """MatMulInteger: numpy.matmul shape, int32 elements."""
    ctx.set_output(0, DataType.INT32, matmul_shape(ctx, ctx.input_shape(0), ctx.input_shape(1)))


@rule("QLinearMatMul", since=10)
def qlinear_matmul(ctx: InferenceContext) -> None:
    """QLinearMatMul: a is input 0 and b input 3; y has y_zero_point's element type."""
    ctx.set_output(0, ctx.input_dtype(7), matmul_shape(ctx, ctx.input_shape(0),
                                                       ctx.input_shape(3)))


@rule("Gemm", since=1)
def gemm(ctx: InferenceContext) -> None:
    """Gemm: Y [M, N] from op(A) [M, K] and op(B) [K, N]; C broadcasts onto [M, N]."""
    a = require_rank(ctx, 0, "A", 2, 2)
    b = require_rank(ctx, 1, "B", 2, 2)
    rows = cols = None
    if a is not None:
        rows, inner_a = (a[1], a[0]) if ctx.attr("transA", 0) else (a[0], a[1])
    if b is not None:
        inner_b, cols = (b[1], b[0]) if ctx.attr("transB", 0) else (b[0], b[1])
    if a is not None and b is not None:
        same_dim(ctx, inner_a, inner_b, f"inner dimensions of op(A) (A {format_shape(a)}) and "
                                        f"op(B) (B {format_shape(b)}) differ")
    c = ctx.input_shape(2) if ctx.has_input(2) else None
    if c is not None:
        if len(c) > 2:
            fail(ctx, f"C must have rank <= 2, found {format_shape(c)}")
        for dim, target in zip(reversed(c), (cols, rows)):
            if known(dim) not in (None, 1) and known(target) not in (None, known(dim)):
                fail(ctx, f"C {format_shape(c)} does not broadcast to [{rows},{cols}]")
    ctx.set_output(0, ctx.input_dtype(0), [rows, cols])


@rule("Det", since=11)
def det(ctx: InferenceContext) -> None:
    """Det: [..., M, M] -> [...]."""
    x = require_rank(ctx, 0, "X", 2)
    if x is not None:
        same_dim(ctx, x[-2], x[-1], f"X {format_shape(x)} must be square in its last two axes")
    ctx.set_output(0, ctx.input_dtype(0), None if x is None else x[:-2])


# -- Einsum -----------------------------------------------------------------------------------


class _Labels:
    """The size of every einsum label and the ellipsis dims of every operand."""

    def __init__(self, ctx: InferenceContext) -> None:
        self.ctx = ctx
        self.sizes: dict[str, Expr | None] = {}
        self.ellipses: list[Shape | None] = []
        self.counts: dict[str, int] = {}

    def add(self, index: int, term: str) -> None:
        before, ellipsis, after = term.partition("...")
        labels = before + after
        if not all(c.isalpha() for c in labels) or "." in after:
            fail(self.ctx, f"equation term {term!r} must hold letters and at most one '...'")
        for label in labels:
            self.counts[label] = self.counts.get(label, 0) + 1
        shape = self.ctx.input_shape(index)
        if shape is None:
            if ellipsis:
                self.ellipses.append(None)
            dims: list = [None] * len(labels)
        else:
            extra = len(shape) - len(labels)
            if extra < 0 or (extra and not ellipsis):
                fail(self.ctx, f"input {index} {format_shape(shape)} has rank {len(shape)}, "
                               f"equation term {term!r} expects {len(labels)}"
                               + (" or more" if ellipsis else ""))
            if ellipsis:
                self.ellipses.append(shape[len(before):len(before) + extra])
            dims = shape[:len(before)] + shape[len(before) + extra:]
        for label, dim in zip(labels, dims):
            self.sizes[label] = self._merge(label, self.sizes.get(label), dim)

    def _merge(self, label: str, a: Expr | None, b: Expr | None) -> Expr | None:
        if a is None or known(a) == 1:
            return b if b is not None else a
        if b is None or known(b) == 1:
            return a
        return same_dim(self.ctx, a, b, f"label {label!r} has different sizes")

    def ellipsis_dims(self) -> Shape | None:
        if any(shape is None for shape in self.ellipses):
            return None
        dims = self.ctx.broadcast(*self.ellipses) if self.ellipses else []
        if dims is None:
            raise RuleFailed("ellipsis dims do not broadcast")
        return dims


@rule("Einsum", since=12)
def einsum(ctx: InferenceContext) -> None:
    """Einsum: output dims from the equation's output labels (see the module docs)."""
    equation = str(ctx.attr("equation") or "").replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != ctx.num_inputs():
        fail(ctx, f"equation {equation!r} has {len(terms)} input terms, the node has "
                  f"{ctx.num_inputs()} inputs")
    labels = _Labels(ctx)
    for index, term in enumerate(terms):
        labels.add(index, term)
    if not arrow:
        once = sorted(label for label, count in labels.counts.items() if count == 1)
        output = ("..." if labels.ellipses else "") + "".join(once)
    before, ellipsis, after = output.partition("...")
    unknown = [c for c in before + after if c not in labels.sizes]
    if unknown:
        fail(ctx, f"output labels {unknown} of equation {equation!r} appear in no input")
    middle = labels.ellipsis_dims() if ellipsis else []
    if middle is None:
        ctx.set_output(0, ctx.input_dtype(0), None)
        return
    shape = [labels.sizes[c] for c in before] + middle + [labels.sizes[c] for c in after]
    ctx.set_output(0, ctx.input_dtype(0), shape)
