"""The inference driver on hand-built graphs: data propagation, names, conflicts,
strict mode, explain_shape, the checker's full mode, subgraphs and functions."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import ferry
from ferry.ir import Attribute, DataType, Function, Graph, Node, TensorType, Value
from ferry.shapes import infer, infer_shapes
from ferry.shapes.registry import duplicate_rules
from tests.shapes.helpers import const, model, node, out, tensor, value_named

F, I64 = DataType.FLOAT, DataType.INT64


def shape_of(m, name):
    return list(value_named(m, name).shape)


def _flatten_batch_model():
    """x[batch,seq,2] -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]))."""
    x = tensor("x", F, ["batch", "seq", 2])
    zero, axes, minus_one = const("zero", 0), const("axes", [0]), const("minus_one", [-1])
    shape = node("Shape", [x], ["s"])
    first = node("Gather", [out(shape), zero], ["b"])
    unsq = node("Unsqueeze", [out(first), axes], ["b1"])
    cat = node("Concat", [out(unsq), minus_one], ["target"], axis=0)
    reshape = node("Reshape", [x, out(cat)], ["y"])
    return model([x], ["y"], [shape, first, unsq, cat, reshape], [zero, axes, minus_one])


def test_shape_gather_concat_reshape_chain_resolves_symbolically():
    m = infer_shapes(_flatten_batch_model())
    assert shape_of(m, "y") == ["batch", "seq*2"]
    assert value_named(m, "y").dtype == F
    assert shape_of(m, "target") == [2] and value_named(m, "target").dtype == I64


def test_infer_shapes_does_not_change_its_argument():
    original = _flatten_batch_model()
    infer_shapes(original)
    assert value_named(original, "target").type is None
    assert original.graph.outputs[0].type is None


def test_reshape_copies_zero_dims_and_infers_minus_one_symbolically():
    x = tensor("x", F, ["batch", "seq", 12])
    target = const("t", [0, 0, 3, -1])
    m = infer_shapes(model([x], ["y"], [node("Reshape", [x, target], ["y"])], [target]))
    assert shape_of(m, "y") == ["batch", "seq", 3, 4]


def test_slices_of_symbolic_dims():
    x = tensor("x", F, ["batch", "seq"])
    starts, ends, axes = const("st", [1]), const("en", [2**62]), const("ax", [1])
    tail = node("Slice", [x, starts, ends, axes], ["tail"])
    minus = const("minus", [-1])
    zero = const("zero", [0])
    head = node("Slice", [x, zero, minus, axes], ["head"])
    m = infer_shapes(model([x], ["tail", "head"], [tail, head], [starts, ends, axes, minus, zero]))
    assert shape_of(m, "tail") == ["batch", "seq-1"]
    assert shape_of(m, "head") == ["batch", "seq-1"]


def test_broadcasting_keeps_names():
    a, b = tensor("a", F, ["batch", 1, 4]), tensor("b", F, ["seq", 1])
    m = infer_shapes(model([a, b], ["c"], [node("Add", [a, b], ["c"])]))
    assert shape_of(m, "c") == ["batch", "seq", 4]


def test_an_unknown_dim_gets_a_fresh_name_reused_where_provably_equal():
    a = tensor("a", F, [None, 3])
    neg = node("Neg", [a], ["n"])
    add = node("Add", [out(neg), a], ["c"])
    m = infer_shapes(model([a], ["c"], [neg, add]))
    name = shape_of(m, "n")[0]
    assert isinstance(name, str) and name.startswith("unk__")
    assert shape_of(m, "c") == [name, 3]


def test_comparisons_give_bool_and_where_takes_the_value_type():
    a, b = tensor("a", DataType.INT32, ["n"]), tensor("b", DataType.INT32, [1])
    less = node("Less", [a, b], ["lt"])
    where = node("Where", [out(less), a, b], ["w"])
    m = infer_shapes(model([a, b], ["w"], [less, where]))
    assert value_named(m, "lt").dtype == DataType.BOOL and shape_of(m, "lt") == ["n"]
    assert value_named(m, "w").dtype == DataType.INT32 and shape_of(m, "w") == ["n"]


def test_constant_of_shape_range_and_expand_read_shape_data():
    x = tensor("x", F, ["batch", "seq"])
    shape = node("Shape", [x], ["s"])
    ones = node("ConstantOfShape", [out(shape)], ["ones"],
                value=np.array([1], dtype=np.int64))
    one = const("one", 1)
    zero = const("z", 0)
    seq = node("Gather", [out(shape), one], ["seq_len"])
    positions = node("Range", [zero, out(seq), one], ["pos"])
    y = tensor("y", F, [1, "seq"])
    grown = node("Expand", [y, out(shape)], ["grown"])
    m = infer_shapes(model([x, y], ["ones", "pos", "grown"], [shape, ones, seq, positions, grown], [one, zero]))
    assert shape_of(m, "ones") == ["batch", "seq"] and value_named(m, "ones").dtype == I64
    assert shape_of(m, "pos") == ["seq"]
    assert shape_of(m, "grown") == ["batch", "seq"]


def test_legacy_broadcast_attribute():
    a, b = tensor("a", F, [2, 3, 4]), tensor("b", F, [3])
    add = node("Add", [a, b], ["c"], broadcast=1, axis=1)
    m = infer_shapes(model([a, b], ["c"], [add], opset=6))
    assert shape_of(m, "c") == [2, 3, 4]


def _conflicting_model():
    x = tensor("x", F, ["batch", 3])
    neg = node("Neg", [x], ["n"], name="negate")
    out(neg).type = TensorType(F, [None, 5])  # value_info that contradicts the input
    return model([x], ["n"], [neg])


def test_declared_shape_conflict_is_a_diagnostic_naming_the_node():
    result = infer(_conflicting_model())
    [error] = result.errors
    assert error.rule == "shape-conflict" and error.node_name == "negate"
    assert "declares 5" in error.message and "gives 3" in error.message


def test_incompatible_broadcast_is_a_diagnostic_naming_the_node():
    a, b = tensor("a", F, [3]), tensor("b", F, [4])
    result = infer(model([a, b], ["c"], [node("Add", [a, b], ["c"], name="adder")]))
    [error] = result.errors
    assert error.node_name == "adder" and "broadcast" in error.message


def test_strict_mode_raises_listing_the_conflicts():
    with pytest.raises(ferry.ShapeInferenceError) as raised:
        ferry.infer_shapes(_conflicting_model(), strict=True)
    assert "negate" in str(raised.value)
    assert len(raised.value.diagnostics) == 1
    ferry.infer_shapes(_conflicting_model())  # not strict: no exception


def test_checker_full_mode_reports_inference_conflicts():
    with pytest.raises(ferry.CheckError) as raised:
        ferry.check_model(_conflicting_model(), full=True)
    assert any(d.rule == "shape-conflict" for d in raised.value.diagnostics)
    ferry.check_model(_conflicting_model())  # structural checks alone pass


def test_declared_name_is_kept_where_inference_only_knows_a_fresh_dim():
    x, target = tensor("x", F, ["batch", 6]), tensor("t", I64, [2])
    reshape = node("Reshape", [x, target], ["y"])
    y = out(reshape)
    y.type = TensorType(F, ["rows", None])
    m = infer_shapes(model([x, target], [y], [reshape]))
    dims = shape_of(m, "y")
    assert dims[0] == "rows" and dims[1].startswith("unk__")


def test_explain_shape_names_the_source_of_known_and_unknown_dims():
    text = ferry.explain_shape(_flatten_batch_model(), "y")
    assert "dim 0 = batch" in text and "graph input 'x'" in text
    assert "Reshape" in text
    x, target = tensor("x", F, ["batch", 6]), tensor("t", I64, [2])
    unknown = model([x, target], ["y"], [node("Reshape", [x, target], ["y"], name="reshaper")])
    text = ferry.explain_shape(unknown, "y")
    assert "unknown, introduced by node 'reshaper' (Reshape)" in text


def test_if_branches_are_inferred():
    cond, x = tensor("cond", DataType.BOOL, []), tensor("x", F, ["batch", 4])
    then_neg = node("Neg", [x], ["then_out"])
    else_abs = node("Abs", [x], ["else_out"])
    then_graph = Graph([], [out(then_neg)], [then_neg], name="then")
    else_graph = Graph([], [out(else_abs)], [else_abs], name="else")
    branch = Node("If", [cond], [Attribute.infer("then_branch", then_graph),
                                 Attribute.infer("else_branch", else_graph)],
                  outputs=[Value("y")], name="branch")
    m = infer_shapes(model([cond, x], ["y"], [branch]))
    assert shape_of(m, "y") == ["batch", 4]
    assert shape_of(m, "then_out") == ["batch", 4]


def _function_model():
    fx = Value("fx")
    body_neg = node("Neg", [fx], ["fn"])
    body_t = node("Transpose", [out(body_neg)], ["fy"])
    body = Graph([fx], [out(body_t)], [body_neg, body_t], name="body")
    function = Function("local", "NegT", body, opset_imports={"": 18})
    x = tensor("x", F, ["batch", 3])
    call = Node("NegT", [x], domain="local", outputs=[Value("y")], name="call")
    m = model([x], ["y"], [call], functions=[function])
    m.opset_imports["local"] = 1
    return m


def test_local_function_calls_are_inferred_through_the_body():
    m = infer_shapes(_function_model())
    assert shape_of(m, "y") == [3, "batch"]
    assert value_named(m, "fn").shape == ["batch", 3]  # one call site: its types are kept


def test_value_info_is_written_and_onnx_accepts_the_saved_model(tmp_path):
    m = infer_shapes(_flatten_batch_model())
    assert {"s", "b", "b1", "target"} <= set(m.graph.value_info_order)
    path = tmp_path / "inferred.onnx"
    ferry.save(m, path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    infos = {v.name: v for v in proto.graph.value_info}
    dims = infos["target"].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [2]
    [y] = proto.graph.output
    assert [d.dim_param or d.dim_value for d in y.type.tensor_type.shape.dim] == ["batch", "seq*2"]


def test_no_operator_has_two_rules_for_one_version():
    assert duplicate_rules() == []


def test_every_operator_the_runtime_runs_has_a_rule_from_its_first_version():
    import ferry.runtime.kernels  # noqa: F401  (registers the kernels)
    from ferry.runtime.registry import registered_ops
    from ferry.shapes import registered_rules

    rules = registered_rules()
    missing = [
        f"{domain or 'ai.onnx'}::{op} since {versions[0]}"
        for (domain, op), versions in registered_ops().items()
        if domain != "ferry.internal"
        and ((domain, op) not in rules or rules[(domain, op)][0] > versions[0])
    ]
    assert missing == []
