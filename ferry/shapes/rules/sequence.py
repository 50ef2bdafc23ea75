"""Shape rules for sequence operators.

A sequence type says only what all its elements share: an element type and the dims
every element agrees on. Lengths of sequences are not tracked, so ConcatFromSequence's
concatenated axis and SequenceLength's value are unknown.
"""

from __future__ import annotations

from ferry.ir import DataType, Graph, SequenceType, TensorType, Type
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.merge import tensor_type
from ferry.shapes.registry import shape_rule
from ferry.shapes.rules.control_flow import merge_types, tensor_dims

_SEQUENCE_VERSIONS = 11


def _element(ctx: InferenceContext, index: int) -> Type | None:
    """The element type of sequence input ``index``; an error when it is not a sequence."""
    type_ = ctx.input_type(index)
    if type_ is None:
        return None
    if not isinstance(type_, SequenceType):
        ctx.error(f"input {index} must be a sequence, got a {type_}")
        raise _NotASequence
    return type_.elem_type


class _NotASequence(Exception):
    """Raised by _element after reporting; rules catch it and stop."""


def _check_element_dtype(ctx: InferenceContext, element: Type | None, tensor: Type | None) -> bool:
    if (
        isinstance(element, TensorType)
        and isinstance(tensor, TensorType)
        and element.dtype is not None
        and tensor.dtype is not None
        and element.dtype != tensor.dtype
    ):
        ctx.error(f"the tensor's element type {tensor.dtype.name} differs from the "
                  f"sequence's {element.dtype.name}")
        return False
    return True


@shape_rule("SequenceConstruct", since=_SEQUENCE_VERSIONS)
def sequence_construct(ctx: InferenceContext) -> None:
    """A sequence of the inputs: their shared element type, the dims they all agree on."""
    types = [ctx.input_type(i) for i in range(ctx.num_inputs())]
    dtypes = {t.dtype.name for t in types if isinstance(t, TensorType) and t.dtype is not None}
    if len(dtypes) > 1:
        ctx.error(f"inputs must share one element type, got {sorted(dtypes)}")
        return
    element = types[0] if types else None
    for other in types[1:]:
        element = merge_types(element, other)
    ctx.set_output_type(0, SequenceType(element))


@shape_rule("SequenceEmpty", since=_SEQUENCE_VERSIONS)
def sequence_empty(ctx: InferenceContext) -> None:
    """An empty sequence of tensors of the ``dtype`` attribute (default float)."""
    dtype = ctx.attr("dtype", int(DataType.FLOAT))
    ctx.set_output_type(0, SequenceType(TensorType(DataType(dtype), None)))


@shape_rule("SequenceAt", since=_SEQUENCE_VERSIONS)
def sequence_at(ctx: InferenceContext) -> None:
    """One element: the sequence's element type."""
    try:
        element = _element(ctx, 0)
    except _NotASequence:
        return
    if isinstance(element, TensorType):
        ctx.set_output(0, element.dtype, tensor_dims(element))
    elif element is not None:
        ctx.set_output_type(0, element)


@shape_rule("SequenceErase", since=_SEQUENCE_VERSIONS)
def sequence_erase(ctx: InferenceContext) -> None:
    """The input sequence's type."""
    try:
        element = _element(ctx, 0)
    except _NotASequence:
        return
    if ctx.input_type(0) is not None:
        ctx.set_output_type(0, SequenceType(element))


def _is_empty(ctx: InferenceContext, index: int) -> bool:
    """True when input ``index`` is provably empty: made by SequenceEmpty."""
    value = ctx.node.inputs[index]
    producer = value.producer() if value is not None else None
    return producer is not None and producer.op_type == "SequenceEmpty"


@shape_rule("SequenceInsert", since=_SEQUENCE_VERSIONS)
def sequence_insert(ctx: InferenceContext) -> None:
    """The sequence's type merged with the inserted tensor's (into an empty sequence made
    by SequenceEmpty: exactly the tensor's type)."""
    try:
        element = _element(ctx, 0)
    except _NotASequence:
        return
    tensor = ctx.input_type(1)
    if not _check_element_dtype(ctx, element, tensor):
        return
    if _is_empty(ctx, 0):
        ctx.set_output_type(0, SequenceType(tensor))
    elif ctx.input_type(0) is None:
        dtype = tensor.dtype if isinstance(tensor, TensorType) else None
        ctx.set_output_type(0, SequenceType(TensorType(dtype, None)))
    else:
        ctx.set_output_type(0, SequenceType(merge_types(element, tensor)))


