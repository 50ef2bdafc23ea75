"""Shape rules for If, Loop and Scan: types flow through the subgraph attributes.

If: both branches are inferred; a constant condition selects its branch's types, otherwise
each output is what both branches agree on (equal dims kept, differing dims unknown,
different ranks give an unknown rank). Loop and Scan: loop-carried (state) types are
iterated to a fixed point, since a body may change them and the loop may run zero times;
scan outputs are the body's per-iteration outputs stacked along a new axis whose size is
the trip count (Loop: ``M`` when no condition can stop the loop early; Scan: the scan
inputs' length along their scan axes). A body inferred again reports nothing new: its
diagnostics are those of the first pass (the driver mutes re-inferences).

Shape data flows out too: an If output has the elements all possible branches agree on;
a final loop-carried value keeps its initial data when the body passes it through
unchanged or the loop runs no iteration.
"""

from __future__ import annotations

from collections.abc import Sequence

from ferry.ir import DataType, Graph, OptionalType, SequenceType, Shape, TensorType, Type, Value
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr, from_dim
from ferry.shapes.merge import tensor_type
from ferry.shapes.registry import shape_rule

__all__ = ["merge_types", "tensor_dims"]

_MAX_PASSES = 4
_SCALAR_INT64 = TensorType(DataType.INT64, Shape([]))
_SCALAR_BOOL = TensorType(DataType.BOOL, Shape([]))


# -- type merging -----------------------------------------------------------------------------


def _merge_shape(a: Shape | None, b: Shape | None) -> Shape | None:
    if a is None or b is None or len(a) != len(b):
        return None
    return Shape([x if x == y else None for x, y in zip(a, b)])


def merge_types(a: Type | None, b: Type | None) -> Type | None:
    """The most precise type that covers both ``a`` and ``b`` (None: nothing known).

    Tensors keep the element type they share and the dims they agree on; sequences and
    optionals merge their element types; anything else must be equal."""
    if a is None or b is None:
        return None
    if isinstance(a, TensorType) and isinstance(b, TensorType):
        dtype = a.dtype if a.dtype == b.dtype else None
        return type(a)(dtype, _merge_shape(a.shape, b.shape)) if type(a) is type(b) else None
    if isinstance(a, SequenceType) and isinstance(b, SequenceType):
        return SequenceType(merge_types(a.elem_type, b.elem_type))
    if isinstance(a, OptionalType) and isinstance(b, OptionalType):
        return OptionalType(merge_types(a.elem_type, b.elem_type))
    return a if a == b else None


def _dtype_clash(a: Type | None, b: Type | None) -> str | None:
    """A description of incompatible kinds or element types between ``a`` and ``b``."""
    if a is None or b is None:
        return None
    if type(a) is not type(b):
        return f"{a} vs {b}"
    if isinstance(a, TensorType) and isinstance(b, TensorType):
        if a.dtype is not None and b.dtype is not None and a.dtype != b.dtype:
            return f"{a} vs {b}"
        return None
    if isinstance(a, (SequenceType, OptionalType)):
        return _dtype_clash(a.elem_type, b.elem_type)  # type: ignore[union-attr]
    return None


def tensor_dims(type_: Type | None) -> list[Expr | None] | None:
    """A tensor type's shape as expressions (None: not a tensor, or rank unknown)."""
    if not isinstance(type_, TensorType) or type_.shape is None:
        return None
    return [from_dim(d) for d in type_.shape]


def _set_type(ctx: InferenceContext, index: int, type_: Type | None) -> None:
    if isinstance(type_, TensorType):
        ctx.set_output(index, type_.dtype, tensor_dims(type_))
    elif type_ is not None:
        ctx.set_output_type(index, type_)


def _stacked(ctx: InferenceContext, index: int, element: Type | None, length: Expr | None,
             axis: int = 0) -> None:
    """Set output ``index`` to per-iteration ``element`` tensors stacked along ``axis``."""
    if element is not None and not isinstance(element, TensorType):
        ctx.error(f"scan output {index} must be a tensor, the body gives a {element}")
        return
    dtype = element.dtype if element is not None else None
    dims = tensor_dims(element)
    if dims is None:
        ctx.set_output(index, dtype, None)
        return
    if not -len(dims) - 1 <= axis <= len(dims):
        ctx.error(f"scan output axis {axis} is outside [{-len(dims) - 1}, {len(dims)}] for "
                  f"per-iteration outputs of rank {len(dims)}")
        return
    dims.insert(axis + len(dims) + 1 if axis < 0 else axis, length)
    ctx.set_output(index, dtype, dims)


