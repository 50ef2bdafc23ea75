"""Shape rules for control flow, sequences, optionals, indexing, sorting, detection,
strings, random, signal, image and training operators.

Each model has symbolic input dims; its outputs' inferred types are checked against what
ferry's runtime produces on concrete data (input symbols bound to the fed sizes, a fresh
``unk__N`` bound on first use and then consistent), and against dims worked out by hand
from the operator's definition.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import ferry
from ferry.ir import DataType, OptionalType, SequenceType, TensorType, from_numpy_dtype
from ferry.shapes import infer
from ferry.shapes.expr import Expr, from_dim

RNG = np.random.default_rng(7)


# -- building and checking ---------------------------------------------------------------------
def tensor(name, elem=T.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def untyped(name):
    return helper.make_empty_tensor_value_info(name)


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def node(op, inputs, outputs, **attrs):
    name = f"{op}_{outputs[0] if outputs else 'node'}"
    return helper.make_node(op, inputs, outputs, name=name, **attrs)


def graph(nodes, inputs, outputs, initializers=(), name="g"):
    outputs = [untyped(o) if isinstance(o, str) else o for o in outputs]
    return helper.make_graph(nodes, name, inputs, outputs, list(initializers))


def make(nodes, inputs, outputs, *, opset=21, initializers=(), domains=None):
    imports = [helper.make_opsetid("", opset)]
    imports += [helper.make_opsetid(d, v) for d, v in (domains or {}).items()]
    proto = helper.make_model(graph(nodes, inputs, outputs, initializers), opset_imports=imports)
    return ferry.model_from_bytes(proto.SerializeToString())


class Matcher:
    """Binds symbols to sizes and checks inferred dims against actual ones."""

    def __init__(self, bindings):
        self.bindings = dict(bindings)

    def dims(self, inferred, actual, label, *, persist=True):
        assert inferred is not None, f"{label}: rank unknown, the runtime gives {actual}"
        assert len(inferred) == len(actual), f"{label}: inferred {list(inferred)}, actual {actual}"
        for dim, size in zip(inferred, actual):
            expr = from_dim(dim)
            if expr is None:
                continue
            value = expr.substitute(self.bindings)
            if value.is_const:
                assert value.value == size, f"{label}: {dim} is {value.value}, actual {actual}"
            elif value.is_symbol and persist:
                self.bindings[str(value)] = size
            else:
                assert all(s.startswith("unk__") for s in value.symbols()), (
                    f"{label}: {dim} is not determined by the inputs, actual {actual}")

    def value(self, inferred, actual, label, *, persist=True):
        if isinstance(actual, list):
            assert isinstance(inferred, SequenceType), f"{label}: inferred {inferred}, got a sequence"
            for k, element in enumerate(actual):
                if inferred.elem_type is not None:
                    self.value(inferred.elem_type, element, f"{label}[{k}]", persist=False)
            return
        if isinstance(inferred, OptionalType):
            if actual is not None:
                self.value(inferred.elem_type, actual, f"{label} element", persist=persist)
            return
        array = np.asarray(actual)
        assert isinstance(inferred, TensorType), f"{label}: inferred {inferred}, got a tensor"
        dtype = DataType.STRING if array.dtype.kind in "OU" else from_numpy_dtype(array.dtype)
        assert inferred.dtype == dtype, f"{label}: inferred {inferred.dtype}, actual {dtype.name}"
        self.dims(inferred.shape, array.shape, label, persist=persist)


def input_bindings(model, feeds):
    bindings = {}
    for value in model.graph.inputs:
        shape = value.shape
        if value.name in feeds and shape is not None and not isinstance(feeds[value.name], list):
            for dim, size in zip(shape, np.shape(feeds[value.name])):
                if isinstance(dim, str):
                    bindings.setdefault(dim, size)
    return bindings


def inferred_model(model):
    result = infer(model)
    errors = [str(d) for d in result.diagnostics if d.severity == "error"]
    assert not errors, "\n".join(errors)
    return result.model


def check(model, feeds, expect=None, *, run=True):
    """Infer ``model``, compare with a run on ``feeds``, and with ``expect``:
    output name -> dims (ints, expression text, "?" for a fresh dim, "?x" for a fresh dim
    that must be the same wherever "?x" appears), or None for an unknown rank."""
    inferred = inferred_model(model)
    outputs = {v.name: v for v in inferred.graph.outputs}
    if run:
        session = ferry.InferenceSession(model, check=False)
        actual = session.run(None, feeds)
        matcher = Matcher(input_bindings(model, feeds))
        unknown_rank = {name for name, dims in (expect or {}).items() if dims is None}
        for value, got in zip(inferred.graph.outputs, actual):
            if value.name not in unknown_rank:
                matcher.value(value.type, got, f"output {value.name!r}")
    fresh: dict[str, Expr] = {}
    for name, dims in (expect or {}).items():
        type_ = outputs[name].type
        type_ = type_.elem_type if isinstance(type_, (SequenceType, OptionalType)) else type_
        shape = type_.shape
        if dims is None:
            assert shape is None, f"{name}: expected an unknown rank, inferred {shape}"
            continue
        assert shape is not None and len(shape) == len(dims), f"{name}: inferred {shape}, expected {dims}"
        for k, (got, want) in enumerate(zip(shape, dims)):
            expr = from_dim(got)
            if isinstance(want, str) and want.startswith("?"):
                assert expr is None or str(expr).startswith("unk__"), f"{name} dim {k}: {got} is not fresh"
                if len(want) > 1:
                    assert fresh.setdefault(want, expr) == expr, f"{name} dim {k}: {got} vs {fresh[want]}"
            else:
                assert expr == Expr.parse(str(want)), f"{name} dim {k}: inferred {got}, expected {want}"
    return inferred


def errors_of(model):
    return [d for d in infer(model).diagnostics if d.severity == "error"]


def floats(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# -- If ------------------------------------------------------------------------------------------
def _if_model(cond_const=None, else_rank3=False):
    then_g = graph([node("Add", ["x", "y"], ["t"])], [], ["t"], name="then")
    else_nodes = [node("Concat", ["x", "x"], ["e"], axis=0)]
    if else_rank3:
        else_nodes = [node("Unsqueeze", ["x", "zero"], ["e"])]
    else_g = graph(else_nodes, [], ["e"], name="else")
    inits = [const("zero", np.array([0]))]
    inputs = [tensor("x", shape=["N", 3]), tensor("y", shape=[1, 3])]
    if cond_const is None:
        inputs.append(tensor("c", T.BOOL, []))
    else:
        inits.append(const("c", np.array(cond_const)))
    nodes = [node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g)]
    return make(nodes, inputs, ["out"], initializers=inits)


@pytest.mark.parametrize("cond", [True, False])
def test_if_merges_branches(cond):
    feeds = {"x": floats(4, 3), "y": floats(1, 3), "c": np.array(cond)}
    check(_if_model(), feeds, {"out": ["?", 3]})


def test_if_rank_mismatch_gives_unknown_rank():
    model = _if_model(else_rank3=True)
    check(model, {"x": floats(2, 3), "y": floats(1, 3), "c": np.array(True)}, {"out": None})


@pytest.mark.parametrize("cond, dims", [(True, ["N", 3]), (False, ["2*N", 3])])
def test_if_constant_condition_picks_branch(cond, dims):
    check(_if_model(cond_const=cond), {"x": floats(5, 3), "y": floats(1, 3)}, {"out": dims})


def test_if_branch_type_clash_names_node():
    then_g = graph([node("Identity", ["x"], ["t"])], [], ["t"], name="then")
    else_g = graph([node("Cast", ["x"], ["e"], to=T.INT64)], [], ["e"], name="else")
    model = make([node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g)],
                 [tensor("x", shape=["N"]), tensor("c", T.BOOL, [])], ["out"])
    (error,) = errors_of(model)
    assert error.op_type == "If" and error.node_name == "If_out"
    assert "FLOAT" in error.message.upper() and "INT64" in error.message.upper()


# -- Loop ----------------------------------------------------------------------------------------
def _loop_body():
    """Carries a fixed [N, 3] sum and a growing [?, 3] stack; scans x * i; reads outer y."""
    nodes = [
        node("Identity", ["cond_in"], ["cond_out"]),
        node("Add", ["acc_in", "y"], ["acc_out"]),
        node("Concat", ["grow_in", "y"], ["grow_out"], axis=0),
        node("Cast", ["i"], ["i_float"], to=T.FLOAT),
        node("Mul", ["acc_in", "i_float"], ["scan_out"]),
    ]
    inputs = [tensor("i", T.INT64, []), tensor("cond_in", T.BOOL, []),
              tensor("acc_in"), tensor("grow_in")]
    return graph(nodes, inputs, ["cond_out", "acc_out", "grow_out", "scan_out"], name="body")


def _loop_model(trip_input, cond_input, extra_nodes=(), inits=(), inputs=()):
    loop = node("Loop", [trip_input, cond_input, "x", "x"], ["acc", "grow", "scans"],
                body=_loop_body())
    inputs = [tensor("x", shape=["N", 3]), tensor("y", shape=[1, 3]), *inputs]
    return make([*extra_nodes, loop], inputs, ["acc", "grow", "scans"], initializers=inits)


def test_loop_constant_trip_count():
    model = _loop_model("M", "", inits=[const("M", np.array(4, np.int64))])
    check(model, {"x": floats(2, 3), "y": floats(1, 3)},
          {"acc": ["N", 3], "grow": ["?", 3], "scans": [4, "N", 3]})


def test_loop_trip_count_from_shape_data():
    shape_nodes = [node("Shape", ["t"], ["t_shape"]), node("Gather", ["t_shape", "zero"], ["M"], axis=0)]
    model = _loop_model("M", "", shape_nodes, [const("zero", np.array(0, np.int64))],
                        [tensor("t", shape=["T", 2])])
    feeds = {"x": floats(2, 3), "y": floats(1, 3), "t": floats(5, 2)}
    check(model, feeds, {"scans": ["T", "N", 3]})


def test_loop_condition_passed_through_keeps_trip_count():
    model = _loop_model("M", "c", inits=[const("M", np.array(3, np.int64)), const("c", np.array(True))])
    check(model, {"x": floats(2, 3), "y": floats(1, 3)}, {"scans": [3, "N", 3]})


def test_loop_data_condition_gives_fresh_trip_count():
    model = _loop_model("M", "c", inputs=[tensor("M", T.INT64, []), tensor("c", T.BOOL, [])])
    feeds = {"x": floats(2, 3), "y": floats(1, 3), "M": np.array(3), "c": np.array(True)}
    check(model, feeds, {"scans": ["?", "N", 3], "acc": ["N", 3]})


def test_loop_zero_iterations():
    # not run: with zero iterations the runtime shapes scan outputs from the body's
    # declared output types, which this body leaves unknown
    model = _loop_model("M", "", inits=[const("M", np.array(0, np.int64))])
    check(model, {}, {"scans": [0, "N", 3], "acc": ["N", 3]}, run=False)


def test_loop_trip_count_from_sequence_length():
    nodes = [node("SequenceConstruct", ["x", "x"], ["seq"]), node("SequenceLength", ["seq"], ["M"])]
    model = _loop_model("M", "", nodes)
    check(model, {"x": floats(2, 3), "y": floats(1, 3)}, {"scans": [2, "N", 3]})


def test_loop_body_input_count_error():
    body = graph([node("Identity", ["c"], ["co"])], [tensor("c", T.BOOL, [])], ["co"], name="body")
    model = make([node("Loop", ["", "c0"], [], body=body)], [tensor("c0", T.BOOL, [])], [])
    (error,) = errors_of(model)
    assert error.op_type == "Loop" and "expected 2" in error.message


# -- Scan ----------------------------------------------------------------------------------------
def _scan_body():
    nodes = [node("Add", ["s_in", "x_t"], ["s_out"]), node("Mul", ["x_t", "w"], ["y_t"])]
    inputs = [tensor("s_in", shape=[4]), tensor("x_t", shape=[4])]
    return graph(nodes, inputs, ["s_out", "y_t", "y_t2"] if False else ["s_out", "y_t"], name="body")


@pytest.mark.parametrize("out_axis, dims", [(0, ["T", 4]), (1, [4, "T"]), (-1, [4, "T"])])
def test_scan_stacks_on_output_axis(out_axis, dims):
    scan = node("Scan", ["s0", "x"], ["s", "ys"], body=_scan_body(), num_scan_inputs=1,
                scan_input_axes=[1], scan_input_directions=[1], scan_output_axes=[out_axis])
    model = make([scan], [tensor("s0", shape=[4]), tensor("x", shape=[4, "T"]), tensor("w", shape=[4])],
                 ["s", "ys"])
    feeds = {"s0": floats(4), "x": floats(4, 6), "w": floats(4)}
    check(model, feeds, {"s": [4], "ys": dims})


def test_scan_8_batched():
    body = graph([node("Add", ["s_in", "x_t"], ["s_out"]), node("Identity", ["x_t"], ["y_t"])],
                 [tensor("s_in", shape=[4]), tensor("x_t", shape=[4])], ["s_out", "y_t"], name="body")
    scan = node("Scan", ["", "s0", "x"], ["s", "ys"], body=body, num_scan_inputs=1)
    model = make([scan], [tensor("s0", shape=["B", 4]), tensor("x", shape=["B", "T", 4])],
                 ["s", "ys"], opset=8)
    check(model, {"s0": floats(2, 4), "x": floats(2, 5, 4)}, {"s": ["B", 4], "ys": ["B", "T", 4]})


def test_scan_lengths_disagree():
    body = graph([node("Add", ["a", "b"], ["o"])], [tensor("a", shape=[2]), tensor("b", shape=[2])],
                 ["o"], name="body")
    scan = node("Scan", ["x", "z"], ["ys"], body=body, num_scan_inputs=2)
    model = make([scan], [tensor("x", shape=[3, 2]), tensor("z", shape=[5, 2])], ["ys"])
    (error,) = errors_of(model)
    assert error.op_type == "Scan" and "[3, 5]" in error.message


# -- sequences and optionals ---------------------------------------------------------------------
def test_sequence_family():
    map_body = graph([node("Shape", ["e"], ["s"])], [tensor("e")], ["s"], name="map_body")
    nodes = [
        node("SequenceConstruct", ["a", "b"], ["seq"]),
        node("SequenceAt", ["seq", "one"], ["at"]),
        node("SequenceLength", ["seq"], ["length"]),
        node("ConcatFromSequence", ["seq"], ["cat"], axis=0),
        node("SequenceConstruct", ["a", "a"], ["same"]),
        node("ConcatFromSequence", ["same"], ["stacked"], axis=-1, new_axis=1),
        node("SequenceInsert", ["seq", "a", "one"], ["inserted"]),
        node("SequenceErase", ["inserted"], ["erased"]),
        node("SequenceEmpty", [], ["empty"], dtype=T.FLOAT),
        node("SequenceInsert", ["empty", "a"], ["only_a"]),
        node("SequenceMap", ["seq"], ["shapes"], body=map_body),
    ]
    outputs = ["at", "length", "cat", "stacked", "erased", "only_a", "shapes"]
    model = make(nodes, [tensor("a", shape=["N", 3]), tensor("b", shape=["M", 3])], outputs,
                 initializers=[const("one", np.array(1, np.int64))])
    feeds = {"a": floats(2, 3), "b": floats(5, 3)}
    check(model, feeds, {"at": ["?", 3], "length": [], "cat": ["?", 3],
                         "stacked": ["N", 3, "?"], "only_a": ["N", 3], "shapes": [2]})


@pytest.mark.parametrize("split, keepdims, dims", [
    (None, 1, [1, "W"]), (None, 0, ["W"]), (np.array(2, np.int64), 1, [2, "W"]),
    (np.array([3, 3], np.int64), 1, [3, "W"]), (np.array([1, 5], np.int64), 1, ["?", "W"]),
])
def test_split_to_sequence(split, keepdims, dims):
    inputs = ["x"] if split is None else ["x", "split"]
    inits = [] if split is None else [const("split", split)]
    model = make([node("SplitToSequence", inputs, ["parts"], keepdims=keepdims)],
                 [tensor("x", shape=[6, "W"])], ["parts"], initializers=inits)
    check(model, {"x": floats(6, 2)}, {"parts": dims})


def test_optional_family():
    nodes = [
        node("Optional", ["x"], ["opt"]),
        node("OptionalHasElement", ["opt"], ["has"]),
        node("OptionalGetElement", ["opt"], ["got"]),
        node("Optional", [], ["empty"], type=helper.make_tensor_type_proto(T.INT64, [2])),
        node("OptionalHasElement", ["empty"], ["has_empty"]),
    ]
    model = make(nodes, [tensor("x", shape=["N", 2])], ["has", "got", "empty", "has_empty"])
    inferred = check(model, {"x": floats(3, 2)}, {"has": [], "got": ["N", 2], "empty": [2]})
    empty = next(v for v in inferred.graph.outputs if v.name == "empty").type
    assert isinstance(empty, OptionalType) and empty.elem_type.dtype == DataType.INT64


def test_sequence_at_on_a_tensor_is_an_error():
    model = make([node("SequenceAt", ["x", "i"], ["y"])],
                 [tensor("x", shape=[2]), tensor("i", T.INT64, [])], ["y"])
    (error,) = errors_of(model)
    assert error.node_name == "SequenceAt_y" and "must be a sequence" in error.message


# -- indexing ------------------------------------------------------------------------------------
def test_gather_elements_and_scatters():
    nodes = [
        node("GatherElements", ["data", "idx"], ["gathered"], axis=1),
        node("ScatterElements", ["data", "idx", "upd"], ["scattered"], axis=1, reduction="add"),
        node("ScatterND", ["data", "nd_idx", "nd_upd"], ["scattered_nd"]),
        node("Trilu", ["data"], ["tri"], upper=0),
    ]
    inputs = [tensor("data", shape=["N", 5]), tensor("idx", T.INT64, ["N", "K"]),
              tensor("upd", shape=["N", "K"]), tensor("nd_idx", T.INT64, ["R", 1]),
              tensor("nd_upd", shape=["R", 5])]
    feeds = {"data": floats(3, 5), "idx": RNG.integers(0, 5, (3, 2)), "upd": floats(3, 2),
             "nd_idx": np.array([[0], [2]]), "nd_upd": floats(2, 5)}
    model = make(nodes, inputs, ["gathered", "scattered", "scattered_nd", "tri"])
    check(model, feeds, {"gathered": ["N", "K"], "scattered": ["N", 5], "tri": ["N", 5]})


@pytest.mark.parametrize("batch_dims, idx_shape, dims", [
    (0, ["Q", 2], ["Q", "C"]), (1, ["B", "Q", 1], ["B", "Q", "C"]), (0, ["Q", 3], ["Q"]),
])
def test_gather_nd(batch_dims, idx_shape, dims):
    model = make([node("GatherND", ["data", "idx"], ["out"], batch_dims=batch_dims)],
                 [tensor("data", shape=["B", 4, "C"]), tensor("idx", T.INT64, idx_shape)], ["out"])
    concrete = [{"B": 2, "Q": 3}.get(d, d) for d in idx_shape]
    idx = RNG.integers(0, 2, concrete)
    check(model, {"data": floats(2, 4, 6), "idx": idx}, {"out": dims})


def test_tensor_scatter():
    model = make([node("TensorScatter", ["cache", "update", "where"], ["out"], mode="circular")],
                 [tensor("cache", shape=["B", "H", 8, 4]), tensor("update", shape=["B", "H", 2, 4]),
                  tensor("where", T.INT64, ["B"])], ["out"], opset=24)
    feeds = {"cache": floats(2, 3, 8, 4), "update": floats(2, 3, 2, 4), "where": np.array([1, 7])}
    check(model, feeds, {"out": ["B", "H", 8, 4]})


def test_one_hot_depth_constant_or_fresh():
    nodes = [node("OneHot", ["idx", "depth", "values"], ["fixed"], axis=1),
             node("OneHot", ["idx", "depth_in", "values"], ["free"])]
    model = make(nodes, [tensor("idx", T.INT64, ["N", "K"]), tensor("depth_in", T.INT64, [1]),
                         tensor("values", shape=[2])], ["fixed", "free"],
                 initializers=[const("depth", np.array(5.0, np.float32))])
    feeds = {"idx": RNG.integers(-3, 5, (2, 3)), "depth_in": np.array([4]), "values": floats(2)}
    check(model, feeds, {"fixed": ["N", 5, "K"], "free": ["N", "K", "?"]})


def test_compress_and_nonzero():
    nodes = [
        node("Compress", ["x", "keep"], ["kept"], axis=1),
        node("Compress", ["x", "cond_in"], ["kept_flat"]),
        node("NonZero", ["x"], ["nz"]),
        node("NonZero", ["keep"], ["nz_const"]),
    ]
    model = make(nodes, [tensor("x", shape=["N", 4]), tensor("cond_in", T.BOOL, ["L"])],
                 ["kept", "kept_flat", "nz", "nz_const"],
                 initializers=[const("keep", np.array([True, False, True, True]))])
    feeds = {"x": floats(3, 4), "cond_in": np.array([True, False, True])}
    check(model, feeds, {"kept": ["N", 3], "kept_flat": ["?"], "nz": [2, "?"], "nz_const": [1, 3]})


# -- sorting -------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [1, 10, 11, 24])
def test_top_k_versions(opset):
    if opset == 1:
        topk = node("TopK", ["x"], ["values", "indices"], k=2)
        inits = []
    else:
        topk = node("TopK", ["x", "k"], ["values", "indices"], axis=0)
        inits = [const("k", np.array([2], np.int64))]
    model = make([topk], [tensor("x", shape=["N", "M"])], ["values", "indices"], opset=opset,
                 initializers=inits)
    dims = ["N", 2] if opset == 1 else [2, "M"]
    check(model, {"x": floats(3, 4)}, {"values": dims, "indices": dims})


def test_top_k_from_shape_data_and_too_large_k():
    nodes = [node("Shape", ["x"], ["s"]), node("Slice", ["s", "zero", "one"], ["k"]),
             node("TopK", ["x", "k"], ["values", "indices"], axis=1)]
    model = make(nodes, [tensor("x", shape=["N", "M"])], ["values", "indices"],
                 initializers=[const("zero", np.array([0])), const("one", np.array([1]))])
    check(model, {"x": floats(3, 5)}, {"values": ["N", "N"]})
    bad = make([node("TopK", ["x", "k"], ["v", "i"])], [tensor("x", shape=[2, 3])], ["v", "i"],
               initializers=[const("k", np.array([4]))])
    (error,) = errors_of(bad)
    assert error.node_name == "TopK_v" and "k = 4" in error.message and "[0, 3]" in error.message


@pytest.mark.parametrize("axis, dims", [(None, ["?u"]), (1, ["N", "?u"])])
def test_unique_shares_one_fresh_count(axis, dims):
    attrs = {} if axis is None else {"axis": axis}
    model = make([node("Unique", ["x"], ["y", "first", "inverse", "counts"], **attrs)],
                 [tensor("x", T.INT64, ["N", "M"])], ["y", "first", "inverse", "counts"])
    inverse = ["N*M"] if axis is None else ["M"]
    x = np.array([[1, 2, 1, 1], [3, 2, 3, 3]])
    check(model, {"x": x}, {"y": dims, "first": ["?u"], "counts": ["?u"], "inverse": inverse})


# -- detection -----------------------------------------------------------------------------------
def test_roi_align_and_nms():
    nodes = [
        node("RoiAlign", ["x", "rois", "batch"], ["pooled"], output_height=2, output_width=3),
        node("NonMaxSuppression", ["boxes", "scores", "limit"], ["selected"]),
    ]
    inputs = [tensor("x", shape=["N", "C", 8, 8]), tensor("rois", shape=["R", 4]),
              tensor("batch", T.INT64, ["R"]), tensor("boxes", shape=["N", "B", 4]),
              tensor("scores", shape=["N", 2, "B"])]
    model = make(nodes, inputs, ["pooled", "selected"],
                 initializers=[const("limit", np.array([2], np.int64))])
    feeds = {"x": floats(1, 2, 8, 8), "rois": np.array([[0, 0, 4, 4], [1, 1, 6, 5]], np.float32),
             "batch": np.array([0, 0]), "boxes": np.abs(floats(1, 5, 4)), "scores": floats(1, 2, 5)}
    check(model, feeds, {"pooled": ["R", "C", 2, 3], "selected": ["?", 3]})


# -- strings -------------------------------------------------------------------------------------
def test_string_family():
    nodes = [
        node("StringNormalizer", ["words"], ["lower"], case_change_action="LOWER"),
        node("StringNormalizer", ["words"], ["filtered"], stopwords=["a"]),
        node("StringSplit", ["words"], ["pieces", "counts"], delimiter="-"),
        node("RegexFullMatch", ["words"], ["matches"], pattern="a.*"),
        node("StringConcat", ["words", "suffix"], ["joined"]),
        node("TfIdfVectorizer", ["tokens"], ["tfidf"], mode="TF", min_gram_length=1,
             max_gram_length=1, max_skip_count=0, ngram_counts=[0], ngram_indexes=[0, 1, 2],
             pool_int64s=[1, 2, 3]),
    ]
    inputs = [tensor("words", T.STRING, ["C"]), tensor("suffix", T.STRING, [1]),
              tensor("tokens", T.INT64, ["N", "L"])]
    model = make(nodes, inputs, ["lower", "filtered", "pieces", "counts", "matches", "joined", "tfidf"])
    feeds = {"words": np.array(["a", "B-c", "ab"], dtype=object), "suffix": np.array(["!"], dtype=object),
             "tokens": RNG.integers(0, 4, (2, 5))}
    check(model, feeds, {"lower": ["max(C,1)"], "filtered": ["?"], "pieces": ["C", "?"],
                         "counts": ["C"], "matches": ["C"], "joined": ["C"], "tfidf": ["N", 3]})


# -- random --------------------------------------------------------------------------------------
def test_random_family():
    nodes = [
        node("RandomNormal", [], ["normal"], shape=[2, 3], dtype=T.DOUBLE, seed=1.0),
        node("RandomUniformLike", ["x"], ["uniform"], seed=2.0),
        node("RandomNormalLike", ["x"], ["normal_like"], dtype=T.FLOAT16, seed=3.0),
        node("Bernoulli", ["p"], ["coin"], dtype=T.INT32, seed=4.0),
        node("Multinomial", ["x"], ["draws"], sample_size=7, seed=5.0),
    ]
    model = make(nodes, [tensor("x", shape=["N", "K"]), tensor("p", shape=["M"])],
                 ["normal", "uniform", "normal_like", "coin", "draws"])
    feeds = {"x": floats(2, 4), "p": RNG.random(5).astype(np.float32)}
    check(model, feeds, {"normal": [2, 3], "uniform": ["N", "K"], "coin": ["M"], "draws": ["N", 7]})


def test_random_bad_dtype_is_an_error():
    model = make([node("RandomUniform", [], ["r"], shape=[2], dtype=T.INT32)], [], ["r"])
    (error,) = errors_of(model)
    assert error.op_type == "RandomUniform" and "INT32" in error.message


# -- signal --------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset, attrs, extra, dims", [
    (20, {}, [], ["B", "L", 2]),
    (20, {"onesided": 1}, ["len"], ["B", 5, 2]),
    (20, {}, ["len", "axis"], ["B", "L", 2]),
    (17, {"axis": 1}, [], ["B", "L", 2]),
    (20, {"inverse": 1}, [], ["B", "L", 2]),
])
def test_dft(opset, attrs, extra, dims):
    inputs = ["signal", "len" if "len" in extra else "", "axis" if "axis" in extra else ""]
    inits = [const("len", np.array(8, np.int64)), const("axis", np.array(1, np.int64))]
    if "len" in extra and "axis" in extra:
        dims = ["B", 8, 2]
    model = make([node("DFT", inputs[: 2 if opset == 17 else 3], ["spectrum"], **attrs)],
                 [tensor("signal", shape=["B", "L", 1])], ["spectrum"], opset=opset,
                 initializers=inits)
    check(model, {"signal": floats(2, 6, 1)}, {"spectrum": dims})


def test_stft_windows_and_mel():
    nodes = [
        node("HannWindow", ["size"], ["window"]),
        node("BlackmanWindow", ["size"], ["window64"], output_datatype=T.DOUBLE),
        node("STFT", ["signal", "step", "window"], ["spectrogram"]),
        node("MelWeightMatrix", ["bins", "size", "rate", "low", "high"], ["mel"]),
    ]
    inits = [const("size", np.array(8, np.int64)), const("step", np.array(4, np.int64)),
             const("bins", np.array(3, np.int64)), const("rate", np.array(16000, np.int64)),
             const("low", np.array(0.0, np.float32)), const("high", np.array(4000.0, np.float32))]
    model = make(nodes, [tensor("signal", shape=["B", "L", 1])],
                 ["window", "window64", "spectrogram", "mel"], opset=17, initializers=inits)
    check(model, {"signal": floats(2, 30, 1)},
          {"window": [8], "spectrogram": ["B", "(L-8)//4+1", 5, 2], "mel": [5, 3]})


# -- image and sampling --------------------------------------------------------------------------
def test_grid_sample_and_affine_grid():
    nodes = [node("AffineGrid", ["theta", "size"], ["grid"]),
             node("GridSample", ["x", "grid"], ["sampled"])]
    model = make(nodes, [tensor("theta", shape=["N", 2, 3]), tensor("x", shape=["N", "C", "H", "W"])],
                 ["grid", "sampled"], initializers=[const("size", np.array([2, 3, 5, 7], np.int64))])
    feeds = {"theta": floats(2, 2, 3), "x": floats(2, 3, 4, 4)}
    check(model, feeds, {"grid": [2, 5, 7, 2], "sampled": [2, "C", 5, 7]})


def test_col2im():
    model = make([node("Col2Im", ["cols", "image", "block"], ["im"], strides=[1, 2])],
                 [tensor("cols", shape=["N", "CK", "L"])], ["im"], opset=18,
                 initializers=[const("image", np.array([5, 6])), const("block", np.array([2, 2]))])
    check(model, {"cols": floats(2, 12, 12)}, {"im": ["N", "CK//4", 5, 6]})


@pytest.mark.parametrize("pixel_format, channels", [("RGB", 3), ("Grayscale", 1)])
def test_image_decoder(pixel_format, channels):
    pixels = RNG.integers(0, 256, (3, 2, 3), dtype=np.uint8)
    stream = np.frombuffer(b"P6\n2 3\n255\n" + pixels.tobytes(), dtype=np.uint8)
    model = make([node("ImageDecoder", ["stream"], ["image"], pixel_format=pixel_format)],
                 [tensor("stream", T.UINT8, ["S"])], ["image"], opset=20)
    check(model, {"stream": stream}, {"image": ["?", "?", channels]})


# -- training ------------------------------------------------------------------------------------
TRAINING = "ai.onnx.preview.training"


@pytest.mark.parametrize("op, states, attrs", [
    ("Adagrad", 1, {}), ("Momentum", 1, {"alpha": 0.9, "beta": 1.0, "mode": "standard",
                                         "norm_coefficient": 0.0}), ("Adam", 2, {}),
])
def test_optimizers(op, states, attrs):
    names = ["w1", "w2"]
    groups = [names, [f"g_{n}" for n in names]] + [[f"s{k}_{n}" for n in names] for k in range(states)]
    inputs = ["r", "t", *[n for g in groups for n in g]]
    outputs = [f"new_{n}" for g in [groups[0], *groups[2:]] for n in g]
    opt = helper.make_node(op, inputs, outputs, domain=TRAINING, name=op, **attrs)
    shapes = {"w1": ["A", 2], "w2": [3]}
    value_infos = [tensor("r", shape=[]), tensor("t", T.INT64, [])]
    for group in groups:
        value_infos += [tensor(n, shape=shapes[n.split("_")[-1]]) for n in group]
    model = make([opt], value_infos, outputs, domains={TRAINING: 1})
    feeds = {"r": np.array(0.1, np.float32), "t": np.array(1)}
    for group in groups:
        feeds |= {n: np.abs(floats(*({"w1": (4, 2), "w2": (3,)}[n.split("_")[-1]]))) for n in group}
    expect = {o: shapes[o.split("_")[-1]] for o in outputs}
    check(model, feeds, expect)


def test_gradient_shapes_follow_xs():
    grad = helper.make_node("Gradient", ["a", "b"], ["da", "db"], domain=TRAINING, xs=["a", "b"],
                            y="loss", name="grad")
    model = make([node("Mul", ["a", "b"], ["prod"]), node("ReduceSum", ["prod"], ["loss"]), grad],
                 [tensor("a", shape=["N", 2]), tensor("b", shape=[2])], ["da", "db"],
                 domains={TRAINING: 1})
    check(model, {}, {"da": ["N", 2], "db": [2]}, run=False)


# -- strict mode and every operator covered ------------------------------------------------------
def test_strict_raises_naming_the_node():
    model = make([node("GatherND", ["d", "i"], ["o"], batch_dims=2)],
                 [tensor("d", shape=[2, 3]), tensor("i", T.INT64, [2, 1])], ["o"])
    with pytest.raises(ferry.ShapeInferenceError, match="GatherND_o"):
        ferry.infer_shapes(model, strict=True)


def test_every_runtime_op_of_these_families_has_a_rule():
    from ferry.runtime.registry import registered_ops
    from ferry.shapes.registry import duplicate_rules, registered_rules

    rules = registered_rules()
    missing = [f"{d or 'ai.onnx'}::{op}" for (d, op) in registered_ops()
               if d in ("", "ai.onnx.preview.training", "ai.onnx.ml") and (d, op) not in rules]
    assert not missing
    assert not duplicate_rules()


def test_onnx_agrees_on_concrete_shapes():
    """onnx's inference (oracle) and ours give the same static shapes on a mixed model."""
    nodes = [
        node("TopK", ["x", "k"], ["v", "i"]),
        node("GatherND", ["x", "idx"], ["g"], batch_dims=1),
        node("OneHot", ["i", "depth", "values"], ["h"]),
        node("DFT", ["sig", "", ""], ["f"], onesided=1),
    ]
    inputs = [tensor("x", shape=[3, 5]), tensor("idx", T.INT64, [3, 1]), tensor("sig", shape=[2, 9, 1])]
    inits = [const("k", np.array([2])), const("depth", np.array([4])), const("values", np.array([0.0, 1.0]))]
    proto = helper.make_model(graph(nodes, inputs, ["v", "i", "g", "h", "f"], inits),
                              opset_imports=[helper.make_opsetid("", 21)])
    oracle = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    theirs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in oracle.graph.output}
    inferred = inferred_model(ferry.model_from_bytes(proto.SerializeToString()))
    ours = {v.name: list(v.shape) for v in inferred.graph.outputs}
    assert ours == theirs


