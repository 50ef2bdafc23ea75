"""CancelSqueezeUnsqueeze: pairs over the same axes cancel, in both opset forms."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ferry.passes import CancelSqueezeUnsqueeze
from tests.passes.helpers import FLOAT, check_pass, make_model, op_counts, to_ferry


def _pair(first, second, axes_first, axes_second, *, opset, x_shape=(2, 1, 4), out_rank=None):
    """x -> Relu -> first(axes) -> second(axes) -> Neg -> y."""
    initializers = []

    def node(op, source, output, axes):
        if axes is None:
            return helper.make_node(op, [source], [output])
        if opset < 13:
            return helper.make_node(op, [source], [output], axes=axes)
        initializers.append((f"{output}_axes", np.array(axes, np.int64)))
        return helper.make_node(op, [source, f"{output}_axes"], [output])

    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        node(first, "r", "p", axes_first),
        node(second, "p", "q", axes_second),
        helper.make_node("Neg", ["q"], ["y"]),
    ]
    declared = [("r", FLOAT, list(x_shape))]
    return make_model(
        nodes, [("x", FLOAT, list(x_shape))], [("y", FLOAT, [None] * (out_rank or len(x_shape)))], initializers,
        opset=opset, value_info=declared,
    )


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_unsqueeze_then_squeeze_cancel(opset):
    model = _pair("Unsqueeze", "Squeeze", [0, 3], [3, 0], opset=opset)
    assert op_counts(check_pass(model, CancelSqueezeUnsqueeze())) == {"Relu": 1, "Neg": 1}


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_then_unsqueeze_cancel(opset):
    model = _pair("Squeeze", "Unsqueeze", [1], [1], opset=opset)
    assert op_counts(check_pass(model, CancelSqueezeUnsqueeze())) == {"Relu": 1, "Neg": 1}


def test_negative_axes_are_normalized():
    model = _pair("Unsqueeze", "Squeeze", [-1], [3], opset=13)
    assert op_counts(check_pass(model, CancelSqueezeUnsqueeze())) == {"Relu": 1, "Neg": 1}


def test_squeeze_without_axes_needs_a_static_shape():
    no_ones = _pair("Unsqueeze", "Squeeze", [1], None, opset=13, x_shape=(2, 3, 4))
    assert op_counts(check_pass(no_ones, CancelSqueezeUnsqueeze())) == {"Relu": 1, "Neg": 1}
    with_ones = _pair("Unsqueeze", "Squeeze", [0], None, opset=13, x_shape=(2, 1, 4), out_rank=2)
    assert not CancelSqueezeUnsqueeze()(to_ferry(with_ones)).modified  # also drops x's dim 1
    check_pass(with_ones)
    squeeze_all = _pair("Squeeze", "Unsqueeze", None, [1], opset=13, x_shape=(2, 1, 4))
    assert op_counts(check_pass(squeeze_all, CancelSqueezeUnsqueeze())) == {"Relu": 1, "Neg": 1}


def test_different_axes_do_not_cancel():
    model = _pair("Unsqueeze", "Squeeze", [0], [2], opset=13)  # x has a size-1 dim 1
    assert not CancelSqueezeUnsqueeze()(to_ferry(model)).modified
    check_pass(model)


def test_inner_read_twice_stays():
    model = _pair("Unsqueeze", "Squeeze", [0], [0], opset=13)
    model.graph.node.append(helper.make_node("Abs", ["p"], ["z"]))
    model.graph.output.append(helper.make_tensor_value_info("z", FLOAT, [None] * 4))
    rewritten = check_pass(model, CancelSqueezeUnsqueeze())
    assert op_counts(rewritten) == {"Relu": 1, "Unsqueeze": 1, "Neg": 1, "Abs": 1}


def test_input_to_output_pair_stays():
    model = make_model(
        [helper.make_node("Unsqueeze", ["x"], ["u"], axes=[0]), helper.make_node("Squeeze", ["u"], ["y"], axes=[0])],
        [("x", FLOAT, [2])],
        [("y", FLOAT, [2])],
        opset=11,
    )
    assert not CancelSqueezeUnsqueeze()(to_ferry(model)).modified