def _graph_attr(ctx: InferenceContext, name: str) -> Graph | None:
    graph = ctx.attr(name)
    if not isinstance(graph, Graph):
        ctx.error(f"attribute {name!r} must be a graph, got {type(graph).__name__}")
        return None
    return graph


def _unwrapped(old: Type | None, new: Type | None) -> Type | None:
    """``old`` without its optional wrapping when the body yields the bare element type
    (a loop may carry an optional in and the element out)."""
    if isinstance(old, OptionalType) and new is not None and not isinstance(new, OptionalType):
        return old.elem_type
    return old


def _rewrapped(initial: Type | None, state: Type | None) -> Type | None:
    """``state`` as the body sees it: optional again when the initial value was."""
    if isinstance(initial, OptionalType) and state is not None and not isinstance(state, OptionalType):
        return OptionalType(state)
    return state


def _iterate_state(ctx: InferenceContext, body: Graph, prefix: Sequence[Type | None],
                   initial: list[Type | None], suffix: Sequence[Type | None],
                   first_state: int) -> tuple[list[Type | None], list[Type | None]] | None:
    """Infer ``body`` until the state types are stable; returns (states, body outputs).

    The body's inputs are ``prefix + states + suffix`` and its outputs from
    ``first_state`` on are the next states. A state keeps what every iteration agrees on."""
    states = list(initial)
    for _ in range(_MAX_PASSES):
        formals = [_rewrapped(first, state) for first, state in zip(initial, states)]
        outputs = ctx.infer_graph(body, [*prefix, *formals, *suffix])
        following = outputs[first_state : first_state + len(states)]
        merged = []
        for k, (old, new) in enumerate(zip(states, following)):
            old = _unwrapped(old, new)
            clash = _dtype_clash(old, new)
            if clash is not None:
                ctx.error(f"loop-carried value {k} changes type in the body: {clash}")
                return None
            merged.append(merge_types(old, new))
        if merged == states:
            return states, outputs
        states = merged
    return [None] * len(states), outputs


# -- If ----------------------------------------------------------------------------------------


@shape_rule("If", since=1)
def if_(ctx: InferenceContext) -> None:
    """Outputs of the branch a constant condition picks, else the merge of both branches."""
    branches = [_graph_attr(ctx, "then_branch"), _graph_attr(ctx, "else_branch")]
    if branches[0] is None or branches[1] is None:
        return
    count = ctx.num_outputs()
    results = []
    for name, graph in zip(("then_branch", "else_branch"), branches):
        if len(graph.outputs) != count:
            ctx.error(f"{name} has {len(graph.outputs)} outputs, the node has {count}")
            return
        results.append(ctx.infer_graph(graph, []))
    condition = ctx.input_value(0)
    if condition is not None and condition.size == 1:
        taken = 0 if bool(condition.reshape(-1)[0]) else 1
        for index, type_ in enumerate(results[taken]):
            _set_type(ctx, index, type_)
        _branch_data(ctx, [branches[taken]])
        return
    for index, (then_type, else_type) in enumerate(zip(*results)):
        clash = _dtype_clash(then_type, else_type)
        if clash is not None:
            ctx.error(f"output {index}: the branches disagree on its type ({clash})")
            continue
        _set_type(ctx, index, merge_types(then_type, else_type))
    _branch_data(ctx, branches)


def _branch_data(ctx: InferenceContext, branches: list[Graph]) -> None:
    """Shape data out of If: the elements every possible branch agrees on."""
    for index in range(ctx.num_outputs()):
        parts = [ctx.graph_output_symbolic(graph, index) for graph in branches]
        if any(p is None or len(p) != len(parts[0]) for p in parts):
            continue
        elements = [e if all(p[k] is not None and p[k] == e for p in parts) else None
                    for k, e in enumerate(parts[0])]
        if any(e is not None for e in elements):
            ctx.set_output_symbolic(index, elements)