# -- ai.onnx.ml ----------------------------------------------------------------------------------
ML = "ai.onnx.ml"


def ml(op, inputs, outputs, **attrs):
    return helper.make_node(op, inputs, outputs, domain=ML, name=f"{op}_{outputs[0]}", **attrs)


def test_ml_operators():
    nodes = [
        ml("Scaler", ["x"], ["scaled"], offset=[0.5], scale=[2.0]),
        ml("Normalizer", ["x"], ["normed"], norm="L2"),
        ml("Binarizer", ["x"], ["binary"], threshold=0.1),
        ml("Imputer", ["x"], ["imputed"], imputed_value_floats=[0.0], replaced_value_float=float("nan")),
        ml("OneHotEncoder", ["codes"], ["onehot"], cats_int64s=[1, 2, 3], zeros=1),
        ml("ArrayFeatureExtractor", ["x", "pick"], ["picked"]),
        ml("FeatureVectorizer", ["x", "x"], ["features"], inputdimensions=[3, 2]),
        ml("LinearClassifier", ["x"], ["label", "scores"], classlabels_ints=[7, 8, 9],
           coefficients=[float(v) for v in range(9)], intercepts=[0.0, 1.0, 2.0]),
        ml("LinearRegressor", ["x"], ["regressed"], coefficients=[1.0] * 6, targets=2),
        ml("SVMRegressor", ["x"], ["svm"], coefficients=[1.0, 2.0, 3.0], n_supports=0),
        ml("CategoryMapper", ["codes"], ["names"], cats_int64s=[1, 2], cats_strings=["a", "b"]),
        ml("LabelEncoder", ["codes"], ["encoded"], keys_int64s=[1, 2], values_floats=[0.5, 1.5]),
    ]
    model = make(nodes, [tensor("x", shape=["N", 3]), tensor("codes", T.INT64, ["N", "K"])],
                 ["scaled", "normed", "binary", "imputed", "onehot", "picked", "features", "label",
                  "scores", "regressed", "svm", "names", "encoded"],
                 initializers=[const("pick", np.array([[0, 2]], np.int64))], domains={ML: 3})
    feeds = {"x": floats(4, 3), "codes": RNG.integers(0, 4, (4, 2))}
    check(model, feeds, {"scaled": ["N", 3], "onehot": ["N", "K", 3], "picked": ["N", 2],
                         "features": ["N", 5], "label": ["N"], "scores": ["N", 3],
                         "regressed": ["N", 2], "svm": ["N", 1], "encoded": ["N", "K"]})


def test_zip_map_is_a_sequence_of_maps():
    model = make([ml("ZipMap", ["scores"], ["maps"], classlabels_strings=["a", "b"])],
                 [tensor("scores", shape=["N", 2])], ["maps"], domains={ML: 1})
    maps = next(v for v in inferred_model(model).graph.outputs if v.name == "maps").type
    assert isinstance(maps, SequenceType) and maps.elem_type.key_type == DataType.STRING
