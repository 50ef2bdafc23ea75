"""The ``Gradient`` operator (ai.onnx.preview.training): reverse-mode differentiation.

At plan time the nodes of the Gradient node's graph that compute ``y`` from the
values named in ``xs`` and ``zs`` are found and compiled into a forward
recomputation; values they read from outside that set (graph inputs, initializers,
outer-scope values) become extra inputs of the step. At run time the forward pass is
recomputed from the Gradient node's inputs, ``dy`` is seeded with ones, and each
node's vector-Jacobian rule is applied in reverse order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ferry.errors import KernelNotFoundError
from ferry.ir import Graph, Node
from ferry.runtime.plan import GraphPlan, Step

__all__ = ["DOMAIN", "gradient_step"]

DOMAIN = "ai.onnx.preview.training"

Array = np.ndarray
# (inputs, output, output gradient, bound attributes) -> gradient per input (None: none)
RuleFunction = Callable[[list, Array, Array, dict], list]


@dataclass(frozen=True)
class _Rule:
    function: RuleFunction
    differentiable: tuple[int, ...] | None  # input positions gradients flow to; None: all


_RULES: dict[str, _Rule] = {}


def _rule(*ops: str, inputs: tuple[int, ...] | None = None) -> Callable:
    def register(function: RuleFunction) -> RuleFunction:
        for op in ops:
            _RULES[op] = _Rule(function, inputs)
        return function

    return register


# -- plan time ------------------------------------------------------------------------------
def gradient_step(compiler, node: Node, opsets: Mapping[str, int], bindings) -> Step:
    """Compile a Gradient node into a step (``compiler`` is plan's ``_Compiler``)."""
    xs, zs, y = _names(node)
    graph = node.graph
    if graph is None:
        raise KernelNotFoundError(f"Gradient: {node.describe()} belongs to no graph")
    leaves = set(xs) | set(zs)
    forward, outer = _forward_nodes(graph, node, leaves, y)
    if y in outer and graph is compiler.model.graph:
        known = {v.name for v in graph.inputs} | set(graph.initializers)
        if y not in known:
            raise KernelNotFoundError(
                f"Gradient: {node.describe()}: y {y!r} is not a value of the graph"
            )
    active = _active_nodes(forward, set(xs))
    steps = [compiler.step(n, opsets, bindings) for n in forward]
    recompute = GraphPlan(graph, (), (), {}, steps)
    attributes = {id(n): step.attributes for n, step in zip(forward, steps)}
    rules = [(n, attributes[id(n)], _RULES[n.op_type], positions) for n, positions in active]
    leaf_names = (*xs, *zs)
    outer_names = tuple(sorted(outer))

    def call(*args: object) -> tuple:
        env = dict(zip(outer_names, args[len(leaf_names) :]))
        env.update(zip(leaf_names, args[: len(leaf_names)]))
        recompute.run(env)
        return _backward(env, rules, y, xs)

    return Step(
        node,
        call,
        (*(v.name if v is not None else None for v in node.inputs), *outer_names),
        tuple(v.name if v is not None else None for v in node.outputs),
        {},
    )


def _names(node: Node) -> tuple[list[str], list[str], str]:
    xs = list(node.attribute("xs") or [])
    zs = list(node.attribute("zs") or [])
    y = node.attribute("y")
    if not xs or not isinstance(y, str) or not y:
        raise KernelNotFoundError(f"Gradient: {node.describe()} needs the attributes xs and y")
    if len(node.inputs) != len(xs) + len(zs):
        raise KernelNotFoundError(
            f"Gradient: {node.describe()} has {len(node.inputs)} inputs, "
            f"expected {len(xs)} (xs) + {len(zs)} (zs)"
        )
    if len(node.outputs) > len(xs):
        raise KernelNotFoundError(
            f"Gradient: {node.describe()} has {len(node.outputs)} outputs for {len(xs)} xs"
        )
    return xs, zs, y


def _forward_nodes(
    graph: Graph, gradient: Node, leaves: set[str], y: str
) -> tuple[list[Node], set[str]]:
    """The nodes computing ``y`` back to ``leaves`` (graph order), and the outer names they read."""
    producers = {v.name: n for n in graph for v in n.outputs if v is not None}
    selected: set[int] = set()
    outer: set[str] = set()
    pending, seen = [y], set()
    while pending:
        name = pending.pop()
        if name in seen or name in leaves:
            continue
        seen.add(name)
        producer = producers.get(name)
        if producer is None:
            outer.add(name)
            continue
        if producer is gradient:
            raise KernelNotFoundError(f"Gradient: {gradient.describe()} computes its own y {y!r}")
        selected.add(id(producer))
        pending.extend(_reads(producer))
    return [n for n in graph if id(n) in selected], outer


def _reads(node: Node) -> list[str]:
    """Names ``node`` reads: its inputs and the outer names its subgraphs read."""
    names = [v.name for v in node.inputs if v is not None and v.name]
    for graph in node.subgraphs():
        names.extend(_free_names(graph))
    return names


def _free_names(graph: Graph) -> set[str]:
    defined = {v.name for v in graph.inputs} | set(graph.initializers)
    read = {v.name for v in graph.outputs}
    for node in graph:
        defined |= {v.name for v in node.outputs if v is not None}
        read |= set(_reads(node))
    return read - defined


def _active_nodes(forward: list[Node], xs: set[str]) -> list[tuple[Node, tuple[int, ...]]]:
    """The forward nodes gradients flow through, each with the input positions they flow to.

    A node reading a value that depends on ``xs`` without a derivative rule is an error.
    """
    active_names = set(xs)
    active: list[tuple[Node, tuple[int, ...]]] = []
    for node in forward:
        reads = set(_reads(node)) & active_names
        if not reads:
            continue
        rule = _RULES.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if rule is None:
            raise KernelNotFoundError(
                f"Gradient: no derivative rule for {node.op_type} (node {node.name or '<unnamed>'!r})"
            )
        candidates = range(len(node.inputs)) if rule.differentiable is None else rule.differentiable
        positions = tuple(
            i for i in candidates if i < len(node.inputs) and _name(node, i) in active_names
        )
        if positions and node.outputs and node.outputs[0] is not None:
            active.append((node, positions))
            active_names.add(node.outputs[0].name)
    return active


def _name(node: Node, index: int) -> str | None:
    value = node.inputs[index]
    return value.name if value is not None else None


# -- run time -------------------------------------------------------------------------------
def _backward(env: dict, rules: list, y: str, xs: list[str]) -> tuple:
    """Seed dy with ones and apply each active node's rule in reverse; dy/dx per x."""
    grads: dict[str, Array] = {y: np.ones_like(np.asarray(env[y]))}
    for node, attributes, rule, positions in reversed(rules):
        out = node.outputs[0].name
        if out not in grads:
            continue
        inputs = [env[v.name] if v is not None else None for v in node.inputs]
        results = rule.function(inputs, np.asarray(env[out]), grads[out], attributes)
        for index in positions:
            name, grad = node.inputs[index].name, np.asarray(results[index])
            grads[name] = grads[name] + grad if name in grads else grad
    outputs = []
    for x in xs:
        value = np.asarray(env[x])
        grad = grads.get(x)
        grad = np.zeros_like(value) if grad is None else np.broadcast_to(grad, value.shape)
        outputs.append(np.array(grad, dtype=value.dtype))
    return tuple(outputs)


def _unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` over the axes broadcasting added or stretched to reach ``shape``."""
    grad = np.asarray(grad)
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead > 0:
        grad = grad.sum(axis=tuple(range(lead)))
    stretched = tuple(i for i, d in enumerate(shape) if d == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


def _operands(ins: list, attrs: dict) -> tuple[Array, Array]:
    """A binary op's operands, the second aligned to the first by pre-opset-7 ``broadcast``."""
    a, b = np.asarray(ins[0]), np.asarray(ins[1])
    if not attrs.get("broadcast") or b.shape == a.shape:
        return a, b
    if b.size == 1:
        return a, b.reshape(())
    axis = attrs.get("axis")
    start = a.ndim - b.ndim if axis is None else axis % a.ndim
    return a, b.reshape((1,) * start + b.shape + (1,) * (a.ndim - start - b.ndim))


def _pair(ins: list, a: Array, b: Array, da: Array, db: Array) -> list:
    """Both operand gradients reduced back to the operands' own shapes."""
    return [_unbroadcast(da, a.shape), _unbroadcast(db, b.shape).reshape(np.shape(ins[1]))]


# -- derivative rules -------------------------------------------------------------------------
@_rule("Add")
def _add(ins: list, out: Array, g: Array, attrs: dict) -> list:
    a, b = _operands(ins, attrs)
    return _pair(ins, a, b, g, g)


@_rule("Sub")
def _sub(ins: list, out: Array, g: Array, attrs: dict) -> list:
    a, b = _operands(ins, attrs)
    return _pair(ins, a, b, g, -g)


@_rule("Mul")
def _mul(ins: list, out: Array, g: Array, attrs: dict) -> list:
    a, b = _operands(ins, attrs)
    return _pair(ins, a, b, g * b, g * a)


@_rule("Div")
def _div(ins: list, out: Array, g: Array, attrs: dict) -> list:
    a, b = _operands(ins, attrs)
    return _pair(ins, a, b, g / b, -g * out / b)


@_rule("Pow")
def _pow(ins: list, out: Array, g: Array, attrs: dict) -> list:
    """d/da = b a^(b-1); d/db = a^b ln a, taken as 0 where a <= 0 (undefined there)."""
    a, b = _operands(ins, attrs)
    da = g * b * np.power(a, b - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = g * out * np.log(np.where(a > 0, a, 1))
    return _pair(ins, a, b, da, db)


@_rule("Sum")
def _sum(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [_unbroadcast(g, np.shape(x)) for x in ins]


@_rule("Neg")
def _neg(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [-g]


@_rule("Identity")
def _identity(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [g]


@_rule("Abs")
def _abs(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [g * np.sign(ins[0])]


@_rule("Reciprocal")
def _reciprocal(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [-g * out * out]


@_rule("Relu")
def _relu(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [g * (ins[0] > 0)]


@_rule("Sigmoid")
def _sigmoid(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [g * out * (1 - out)]


@_rule("Tanh")
def _tanh(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [g * (1 - out * out)]


@_rule("Exp")
def _exp(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [g * out]


@_rule("Log")
def _log(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [g / ins[0]]


@_rule("Sqrt")
def _sqrt(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [g / (2 * out)]


@_rule("Cast")
def _cast(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [np.asarray(g).astype(np.asarray(ins[0]).dtype)]


@_rule("Reshape", "Flatten", "Squeeze", "Unsqueeze", inputs=(0,))
def _reshape(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [np.reshape(g, np.shape(ins[0]))]


@_rule("Expand", inputs=(0,))
def _expand(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [_unbroadcast(g, np.shape(ins[0]))]


@_rule("Shape", "Size", inputs=())
def _constant(ins: list, out: Array, g: Array, attrs: dict) -> list:
    return [None] * len(ins)


@_rule("Transpose")
def _transpose(ins: list, out: Array, g: Array, attrs: dict) -> list:
    perm = attrs.get("perm")
    if perm is None:
        return [np.transpose(g)]
    return [np.transpose(g, np.argsort(perm))]


def _reduced_axes(ins: list, attrs: dict) -> list[int] | None:
    """The axes a ReduceSum/ReduceMean reduced (input or attribute form); None: none."""
    x = np.asarray(ins[0])
    axes = ins[1] if len(ins) > 1 and ins[1] is not None else attrs.get("axes")
    axes = [] if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
    if not axes:
        return None if attrs.get("noop_with_empty_axes") else list(range(x.ndim))
    return sorted({a % x.ndim for a in axes}) if x.ndim else []


def _spread(g: Array, x: Array, axes: list[int]) -> Array:
    kept = tuple(1 if i in axes else d for i, d in enumerate(np.shape(x)))
    return np.broadcast_to(np.reshape(g, kept), np.shape(x))


@_rule("ReduceSum", inputs=(0,))
def _reduce_sum(ins: list, out: Array, g: Array, attrs: dict) -> list:
    axes = _reduced_axes(ins, attrs)
    return [g if axes is None else _spread(g, ins[0], axes)]


@_rule("ReduceMean", inputs=(0,))
def _reduce_mean(ins: list, out: Array, g: Array, attrs: dict) -> list:
    axes = _reduced_axes(ins, attrs)
    if axes is None:
        return [g]
    count = int(np.prod([np.shape(ins[0])[a] for a in axes]))
    return [_spread(g, ins[0], axes) / max(1, count)]


@_rule("MatMul")
def _matmul(ins: list, out: Array, g: Array, attrs: dict) -> list:
    a, b = np.asarray(ins[0]), np.asarray(ins[1])
    a2 = a[np.newaxis, :] if a.ndim == 1 else a
    b2 = b[:, np.newaxis] if b.ndim == 1 else b
    g2 = np.asarray(g)
    if b.ndim == 1:  # re-insert the axes numpy dropped, in reverse order
        g2 = np.expand_dims(g2, -1)
    if a.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    da = np.matmul(g2, np.swapaxes(b2, -1, -2))
    db = np.matmul(np.swapaxes(a2, -1, -2), g2)
    da = _unbroadcast(da, a2.shape).reshape(a.shape)
    db = _unbroadcast(db, b2.shape).reshape(b.shape)
    return [da, db]


@_rule("Gemm")
def _gemm(ins: list, out: Array, g: Array, attrs: dict) -> list:
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    op_a = a.T if attrs.get("transA") else a
    op_b = b.T if attrs.get("transB") else b
    da = alpha * (g @ op_b.T)
    db = alpha * (op_a.T @ g)
    da = da.T if attrs.get("transA") else da
    db = db.T if attrs.get("transB") else db
    dc = None if c is None else _unbroadcast(beta * g, np.shape(c))
    return [da, db, dc]
