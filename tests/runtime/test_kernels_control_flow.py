"""Control flow, sequence and optional kernels: official node cases plus edge cases."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from ferry.runtime.registry import lookup, registered_ops
from tests.conformance_data import cases
from tests.runtime.conformance_runner import run_case as run_conformance_case
from tests.runtime.node_harness import cases_for, run_case, run_graph

OPS = {
    "If", "Loop", "Scan",
    "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert",
    "SequenceLength", "SequenceMap", "SplitToSequence", "ConcatFromSequence",
    "Optional", "OptionalGetElement", "OptionalHasElement",
}  # fmt: skip
# bodies use ops of every family; a case is ours when it uses at least one of OPS
ALL_OPS = OPS | {op for (_, op) in registered_ops()}

SKIPS: dict[str, str] = {}


def _cases() -> list[str]:
    from tests.runtime.node_harness import _case_ops

    ops = _case_ops()
    return [name for name in cases_for(ALL_OPS) if ops[name] & OPS]


@pytest.mark.parametrize("name", _cases())
def test_node_case(name):
    if name in SKIPS:
        pytest.skip(SKIPS[name])
    run_case(name)


@pytest.mark.parametrize(
    "case",
    [c for c in cases("simple") if c.name.startswith("test_sequence_model")],
    ids=lambda c: c.name,
)
def test_simple_sequence_models(case):
    run_conformance_case(case)


# -- graph building helpers ----------------------------------------------------------------------
def tensor(name, elem=T.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def sequence(name, elem=T.FLOAT):
    return helper.make_tensor_sequence_value_info(name, elem, None)


def untyped(name):
    return helper.make_value_info(name, onnx.TypeProto())


def const(name, value):
    return helper.make_node(
        "Constant", [], [name], value=numpy_helper.from_array(np.asarray(value))
    )


def body(nodes, inputs, outputs):
    return helper.make_graph(nodes, "body", inputs, outputs)


def run(nodes, feeds, outputs, opset=18):
    """Run ``nodes`` as a model: ``feeds`` is a list of (value_info, value), outputs are names."""
    graph = helper.make_graph(nodes, "g", [vi for vi, _ in feeds], [untyped(n) for n in outputs])
    return run_graph(graph, {"": opset}, {}, [value for _, value in feeds])


def call(op, opset, *inputs, **attributes):
    """Call the kernel in force at ``opset`` directly (no subgraph context needed)."""
    return lookup("", op, opset)(*inputs, **attributes)


F = np.float32


# -- If ----------------------------------------------------------------------------------------
def test_if_branches_carry_sequences_and_empty_optionals():
    seq_type = helper.make_sequence_type_proto(helper.make_tensor_type_proto(T.FLOAT, None))
    then = body([helper.make_node("SequenceConstruct", ["x", "x"], ["s"])], [], [untyped("s")])
    other = body([helper.make_node("Optional", [], ["s"], type=seq_type)], [], [untyped("s")])
    node = helper.make_node("If", ["c"], ["out"], then_branch=then, else_branch=other)
    x = np.arange(3, dtype=F)
    feeds = [(tensor("c", T.BOOL, [1]), np.array([True])), (tensor("x"), x)]
    (got,) = run([node], feeds, ["out"])
    assert isinstance(got, list) and len(got) == 2 and got[0].dtype == F
    feeds[0] = (feeds[0][0], np.array([False]))
    assert run([node], feeds, ["out"]) == [None]


def test_if_opset_1_and_multi_outputs():
    then = body([const("a", 1.0), const("b", np.int64(2))], [], [untyped("a"), untyped("b")])
    other = body([const("a", 3.0), const("b", np.int64(4))], [], [untyped("a"), untyped("b")])
    node = helper.make_node("If", ["c"], ["a", "b"], then_branch=then, else_branch=other)
    a, b = run([node], [(tensor("c", T.BOOL, []), np.array(False))], ["a", "b"], opset=1)
    assert a == 3.0 and b.dtype == np.int64 and b == 4


def test_if_rejects_multi_element_condition():
    then = body([const("a", 1.0)], [], [untyped("a")])
    node = helper.make_node("If", ["c"], ["a"], then_branch=then, else_branch=then)
    with pytest.raises(ValueError, match="exactly one element"):
        run([node], [(tensor("c", T.BOOL, [2]), np.array([True, False]))], ["a"])


# -- Loop --------------------------------------------------------------------------------------
def _counting_body(condition_nodes):
    """Body (i, cond, x) -> (cond_out, x + 1, x + 1 as scan output, i as scan output)."""
    nodes = [const("one", F(1)), helper.make_node("Add", ["x", "one"], ["y"]),
             helper.make_node("Identity", ["y"], ["s"]), helper.make_node("Identity", ["i"], ["t"]),
             *condition_nodes]  # fmt: skip
    inputs = [tensor("i", T.INT64, []), tensor("cin", T.BOOL, []), tensor("x", T.FLOAT, [])]
    outputs = [tensor("c", T.BOOL, []), tensor("y", T.FLOAT, []), tensor("s", T.FLOAT, []),
               tensor("t", T.INT64, [])]  # fmt: skip
    return body(nodes, inputs, outputs)


def test_loop_trip_count_without_cond_ignores_body_condition():
    # spec table, input (trip_count, ""): the body's condition output is ignored
    loop = helper.make_node("Loop", ["M", "", "x0"], ["xf", "ys", "is"],
                            body=_counting_body([const("c", False)]))  # fmt: skip
    feeds = [(tensor("M", T.INT64, []), np.array(4)), (tensor("x0", T.FLOAT, []), F(0))]
    xf, ys, iters = run([loop], feeds, ["xf", "ys", "is"])
    assert xf == 4 and xf.dtype == F
    np.testing.assert_array_equal(ys, np.array([1, 2, 3, 4], F))
    assert ys.dtype == F and iters.dtype == np.int64
    np.testing.assert_array_equal(iters, [0, 1, 2, 3])


def test_loop_while_condition_and_trip_count_limit():
    less = [const("three", F(3)), helper.make_node("Less", ["y", "three"], ["c"])]
    loop = helper.make_node(
        "Loop", ["M", "cond", "x0"], ["xf", "ys", "is"], body=_counting_body(less)
    )
    feeds = [(tensor("M", T.INT64, []), np.array(10)), (tensor("cond", T.BOOL, []), np.array(True)),
             (tensor("x0", T.FLOAT, []), F(0))]  # fmt: skip
    xf, ys, _ = run([loop], feeds, ["xf", "ys", "is"])
    assert xf == 3 and ys.tolist() == [1, 2, 3]
    feeds[0] = (feeds[0][0], np.array(2))
    assert run([loop], feeds, ["xf", "ys", "is"])[0] == 2
    while_loop = helper.make_node(
        "Loop", ["", "cond", "x0"], ["xf", "ys", "is"], body=_counting_body(less)
    )
    assert run([while_loop], feeds[1:], ["xf", "ys", "is"])[0] == 3


def test_loop_zero_iterations_keeps_declared_scan_dtype_and_shape():
    nodes = [helper.make_node("Identity", ["cin"], ["c"]), helper.make_node("Identity", ["v"], ["w"]),
             helper.make_node("Identity", ["v"], ["s"])]  # fmt: skip
    loop_body = body(
        nodes,
        [tensor("i", T.INT64, []), tensor("cin", T.BOOL, []), tensor("v", T.INT32, [2])],
        [tensor("c", T.BOOL, []), tensor("w", T.INT32, [2]), tensor("s", T.INT32, [2])],
    )
    loop = helper.make_node("Loop", ["M", "", "v0"], ["vf", "ss"], body=loop_body)
    v0 = np.array([5, 6], np.int32)
    vf, ss = run(
        [loop],
        [(tensor("M", T.INT64, []), np.array(0)), (tensor("v0", T.INT32, [2]), v0)],
        ["vf", "ss"],
    )
    np.testing.assert_array_equal(vf, v0)
    assert ss.shape == (0, 2) and ss.dtype == np.int32


def test_loop_needs_a_trip_count_or_a_condition():
    loop = helper.make_node(
        "Loop", ["", "", "x0"], ["xf", "ys", "is"], body=_counting_body([const("c", True)])
    )
    with pytest.raises(ValueError, match="never end"):
        run([loop], [(tensor("x0", T.FLOAT, []), F(0))], ["xf", "ys", "is"])


def test_loop_body_with_nested_if_reads_both_scopes():
    # if i is even add the outer value, else add the loop-local value
    then = body([helper.make_node("Add", ["x", "outer"], ["r"])], [], [untyped("r")])
    other = body([helper.make_node("Add", ["x", "local"], ["r"])], [], [untyped("r")])
    nodes = [const("two", np.int64(2)), const("zero", np.int64(0)), const("local", F(100)),
             helper.make_node("Mod", ["i", "two"], ["m"]), helper.make_node("Equal", ["m", "zero"], ["even"]),
             helper.make_node("If", ["even"], ["y"], then_branch=then, else_branch=other),
             helper.make_node("Identity", ["cin"], ["c"])]  # fmt: skip
    loop_body = body(nodes, [tensor("i", T.INT64, []), tensor("cin", T.BOOL, []), tensor("x", T.FLOAT, [])],
                     [tensor("c", T.BOOL, []), tensor("y", T.FLOAT, [])])  # fmt: skip
    loop = helper.make_node("Loop", ["M", "", "x0"], ["xf"], body=loop_body)
    feeds = [(tensor("M", T.INT64, []), np.array(3)), (tensor("x0", T.FLOAT, []), F(0)),
             (tensor("outer", T.FLOAT, []), F(1))]  # fmt: skip
    assert run([loop], feeds, ["xf"])[0] == 102


# -- Scan --------------------------------------------------------------------------------------
def _sum_body(state_shape, elem_shape):
    """Body (acc, x) -> (acc + x, acc + x as scan output)."""
    nodes = [
        helper.make_node("Add", ["acc", "x"], ["new"]),
        helper.make_node("Identity", ["new"], ["out"]),
    ]
    return body(nodes, [tensor("acc", T.FLOAT, state_shape), tensor("x", T.FLOAT, elem_shape)],
                [tensor("new", T.FLOAT, state_shape), tensor("out", T.FLOAT, state_shape)])  # fmt: skip


def test_scan_axes_and_directions():
    x = np.arange(6, dtype=F).reshape(2, 3)
    node = helper.make_node("Scan", ["init", "x"], ["final", "ys"], body=_sum_body([2], [2]), num_scan_inputs=1,
                            scan_input_axes=[1], scan_input_directions=[1], scan_output_axes=[-1],
                            scan_output_directions=[1])  # fmt: skip
    final, ys = run([node], [(tensor("init", T.FLOAT, [2]), np.zeros(2, F)), (tensor("x", T.FLOAT, [2, 3]), x)],
                    ["final", "ys"], opset=16)  # fmt: skip
    running = np.cumsum(x[:, ::-1], axis=1)  # reversed input: columns 2, 1, 0
    np.testing.assert_array_equal(final, x.sum(axis=1))
    np.testing.assert_array_equal(ys, running[:, ::-1])  # reversed output: last step first
    assert ys.dtype == F


def test_scan_zero_length_uses_declared_output_types():
    node = helper.make_node(
        "Scan", ["init", "x"], ["final", "ys"], body=_sum_body([2], [2]), num_scan_inputs=1
    )
    init = np.ones(2, F)
    final, ys = run([node], [(tensor("init", T.FLOAT, [2]), init), (tensor("x", T.FLOAT, [0, 2]), np.zeros((0, 2), F))],
                    ["final", "ys"], opset=11)  # fmt: skip
    np.testing.assert_array_equal(final, init)
    assert ys.shape == (0, 2) and ys.dtype == F


def test_scan_8_sequence_lens_directions_and_padding():
    x = np.arange(1, 7, dtype=F).reshape(2, 3, 1)
    node = helper.make_node("Scan", ["lens", "init", "x"], ["final", "ys"], body=_sum_body([1], [1]),
                            num_scan_inputs=1, directions=[1])  # fmt: skip
    feeds = [(tensor("lens", T.INT32, [2]), np.array([2, 3], np.int32)), (tensor("init", T.FLOAT, [2, 1]), np.zeros((2, 1), F)),
             (tensor("x", T.FLOAT, [2, 3, 1]), x)]  # fmt: skip
    final, ys = run([node], feeds, ["final", "ys"], opset=8)
    np.testing.assert_array_equal(final[:, 0], [1 + 2, 4 + 5 + 6])
    # batch 0 scans [2, 1] (reversed first two), padded with a zero; batch 1 scans [6, 5, 4]
    np.testing.assert_array_equal(ys[..., 0], [[2, 3, 0], [6, 11, 15]])


def test_scan_rejects_mismatched_scan_lengths():
    nodes = [
        helper.make_node("Add", ["a", "b"], ["s"]),
        helper.make_node("Identity", ["st"], ["st2"]),
    ]
    scan_body = body(nodes, [tensor("st"), tensor("a"), tensor("b")], [tensor("st2"), tensor("s")])
    node = helper.make_node(
        "Scan", ["init", "a", "b"], ["f", "s"], body=scan_body, num_scan_inputs=2
    )
    feeds = [
        (tensor("init"), np.zeros(1, F)),
        (tensor("a"), np.zeros(2, F)),
        (tensor("b"), np.zeros(3, F)),
    ]
    with pytest.raises(ValueError, match="different scan-axis lengths"):
        run([node], feeds, ["f", "s"], opset=11)


# -- sequences ---------------------------------------------------------------------------------
SEQ = [np.array([1, 2], np.int64), np.array([3], np.int64), np.array([4, 5, 6], np.int64)]


def test_sequence_at_erase_insert_length():
    assert call("SequenceAt", 11, SEQ, np.array(-1)).tolist() == [4, 5, 6]
    with pytest.raises(ValueError, match="out of range"):
        call("SequenceAt", 11, SEQ, np.array(3, np.int32))
    assert [s.tolist() for s in call("SequenceErase", 11, SEQ)] == [[1, 2], [3]]
    assert [s.tolist() for s in call("SequenceErase", 11, SEQ, np.array(0))] == [[3], [4, 5, 6]]
    inserted = call("SequenceInsert", 11, SEQ, np.array([9], np.int64), np.array(3))
    assert [s.tolist() for s in inserted] == [[1, 2], [3], [4, 5, 6], [9]]
    front = call("SequenceInsert", 11, SEQ, np.array([9], np.int64), np.array(-3))
    assert front[0].tolist() == [9] and len(SEQ) == 3  # the input sequence is untouched
    with pytest.raises(TypeError, match="does not match"):
        call("SequenceInsert", 11, SEQ, np.array([9.0], F))
    length = call("SequenceLength", 11, SEQ)
    assert length.dtype == np.int64 and length.shape == () and length == 3
    assert call("SequenceEmpty", 11, dtype=int(T.INT8)) == []


def test_split_to_sequence_variants():
    x = np.arange(10, dtype=F).reshape(5, 2)
    parts = call("SplitToSequence", 11, x, np.array(2), axis=0, keepdims=1)
    assert [p.shape for p in parts] == [(2, 2), (2, 2), (1, 2)]
    parts = call("SplitToSequence", 24, x, None, axis=-1, keepdims=0)
    assert [p.shape for p in parts] == [(5,), (5,)]
    parts = call("SplitToSequence", 11, x, np.array([1, 4]), axis=0, keepdims=0)  # keepdims ignored
    assert [p.shape for p in parts] == [(1, 2), (4, 2)]
    with pytest.raises(ValueError, match="sum to 5"):
        call("SplitToSequence", 11, x, np.array([1, 2]), axis=0, keepdims=1)


def test_concat_from_sequence_new_axis():
    seq = [np.ones((2, 3), F), np.zeros((2, 3), F)]
    assert call("ConcatFromSequence", 11, seq, axis=-1, new_axis=1).shape == (2, 3, 2)
    assert call("ConcatFromSequence", 11, seq, axis=-1, new_axis=0).shape == (2, 6)
    with pytest.raises(ValueError, match="out of range"):
        call("ConcatFromSequence", 11, seq, axis=2, new_axis=0)
    with pytest.raises(ValueError, match="non-empty"):
        call("ConcatFromSequence", 11, [], axis=0, new_axis=0)


def _map_node():
    map_body = body([helper.make_node("Add", ["a", "b"], ["c"]), helper.make_node("Shape", ["c"], ["d"])],
                    [tensor("a"), tensor("b")], [tensor("c"), tensor("d", T.INT64)])  # fmt: skip
    return helper.make_node("SequenceMap", ["s", "extra"], ["c", "d"], body=map_body)


def test_sequence_map_lockstep_tensor_and_empty():
    node = _map_node()
    seq = [np.ones(2, F), np.ones(3, F)]
    c, d = run(
        [node],
        [(sequence("s"), seq), (sequence("extra"), [np.full(2, 2, F), np.full(3, 3, F)])],
        ["c", "d"],
    )
    assert [v.tolist() for v in c] == [[3, 3], [4, 4, 4]] and [v.tolist() for v in d] == [[2], [3]]
    c, _ = run([node], [(sequence("s"), seq), (tensor("extra", T.FLOAT, []), F(5))], ["c", "d"])
    assert [v.tolist() for v in c] == [[6, 6], [6, 6, 6]]
    assert run([node], [(sequence("s"), []), (tensor("extra", T.FLOAT, []), F(5))], ["c", "d"]) == [
        [],
        [],
    ]
    with pytest.raises(ValueError, match="differ in length"):
        run([node], [(sequence("s"), seq), (sequence("extra"), [np.ones(2, F)])], ["c", "d"])


# -- optionals ---------------------------------------------------------------------------------
def test_optional_kernels():
    x = np.array([1.0], F)
    assert call("Optional", 15, x, type=None) is x
    assert call("Optional", 15, None, type=onnx.TypeProto()) is None
    assert call("OptionalHasElement", 18, None).tolist() is False
    has = call("OptionalHasElement", 15, [x])
    assert has.dtype == np.bool_ and has.shape == () and bool(has)
    assert call("OptionalGetElement", 18, x) is x
    with pytest.raises(ValueError, match="empty optional"):
        call("OptionalGetElement", 15, None)


def test_scan_8_empty_sequence_keeps_initial_state():
    x = np.arange(1, 5, dtype=F).reshape(2, 2, 1)
    node = helper.make_node(
        "Scan", ["lens", "init", "x"], ["final", "ys"], body=_sum_body([1], [1]), num_scan_inputs=1
    )
    feeds = [
        (tensor("lens", T.INT32, [2]), np.array([0, 2], np.int32)),
        (tensor("init", T.FLOAT, [2, 1]), np.full((2, 1), 7, F)),
        (tensor("x", T.FLOAT, [2, 2, 1]), x),
    ]
    final, ys = run([node], feeds, ["final", "ys"], opset=8)
    np.testing.assert_array_equal(final[:, 0], [7, 7 + 3 + 4])
    np.testing.assert_array_equal(ys[..., 0], [[0, 0], [10, 14]])
    assert ys.dtype == F
