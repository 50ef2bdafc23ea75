"""convert_version's contract: all-or-nothing errors, no mutation, versions, other domains."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import ferry
from ferry.convert import ConversionError, convert_version, ir_version_for
from ferry.errors import FerryError, InvalidArgument
from tests.convert.helpers import FLOAT, INT64, assert_converts, make_model


def _blocked_model():
    """ReduceSum with run-time axes and Trilu (opset 14): neither fits opset 12."""
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["s"], name="sum"),
        helper.make_node("Trilu", ["x"], ["t"], name="lower", upper=0),
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
    ]
    inputs = [("x", FLOAT, [3, 3]), ("axes", INT64, [1])]
    outputs = [("s", FLOAT, None), ("t", FLOAT, [3, 3]), ("r", FLOAT, [3, 3])]
    return make_model(nodes, inputs, outputs, opset=14)


def test_blocking_report_lists_every_node_and_reason():
    with pytest.raises(ConversionError) as caught:
        convert_version(_blocked_model(), 12)
    error = caught.value
    assert error.blocking == [
        ("node 'lower' (Trilu)", "Trilu does not exist at opset 13 (it first appears at opset 14)"),
        ("node 'sum' (ReduceSum)", "axes of ReduceSum node 'sum' is computed at run time; "
                                   "opset 12 needs it as an attribute"),
    ]
    assert isinstance(error, FerryError)
    assert str(error).startswith("cannot convert the model from ai.onnx opset 14 to 12: 2 nodes")
    assert "node 'sum' (ReduceSum): axes of ReduceSum" in str(error)


def test_the_input_model_is_not_changed():
    model = _blocked_model()
    before = ferry.model_to_bytes(model)
    with pytest.raises(ConversionError):
        convert_version(model, 12)
    convert_version(model, 21)
    assert ferry.model_to_bytes(model) == before
    assert model.opset == 14


def test_target_out_of_range_is_an_invalid_argument():
    model = _blocked_model()
    for target in (6, 99):
        with pytest.raises(InvalidArgument, match="ai.onnx opsets 7 and"):
            convert_version(model, target)


@pytest.mark.parametrize(("opset", "ir"), [(7, 3), (9, 4), (11, 6), (13, 7), (17, 8), (20, 9),
                                            (22, 10), (23, 11), (24, 12), (26, 13), (28, 14)])
def test_ir_version_follows_the_release_of_the_opset(opset, ir):
    assert ir_version_for(opset) == ir


def test_ir_version_is_raised_for_initializers_outside_the_inputs(tmp_path):
    node = helper.make_node("Add", ["x", "w"], ["y"])
    model = make_model([node], [("x", FLOAT, [2])], [("y", FLOAT, [2])], [("w", np.ones(2, np.float32))], opset=9)
    converted = assert_converts(model, 8, {"x": np.zeros(2, np.float32)}, tmp_path)
    assert converted.ir_version == 4  # opset 8's IR 3 would need w among the graph inputs


def test_other_domains_keep_their_imports(tmp_path):
    nodes = [helper.make_node("Binarizer", ["x"], ["b"], domain="ai.onnx.ml", threshold=0.5),
             helper.make_node("ReduceSum", ["b"], ["y"], axes=[0], keepdims=1)]
    model = make_model(nodes, [("x", FLOAT, [3])], [("y", FLOAT, [1])], opset=12)
    model.opset_imports["ai.onnx.ml"] = 1
    converted = assert_converts(model, 18, {"x": np.array([0.2, 0.7, 0.9], np.float32)}, tmp_path)
    assert converted.opset_imports == {"": 18, "ai.onnx.ml": 1}
    assert next(iter(converted.graph)).domain == "ai.onnx.ml"


def test_exported_from_the_package():
    assert ferry.convert_version is convert_version
    assert ferry.ConversionError is ConversionError
