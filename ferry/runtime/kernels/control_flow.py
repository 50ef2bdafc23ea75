"""If, Loop and Scan: control flow that runs compiled subgraphs through ``_run_graph``.

Values flowing through branches and loop-carried variables may be tensors, sequences
(lists) or empty optionals (None); scan outputs are tensors stacked along a new axis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ferry.ir import DataType, TensorType
from ferry.runtime.kernels._axes import int_scalar, normalize_axis, zero_scalar
from ferry.runtime.registry import kernel

_VERSIONS = (1, 11, 13, 16, 19, 21, 23, 24, 25)
_SCAN_VERSIONS = (9, 11, 16, 19, 21, 23, 24, 25)


def _condition(value: object, what: str) -> bool:
    """A one-element (boolean) tensor as a Python bool."""
    if not isinstance(value, np.ndarray | np.generic | bool):
        raise TypeError(f"{what} must be a one-element tensor, got {type(value).__name__}")
    array = np.asarray(value)
    if array.size != 1:
        raise ValueError(f"{what} must hold exactly one element, got shape {array.shape}")
    return bool(array.reshape(-1)[0])


def _run(
    run_graph: Callable, body: object, inputs: Sequence[object], minimum: int, op: str
) -> list:
    """Run ``body`` on ``inputs``; check it produced at least ``minimum`` outputs."""
    outputs = list(run_graph(body, *inputs))
    if len(outputs) < minimum:
        raise ValueError(f"{op} body must produce at least {minimum} outputs, got {len(outputs)}")
    return outputs


def _output_template(body: object, index: int) -> tuple[np.dtype, list[int]]:
    """The dtype and element shape declared for the body's output ``index`` (unknown dims: 0)."""
    dtype, dims = np.dtype(np.float32), []
    graph = getattr(body, "graph", None)
    outputs = list(graph.outputs) if graph is not None else []
    type_ = outputs[index].type if index < len(outputs) else None
    if isinstance(type_, TensorType):
        if type_.dtype is not None and type_.dtype != DataType.UNDEFINED:
            dtype = type_.dtype.numpy
        if type_.shape is not None:
            dims = [d if isinstance(d, int) else 0 for d in type_.shape.dims]
    return dtype, dims


def _stack(items: list, axis: int, body: object, index: int, op: str) -> np.ndarray:
    """Per-iteration tensors stacked along a new ``axis`` (empty: shaped from the body's types)."""
    if not items:
        dtype, dims = _output_template(body, index)
        dims.insert(normalize_axis(axis, len(dims) + 1, name=f"{op} scan output axis"), 0)
        return np.zeros(dims, dtype=dtype)
    if any(not isinstance(item, np.ndarray | np.generic) for item in items):
        kinds = sorted({type(item).__name__ for item in items})
        raise TypeError(f"{op} scan outputs must be tensors, got {kinds}")
    items = [np.asarray(item) for item in items]
    first = items[0]
    if any(item.shape != first.shape or item.dtype != first.dtype for item in items):
        shapes = sorted({(str(i.dtype), i.shape) for i in items})
        raise ValueError(
            f"{op} scan output {index} changes dtype or shape across iterations: {shapes}"
        )
    axis = normalize_axis(axis, first.ndim + 1, name=f"{op} scan output axis")
    return np.stack(items, axis=axis)


# -- If --------------------------------------------------------------------------------------
@kernel("If", since=_VERSIONS)
def if_(cond, *, then_branch, else_branch, _run_graph):
    """Run then_branch when the one-element ``cond`` is true, else else_branch; return its outputs."""
    branch = then_branch if _condition(cond, "If cond") else else_branch
    return tuple(_run_graph(branch))


# -- Loop ------------------------------------------------------------------------------------
@kernel("Loop", since=_VERSIONS)
def loop(max_trip_count, cond, *initial, body, _run_graph):
    """Run body while iteration < M (if given) and cond (if given) holds; return the final
    loop-carried values, then each scan output stacked over the iterations along axis 0."""
    if max_trip_count is None and cond is None:
        raise ValueError("Loop has neither a trip count M nor a condition: it would never end")
    trips = None if max_trip_count is None else int_scalar(max_trip_count, name="Loop M")
    keep_going = True if cond is None else _condition(cond, "Loop cond")
    carried = list(initial)
    count = len(carried)
    scans: list[list] | None = None
    iteration = 0
    while keep_going and (trips is None or iteration < trips):
        inputs = [np.array(iteration, dtype=np.int64), np.array(keep_going), *carried]
        outputs = _run(_run_graph, body, inputs, 1 + count, "Loop")
        if cond is not None:  # without a cond input the body's condition is ignored
            keep_going = _condition(outputs[0], "Loop body condition output")
        carried = outputs[1 : 1 + count]
        if scans is None:
            scans = [[] for _ in outputs[1 + count :]]
        for values, value in zip(scans, outputs[1 + count :]):
            values.append(value)
        iteration += 1
    if scans is None:
        scans = [[] for _ in range(_body_output_count(body) - 1 - count)]
    stacked = [_stack(values, 0, body, 1 + count + k, "Loop") for k, values in enumerate(scans)]
    return (*carried, *stacked)


def _body_output_count(body: object) -> int:
    outputs = getattr(body, "outputs", None)
    if outputs is None:
        raise ValueError("cannot tell how many outputs the subgraph declares")
    return len(outputs)