def _carried_data(ctx: InferenceContext, body: Graph, first_input: int, first_output: int,
                  count: int, no_iterations: bool) -> None:
    """Shape data of final loop-carried values: the initial data when the loop runs no
    iteration or the body passes the value through unchanged."""
    for k in range(count):
        source = body.outputs[first_output + k] if first_output + k < len(body.outputs) else None
        unchanged = source is not None and _through_identities(source) is body.inputs[first_input + k]
        elements = ctx.input_symbolic(first_input + k) if ctx.has_input(first_input + k) else None
        if elements is not None and (no_iterations or unchanged):
            ctx.set_output_symbolic(k, elements)


# -- Loop --------------------------------------------------------------------------------------


def _through_identities(value: Value) -> Value:
    """The value that ``value`` copies through a chain of Identity nodes."""
    producer = value.producer()
    while producer is not None and producer.op_type == "Identity" and producer.inputs[0] is not None:
        value = producer.inputs[0]
        producer = value.producer()
    return value


def _trip_count(ctx: InferenceContext, body: Graph) -> Expr:
    """The number of iterations: M when nothing can end the loop early (or M is 0), else
    unknown."""
    condition_fixed = not ctx.has_input(1)
    if not condition_fixed and len(body.inputs) > 1 and body.outputs:
        initial = ctx.input_value(1)
        passes_through = _through_identities(body.outputs[0]) is body.inputs[1]
        condition_fixed = passes_through and initial is not None and bool(initial.all())
    elements = ctx.input_symbolic(0) if ctx.has_input(0) else None
    count = elements[0] if elements is not None and len(elements) == 1 else None
    if count is not None and (condition_fixed or count == 0):
        return count
    if ctx.has_input(0) and condition_fixed:
        return ctx.fresh("Loop runs M times, and M is not known")
    return ctx.fresh("the number of Loop iterations depends on its condition")


@shape_rule("Loop", since=1)
def loop(ctx: InferenceContext) -> None:
    """Final loop-carried values (stable over iterations), then scan outputs [trips, ...]."""
    body = _graph_attr(ctx, "body")
    if body is None:
        return
    carried = max(ctx.num_inputs() - 2, 0)
    if len(body.inputs) != 2 + carried:
        ctx.error(f"the body has {len(body.inputs)} inputs, expected {2 + carried} "
                  f"(iteration number, condition and {carried} loop-carried values)")
        return
    scans = len(body.outputs) - 1 - carried
    if scans < 0:
        ctx.error(f"the body has {len(body.outputs)} outputs, expected at least {1 + carried} "
                  f"(condition and {carried} loop-carried values)")
        return
    initial = [ctx.input_type(2 + k) for k in range(carried)]
    result = _iterate_state(ctx, body, [_SCALAR_INT64, _SCALAR_BOOL], initial, [], 1)
    if result is None:
        return
    states, outputs = result
    for index, type_ in enumerate(states):
        _set_type(ctx, index, type_)
    _carried_data(ctx, body, 2, 1, carried, ctx.has_input(0) and ctx.input_symbolic(0) == [0])
    if scans:
        trips = _trip_count(ctx, body)
        for k in range(scans):
            _stacked(ctx, carried + k, outputs[1 + carried + k], trips)


# -- Scan --------------------------------------------------------------------------------------


def _scan_length(ctx: InferenceContext, lengths: list[Expr | None]) -> Expr | None:
    """The common scan length; an error when two known constants differ."""
    constants = sorted({d.value for d in lengths if d is not None and d.is_const})
    if len(constants) > 1:
        ctx.error(f"scan inputs have different lengths along their scan axes: {constants}")
        return None
    if constants:
        return Expr.const(constants[0])
    return next((d for d in lengths if d is not None), None)


def _per_scan(ctx: InferenceContext, name: str, count: int) -> list[int] | None:
    values = ctx.attr(name)
    if values is None:
        return [0] * count
    if len(values) != count:
        ctx.error(f"{name} has {len(values)} entries, expected {count}")
        return None
    return [int(v) for v in values]


def _slices(ctx: InferenceContext, first: int, axes: list[int]) -> tuple[list[Type], list] | None:
    """Per-iteration slice types of the scan inputs and their lengths along the scan axes."""
    types: list[Type] = []
    lengths: list[Expr | None] = []
    for j, axis in enumerate(axes):
        dims = ctx.input_shape(first + j)
        if dims is None:
            types.append(TensorType(ctx.input_dtype(first + j), None))
            continue
        if not -len(dims) <= axis < len(dims):
            ctx.error(f"scan input {first + j} of rank {len(dims)} has no scan axis {axis}")
            return None
        axis %= len(dims)
        lengths.append(dims.pop(axis))
        types.append(tensor_type(ctx.input_dtype(first + j), dims))
    return types, lengths


