"""Each adapter family, up and down: the converted model is valid, has the new form, and
gives the same outputs as the original (and a round trip up then down does too)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ferry.convert import ConversionError, convert_version
from tests.convert.helpers import FLOAT, INT64, assert_converts, make_model, op_types

RNG = np.random.default_rng(0)
X234 = RNG.standard_normal((2, 3, 4)).astype(np.float32)


def _single(op, attrs=None, *, opset, inputs=(("x", FLOAT, [2, 3, 4]),), extra=(), out_shape=(2, 3, 4),
            initializers=(), outputs=None):
    names = [i[0] for i in inputs] + list(extra)
    node = helper.make_node(op, names, [o[0] for o in outputs] if outputs else ["y"], **(attrs or {}))
    return make_model([node], list(inputs), outputs or [("y", FLOAT, out_shape)], initializers, opset=opset)


# -- attributes <-> inputs -------------------------------------------------------------------

MOVES = [
    # op, attributes at the older opset, older opset, newer opset, input name moved, output shape
    ("ReduceSum", {"axes": [1], "keepdims": 0}, 12, 13, "axes", [2, 4]),
    ("ReduceMean", {"axes": [0, 2]}, 17, 18, "axes", [1, 3, 1]),
    ("Squeeze", {"axes": [0]}, 12, 13, "axes", [3, 4]),
    ("Unsqueeze", {"axes": [1]}, 12, 13, "axes", [2, 1, 3, 4]),
    ("Clip", {"min": -0.5, "max": 0.5}, 10, 11, "min", [2, 3, 4]),
    ("Pad", {"pads": [0, 1, 0, 0, 2, 1], "value": 1.5}, 10, 11, "pads", [2, 6, 5]),
    ("Slice", {"starts": [0, 1], "ends": [2, 3], "axes": [0, 2]}, 9, 10, "starts", [2, 3, 2]),
    ("Dropout", {"ratio": 0.3}, 11, 12, "ratio", [2, 3, 4]),
]


@pytest.mark.parametrize(("op", "attrs", "old", "new", "moved", "shape"), MOVES, ids=[m[0] for m in MOVES])
def test_attribute_becomes_input_and_back(op, attrs, old, new, moved, shape, tmp_path):
    x = X234[:1] if op == "Squeeze" else X234
    model = _single(op, attrs, opset=old, inputs=(("x", FLOAT, list(x.shape)),), out_shape=shape)
    up = assert_converts(model, new, {"x": x}, tmp_path)
    node = next(n for n in up.graph if n.op_type == op)
    assert moved not in node.attributes
    assert "Constant" in op_types(up)
    down = assert_converts(up, old, {"x": x}, tmp_path)
    node = next(n for n in down.graph if n.op_type == op)
    assert moved in node.attributes and "Constant" not in op_types(down)


def test_topk_k_becomes_an_input(tmp_path):
    model = _single("TopK", {"k": 2, "axis": 2}, opset=9, outputs=[("v", FLOAT, [2, 3, 2]), ("i", INT64, [2, 3, 2])])
    up = assert_converts(model, 10, {"x": X234}, tmp_path)
    assert len(next(n for n in up.graph if n.op_type == "TopK").inputs) == 2
    assert_converts(up, 9, {"x": X234}, tmp_path)


def test_split_sizes_become_an_input(tmp_path):
    outputs = [("a", FLOAT, [2, 3, 1]), ("b", FLOAT, [2, 3, 3])]
    model = _single("Split", {"axis": 2, "split": [1, 3]}, opset=11, outputs=outputs)
    up = assert_converts(model, 13, {"x": X234}, tmp_path)
    assert_converts(up, 11, {"x": X234}, tmp_path)


def test_runtime_input_blocks_the_downgrade():
    model = _single("ReduceSum", opset=13, inputs=(("x", FLOAT, [2, 3, 4]), ("axes", INT64, [1])), out_shape=None)
    with pytest.raises(ConversionError) as caught:
        convert_version(model, 12)
    assert "computed at run time" in caught.value.blocking[0][1]


# -- Softmax family and negative axes --------------------------------------------------------

@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_coercion_round_trip(op, tmp_path):
    model = _single(op, {"axis": 1}, opset=12)  # opset 12: normalize over axes 1 and 2 together
    up = assert_converts(model, 13, {"x": X234}, tmp_path)
    assert "Flatten" in op_types(up)
    single_axis = _single(op, {"axis": 1}, opset=13)  # opset 13: normalize over axis 1 only
    down = assert_converts(single_axis, 12, {"x": X234}, tmp_path)
    assert "Transpose" in op_types(down)


def test_negative_axis_made_positive_below_11(tmp_path):
    model = _single("Concat", {"axis": -1}, opset=11, inputs=(("x", FLOAT, [2, 3, 4]), ("z", FLOAT, [2, 3, 4])))
    down = assert_converts(model, 10, {"x": X234, "z": X234 + 1}, tmp_path)
    assert next(iter(down.graph)).attribute("axis") == 2


def test_onehot_negative_indices_are_wrapped_below_11(tmp_path):
    inputs = (("i", INT64, [3]), ("depth", INT64, []), ("values", FLOAT, [2]))
    model = _single("OneHot", {"axis": -1}, opset=11, inputs=inputs, out_shape=[3, 4])
    feeds = {"i": np.array([0, -1, 2]), "depth": np.array(4), "values": np.array([0, 1], np.float32)}
    down = assert_converts(model, 10, feeds, tmp_path)
    assert "Where" in op_types(down)


# -- Upsample and Resize -----------------------------------------------------------------------

def test_upsample_becomes_resize_and_back(tmp_path):
    scales = ("scales", np.array([1, 1, 2, 2], np.float32))
    x = RNG.standard_normal((1, 2, 3, 3)).astype(np.float32)
    model = _single("Upsample", {"mode": "nearest"}, opset=9, inputs=(("x", FLOAT, [1, 2, 3, 3]),),
                    extra=["scales"], initializers=[scales], out_shape=[1, 2, 6, 6])
    at_10 = assert_converts(model, 10, {"x": x}, tmp_path)
    assert op_types(at_10) == ["Resize"]
    at_11 = assert_converts(model, 11, {"x": x}, tmp_path)
    node = next(n for n in at_11.graph if n.op_type == "Resize")
    assert node.attribute("coordinate_transformation_mode") == "asymmetric"
    assert node.attribute("nearest_mode") == "floor"
    back = assert_converts(at_11, 8, {"x": x}, tmp_path)
    assert op_types(back) == ["Upsample"] and next(iter(back.graph)).attribute("scales") == [1, 1, 2, 2]


def test_half_pixel_resize_cannot_go_below_11():
    scales = ("scales", np.array([1, 1, 2, 2], np.float32))
    roi = ("roi", np.zeros(0, np.float32))
    model = _single("Resize", {"mode": "linear"}, opset=13, inputs=(("x", FLOAT, [1, 2, 3, 3]),),
                    extra=["roi", "scales"], initializers=[roi, scales], out_shape=[1, 2, 6, 6])
    with pytest.raises(ConversionError, match="half_pixel"):
        convert_version(model, 10)


# -- single operators ------------------------------------------------------------------------

def test_scatter_and_scatter_elements(tmp_path):
    inputs = (("x", FLOAT, [2, 3]), ("i", INT64, [1, 2]), ("u", FLOAT, [1, 2]))
    model = _single("Scatter", {"axis": 1}, opset=10, inputs=inputs, out_shape=[2, 3])
    feeds = {"x": np.zeros((2, 3), np.float32), "i": np.array([[2, 0]]), "u": np.ones((1, 2), np.float32)}
    up = assert_converts(model, 11, feeds, tmp_path)
    assert op_types(up) == ["ScatterElements"]
    assert op_types(assert_converts(up, 10, feeds, tmp_path)) == ["Scatter"]


def test_gemm_without_c_gets_a_zero_c(tmp_path):
    model = _single("Gemm", opset=13, inputs=(("a", FLOAT, [2, 3]), ("b", FLOAT, [3, 4])), out_shape=[2, 4])
    feeds = {"a": X234[0, :2, :3].copy(), "b": X234[1, :3, :4].copy()}
    down = assert_converts(model, 9, feeds, tmp_path)
    assert len(next(n for n in down.graph if n.op_type == "Gemm").inputs) == 3


def test_constant_value_ints_becomes_a_tensor(tmp_path):
    node = helper.make_node("Constant", [], ["y"], value_ints=[1, 2, 3])
    model = make_model([node], [], [("y", INT64, [3])], opset=13)
    down = assert_converts(model, 11, {}, tmp_path)
    assert list(next(iter(down.graph)).attributes) == ["value"]


def test_shape_start_becomes_a_slice(tmp_path):
    model = _single("Shape", {"start": 1}, opset=15, outputs=[("y", INT64, [2])])
    down = assert_converts(model, 9, {"x": X234}, tmp_path)
    assert "Slice" in op_types(down)


def test_castlike_becomes_cast(tmp_path):
    inputs = (("x", FLOAT, [2, 3, 4]), ("like", INT64, [1]))
    model = _single("CastLike", opset=15, inputs=inputs, outputs=[("y", INT64, [2, 3, 4])])
    down = assert_converts(model, 14, {"x": X234 * 4, "like": np.array([0])}, tmp_path)
    assert op_types(down) == ["Cast"]


def test_split_num_outputs_becomes_explicit_sizes(tmp_path):
    outputs = [("a", FLOAT, [2, 3, 2]), ("b", FLOAT, [2, 3, 2]), ("c", FLOAT, [2, 3, 0])]
    model = _single("Split", {"axis": 2, "num_outputs": 3}, opset=18, outputs=outputs)
    down = assert_converts(model, 13, {"x": X234}, tmp_path)  # 4 into 3: sizes 2, 2, 0
    assert "Constant" in op_types(down)


def test_reduce_noop_with_empty_axes_becomes_identity(tmp_path):
    model = _single("ReduceMax", {"noop_with_empty_axes": 1}, opset=18)
    down = assert_converts(model, 17, {"x": X234}, tmp_path)
    assert op_types(down) == ["Identity"]


def test_new_attribute_with_its_default_is_dropped_otherwise_blocks(tmp_path):
    model = _single("ArgMax", {"axis": 1, "select_last_index": 0}, opset=12, outputs=[("y", INT64, [2, 1, 4])])
    assert_converts(model, 11, {"x": X234}, tmp_path)
    last = _single("ArgMax", {"axis": 1, "select_last_index": 1}, opset=12, outputs=[("y", INT64, [2, 1, 4])])
    with pytest.raises(ConversionError, match="select_last_index"):
        convert_version(last, 11)


def test_subgraphs_are_converted(tmp_path):
    body = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["s"], axes=[1])], "then", [],
        [helper.make_tensor_value_info("s", FLOAT, [2, 4])])
    other = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["t"], axes=[2])], "else", [],
        [helper.make_tensor_value_info("t", FLOAT, [2, 3])])
    node = helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=other)
    model = make_model([node], [("c", 9, []), ("x", FLOAT, [2, 3, 4])], [("y", FLOAT, [2, None])], opset=12)
    up = assert_converts(model, 13, {"c": np.array(True), "x": X234}, tmp_path)
    inner = [n for n in up.graph.all_nodes() if n.op_type == "ReduceSum"]
    assert len(inner) == 2 and all(len(n.inputs) == 2 and not n.attributes.get("axes") for n in inner)
