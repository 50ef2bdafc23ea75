"""FuseTransposes: Transpose pairs merge or cancel."""

from __future__ import annotations

from onnx import helper

from ferry.passes import FuseTransposes
from tests.passes.helpers import FLOAT, check_pass, make_model, op_counts, to_ferry


def _model(p1, p2, *, extra=(), outputs=None, out_shape=None):
    first = {"perm": p1} if p1 is not None else {}
    second = {"perm": p2} if p2 is not None else {}
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], **first),
        helper.make_node("Transpose", ["t"], ["u"], **second),
        helper.make_node("Neg", ["u"], ["y"]),
        *extra,
    ]
    outputs = outputs or [("y", FLOAT, out_shape or [2, 3, 4])]
    return make_model(nodes, [("x", FLOAT, [2, 3, 4])], outputs)


def test_inverse_permutations_cancel():
    rewritten = check_pass(_model([1, 2, 0], [2, 0, 1]), FuseTransposes())
    assert op_counts(rewritten) == {"Relu": 1, "Neg": 1}


def test_default_permutations_cancel():
    rewritten = check_pass(_model(None, None), FuseTransposes())
    assert op_counts(rewritten) == {"Relu": 1, "Neg": 1}


def test_merges_into_one_transpose():
    rewritten = check_pass(_model([0, 2, 1], [2, 0, 1], out_shape=[3, 2, 4]), FuseTransposes())
    assert op_counts(rewritten) == {"Relu": 1, "Transpose": 1, "Neg": 1}
    (transpose,) = [n for n in rewritten.graph if n.op_type == "Transpose"]
    assert transpose.attributes["perm"].value == [1, 0, 2]
    assert transpose.inputs[0].name == "r"


def test_inner_read_twice_merges_only_when_cancelling():
    extra = [helper.make_node("Abs", ["t"], ["z"])]
    keep = _model([0, 2, 1], [2, 0, 1], extra=extra, outputs=[("y", FLOAT, [3, 2, 4]), ("z", FLOAT, [2, 4, 3])])
    assert not FuseTransposes()(to_ferry(keep)).modified
    cancel = _model([0, 2, 1], [0, 2, 1], extra=extra, outputs=[("y", FLOAT, [2, 3, 4]), ("z", FLOAT, [2, 4, 3])])
    rewritten = check_pass(cancel, FuseTransposes())
    assert op_counts(rewritten)["Transpose"] == 1  # the inner one stays for Abs


def test_identity_between_input_and_output_becomes_one_transpose():
    model = make_model(
        [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]), helper.make_node("Transpose", ["t"], ["y"], perm=[1, 0])],
        [("x", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
    )
    rewritten = check_pass(model, FuseTransposes())
    assert op_counts(rewritten) == {"Transpose": 1}  # y must stay a computed output named y
    assert not FuseTransposes()(rewritten).modified


def test_lone_identity_permutation_is_removed():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Transpose", ["r"], ["y"], perm=[0, 1])],
        [("x", FLOAT, [2, 3])],
        [("y", FLOAT, [2, 3])],
    )
    assert op_counts(check_pass(model, FuseTransposes())) == {"Relu": 1}