@shape_rule("Scan", since=9)
def scan(ctx: InferenceContext) -> None:
    """Scan-9+: final states, then scan outputs with the scan length inserted at their axes."""
    body = _graph_attr(ctx, "body")
    count = ctx.attr("num_scan_inputs")
    if body is None:
        return
    if count is None or not 0 < count <= ctx.num_inputs():
        ctx.error(f"num_scan_inputs must be in [1, {ctx.num_inputs()}], got {count}")
        return
    states = ctx.num_inputs() - count
    scans = len(body.outputs) - states
    axes = _per_scan(ctx, "scan_input_axes", count)
    out_axes = _per_scan(ctx, "scan_output_axes", max(scans, 0))
    if axes is None or out_axes is None:
        return
    if len(body.inputs) != ctx.num_inputs() or scans < 0:
        ctx.error(f"the body has {len(body.inputs)} inputs and {len(body.outputs)} outputs; "
                  f"expected {ctx.num_inputs()} inputs and at least {states} outputs")
        return
    sliced = _slices(ctx, states, axes)
    if sliced is None:
        return
    length = _scan_length(ctx, sliced[1])
    initial = [ctx.input_type(k) for k in range(states)]
    result = _iterate_state(ctx, body, [], initial, sliced[0], 0)
    if result is None:
        return
    final, outputs = result
    for index, type_ in enumerate(final):
        _set_type(ctx, index, type_)
    _carried_data(ctx, body, 0, 0, states, length == 0)
    for k, axis in enumerate(out_axes):
        _stacked(ctx, states + k, outputs[states + k], length, axis)


def _drop_leading(ctx: InferenceContext, index: int, count: int) -> tuple[Type, list]:
    """Input ``index`` without its first ``count`` dims, and those dims (unknown: None)."""
    dims = ctx.input_shape(index)
    if dims is None:
        return TensorType(ctx.input_dtype(index), None), [None] * count
    if len(dims) < count:
        ctx.error(f"input {index} has rank {len(dims)}, Scan-8 needs at least {count}")
        return TensorType(ctx.input_dtype(index), None), [None] * count
    return tensor_type(ctx.input_dtype(index), dims[count:]), dims[:count]


@shape_rule("Scan", since=8)
def scan_8(ctx: InferenceContext) -> None:
    """Scan-8: inputs batched on axis 0, scanned on axis 1; outputs [batch, (length,) ...]."""
    body = _graph_attr(ctx, "body")
    count = ctx.attr("num_scan_inputs")
    if body is None:
        return
    if count is None or not 0 < count <= ctx.num_inputs() - 1:
        ctx.error(f"num_scan_inputs must be in [1, {ctx.num_inputs() - 1}], got {count}")
        return
    states = ctx.num_inputs() - 1 - count
    scans = len(body.outputs) - states
    if len(body.inputs) != states + count or scans < 0:
        ctx.error(f"the body has {len(body.inputs)} inputs and {len(body.outputs)} outputs; "
                  f"expected {states + count} inputs and at least {states} outputs")
        return
    state_types, batches = [], []
    for k in range(states):
        type_, leading = _drop_leading(ctx, 1 + k, 1)
        state_types.append(type_)
        batches.append(leading[0])
    slice_types, lengths = [], []
    for j in range(count):
        type_, leading = _drop_leading(ctx, 1 + states + j, 2)
        slice_types.append(type_)
        batches.append(leading[0])
        lengths.append(leading[1])
    batch, length = _scan_length(ctx, batches), _scan_length(ctx, lengths)
    result = _iterate_state(ctx, body, [], state_types, slice_types, 0)
    if result is None:
        return
    final, outputs = result
    for index, type_ in enumerate(final):
        _stacked(ctx, index, type_, batch)
    for k in range(scans):
        element = outputs[states + k]
        dims = tensor_dims(element)
        inner = tensor_type(element.dtype, [length, *dims]) if dims is not None else element
        _stacked(ctx, states + k, inner, batch)
