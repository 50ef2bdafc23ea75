"""MatMul followed by a bias Add, on 2-D operands, becomes one Gemm."""

from __future__ import annotations

from ferry.ir import DataType, Node, Value
from ferry.ir.dtypes import from_numpy_dtype
from ferry.passes._context import Context
from ferry.passes.base import NodeRewritePass

__all__ = ["FuseMatMulAdd"]

_GEMM_TYPES = (DataType.FLOAT16, DataType.FLOAT, DataType.DOUBLE)


class FuseMatMulAdd(NodeRewritePass):
    """Rewrite ``Add(MatMul(A, B), C)`` (either Add operand order) as ``Gemm(A, B, C)``
    when, from opset 7 on (multidirectional Add, unidirectional Gemm C):

    - A and B are known to be 2-D and of a floating type Gemm accepts;
    - the MatMul's output is read only by that Add (and is no graph output);
    - C has a known shape of rank <= 2 that broadcasts to the product's ``[N, M]``
      without enlarging it (each dim 1 or equal to the product's), so the Add's result
      is exactly ``[N, M]``.

    The Gemm takes the Add's place and output (alpha = beta = 1, no transposes).
    """

    name = "fuse-matmul-add"

    op_types = frozenset({"Add"})
    min_opset = 7

    def rewrite(self, context: Context, node: Node) -> int:
        return _fuse(context, node) if len(node.inputs) == 2 else 0


def _fuse(context: Context, add: Node) -> int:
    for index in (0, 1):
        matmul = context.producer_in(add.inputs[index], add.graph, "MatMul")
        if matmul is None or context.sole_reader(add.inputs[index]) is not add:
            continue
        bias = add.inputs[1 - index]
        if bias is None or not _fits(context, matmul, bias):
            continue
        result = add.outputs[0]
        output = Value(result.name, result.type)
        gemm = Node("Gemm", [*matmul.inputs, bias], outputs=[output], name=add.name or matmul.name)
        add.graph.insert_before(add, gemm)
        context.replace(result, output)
        context.remove(add)
        context.remove(matmul)
        return 1
    return 0


def _dims(context: Context, value: Value | None) -> tuple | None:
    data = context.constant(value)
    if data is not None:
        return tuple(data.shape)
    shape = value.shape if value is not None else None
    return tuple(shape) if shape is not None else None


def _fits(context: Context, matmul: Node, bias: Value) -> bool:
    a, b = (_dims(context, v) for v in matmul.inputs)
    c = context.static_shape(bias)
    if a is None or b is None or c is None or len(a) != 2 or len(b) != 2 or len(c) > 2:
        return False
    dtypes = {_dtype(context, v) for v in (*matmul.inputs, bias)}
    if len(dtypes) != 1 or dtypes.pop() not in _GEMM_TYPES:
        return False
    product = (a[0], b[1])
    return all(dim == 1 or dim == want for dim, want in zip(reversed(c), reversed(product)))


def _dtype(context: Context, value: Value) -> DataType | None:
    data = context.constant(value)
    if data is None:
        return value.dtype
    try:
        return from_numpy_dtype(data.dtype)
    except TypeError:
        return None
