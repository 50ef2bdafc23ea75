"""Tests of ferry.checker: it accepts every conformance model onnx accepts, and rejects a
corpus of broken models with the right rule, naming the node, op and attribute at fault.

onnx is the oracle: each broken model is also given to ``onnx.checker.check_model``,
which must reject it too, except where ferry is deliberately stricter (``STRICTER``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper as h

import ferry.checker
from ferry.checker import Diagnostic, check_model
from ferry.errors import CheckError
from ferry.format import load, model_from_bytes, model_to_bytes, save
from ferry.ir import (
    ArrayTensor,
    Attribute,
    AttributeType,
    DataType,
    Graph,
    Model,
    Node,
    SparseTensor,
    TensorType,
    Value,
)
from tests import conformance_data

# -- helpers -------------------------------------------------------------------------------
X = h.make_tensor_value_info("x", TP.FLOAT, [2])
Y = h.make_tensor_value_info("y", TP.FLOAT, [2])
C = h.make_tensor_value_info("c", TP.BOOL, [])


def proto(nodes, inputs=None, outputs=None, inits=(), opset=(("", 13),), ir=8, name="main", funcs=()):
    graph = h.make_graph(
        nodes, name, [X] if inputs is None else inputs, [Y] if outputs is None else outputs, list(inits)
    )
    model = h.make_model(
        graph, opset_imports=[h.make_opsetid(d, v) for d, v in opset], functions=list(funcs)
    )
    model.ir_version = ir
    return model


def to_ferry(model: onnx.ModelProto) -> Model:
    return model_from_bytes(model.SerializeToString())


def onnx_accepts(model: onnx.ModelProto | Model) -> bool:
    if isinstance(model, Model):
        model = onnx.ModelProto.FromString(model_to_bytes(model))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError:
        return False
    return True


def errors_of(model) -> list[Diagnostic]:
    with pytest.raises(CheckError) as caught:
        check_model(model)
    assert caught.value.diagnostics, "CheckError without diagnostics"
    return [d for d in caught.value.diagnostics if d.severity == "error"]


def if_model(then_nodes, then_out="t", *, before=(), after=(), then_inputs=()):
    """An If whose then-branch is ``then_nodes`` (output ``then_out``) inside graph 'main'."""
    then = h.make_graph(
        then_nodes, "then", list(then_inputs), [h.make_tensor_value_info(then_out, TP.FLOAT, [2])]
    )
    other = h.make_graph(
        [h.make_node("Relu", ["x"], ["e"])], "else", [], [h.make_tensor_value_info("e", TP.FLOAT, [2])]
    )
    node = h.make_node("If", ["c"], ["y"], name="if0", then_branch=then, else_branch=other)
    return proto([*before, node, *after], inputs=[X, C])


def function_model(body, *, fopset=(("", 13),), mopset=(("", 13), ("local", 1)), attrs=(), fout=("b",), call_attrs=None):
    function = h.make_function(
        "local", "F", ["a"], list(fout), body, [h.make_opsetid(d, v) for d, v in fopset], list(attrs)
    )
    call = h.make_node("F", ["x"], ["y"], domain="local", name="call", **(call_attrs or {}))
    return proto([call], opset=mopset, funcs=[function])


def ref_attribute(name: str, kind: int, ref: str) -> onnx.AttributeProto:
    return onnx.AttributeProto(name=name, type=kind, ref_attr_name=ref)


def ir_model(nodes, inputs, outputs, inits=(), *, opsets=None, ir=10, name="main") -> Model:
    graph = Graph(inputs, outputs, nodes, inits, name=name)
    return Model(graph, ir_version=ir, opset_imports={"": 13} if opsets is None else opsets)


def fvalue(name: str, shape=(2,)) -> Value:
    return Value(name, TensorType(DataType.FLOAT, list(shape)))


# -- acceptance over the conformance data ---------------------------------------------------
@pytest.mark.parametrize("suite", conformance_data.SUITES)
def test_accepts_every_model_onnx_accepts(suite):
    failures = []
    checked = 0
    for case in conformance_data.cases(suite):
        try:
            onnx.checker.check_model(str(case.model_path))
        except onnx.checker.ValidationError:
            continue  # ferry may accept or reject what onnx rejects
        checked += 1
        try:
            check_model(case.model_path)
        except CheckError as error:
            failures.append(f"{case.id}: {error}")
    assert checked > 0
    assert not failures, f"{len(failures)} of {checked} models rejected:\n" + "\n".join(failures)


# -- the corpus of broken models ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Broken:
    id: str
    build: Callable[[], onnx.ModelProto | Model]
    rule: str
    mentions: tuple[str, ...]
    onnx: str = "rejects"  # "rejects" | "accepts" (ferry is stricter) | "n/a" (cannot encode)


def _conv(**attrs):
    x = h.make_tensor_value_info("x", TP.FLOAT, [1, 3, 4, 4])
    w = h.make_tensor("w", TP.FLOAT, [1, 3, 1, 1], [1.0, 1.0, 1.0])
    node = h.make_node("Conv", ["x", "w"], ["y"], name="conv1")
    node.attribute.extend(h.make_attribute(k, v) for k, v in attrs.items())
    return proto([node], inputs=[x], inits=[w])


def _undefined_dtype_constant():
    node = h.make_node("Constant", [], ["y"], name="k")
    node.attribute.append(onnx.AttributeProto(name="value", type=onnx.AttributeProto.UNDEFINED))
    return proto([node], inputs=[])


def _initializer_size_mismatch() -> Model:
    weights = ArrayTensor(np.ones(2, np.float32))
    weights.shape = (3,)  # the data holds 2 elements, the shape says 3
    w = Value("w", const_value=weights)
    x, y = fvalue("x"), fvalue("y")
    return ir_model([Node("Add", [x, w], outputs=[y], name="add")], [x], [y], [w])


def _empty_value_name() -> Model:
    x, y = fvalue("x"), fvalue("y")
    hidden = Value("")
    nodes = [Node("Relu", [x], outputs=[hidden], name="r0"), Node("Relu", [hidden], outputs=[y], name="r1")]
    return ir_model(nodes, [x], [y])


def _ints_holding_float() -> Model:
    x = fvalue("x", (1, 3, 4, 4))
    y = Value("y")
    w = Value("w", const_value=ArrayTensor(np.ones((1, 3, 1, 1), np.float32)))
    node = Node("Conv", [x, w], [Attribute("strides", AttributeType.INTS, 1.5)], outputs=[y], name="conv1")
    y.type = TensorType(DataType.FLOAT, [1, 1, 4, 4])
    return ir_model([node], [x], [y], [w])


def _no_opset_import() -> Model:
    x, y = fvalue("x"), fvalue("y")
    return ir_model([Node("Relu", [x], outputs=[y], name="r")], [x], [y], opsets={})


def _ir_version(version: int):
    return lambda: proto([h.make_node("Relu", ["x"], ["y"])], ir=version)


def _sparse_out_of_range():
    values = h.make_tensor("s", TP.FLOAT, [2], [1, 2])
    indices = h.make_tensor("si", TP.INT64, [2], [0, 9])
    model = proto([h.make_node("Add", ["x", "s"], ["y"])], inputs=[h.make_tensor_value_info("x", TP.FLOAT, [4])])
    model.graph.sparse_initializer.append(h.make_sparse_tensor(values, indices, [4]))
    return model


def _ref_outside_function():
    node = h.make_node("Cast", ["x"], ["y"], name="cast")
    node.attribute.append(ref_attribute("to", onnx.AttributeProto.INT, "to"))
    return proto([node])


def _recursive_function():
    return function_model([h.make_node("F", ["a"], ["b"], domain="local")], fopset=(("", 13), ("local", 1)))


CORPUS = [
    Broken("wrong-attribute-type", lambda: _conv(strides=1.0), "attribute-type", ("node 0 'conv1' (Conv)", "'strides'", "FLOAT", "INTS")),
    Broken("missing-required-attribute", lambda: proto([h.make_node("Cast", ["x"], ["y"], name="cast")]), "missing-attribute", ("(Cast)", "'to'")),
    Broken("unknown-attribute", lambda: _conv(foo=1), "unknown-attribute", ("'conv1'", "'foo'", "Conv")),
    Broken("attribute-without-value", _undefined_dtype_constant, "attribute-value", ("(Constant)", "'value'", "no value")),
    Broken("undefined-input", lambda: proto([h.make_node("Add", ["x", "q"], ["y"], name="add")]), "undefined-input", ("'add' (Add)", "'q'")),
    Broken("bad-order", lambda: proto([h.make_node("Relu", ["t"], ["y"], name="late"), h.make_node("Relu", ["x"], ["t"], name="early")]), "not-topological", ("'late' (Relu)", "'t'", "'early'")),
    Broken("cycle", lambda: proto([h.make_node("Add", ["x", "b"], ["a"], name="n0"), h.make_node("Relu", ["a"], ["b"], name="n1"), h.make_node("Relu", ["a"], ["y"])]), "not-topological", ("'n0' (Add)", "'b'", "'n1'")),
    Broken("reads-own-output", lambda: proto([h.make_node("Add", ["x", "y"], ["y"], name="selfish")]), "not-topological", ("'selfish'", "'y'", "own output")),
    Broken("duplicate-node-output", lambda: proto([h.make_node("Relu", ["x"], ["y"], name="a"), h.make_node("Relu", ["x"], ["y"], name="b")]), "duplicate-output", ("node 1 'b' (Relu)", "'y'", "node 0 'a'")),
    Broken("output-redefines-input", lambda: proto([h.make_node("Relu", ["x"], ["x"], name="r")], outputs=[X]), "duplicate-output", ("'r' (Relu)", "'x'", "graph input")),
    Broken("unknown-op", lambda: proto([h.make_node("Relux", ["x"], ["y"], name="r")]), "unknown-op", ("(Relux)", "'Relux'", "did you mean 'Relu'")),
    Broken("op-newer-than-opset", lambda: proto([h.make_node("Gelu", ["x"], ["y"], name="g")]), "unknown-op", ("'g' (Gelu)", "opset 20", "opset 13")),
    Broken("deprecated-op", lambda: proto([h.make_node("Upsample", ["x", "s"], ["y"], name="up")], inputs=[X, h.make_tensor_value_info("s", TP.FLOAT, [1])], opset=(("", 10),)), "deprecated-op", ("'up' (Upsample)", "deprecated")),
    Broken("too-many-inputs", lambda: proto([h.make_node("Relu", ["x", "x"], ["y"], name="r")]), "input-count", ("'r' (Relu)", "exactly 1 input", "found 2")),
    Broken("too-few-inputs", lambda: proto([h.make_node("Add", ["x"], ["y"], name="add")]), "input-count", ("'add' (Add)", "exactly 2 inputs", "found 1")),
    Broken("too-many-outputs", lambda: proto([h.make_node("Relu", ["x"], ["y", "z"], name="r")]), "output-count", ("'r' (Relu)", "found 2")),
    Broken("required-input-omitted", lambda: proto([h.make_node("Add", ["x", ""], ["y"], name="add")]), "missing-input", ("'add' (Add)", "input 1", "'B'")),
    Broken("required-output-omitted", lambda: proto([h.make_node("Relu", ["x"], [""], name="r")], outputs=[]), "missing-output", ("'r' (Relu)", "output 0")),
    Broken("initializer-size", _initializer_size_mismatch, "initializer-size", ("'w'", "2 elements", "[3]")),
    Broken("subgraph-reads-nothing", lambda: if_model([h.make_node("Relu", ["q"], ["t"], name="inner")]), "subgraph-reference", ("graph 'then'", "'then_branch'", "'if0' (If)", "'inner' (Relu)", "'q'")),
    Broken("subgraph-reads-later-value", lambda: if_model([h.make_node("Relu", ["z"], ["t"])], after=[h.make_node("Relu", ["x"], ["z"], name="later")]), "subgraph-reference", ("graph 'then'", "'z'", "'later'")),
    Broken("subgraph-shadows-outer-name", lambda: if_model([h.make_node("Relu", ["x"], ["c"], name="inner")], then_out="c"), "duplicate-output", ("'inner' (Relu)", "'c'", "enclosing graph 'main'")),
    Broken("subgraph-outputs-outer-value", lambda: if_model([], then_out="x"), "graph-io", ("graph 'then'", "'x'", "enclosing graph 'main'")),
    Broken("missing-opset-import", _no_opset_import, "opset-import", ("requires opset_import",)),
    Broken("domain-not-imported", lambda: proto([h.make_node("Foo", ["x"], ["y"], domain="com.foo", name="f")]), "opset-import", ("'f' (com.foo::Foo)", "'com.foo'")),
    Broken("opset-import-before-ir3", lambda: proto([h.make_node("Relu", ["x"], ["y"])], ir=2), "opset-import", ("ir_version 2",)),
    Broken("opset-newer-than-known", lambda: proto([h.make_node("Relu", ["x"], ["y"])], opset=(("", 99),)), "opset-import", ("opset 99", "newer than ferry knows"), onnx="accepts"),
    Broken("ir-version-unset", _ir_version(0), "ir-version", ("ir_version is 0",)),
    Broken("ir-version-unknown", _ir_version(15), "ir-version", ("ir_version 15", "newer")),
    Broken("duplicate-graph-input", lambda: proto([h.make_node("Relu", ["x"], ["y"])], inputs=[X, X]), "duplicate-name", ("graph 'main'", "'x'")),
    Broken("duplicate-initializer", lambda: proto([h.make_node("Add", ["x", "w"], ["y"])], inits=[h.make_tensor("w", TP.FLOAT, [2], [1, 2])] * 2), "duplicate-name", ("initializer 'w'",)),
    Broken("initializer-not-input-ir3", lambda: proto([h.make_node("Add", ["x", "w"], ["y"])], inits=[h.make_tensor("w", TP.FLOAT, [2], [1, 2])], ir=3), "initializer-input", ("'w'", "ir_version 3")),
    Broken("graph-output-undefined", lambda: proto([h.make_node("Relu", ["x"], ["y"])], outputs=[Y, h.make_tensor_value_info("z", TP.FLOAT, [2])]), "graph-io", ("graph 'main'", "graph output 'z'")),
    Broken("graph-input-untyped", lambda: proto([h.make_node("Relu", ["x"], ["y"])], inputs=[onnx.ValueInfoProto(name="x")]), "graph-io", ("graph input 'x'", "no type")),
    Broken("graph-unnamed", lambda: proto([h.make_node("Relu", ["x"], ["y"])], name=""), "graph-name", ("no name",)),
    Broken("node-without-io", lambda: proto([h.make_node("Relu", ["x"], ["y"]), h.make_node("Constant", [], [], name="k", value=h.make_tensor("t", TP.FLOAT, [1], [1.0]))]), "empty-node", ("'k' (Constant)",)),
    Broken("sparse-index-out-of-range", _sparse_out_of_range, "sparse-initializer", ("'s'", "out of range")),
    Broken("ref-attr-outside-function", _ref_outside_function, "attribute-ref", ("'cast' (Cast)", "'to'", "outside any function"), onnx="accepts"),
    Broken("function-unknown-op", lambda: function_model([h.make_node("Relux", ["a"], ["b"], name="inner")]), "unknown-op", ("function 'local::F'", "'inner' (Relux)")),
    Broken("function-undefined-input", lambda: function_model([h.make_node("Relu", ["q"], ["b"])]), "undefined-input", ("function 'local::F'", "'q'", "function input")),
    Broken("function-duplicate-output", lambda: function_model([h.make_node("Relu", ["a"], ["b"]), h.make_node("Relu", ["a"], ["b"])]), "duplicate-output", ("function 'local::F'", "'b'")),
    Broken("function-opset-differs", lambda: function_model([h.make_node("Relu", ["a"], ["b"])], fopset=(("", 14),)), "opset-import", ("function 'local::F'", "Relu-14", "Relu-13")),
    Broken("function-recursive", _recursive_function, "function", ("local::F -> local::F",)),
    Broken("function-ref-wrong-type", lambda: function_model([_cast_ref(onnx.AttributeProto.FLOAT)], attrs=["to"], call_attrs={"to": 1}), "attribute-type", ("function 'local::F'", "(Cast)", "'to'", "FLOAT", "INT")),
    Broken("function-output-undefined", lambda: function_model([h.make_node("Relu", ["a"], ["c"])]), "graph-io", ("function 'local::F'", "'b'"), onnx="accepts"),
    Broken("empty-value-name", _empty_value_name, "value-name", ("'r0' (Relu)", "empty name")),
    Broken("attribute-value-wrong-python-type", _ints_holding_float, "attribute-value", ("'conv1' (Conv)", "'strides'", "INTS", "float"), onnx="n/a"),
]


def _cast_ref(kind: int) -> onnx.NodeProto:
    node = h.make_node("Cast", ["a"], ["b"])
    node.attribute.append(ref_attribute("to", kind, "to"))
    return node


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 30
    assert len({case.id for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.id)
def test_broken_model_is_rejected(case: Broken):
    built = case.build()
    model = to_ferry(built) if isinstance(built, onnx.ModelProto) else built
    errors = errors_of(model)
    matching = [d for d in errors if d.rule == case.rule]
    assert matching, f"expected rule {case.rule!r}, got:\n" + "\n".join(map(str, errors))
    text = str(matching[0])
    for fragment in case.mentions:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert text.endswith(f"[{case.rule}]")


@pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.id)
def test_onnx_agrees_on_broken_model(case: Broken):
    """onnx rejects the model too, except where ferry is documented to be stricter."""
    if case.onnx == "n/a":
        pytest.skip("not expressible as an ONNX protobuf")
    assert onnx_accepts(case.build()) == (case.onnx == "accepts")


# -- reporting -------------------------------------------------------------------------------
def test_all_problems_are_reported_in_one_error():
    model = proto(
        [
            h.make_node("Relux", ["x"], ["a"], name="n0"),
            h.make_node("Add", ["a", "q"], ["b"], name="n1"),
            h.make_node("Relu", ["b"], ["b"], name="n2"),
            h.make_node("Flatten", ["b"], ["y"], name="n3", axis=1.5),
        ]
    )
    with pytest.raises(CheckError) as caught:
        check_model(to_ferry(model))
    error = caught.value
    rules = [d.rule for d in error.diagnostics]
    assert rules == ["unknown-op", "undefined-input", "duplicate-output", "attribute-type"]
    lines = str(error).splitlines()
    assert len(lines) == 1 + len(error.diagnostics)
    for diagnostic, line in zip(error.diagnostics, lines[1:]):
        assert line.strip() == str(diagnostic)
    assert [d.node_index for d in error.diagnostics] == [0, 1, 2, 3]


def test_diagnostic_fields_and_format():
    [diagnostic] = errors_of(to_ferry(_conv(strides=1.0)))
    assert diagnostic.rule == "attribute-type"
    assert diagnostic.severity == "error"
    assert (diagnostic.graph, diagnostic.node_index, diagnostic.node_name, diagnostic.op_type) == (
        "main", 0, "conv1", "Conv"
    )
    assert str(diagnostic) == (
        "graph 'main', node 0 'conv1' (Conv): attribute 'strides' has type FLOAT, "
        "expected INTS [attribute-type]"
    )


def test_model_level_diagnostic_has_no_location():
    [diagnostic] = errors_of(to_ferry(_ir_version(15)()))
    assert (diagnostic.graph, diagnostic.node_index, diagnostic.op_type) == (None, None, None)
    assert str(diagnostic).startswith("model: ")


def test_unimported_domain_is_reported_once_per_domain():
    nodes = [h.make_node("Foo", ["x"], ["a"], domain="com.foo"), h.make_node("Bar", ["a"], ["y"], domain="com.foo")]
    [diagnostic] = errors_of(to_ferry(proto(nodes)))
    assert diagnostic.rule == "opset-import" and "2 nodes" in diagnostic.message
    assert diagnostic.node_index == 0


# -- accepted models and notes -----------------------------------------------------------------
def test_valid_model_returns_no_notes():
    assert check_model(to_ferry(proto([h.make_node("Relu", ["x"], ["y"])]))) == []


def test_model_built_with_the_ir_is_accepted():
    x, y, hidden = fvalue("x"), fvalue("y"), Value("h")
    w = Value("w", const_value=ArrayTensor(np.ones(2, np.float32)))
    nodes = [Node("Add", [x, w], outputs=[hidden], name="add"), Node("Relu", [hidden], outputs=[y], name="relu")]
    assert check_model(ir_model(nodes, [x], [y], [w])) == []


def test_accepts_path_and_bytes(tmp_path):
    model = proto([h.make_node("Relu", ["x"], ["y"])])
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    assert check_model(path) == []
    assert check_model(str(path)) == []
    assert check_model(model.SerializeToString()) == []
    with pytest.raises(CheckError):
        check_model(proto([h.make_node("Relux", ["x"], ["y"])]).SerializeToString())


def test_exposed_on_the_package():
    assert ferry.checker.check_model is check_model


def test_custom_domain_is_an_info_note():
    nodes = [h.make_node("Foo", ["x"], ["a"], domain="com.foo", name="f"), h.make_node("Foo", ["a"], ["y"], domain="com.foo")]
    model = proto(nodes, opset=(("", 13), ("com.foo", 1)))
    assert onnx_accepts(model)
    [note] = check_model(to_ferry(model))
    assert (note.rule, note.severity, note.node_name) == ("custom-domain", "info", "f")
    assert "'com.foo'" in note.message and "Foo x2" in note.message
    assert str(note).startswith("info: ")


def test_model_local_function_is_not_a_custom_domain():
    assert check_model(to_ferry(function_model([h.make_node("Relu", ["a"], ["b"])]))) == []


def test_function_call_mismatches_are_warnings():
    function = h.make_function("local", "F", ["a"], ["b"], [h.make_node("Relu", ["a"], ["b"])], [h.make_opsetid("", 13)])
    call = h.make_node("F", ["x", "x"], ["y"], domain="local", extra=1)
    model = proto([call], opset=(("", 13), ("local", 1)), funcs=[function])
    assert onnx_accepts(model)
    notes = check_model(to_ferry(model))
    assert [(n.rule, n.severity) for n in notes] == [("function-call", "warning")] * 2


def test_function_reference_to_undeclared_attribute_is_a_warning():
    model = function_model([_cast_ref(onnx.AttributeProto.INT)], attrs=[], call_attrs=None)
    assert onnx_accepts(model)
    [note] = check_model(to_ferry(model))
    assert (note.rule, note.severity) == ("attribute-ref", "warning")


def test_function_reference_to_declared_attribute_is_fine():
    model = function_model([_cast_ref(onnx.AttributeProto.INT)], attrs=["to"], call_attrs={"to": 1})
    assert check_model(to_ferry(model)) == []


def test_unknown_op_of_a_preview_domain_is_a_warning():
    model = proto([h.make_node("Foo", ["x"], ["y"], domain="ai.onnx.preview.training")], opset=(("", 13), ("ai.onnx.preview.training", 1)))
    assert onnx_accepts(model)
    [note] = check_model(to_ferry(model))
    assert (note.rule, note.severity) == ("unknown-op", "warning")


def test_full_flag_runs_shape_inference_and_finds_nothing_in_a_valid_model():
    model = to_ferry(proto([h.make_node("Relu", ["x"], ["y"])]))
    assert check_model(model, full=True) == []


@pytest.mark.parametrize(
    "build",
    [
        lambda: proto([h.make_node("Relu", ["x"], ["y"])], ir=2, opset=()),  # IR 2: ai.onnx 1 implied
        lambda: proto([h.make_node("Relu", ["x"], ["y"])], opset=(("ai.onnx", 13),)),
        lambda: if_model([h.make_node("Relu", ["z"], ["t"])], before=[h.make_node("Relu", ["x"], ["z"])]),
        lambda: if_model([h.make_node("Relu", ["x"], ["t"])], then_inputs=[X]),  # subgraph input shadows
        lambda: if_model([h.make_node("Relu", ["x"], ["z"])], then_out="z", after=[h.make_node("Relu", ["x"], ["z"])]),
        lambda: proto([h.make_node("Dropout", ["x"], ["y", ""])]),  # omitted optional output
        lambda: proto([h.make_node("Clip", ["x", "", ""], ["y"])]),  # omitted optional inputs
        lambda: proto([], outputs=[X]),  # graph output is a graph input
        lambda: proto([h.make_node("Relu", ["x"], ["y"])], outputs=[Y, Y]),  # repeated graph output
        lambda: function_model([h.make_node("Abs", ["a"], ["b"])], fopset=(("", 14),)),  # same Abs version
    ],
    ids=["ir2", "ai.onnx-alias", "outer-read", "shadow-input", "shadow-later", "opt-out", "opt-in", "io", "dup-out", "fn-compat"],
)
def test_edge_cases_onnx_accepts(build):
    model = build()
    assert onnx_accepts(model)
    assert [d for d in check_model(to_ferry(model)) if d.severity == "error"] == []


def test_external_data_length_is_checked_without_loading(tmp_path):
    x, y = fvalue("x", (1024,)), fvalue("y", (1024,))
    w = Value("w", const_value=ArrayTensor(np.ones(1024, np.float32)))
    model = ir_model([Node("Add", [x, w], outputs=[y], name="add")], [x], [y], [w])
    path = tmp_path / "m.onnx"
    save(model, path, external_data=True)
    loaded = load(path)
    tensor = loaded.graph.initializers["w"].const_value
    assert hasattr(tensor, "length")
    assert check_model(loaded) == []
    assert not tensor.is_loaded
    tensor.length = 16
    [diagnostic] = errors_of(loaded)
    assert diagnostic.rule == "initializer-size" and "16 bytes" in diagnostic.message


def test_sparse_initializer_is_a_defined_name():
    values = ArrayTensor(np.ones(2, np.float32), name="s")
    indices = ArrayTensor(np.array([0, 3], np.int64))
    x, y = fvalue("x", (4,)), fvalue("y", (4,))
    s = Value("s")
    model = ir_model([Node("Add", [x, s], outputs=[y])], [x], [y])
    model.graph.sparse_initializers.append(SparseTensor(values, indices, (4,)))
    assert check_model(model) == []
