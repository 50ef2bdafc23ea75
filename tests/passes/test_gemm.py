"""FuseMatMulAdd: MatMul + bias Add on 2-D operands becomes Gemm."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ferry.passes import FuseMatMulAdd
from tests.passes.helpers import FLOAT, INT64, check_pass, make_model, op_counts, to_ferry

RNG = np.random.default_rng(3)
WEIGHT = RNG.standard_normal((8, 5)).astype(np.float32)


def _model(bias_shape=(5,), a_shape=(4, 8), *, bias_first=False, extra=(), outputs=None, dtype=FLOAT):
    add_inputs = ["b", "m"] if bias_first else ["m", "b"]
    nodes = [helper.make_node("MatMul", ["a", "w"], ["m"]), helper.make_node("Add", add_inputs, ["y"]), *extra]
    numpy_dtype = np.float32 if dtype == FLOAT else np.int64
    initializers = [("w", WEIGHT.astype(numpy_dtype)), ("b", RNG.standard_normal(bias_shape).astype(numpy_dtype))]
    out_shape = list(np.broadcast_shapes(tuple(d if isinstance(d, int) else 1 for d in a_shape[:-1]) + (5,), bias_shape))
    if not isinstance(a_shape[0], int):
        out_shape[0] = a_shape[0]
    outputs = outputs or [("y", dtype, out_shape)]
    return make_model(nodes, [("a", dtype, list(a_shape))], outputs, initializers)


@pytest.mark.parametrize("bias_shape", [(5,), (1, 5), (4, 5), (4, 1), (1,), ()])
@pytest.mark.parametrize("bias_first", [False, True])
def test_fuses_into_gemm(bias_shape, bias_first):
    fused = check_pass(_model(bias_shape, bias_first=bias_first), FuseMatMulAdd())
    assert op_counts(fused) == {"Gemm": 1}
    gemm = fused.graph.nodes[0]
    assert [v.name for v in gemm.inputs] == ["a", "w", "b"] and gemm.outputs[0].name == "y"


def test_fuses_with_a_symbolic_batch():
    fused = check_pass(_model(a_shape=("n", 8)), FuseMatMulAdd())
    assert op_counts(fused) == {"Gemm": 1}


@pytest.mark.parametrize(
    "model",
    [
        _model(a_shape=(2, 4, 8), bias_shape=(5,)),  # MatMul of rank 3: not a Gemm
        _model(bias_shape=(3, 4, 5)),  # the Add broadcasts to rank 3
        _model(dtype=INT64),  # Gemm takes floating types only here
        _model(
            extra=[helper.make_node("Neg", ["m"], ["n"])],
            outputs=[("y", FLOAT, [4, 5]), ("n", FLOAT, [4, 5])],
        ),  # the product is read twice
        _model(outputs=[("y", FLOAT, [4, 5]), ("m", FLOAT, [4, 5])]),  # the product is returned
    ],
    ids=["rank3", "broadcast-up", "int64", "multi-use", "returned"],
)
def test_not_fused(model):
    assert not FuseMatMulAdd()(to_ferry(model)).modified
    check_pass(model)


def test_not_fused_with_unknown_ranks():
    model = _model()
    model.graph.input[0].type.tensor_type.ClearField("shape")
    assert not FuseMatMulAdd()(to_ferry(model)).modified
