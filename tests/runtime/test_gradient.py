"""The Gradient operator (ai.onnx.preview.training): official cases and finite differences."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, shape_inference

import ferry
from ferry.errors import KernelNotFoundError
from tests.conformance_data import cases
from tests.runtime.conformance_runner import run_case

DOMAIN = "ai.onnx.preview.training"
EPS = 1e-6
RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "case", [c for c in cases("simple") if c.name.startswith("test_gradient_")], ids=lambda c: c.id
)
def test_official_cases(case):
    run_case(case)


def test_official_cases_are_present():
    names = {c.name for c in cases("simple")}
    assert {"test_gradient_of_add", "test_gradient_of_add_and_mul"} <= names


# -- building and checking hand-written graphs -------------------------------------------------
@dataclass
class G:
    """A graph computing ``y`` from ``feeds``; the test appends Gradient(xs, zs, y)."""

    nodes: list
    feeds: dict[str, np.ndarray]
    y: str = "y"
    xs: tuple[str, ...] = ()
    zs: tuple[str, ...] = ()
    inits: dict[str, np.ndarray] = field(default_factory=dict)
    opset: int = 17

    def __post_init__(self) -> None:
        self.xs = self.xs or tuple(self.feeds)


def _info(name: str, array: np.ndarray):
    elem = helper.np_dtype_to_tensor_dtype(array.dtype)
    return helper.make_tensor_value_info(name, elem, array.shape)


def _y_info(g: G):
    """y's declared type, from onnx shape inference over the graph without Gradient."""
    if g.y in g.feeds:
        return _info(g.y, g.feeds[g.y])
    graph = helper.make_graph(
        g.nodes,
        "forward",
        [_info(n, a) for n, a in g.feeds.items()],
        [helper.make_empty_tensor_value_info(g.y)],
        initializer=[numpy_helper.from_array(a, n) for n, a in g.inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", g.opset)])
    inferred = shape_inference.infer_shapes(model, strict_mode=True).graph
    return next(v for v in inferred.value_info if v.name == g.y)


def _model(g: G, grad_outputs: list[str] | None = None, gradient_first: bool = False) -> bytes:
    outputs = grad_outputs if grad_outputs is not None else [f"d_{x}" for x in g.xs]
    extra = {"zs": list(g.zs)} if g.zs else {}
    gradient = helper.make_node(
        "Gradient",
        [*g.xs, *g.zs],
        outputs,
        domain=DOMAIN,
        name="grad",
        xs=list(g.xs),
        y=g.y,
        **extra,
    )
    nodes = [gradient, *g.nodes] if gradient_first else [*g.nodes, gradient]
    graph = helper.make_graph(
        nodes,
        "gradient_test",
        [_info(n, a) for n, a in g.feeds.items()],
        [_y_info(g), *(_info(o, g.feeds[x]) for o, x in zip(outputs, g.xs) if o)],
        initializer=[numpy_helper.from_array(a, n) for n, a in g.inits.items()],
    )
    opsets = [helper.make_opsetid("", g.opset), helper.make_opsetid(DOMAIN, 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def _numeric(session: ferry.InferenceSession, feeds: dict, x: str, y: str) -> np.ndarray:
    """Central differences of sum(y) with respect to feed ``x``."""
    grad = np.zeros_like(feeds[x])
    for index in np.ndindex(feeds[x].shape):
        sums = []
        for step in (EPS, -EPS):
            moved = feeds[x].copy()
            moved[index] += step
            sums.append(session.run([y], {**feeds, x: moved})[0].sum())
        grad[index] = (sums[0] - sums[1]) / (2 * EPS)
    return grad


def _check(g: G, **model_kwargs) -> list[np.ndarray]:
    session = ferry.InferenceSession(_model(g, **model_kwargs))
    results = session.run(None, g.feeds)
    for x, analytic in zip(g.xs, results[1:]):
        assert analytic.shape == g.feeds[x].shape and analytic.dtype == g.feeds[x].dtype
        np.testing.assert_allclose(
            analytic, _numeric(session, g.feeds, x, g.y), rtol=1e-5, atol=1e-6
        )
    return results[1:]


def _r(*shape: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return RNG.uniform(low, high, shape)


def _pos(*shape: int) -> np.ndarray:
    return _r(*shape, low=0.5, high=2.0)


def _node(op: str, inputs: list[str], output: str = "y", **attrs):
    return helper.make_node(op, inputs, [output], name=f"{op.lower()}_node", **attrs)


def _binary(op: str, a: np.ndarray, b: np.ndarray) -> G:
    return G([_node(op, ["a", "b"])], {"a": a, "b": b})


def _unary(op: str, x: np.ndarray, **attrs) -> G:
    return G([_node(op, ["x"], **attrs)], {"x": x})


def _axes(values: list[int]) -> dict[str, np.ndarray]:
    return {"axes": np.array(values, np.int64)}


CASES = {
    "add": _binary("Add", _r(2, 3), _r(2, 3)),
    "add_broadcast_row": _binary("Add", _r(2, 3), _r(3)),
    "add_broadcast_both": _binary("Add", _r(2, 1), _r(1, 3)),
    "add_broadcast_scalar": _binary("Add", _r(), _r(2, 3)),
    "sub_broadcast": _binary("Sub", _r(2, 1, 4), _r(3, 1)),
    "mul_broadcast": _binary("Mul", _r(2, 3, 4), _r(4)),
    "div_broadcast": _binary("Div", _r(2, 3), _pos(2, 1)),
    "neg": _unary("Neg", _r(2, 3)),
    "identity": _unary("Identity", _r(4)),
    "relu": _unary("Relu", _r(3, 4)),
    "sigmoid": _unary("Sigmoid", _r(3, 4)),
    "tanh": _unary("Tanh", _r(3, 4)),
    "exp": _unary("Exp", _r(3, 4)),
    "log": _unary("Log", _pos(3, 4)),
    "sqrt": _unary("Sqrt", _pos(3, 4)),
    "abs": _unary("Abs", _r(3, 4)),
    "reciprocal": _unary("Reciprocal", _pos(3)),
    "transpose_perm": _unary("Transpose", _r(2, 3, 4), perm=[1, 2, 0]),
    "transpose_default": _unary("Transpose", _r(2, 3, 4)),
    "matmul_2d": _binary("MatMul", _r(2, 3), _r(3, 4)),
    "matmul_batched": _binary("MatMul", _r(2, 2, 3), _r(2, 3, 4)),
    "matmul_batch_broadcast": _binary("MatMul", _r(2, 1, 2, 3), _r(3, 3, 4)),
    "matmul_batched_by_2d": _binary("MatMul", _r(2, 2, 3), _r(3, 4)),
    "matmul_vector_left": _binary("MatMul", _r(3), _r(2, 3, 4)),
    "matmul_vector_right": _binary("MatMul", _r(2, 3), _r(3)),
    "matmul_vectors": _binary("MatMul", _r(3), _r(3)),
    "pow_constant_exponent": G(
        [_node("Pow", ["x", "e"])], {"x": _pos(2, 3)}, inits={"e": np.array(3.0)}
    ),
    "pow_integer_exponent": G(
        [_node("Pow", ["x", "e"])], {"x": _r(2, 3)}, inits={"e": np.array(2, np.int64)}
    ),
    "pow_both": _binary("Pow", _pos(2, 3), _r(3)),
    "reduce_sum_axes_input": G(
        [_node("ReduceSum", ["x", "axes"], keepdims=0)], {"x": _r(2, 3, 4)}, inits=_axes([1])
    ),
    "reduce_sum_keepdims_negative_axis": G(
        [_node("ReduceSum", ["x", "axes"], "y0"), _node("Mul", ["y0", "x"])],
        {"x": _r(2, 3, 4)},
        inits=_axes([-1, 0]),
    ),
    "reduce_sum_all": G(
        [_node("ReduceSum", ["x"], "r", keepdims=0), _node("Mul", ["r", "r"])], {"x": _r(2, 3)}
    ),
    "reduce_sum_noop": G(
        [_node("ReduceSum", ["x", "axes"], "r", noop_with_empty_axes=1), _node("Exp", ["r"])],
        {"x": _r(2, 3)},
        inits={"axes": np.array([], np.int64)},
    ),
    "reduce_sum_attribute_opset11": G(
        [_node("ReduceSum", ["x"], "r", axes=[0, 2], keepdims=0), _node("Exp", ["r"])],
        {"x": _r(2, 3, 4)},
        opset=11,
    ),
    "reduce_mean_attribute": G(
        [_node("ReduceMean", ["x"], "r", axes=[1]), _node("Mul", ["r", "x"])], {"x": _r(2, 3, 4)}
    ),
    "reduce_mean_all_opset11": G(
        [_node("ReduceMean", ["x"], "r", keepdims=0), _node("Exp", ["r"])],
        {"x": _r(2, 3)},
        opset=11,
    ),
    "reduce_mean_axes_input_opset18": G(
        [_node("ReduceMean", ["x", "axes"], "r", keepdims=0), _node("Sqrt", ["r"])],
        {"x": _pos(2, 3, 4)},
        inits=_axes([0, 2]),
        opset=18,
    ),
    "reshape": G(
        [_node("Reshape", ["x", "shape"], "r"), _node("Mul", ["r", "w"])],
        {"x": _r(2, 6), "w": _r(3, 4)},
        inits={"shape": np.array([3, -1], np.int64)},
    ),
    "gemm": G([_node("Gemm", ["a", "b", "c"])], {"a": _r(2, 3), "b": _r(3, 4), "c": _r(2, 4)}),
    "gemm_transposed_scaled_broadcast_c": G(
        [_node("Gemm", ["a", "b", "c"], alpha=0.5, beta=-2.0, transA=1, transB=1)],
        {"a": _r(3, 2), "b": _r(4, 3), "c": _r(4)},
    ),
    "gemm_scalar_c_no_c_grad": G(
        [_node("Gemm", ["a", "b", "c"], transB=1)], {"a": _r(2, 3), "b": _r(4, 3), "c": _r(1, 1)}
    ),
    "gemm_without_c": G([_node("Gemm", ["a", "b"], alpha=3.0)], {"a": _r(2, 3), "b": _r(3, 4)}),
    "mlp": G(
        [
            _node("MatMul", ["x", "w"], "h"),
            _node("Add", ["h", "b"], "z"),
            _node("Tanh", ["z"], "t"),
            _node("Sigmoid", ["t"], "s"),
            _node("ReduceMean", ["s", "axes"], "m", keepdims=0),
            _node("Log", ["m"], "y"),
        ],
        {"w": _r(3, 4), "b": _r(4), "x": _r(5, 3)},
        xs=("w", "b"),
        zs=("x",),
        inits=_axes([1]),
        opset=18,
    ),
    "same_input_twice": G([_node("Mul", ["x", "x"], "s"), _node("Mul", ["s", "x"])], {"x": _r(3)}),
    "legacy_broadcast_axis_opset6": G(
        [_node("Mul", ["a", "b"], broadcast=1, axis=1)], {"a": _r(2, 3, 4), "b": _r(3)}, opset=6
    ),
    "legacy_broadcast_trailing_opset6": G(
        [_node("Sub", ["a", "b"], broadcast=1)], {"a": _r(2, 3, 4), "b": _r(3, 4)}, opset=6
    ),
    "outer_value_read_from_env": G(
        [_node("Mul", ["a", "w"], "p"), _node("Add", ["p", "k"])],
        {"a": _r(2, 3), "w": _r(3)},
        xs=("a",),
        inits={"k": _r(2, 3)},
    ),
    "non_differentiable_branch_on_zs": G(
        [_node("Sin", ["z"], "s"), _node("Mul", ["x", "s"])],
        {"x": _r(3), "z": _r(3)},
        xs=("x",),
        zs=("z",),
    ),
    "cast_and_shape": G(
        [
            _node("Shape", ["x"], "shape"),
            _node("Cast", ["x"], "c", to=TensorProto.DOUBLE),
            _node("Reshape", ["c", "shape"], "r"),
            _node("Exp", ["r"]),
        ],
        {"x": _r(2, 3)},
    ),
    "sum_squeeze_unsqueeze_flatten_expand": G(
        [
            _node("Unsqueeze", ["a", "axes"], "u"),
            _node("Expand", ["u", "shape"], "e"),
            _node("Flatten", ["e"], "f", axis=1),
            _node("Squeeze", ["f"], "q"),
            _node("Sum", ["q", "b", "q"], "y"),
        ],
        {"a": _r(3), "b": _r(3)},
        inits={"axes": np.array([0], np.int64), "shape": np.array([1, 3], np.int64)},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_finite_differences(name):
    _check(CASES[name])


def test_gradient_node_before_the_nodes_it_differentiates():
    _check(CASES["mlp"], gradient_first=True)


def test_x_off_the_path_gets_zeros():
    g = G([_node("Exp", ["a"])], {"a": _r(2), "b": _r(3)})
    _, db = _check(g)
    np.testing.assert_array_equal(db, np.zeros(3))


def test_y_equal_to_x_gives_ones():
    g = G([_node("Exp", ["x"], "unused")], {"x": _r(2, 2)}, y="x")
    (dx,) = _check(g)
    np.testing.assert_array_equal(dx, np.ones((2, 2)))


def test_skipped_output():
    g = _binary("Mul", _r(2), _r(2))
    session = ferry.InferenceSession(_model(g, grad_outputs=["", "d_b"]))
    _, db = session.run(None, g.feeds)
    np.testing.assert_allclose(db, g.feeds["a"])


def test_gradient_at_other_values_of_intermediate():
    """xs may name an intermediate: its producers are cut off, the input value is used."""
    nodes = [_node("Mul", ["a", "b"], "h"), _node("Mul", ["h", "h"], "y")]
    graph = helper.make_graph(
        [*nodes, helper.make_node("Gradient", ["h1"], ["dh"], domain=DOMAIN, xs=["h"], y="y")],
        "intermediate",
        [_info(n, np.zeros(2)) for n in ("a", "b", "h1")],
        [_info("dh", np.zeros(2))],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)]
    session = ferry.InferenceSession(
        helper.make_model(graph, opset_imports=opsets).SerializeToString()
    )
    feeds = {"a": _r(2), "b": _r(2), "h1": np.array([1.5, -4.0])}
    (dh,) = session.run(None, feeds)
    np.testing.assert_allclose(dh, 2 * feeds["h1"])


def test_float32():
    g = G(
        [_node("Mul", ["a", "b"], "p"), _node("Tanh", ["p"])],
        {"a": _r(2, 3).astype(np.float32), "b": _r(3).astype(np.float32)},
    )
    session = ferry.InferenceSession(_model(g))
    _, da, db = session.run(None, g.feeds)
    a, b = g.feeds["a"], g.feeds["b"]
    d = 1 - np.tanh(a * b) ** 2
    assert da.dtype == db.dtype == np.float32
    np.testing.assert_allclose(da, d * b, rtol=1e-5)
    np.testing.assert_allclose(db, (d * a).sum(0), rtol=1e-5)


def test_unsupported_op_on_the_path_fails_at_session_creation():
    g = G([_node("Sin", ["x"], "s"), _node("Exp", ["s"])], {"x": _r(3)})
    with pytest.raises(
        KernelNotFoundError, match=r"Gradient: no derivative rule for Sin \(node 'sin_node'\)"
    ):
        ferry.InferenceSession(_model(g))


def test_unknown_y_fails_at_session_creation():
    gradient = helper.make_node("Gradient", ["x"], ["dx"], domain=DOMAIN, xs=["x"], y="q")
    graph = helper.make_graph(
        [gradient], "bad_y", [_info("x", np.zeros(3))], [_info("dx", np.zeros(3))]
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)]
    model = helper.make_model(graph, opset_imports=opsets).SerializeToString()
    with pytest.raises(KernelNotFoundError, match=r"y 'q' is not a value of the graph"):
        ferry.InferenceSession(model)


def test_gradient_inside_a_subgraph_reads_outer_values():
    branch = helper.make_graph(
        [
            _node("Mul", ["a", "w"], "p"),
            _node("Tanh", ["p"], "t"),
            helper.make_node("Gradient", ["a"], ["da"], domain=DOMAIN, xs=["a"], y="t"),
        ],
        "then",
        [],
        [_info("da", np.zeros(3))],
    )
    other = helper.make_graph(
        [_node("Identity", ["a"], "same")], "else", [], [_info("same", np.zeros(3))]
    )
    cond = helper.make_node("If", ["c"], ["out"], then_branch=branch, else_branch=other)
    graph = helper.make_graph(
        [cond],
        "outer",
        [_info("c", np.array(True)), _info("a", np.zeros(3)), _info("w", np.zeros(3))],
        [_info("out", np.zeros(3))],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)]
    session = ferry.InferenceSession(
        helper.make_model(graph, opset_imports=opsets).SerializeToString()
    )
    a, w = _r(3), _r(3)
    (da,) = session.run(None, {"c": np.array(True), "a": a, "w": w})
    np.testing.assert_allclose(da, (1 - np.tanh(a * w) ** 2) * w)