# -- Scan ------------------------------------------------------------------------------------
def _scan_steps(
    run_graph: Callable, body: object, states: list, slices: list[list], op: str
) -> tuple[list, list[list]]:
    """Iterate ``body`` over the pre-sliced scan inputs; return final states and per-step outputs."""
    length = len(slices[0]) if slices else 0
    count = len(states)
    collected: list[list] = [[] for _ in range(_body_output_count(body) - count)]
    for step in range(length):
        outputs = _run(run_graph, body, [*states, *(s[step] for s in slices)], count, op)
        states = outputs[:count]
        for values, value in zip(collected, outputs[count:]):
            values.append(value)
    return states, collected


def _split_scan_inputs(inputs: tuple, num_scan_inputs: int, op: str) -> tuple[list, list]:
    if num_scan_inputs is None or not 0 < num_scan_inputs <= len(inputs):
        raise ValueError(
            f"{op} num_scan_inputs must be in [1, {len(inputs)}], got {num_scan_inputs}"
        )
    split = len(inputs) - num_scan_inputs
    return list(inputs[:split]), [np.asarray(x) for x in inputs[split:]]


def _per_input(values: list[int] | None, count: int, name: str) -> list[int]:
    if values is None:
        return [0] * count
    if len(values) != count:
        raise ValueError(f"Scan {name} must have {count} entries, got {len(values)}")
    return list(values)


@kernel("Scan", since=_SCAN_VERSIONS)
def scan(
    *inputs,
    body,
    num_scan_inputs,
    scan_input_axes,
    scan_input_directions,
    scan_output_axes,
    scan_output_directions,
    _run_graph,
):
    """Iterate body over slices of the scan inputs along their scan axes (optionally reversed),
    threading the state variables; stack each scan output along its axis and direction."""
    states, xs = _split_scan_inputs(inputs, num_scan_inputs, "Scan")
    axes = _per_input(scan_input_axes, len(xs), "scan_input_axes")
    directions = _per_input(scan_input_directions, len(xs), "scan_input_directions")
    slices = []
    for x, axis, reverse in zip(xs, axes, directions):
        if x.ndim == 0:
            raise ValueError("Scan inputs must have rank >= 1, got a scalar")
        moved = np.moveaxis(x, normalize_axis(axis, x.ndim, name="scan_input_axes entry"), 0)
        slices.append(list(moved[::-1] if reverse else moved))
    lengths = {len(s) for s in slices}
    if len(lengths) > 1:
        raise ValueError(f"Scan inputs have different scan-axis lengths {sorted(lengths)}")
    states, collected = _scan_steps(_run_graph, body, states, slices, "Scan")
    out_axes = _per_input(scan_output_axes, len(collected), "scan_output_axes")
    out_dirs = _per_input(scan_output_directions, len(collected), "scan_output_directions")
    stacked = [
        _stack(values[::-1] if reverse else values, axis, body, len(states) + k, "Scan")
        for k, (values, axis, reverse) in enumerate(zip(collected, out_axes, out_dirs))
    ]
    return (*states, *stacked)


@kernel("Scan", since=8)
def scan_8(sequence_lens, *inputs, body, directions, num_scan_inputs, _run_graph):
    """Scan-8: batched along axis 0, scanning axis 1 up to each batch's sequence length;
    scan outputs are zero-padded to the maximum length."""
    states, xs = _split_scan_inputs(inputs, num_scan_inputs, "Scan")
    reverse = _per_input(directions, len(xs), "directions")
    if any(x.ndim < 2 for x in xs) or len({x.shape[:2] for x in xs}) > 1:
        raise ValueError(
            f"Scan-8 inputs need the same [batch, sequence] leading dims, got {[x.shape for x in xs]}"
        )
    batch, max_length = xs[0].shape[:2]
    lengths = (
        [max_length] * batch
        if sequence_lens is None
        else [int(n) for n in np.asarray(sequence_lens).reshape(-1)]
    )
    if len(lengths) != batch or any(not 0 <= n <= max_length for n in lengths):
        raise ValueError(
            f"Scan-8 sequence_lens {lengths} must give {batch} lengths in [0, {max_length}]"
        )
    final: list[list] = [[] for _ in states]
    outputs: list[list[list]] = [[] for _ in range(_body_output_count(body) - len(states))]
    for b, length in enumerate(lengths):
        slices = [list(x[b, :length][::-1] if r else x[b, :length]) for x, r in zip(xs, reverse)]
        batch_states = [np.asarray(s)[b] for s in states]
        result, collected = _scan_steps(_run_graph, body, batch_states, slices, "Scan")
        for values, value in zip(final, result):
            values.append(value)
        for per_batch, values in zip(outputs, collected):
            per_batch.append(values)
    result_states = [_stack(v, 0, body, k, "Scan") for k, v in enumerate(final)]
    stacked = [
        _padded_batches(per_batch, batch, max_length, body, len(states) + k)
        for k, per_batch in enumerate(outputs)
    ]
    return (*result_states, *stacked)


def _padded_batches(
    per_batch: list[list], batch: int, length: int, body: object, index: int
) -> np.ndarray:
    """Per-batch step outputs as one [batch, length, ...] tensor, zero beyond each batch's steps."""
    example = next((np.asarray(v[0]) for v in per_batch if v), None)
    if example is None:
        dtype, dims = _output_template(body, index)
    else:
        dtype, dims = example.dtype, list(example.shape)
    result = np.zeros((batch, length, *dims), dtype=dtype)
    if dtype.kind == "O":
        result.fill(zero_scalar(dtype).item())
    for b, values in enumerate(per_batch):
        if values:
            result[b, : len(values)] = _stack(values, 0, body, index, "Scan")
    return result
