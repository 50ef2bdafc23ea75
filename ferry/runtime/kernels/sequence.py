"""Sequence kernels: sequences are Python lists of tensors, never mutated in place."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ferry.ir.dtypes import DataType
from ferry.runtime.kernels._axes import int_list, normalize_axis
from ferry.runtime.registry import kernel


def _sequence(value: object, op: str) -> list:
    if not isinstance(value, list):
        raise TypeError(f"{op} expects a sequence input, got {type(value).__name__}")
    return value


def _position(position: object, op: str) -> int:
    """A scalar int32/int64 position tensor as a Python int."""
    array = np.asarray(position)
    if array.dtype.kind not in "iu" or array.size != 1:
        raise ValueError(
            f"{op} position must be a one-element integer tensor, got {array.dtype} {array.shape}"
        )
    return int(array.reshape(-1)[0])


def _index(position: int, length: int, op: str, *, inclusive_end: bool = False) -> int:
    """``position`` in [-length, length-1] (or up to ``length`` with inclusive_end), made >= 0."""
    high = length if inclusive_end else length - 1
    if not -length <= position <= high:
        raise ValueError(
            f"{op} position {position} is out of range [{-length}, {high}] for a sequence of {length}"
        )
    return position + length if position < 0 else position


def _check_dtype(sequence: list, tensor: np.ndarray, op: str) -> None:
    if sequence and np.asarray(sequence[0]).dtype != tensor.dtype:
        raise TypeError(
            f"{op}: tensor of {tensor.dtype} does not match the sequence's {sequence[0].dtype}"
        )


@kernel("SequenceConstruct", since=11)
def sequence_construct(*inputs):
    """A sequence holding the input tensors in order (all of one element type)."""
    tensors = [np.asarray(t) for t in inputs]
    if len({t.dtype for t in tensors}) > 1:
        raise TypeError(
            f"SequenceConstruct inputs must share one dtype, got {[str(t.dtype) for t in tensors]}"
        )
    return tensors


@kernel("SequenceEmpty", since=11)
def sequence_empty(*, dtype):
    """An empty sequence of the element type ``dtype`` (default float)."""
    try:
        DataType(DataType.FLOAT if dtype is None else dtype)
    except ValueError:
        raise ValueError(f"SequenceEmpty dtype {dtype} is not an ONNX element type") from None
    return []


@kernel("SequenceAt", since=11)
def sequence_at(input_sequence, position):
    """The element at ``position`` (negative counts from the back)."""
    sequence = _sequence(input_sequence, "SequenceAt")
    return sequence[_index(_position(position, "SequenceAt"), len(sequence), "SequenceAt")]


@kernel("SequenceErase", since=11)
def sequence_erase(input_sequence, position=None):
    """A copy of the sequence without the element at ``position`` (default: the last)."""
    sequence = _sequence(input_sequence, "SequenceErase")
    where = -1 if position is None else _position(position, "SequenceErase")
    index = _index(where, len(sequence), "SequenceErase")
    return sequence[:index] + sequence[index + 1 :]


@kernel("SequenceInsert", since=11)
def sequence_insert(input_sequence, tensor, position=None):
    """A copy of the sequence with ``tensor`` inserted before ``position`` (default: appended)."""
    sequence = _sequence(input_sequence, "SequenceInsert")
    tensor = np.asarray(tensor)
    _check_dtype(sequence, tensor, "SequenceInsert")
    if position is None:
        return [*sequence, tensor]
    index = _index(
        _position(position, "SequenceInsert"), len(sequence), "SequenceInsert", inclusive_end=True
    )
    return [*sequence[:index], tensor, *sequence[index:]]


@kernel("SequenceLength", since=11)
def sequence_length(input_sequence):
    """The number of elements, as an int64 scalar."""
    return np.array(len(_sequence(input_sequence, "SequenceLength")), dtype=np.int64)


@kernel("SplitToSequence", since=(11, 24))
def split_to_sequence(data, split=None, *, axis, keepdims):
    """Split along ``axis`` into pieces of the 1-D ``split`` lengths, chunks of a scalar
    ``split`` (the last may be shorter), or single slices (dropped axis if not keepdims)."""
    x = np.asarray(data)
    if x.ndim == 0:
        raise ValueError("SplitToSequence expects an input of rank >= 1, got a scalar")
    axis = normalize_axis(axis, x.ndim)
    size = x.shape[axis]
    if split is None:
        pieces = np.split(x, size, axis=axis) if size else []
        return [np.squeeze(p, axis=axis) for p in pieces] if not keepdims else pieces
    split = np.asarray(split)
    lengths = int_list(split)
    if split.ndim == 0:
        chunk = lengths[0]
        if chunk <= 0:
            raise ValueError(f"SplitToSequence split must be positive, got {chunk}")
        lengths = [min(chunk, size - start) for start in range(0, size, chunk)]
    elif split.ndim != 1 or any(n < 0 for n in lengths) or sum(lengths) != size:
        raise ValueError(
            f"SplitToSequence split {lengths} must be non-negative and sum to {size} (axis {axis})"
        )
    if not lengths:
        return []
    return np.split(x, np.cumsum(lengths)[:-1].tolist(), axis=axis)


@kernel("ConcatFromSequence", since=11)
def concat_from_sequence(input_sequence, *, axis, new_axis):
    """Concatenate the sequence's tensors along ``axis``, or stack them on a new axis."""
    tensors = [np.asarray(t) for t in _sequence(input_sequence, "ConcatFromSequence")]
    if not tensors:
        raise ValueError("ConcatFromSequence needs a non-empty sequence")
    if len({t.dtype for t in tensors}) > 1:
        raise TypeError(
            f"ConcatFromSequence elements must share one dtype, got {sorted({str(t.dtype) for t in tensors})}"
        )
    rank = tensors[0].ndim
    combine: Callable = np.stack if new_axis else np.concatenate
    axis = normalize_axis(axis, rank + 1 if new_axis else rank)
    try:
        return combine(tensors, axis=axis)
    except ValueError as error:
        shapes = [t.shape for t in tensors]
        raise ValueError(
            f"ConcatFromSequence cannot combine shapes {shapes} on axis {axis}: {error}"
        ) from None


@kernel("SequenceMap", since=17)
def sequence_map(input_sequence, *additional_inputs, body, _run_graph):
    """Run body once per element of the input sequence (sequence extras in lockstep, tensor
    extras whole) and gather each body output into an output sequence."""
    sequence = _sequence(input_sequence, "SequenceMap")
    for extra in additional_inputs:
        if isinstance(extra, list) and len(extra) != len(sequence):
            raise ValueError(
                f"SequenceMap sequences differ in length: {len(extra)} vs {len(sequence)}"
            )
    results: list[list] = [[] for _ in body.outputs]
    for index, element in enumerate(sequence):
        extras = [e[index] if isinstance(e, list) else e for e in additional_inputs]
        outputs = _run_graph(body, element, *extras)
        if len(outputs) != len(results):
            raise ValueError(
                f"SequenceMap body returned {len(outputs)} outputs, expected {len(results)}"
            )
        for values, value in zip(results, outputs):
            values.append(value)
    return tuple(results)