@shape_rule("SequenceLength", since=_SEQUENCE_VERSIONS)
def sequence_length(ctx: InferenceContext) -> None:
    """An int64 scalar; its value is known for a sequence straight from SequenceEmpty or
    SequenceConstruct."""
    ctx.set_output(0, DataType.INT64, [])
    value = ctx.node.inputs[0]
    producer = value.producer() if value is not None else None
    length: Expr | None = None
    if producer is None:
        return
    if producer.op_type == "SequenceEmpty":
        length = Expr.const(0)
    elif producer.op_type == "SequenceConstruct":
        length = Expr.const(len(producer.inputs))
    if length is not None:
        ctx.set_output_symbolic(0, [length])


def _normalized_axis(ctx: InferenceContext, axis: int, rank: int) -> int | None:
    if not -rank <= axis < rank:
        ctx.error(f"axis {axis} is outside [{-rank}, {rank - 1}] for rank {rank}")
        return None
    return axis % rank


def _piece_length(ctx: InferenceContext, size: Expr | None) -> Expr | None:
    """The length every piece of SplitToSequence shares along the axis, if provable."""
    split = ctx.input_value(1)
    if split is None:
        return None
    lengths = [int(v) for v in split.reshape(-1)]
    if split.ndim == 0:
        chunk = lengths[0]
        if chunk <= 0:
            ctx.error(f"split must be positive, got {chunk}")
            raise _NotASequence
        divides = size is not None and size.is_const and size.value % chunk == 0
        return Expr.const(chunk) if divides else None
    if size is not None and size.is_const and sum(lengths) != size.value:
        ctx.error(f"split {lengths} sums to {sum(lengths)}, the axis has {size.value}")
        raise _NotASequence
    return Expr.const(lengths[0]) if lengths and len(set(lengths)) == 1 else None


@shape_rule("SplitToSequence", since=_SEQUENCE_VERSIONS)
def split_to_sequence(ctx: InferenceContext) -> None:
    """Pieces along ``axis``: the input's dims elsewhere; along the axis the split length
    when all pieces share it, or 1 (kept) / dropped when there is no split input."""
    dims, dtype = ctx.input_shape(0), ctx.input_dtype(0)
    if dims is None:
        ctx.set_output_type(0, SequenceType(TensorType(dtype, None)))
        return
    axis = _normalized_axis(ctx, ctx.attr("axis", 0), len(dims))
    if axis is None:
        return
    if not ctx.has_input(1):
        if ctx.attr("keepdims", 1):
            dims[axis] = Expr.const(1)
        else:
            del dims[axis]
    else:
        try:
            dims[axis] = _piece_length(ctx, dims[axis])
        except _NotASequence:
            return
    ctx.set_output_type(0, SequenceType(tensor_type(dtype, dims)))


@shape_rule("ConcatFromSequence", since=_SEQUENCE_VERSIONS)
def concat_from_sequence(ctx: InferenceContext) -> None:
    """The element shape with the concatenated (or new, stacked) axis of unknown size."""
    try:
        element = _element(ctx, 0)
    except _NotASequence:
        return
    dtype = element.dtype if isinstance(element, TensorType) else None
    dims = tensor_dims(element)
    if dims is None:
        ctx.set_output(0, dtype, None)
        return
    new_axis = bool(ctx.attr("new_axis", 0))
    axis = ctx.attr("axis")
    if axis is None:
        ctx.error("the required attribute 'axis' is missing")
        return
    axis = _normalized_axis(ctx, axis, len(dims) + new_axis)
    if axis is None:
        return
    total = ctx.fresh("the number of sequence elements is not known")
    if new_axis:
        dims.insert(axis, total)
    else:
        dims[axis] = total
    ctx.set_output(0, dtype, dims)


@shape_rule("SequenceMap", since=17)
def sequence_map(ctx: InferenceContext) -> None:
    """Sequences of the body's outputs, the body run on elements (tensors passed whole)."""
    body = ctx.attr("body")
    if not isinstance(body, Graph):
        ctx.error("attribute 'body' must be a graph")
        return
    if len(body.inputs) != ctx.num_inputs():
        ctx.error(f"the body has {len(body.inputs)} inputs, the node has {ctx.num_inputs()}")
        return
    formals = []
    for index in range(ctx.num_inputs()):
        type_ = ctx.input_type(index)
        formals.append(type_.elem_type if isinstance(type_, SequenceType) else type_)
    if ctx.input_type(0) is not None and not isinstance(ctx.input_type(0), SequenceType):
        ctx.error(f"input 0 must be a sequence, got a {ctx.input_type(0)}")
        return
    for index, type_ in enumerate(ctx.infer_graph(body, formals)):
        ctx.set_output_type(index, SequenceType(type_))
