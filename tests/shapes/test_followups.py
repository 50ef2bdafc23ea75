"""Follow-ups of shape inference (issue #7): diagnostics of re-inferred loop bodies,
Concat keeping what is provable, compact expression text, shape data out of If/Loop/Scan."""

from __future__ import annotations

import itertools
import random

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import ferry
from ferry.shapes import infer
from ferry.shapes.expr import Expr


def tensor(name, elem=T.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def node(op, inputs, outputs, **attrs):
    return helper.make_node(op, inputs, outputs, name=f"{op}_{outputs[0]}", **attrs)


def graph(nodes, inputs, outputs, initializers=(), name="g"):
    outputs = [helper.make_empty_tensor_value_info(o) if isinstance(o, str) else o for o in outputs]
    return helper.make_graph(nodes, name, inputs, outputs, list(initializers))


def make(nodes, inputs, outputs, *, opset=21, initializers=(), domains=None):
    imports = [helper.make_opsetid("", opset)]
    imports += [helper.make_opsetid(d, v) for d, v in (domains or {}).items()]
    proto = helper.make_model(graph(nodes, inputs, outputs, initializers), opset_imports=imports)
    return ferry.model_from_bytes(proto.SerializeToString())


def shape_of(model, name):
    for g in model.all_graphs():
        for value in g.values():
            if value.name == name:
                return None if value.shape is None else list(value.shape)
    raise KeyError(name)


# -- 1. each diagnostic once ---------------------------------------------------------------------
def _growing_loop_body(extra_nodes):
    """Carries a stack that grows by one row per iteration, so the carried type changes
    and the body is inferred more than once."""
    nodes = [node("Identity", ["cond_in"], ["cond_out"]),
             node("Concat", ["stack_in", "row"], ["stack_out"], axis=0), *extra_nodes]
    inputs = [tensor("i", T.INT64, []), tensor("cond_in", T.BOOL, []), tensor("stack_in")]
    return graph(nodes, inputs, ["cond_out", "stack_out"], name="body")


def _bad_top_k():
    return node("TopK", ["row", "k"], ["top_values", "top_indices"])  # k = 5 > row's 3 columns


def _loop_model(extra_nodes, domains=None):
    loop = node("Loop", ["M", "", "row"], ["stack"], body=_growing_loop_body(extra_nodes))
    return make([loop], [tensor("row", shape=[1, 3])], ["stack"], domains=domains,
                initializers=[const("M", np.array(4, np.int64)), const("k", np.array([5], np.int64))])


def _scan_model():
    body = graph([node("Concat", ["stack_in", "x_t"], ["stack_out"], axis=0), _bad_top_k()],
                 [tensor("stack_in"), tensor("x_t", shape=[3])], ["stack_out"], name="body")
    scan = node("Scan", ["start", "xs"], ["stack"], body=body, num_scan_inputs=1)
    return make([scan], [tensor("start", shape=[1]), tensor("xs", shape=["T", 3]),
                         tensor("row", shape=[1, 3])], ["stack"],
                initializers=[const("k", np.array([5], np.int64))])


@pytest.mark.parametrize("build", [lambda: _loop_model([_bad_top_k()]), _scan_model],
                         ids=["Loop", "Scan"])
def test_a_re_inferred_body_reports_each_diagnostic_once(build):
    result = infer(build())
    errors = [d for d in result.diagnostics if d.severity == "error"]
    assert len(errors) == 1, "\n".join(map(str, errors))
    assert errors[0].op_type == "TopK" and "5" in errors[0].message
    assert shape_of(result.model, "stack") is not None  # the state did change: several passes


def test_a_missing_rule_in_a_re_inferred_body_counts_its_node_once():
    custom = helper.make_node("Mystery", ["row"], ["mystery"], name="mystery", domain="custom.ops")
    result = infer(_loop_model([custom], domains={"custom.ops": 1}))
    (note,) = [d for d in result.diagnostics if d.rule == "no-shape-rule"]
    assert "(1 node)" in note.message


# -- 2. Concat keeps what is provable -----------------------------------------------------------
@pytest.mark.parametrize("axis, dims", [(0, ["?", 3]), (1, [2, "?"])])
def test_concat_keeps_rank_and_dims_when_one_input_is_unknown(axis, dims):
    m = make([node("Concat", ["u", "y", "z"], ["o"], axis=axis)],
             [helper.make_empty_tensor_value_info("u"), tensor("y", shape=[2, 3]),
              tensor("z", shape=["a", None])], ["o"])
    out = shape_of(infer(m).model, "o")
    assert len(out) == 2
    for got, want in zip(out, dims):
        assert got == want if want != "?" else got.startswith("unk__")


def test_concat_axis_dim_is_the_sum_when_all_parts_are_known():
    m = make([node("Concat", ["x", "y"], ["o"], axis=1)],
             [tensor("x", shape=["b", "n"]), tensor("y", shape=[None, 4])], ["o"])
    assert shape_of(infer(m).model, "o") == ["b", "n+4"]


def _expand_to_unknown_batch_model():
    """Expand(idx[2,3], Concat(n, [2,3])) with n a 1-element input: onnx infers [?,2,3]."""
    nodes = [node("Concat", ["n", "tail"], ["target"], axis=0),
             node("Expand", ["idx", "target"], ["expanded"]),
             node("Reshape", ["x", "target"], ["reshaped"])]
    return make(nodes, [tensor("n", T.INT64, [1]), tensor("idx", T.INT64, [2, 3]),
                        tensor("x", shape=[12])], ["expanded", "reshaped"],
                initializers=[const("tail", np.array([2, 3], np.int64))])


def test_concat_of_shape_data_keeps_known_elements_in_place():
    m = _expand_to_unknown_batch_model()
    inferred = infer(m).model
    for name in ("expanded", "reshaped"):
        dims = shape_of(inferred, name)
        assert dims[1:] == [2, 3] and dims[0].startswith("unk__"), (name, dims)
    proto = onnx.shape_inference.infer_shapes(onnx.load_model_from_string(ferry.model_to_bytes(m)),
                                              data_prop=True)
    oracle = {v.name: [d.dim_value if d.HasField("dim_value") else None
                       for d in v.type.tensor_type.shape.dim] for v in proto.graph.output}
    assert oracle["expanded"] == [None, 2, 3]


# -- 3. compact expression text -----------------------------------------------------------------
a, b, c, H, W = (Expr.sym(n) for n in ("a", "b", "c", "H", "W"))


@pytest.mark.parametrize(
    ("built", "text"),
    [
        ((a - 1) * (b - 1), "(a-1)*(b-1)"),
        ((a - 1) * (b - 1) * 4, "(a-1)*(b-1)*4"),
        (a * b + a, "a*(b+1)"),
        ((a + 1) * (b + 2) * (c - 3), "(a+1)*(b+2)*(c-3)"),
        (b - a, "b-a"),
        (-a * b - a, "-a*(b+1)"),
        (((H - 1) // 2 + 1) * ((W - 1) // 2 + 1), "((H-1)//2+1)*((W-1)//2+1)"),
        (((a - 1) * (b - 1)) // 2, "((a-1)*(b-1))//2"),
        ((H - 3) // 2 + 1, "(H-3)//2+1"),
        (a * 2 + 2, "a*2+2"),  # an integer alone is not pulled out
    ],
)
def test_expressions_print_as_factored_products(built, text):
    assert str(built) == text
    assert Expr.parse(text) == built


def _random_factor(rng: random.Random) -> Expr:
    atoms = [Expr.sym("p"), Expr.sym("q"), Expr.sym("r"), (Expr.sym("s") - 1) // 2]
    factor = Expr.const(rng.randint(-3, 3))
    for atom in rng.sample(atoms, rng.randint(1, 2)):
        factor = factor + atom * rng.randint(-2, 3)
    return factor


def test_equal_expressions_print_the_same_and_parse_back():
    rng = random.Random(11)
    for _ in range(300):
        factors = [_random_factor(rng) for _ in range(rng.randint(1, 3))]
        products = [Expr.const(1) * f for f in factors]
        for order in itertools.islice(itertools.permutations(factors), 3):
            product = Expr.const(1)
            for f in order:
                product = product * f
            products.append(product)
        whole = products[len(factors)]
        assert all(str(p) == str(whole) for p in products[len(factors):])
        assert Expr.parse(str(whole)) == whole, str(whole)
        expanded = Expr.parse(whole.canonical_text())
        assert expanded == whole and str(expanded) == str(whole)


# -- 4. shape data out of If, Loop and Scan ------------------------------------------------------
def _if_model(condition, else_source):
    """y = Reshape(x, If(cond, Shape(x), Shape(else_source)))."""
    then_g = graph([node("Shape", ["x"], ["then_shape"])], [], ["then_shape"], name="then")
    else_g = graph([node("Shape", [else_source], ["else_shape"])], [], ["else_shape"], name="else")
    nodes = [node("If", ["cond"], ["target"], then_branch=then_g, else_branch=else_g),
             node("Flatten", ["x"], ["flat"], axis=0),
             node("Reshape", ["flat", "target"], ["y"])]
    inputs = [tensor("x", shape=["batch", 4]), tensor("z", shape=["batch", 5])]
    inits = []
    if condition is None:
        inputs.append(tensor("cond", T.BOOL, []))
    else:
        inits.append(const("cond", np.array(condition)))
    return make(nodes, inputs, ["y"], initializers=inits)


@pytest.mark.parametrize(
    ("condition", "else_source", "dims"),
    [(True, "z", ["batch", 4]), (False, "z", ["batch", 5]), (None, "x", ["batch", 4]),
     (None, "z", ["batch", "?"])],
)
def test_if_passes_shape_data_its_branches_agree_on(condition, else_source, dims):
    result = infer(_if_model(condition, else_source))
    assert not [d for d in result.diagnostics if d.severity == "error"]
    got = shape_of(result.model, "y")
    assert len(got) == 2
    for dim, want in zip(got, dims):
        assert dim == want if want != "?" else dim.startswith("unk__")


@pytest.mark.parametrize("trips", [0, 3])
def test_loop_state_passed_through_keeps_its_shape_data(trips):
    body = graph([node("Identity", ["cond_in"], ["cond_out"]), node("Identity", ["s_in"], ["s_out"])],
                 [tensor("i", T.INT64, []), tensor("cond_in", T.BOOL, []), tensor("s_in")],
                 ["cond_out", "s_out"], name="body")
    nodes = [node("Shape", ["x"], ["s0"]), node("Loop", ["M", "", "s0"], ["s"], body=body),
             node("ConstantOfShape", ["s"], ["y"])]
    m = make(nodes, [tensor("x", shape=["batch", 7])], ["y"],
             initializers=[const("M", np.array(trips, np.int64))])
    assert shape_of(infer(m).model, "y") == ["batch", 7]
