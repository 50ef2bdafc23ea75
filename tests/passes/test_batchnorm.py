"""FuseBatchNorm: BN (inference form) folded into Conv, Gemm, MatMul(+Add)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ferry.passes import FuseBatchNorm, optimize
from tests.passes.helpers import FLOAT, check_pass, make_model, op_counts, to_ferry

RNG = np.random.default_rng(7)


def _bn_params(channels: int, prefix: str = "bn") -> list:
    return [
        (f"{prefix}_scale", RNG.uniform(0.5, 1.5, channels).astype(np.float32)),
        (f"{prefix}_bias", RNG.standard_normal(channels).astype(np.float32)),
        (f"{prefix}_mean", RNG.standard_normal(channels).astype(np.float32)),
        (f"{prefix}_var", RNG.uniform(0.5, 2.0, channels).astype(np.float32)),
    ]


def _bn(source: str, output: str = "y", **attributes):
    names = [source, "bn_scale", "bn_bias", "bn_mean", "bn_var"]
    return helper.make_node("BatchNormalization", names, [output], epsilon=1e-3, **attributes)


def _conv_model(*, bias=True, group=1, extra_nodes=(), outputs=(("y", FLOAT, [1, 4, 5, 5]),), opset=17, **bn):
    weight = RNG.standard_normal((4, 4 // group, 3, 3)).astype(np.float32)
    initializers = [("w", weight), *_bn_params(4)]
    conv_inputs = ["x", "w"]
    if bias:
        initializers.append(("b", RNG.standard_normal(4).astype(np.float32)))
        conv_inputs.append("b")
    nodes = [helper.make_node("Conv", conv_inputs, ["c"], pads=[1, 1, 1, 1], group=group), _bn("c", **bn), *extra_nodes]
    return make_model(nodes, [("x", FLOAT, [1, 4, 5, 5])], list(outputs), initializers, opset=opset)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("group", [1, 2])
def test_folds_into_conv(bias, group):
    fused = check_pass(_conv_model(bias=bias, group=group), FuseBatchNorm())
    assert op_counts(fused) == {"Conv": 1}
    conv = fused.graph.nodes[0]
    assert conv.outputs[0].name == "y" and len(conv.inputs) == 3
    assert conv.attributes["group"].value == group


def test_folds_legacy_opset_with_is_test():
    model = _conv_model(opset=6, is_test=1)
    model.ir_version = 3
    for tensor in model.graph.initializer:  # IR 3: every initializer is an input too
        model.graph.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims))
    fused = check_pass(model, FuseBatchNorm())
    assert op_counts(fused) == {"Conv": 1}


def test_not_folded_when_conv_output_is_read_twice_or_returned():
    read_twice = _conv_model(
        extra_nodes=[helper.make_node("Add", ["y", "c"], ["z"])], outputs=[("z", FLOAT, [1, 4, 5, 5])]
    )
    assert not FuseBatchNorm()(to_ferry(read_twice)).modified
    returned = _conv_model(outputs=[("y", FLOAT, [1, 4, 5, 5]), ("c", FLOAT, [1, 4, 5, 5])])
    assert not FuseBatchNorm()(to_ferry(returned)).modified
    check_pass(read_twice)


def test_not_folded_in_training_mode():
    model = _conv_model(opset=15, training_mode=1)
    assert not FuseBatchNorm()(to_ferry(model)).modified
    legacy_training = _conv_model(opset=9)
    legacy_training.graph.node[1].output.extend(["mean_out", "var_out", "saved_mean", "saved_var"])
    assert not FuseBatchNorm()(to_ferry(legacy_training)).modified


def test_not_folded_with_dynamic_statistics_or_weight():
    model = _conv_model()
    model.graph.initializer.pop()  # the conv bias 'b' ...
    model.graph.input.append(helper.make_tensor_value_info("b", FLOAT, [4]))  # ... now an input
    assert not FuseBatchNorm()(to_ferry(model)).modified
    check_pass(model)
    stats_input = _conv_model()
    stats_input.graph.input.append(helper.make_tensor_value_info("bn_mean", FLOAT, [4]))  # overridable
    assert not FuseBatchNorm()(to_ferry(stats_input)).modified


def _gemm_model(trans_b: int, with_c: bool, c_shape=(3,)):
    weight = RNG.standard_normal((3, 5) if trans_b else (5, 3)).astype(np.float32)
    initializers = [("w", weight), *_bn_params(3)]
    inputs = ["a", "w"]
    if with_c:
        initializers.append(("c", RNG.standard_normal(c_shape).astype(np.float32)))
        inputs.append("c")
    nodes = [helper.make_node("Gemm", inputs, ["g"], transB=trans_b, alpha=0.5, beta=2.0), _bn("g")]
    return make_model(nodes, [("a", FLOAT, [4, 5])], [("y", FLOAT, [4, 3])], initializers)


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (3,), (1, 3), (4, 3), (4, 1)])
def test_folds_into_gemm(trans_b, c_shape):
    fused = check_pass(_gemm_model(trans_b, c_shape is not None, c_shape), FuseBatchNorm())
    assert op_counts(fused) == {"Gemm": 1}
    assert fused.graph.nodes[0].attributes["beta"].value == 1.0


def _matmul_model(with_add: bool, a_shape=(4, 5), bias_shape=(3,)):
    initializers = [("w", RNG.standard_normal((5, 3)).astype(np.float32)), *_bn_params(3)]
    nodes = [helper.make_node("MatMul", ["a", "w"], ["m"])]
    source = "m"
    if with_add:
        initializers.append(("b", RNG.standard_normal(bias_shape).astype(np.float32)))
        nodes.append(helper.make_node("Add", ["b", "m"], ["s"]))
        source = "s"
    nodes.append(_bn(source))
    out_shape = [*a_shape[:-1], 3]
    return make_model(nodes, [("a", FLOAT, list(a_shape))], [("y", FLOAT, out_shape)], initializers)


@pytest.mark.parametrize("with_add", [True, False])
def test_folds_into_matmul_and_add(with_add):
    fused = check_pass(_matmul_model(with_add), FuseBatchNorm())
    assert op_counts(fused) == {"MatMul": 1, "Add": 1}
    assert op_counts(check_pass(_matmul_model(with_add))) == {"Gemm": 1}  # with FuseMatMulAdd


def test_not_folded_into_matmul_of_rank_3():
    model = _matmul_model(True, a_shape=(2, 4, 5))
    model.graph.node[-1].input[0] = "s"
    assert not FuseBatchNorm()(to_ferry(model)).modified


def test_optimize_folds_chains_of_conv_bn():
    model = _conv_model(
        extra_nodes=[
            helper.make_node("Relu", ["y"], ["r"]),
            helper.make_node("Conv", ["r", "w2"], ["c2"], pads=[1, 1, 1, 1]),
            helper.make_node(
                "BatchNormalization", ["c2", "bn2_scale", "bn2_bias", "bn2_mean", "bn2_var"], ["z"]
            ),
        ],
        outputs=[("z", FLOAT, [1, 4, 5, 5])],
    )
    for name, array in [("w2", RNG.standard_normal((4, 4, 3, 3)).astype(np.float32)), *_bn_params(4, "bn2")]:
        model.graph.initializer.append(helper.make_tensor(name, FLOAT, array.shape, array.reshape(-1)))
    fused = to_ferry(model)
    optimize(fused)
    assert op_counts(fused) == {"Conv": 2, "Relu": 1}
    assert len(fused.graph.initializers) == 4  # two weights, two biases; the old ones are gone
    check_pass(model)
