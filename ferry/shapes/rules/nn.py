"""Shape rules for convolution, pooling, normalization and Dropout.

Sliding windows follow the ONNX equations along each spatial axis, with ``extent =
(kernel - 1) * dilation + 1``: NOTSET/VALID give ``(in + pads - extent) // stride + 1``
(VALID with zero pads), SAME_UPPER/SAME_LOWER give ``ceil(in / stride)``, and ceil_mode
rounds the division up but never lets the last window start in the end padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ferry.ir.dtypes import DataType
from ferry.shapes import expr as dims
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.rules._nn_common import (
    Shape,
    copy_input,
    fail,
    format_shape,
    int_list,
    known,
    normalize_axis,
    require_rank,
    rule,
    same_dim,
)

_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


# -- sliding windows --------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Per-axis window attributes of a convolution or pooling node."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    auto_pad: str = "NOTSET"
    ceil_mode: bool = False


def window_output_size(size: Expr | None, kernel: int, stride: int = 1, dilation: int = 1,
                       pad_begin: int = 0, pad_end: int = 0, *, auto_pad: str = "NOTSET",
                       ceil_mode: bool = False) -> Expr | None:
    """Output length of one spatial axis of ``size`` elements (None when unknown)."""
    if size is None:
        return None
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return (size + stride - 1) // stride
    if auto_pad == "VALID":
        pad_begin = pad_end = 0
    extent = (kernel - 1) * dilation + 1
    span = size + (pad_begin + pad_end - extent)
    if not ceil_mode:
        return span // stride + 1
    out = (span + stride - 1) // stride + 1
    if pad_end + stride > extent:  # otherwise the last window always starts inside
        out = dims.min(out, (size + pad_begin + stride - 1) // stride)
    return out


def read_window(ctx: InferenceContext, kernel: Sequence[int], *, ceil_mode: bool = False) -> Window:
    """The node's strides, dilations, pads and auto_pad around a ``kernel`` of known size."""
    rank = len(kernel)
    auto_pad = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    if auto_pad not in _AUTO_PADS:
        fail(ctx, f"auto_pad must be one of {', '.join(_AUTO_PADS)}, found {auto_pad!r}")
    pads = int_list(ctx, "pads", 2 * rank, 0)
    strides = int_list(ctx, "strides", rank, 1)
    dilations = int_list(ctx, "dilations", rank, 1)
    if any(v < 1 for v in [*kernel, *strides, *dilations]):
        fail(ctx, f"kernel {list(kernel)}, strides {strides} and dilations {dilations} must "
                  "be positive")
    return Window(tuple(kernel), tuple(strides), tuple(dilations), tuple(pads[:rank]),
                  tuple(pads[rank:]), auto_pad, ceil_mode)


def window_output_shape(ctx: InferenceContext, spatial: Shape, window: Window) -> Shape:
    """Output sizes of every spatial axis; fails when a kernel cannot fit."""
    out: Shape = []
    for axis, size in enumerate(spatial):
        dim = window_output_size(
            size, window.kernel[axis], window.strides[axis], window.dilations[axis],
            window.pads_begin[axis], window.pads_end[axis], auto_pad=window.auto_pad,
            ceil_mode=window.ceil_mode,
        )
        if known(dim) is not None and dim.value < 1 and known(size) != 0:
            fail(ctx, f"the kernel {list(window.kernel)} (dilations {list(window.dilations)}, "
                      f"pads {list(window.pads_begin + window.pads_end)}) does not fit spatial "
                      f"axis {axis} of size {size}: output size would be {dim}")
        out.append(dim)
    return out


# -- convolution ------------------------------------------------------------------------------


def _conv_kernel(ctx: InferenceContext, w: Shape | None, rank: int) -> list[int] | None:
    """kernel_shape from the attribute or W's spatial dims (None when not known)."""
    attr = ctx.attr("kernel_shape")
    from_w = [known(d) for d in w[2:]] if w is not None else None
    if attr:
        attr = [int(k) for k in attr]
        if len(attr) != rank:
            fail(ctx, f"kernel_shape {attr} must have {rank} values (one per spatial axis)")
        if from_w is not None and any(k is not None and k != a for k, a in zip(from_w, attr)):
            fail(ctx, f"kernel_shape {attr} does not match W's spatial shape "
                      f"{format_shape(w[2:])}")
        return attr
    if from_w is None or None in from_w:
        return None
    return from_w


def _check_conv_weights(ctx: InferenceContext, x: Shape, w: Shape | None, group: int) -> None:
    if w is None:
        return
    if len(w) != len(x):
        fail(ctx, f"W must have the rank of X: expected {len(x)}, found {len(w)} "
                  f"(X {format_shape(x)}, W {format_shape(w)})")
    channels, per_group, maps = known(x[1]), known(w[1]), known(w[0])
    if channels is not None and per_group is not None and channels != per_group * group:
        fail(ctx, f"channel mismatch: X {format_shape(x)} has {channels} channels, W "
                  f"{format_shape(w)} with group={group} expects {per_group * group}")
    if maps is not None and maps % group:
        fail(ctx, f"W's {maps} output channels are not divisible by group={group}")


def conv_output(ctx: InferenceContext, x_index: int, w_index: int, dtype: DataType | None,
                *, has_auto_pad: bool = True) -> None:
    """Shared Conv/ConvInteger/QLinearConv/DeformConv rule: Y is [N, M, *windows]."""
    x = require_rank(ctx, x_index, "X", 3)
    w = require_rank(ctx, w_index, "W", 3)
    if x is None:
        ctx.set_output(0, dtype, None if w is None else [None] * len(w))
        return
    group = int(ctx.attr("group", 1) or 1)
    if group < 1:
        fail(ctx, f"group must be positive, found {group}")
    _check_conv_weights(ctx, x, w, group)
    kernel = _conv_kernel(ctx, w, len(x) - 2)
    maps = w[0] if w is not None else None
    if kernel is None:
        ctx.set_output(0, dtype, [x[0], maps] + [None] * (len(x) - 2))
        return
    window = read_window(ctx, kernel)
    if not has_auto_pad:
        window = Window(window.kernel, window.strides, window.dilations, window.pads_begin,
                        window.pads_end)
    ctx.set_output(0, dtype, [x[0], maps, *window_output_shape(ctx, x[2:], window)])


@rule("Conv", since=1)
def conv(ctx: InferenceContext) -> None:
    """Conv: Y [N, M, *out] with M = W[0]."""
    conv_output(ctx, 0, 1, ctx.input_dtype(0))


@rule("ConvInteger", since=10)
def conv_integer(ctx: InferenceContext) -> None:
    """ConvInteger: Conv's shape, int32 elements."""
    conv_output(ctx, 0, 1, DataType.INT32)


@rule("QLinearConv", since=10)
def qlinear_conv(ctx: InferenceContext) -> None:
    """QLinearConv: X is input 0 and W input 3; Y has y_zero_point's element type."""
    conv_output(ctx, 0, 3, ctx.input_dtype(7))


@rule("DeformConv", since=19)
def deform_conv(ctx: InferenceContext) -> None:
    """DeformConv: Conv's shape (explicit pads only)."""
    conv_output(ctx, 0, 1, ctx.input_dtype(0), has_auto_pad=False)


def _transpose_size(size: Expr | None, window: Window, axis: int, output_padding: int) -> Expr | None:
    if size is None:
        return None
    stride = window.strides[axis]
    if window.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return size * stride
    begin, end = window.pads_begin[axis], window.pads_end[axis]
    if window.auto_pad == "VALID":
        begin = end = 0
    extent = (window.kernel[axis] - 1) * window.dilations[axis] + 1
    return stride * (size - 1) + (output_padding + extent - begin - end)


@rule("ConvTranspose", since=1)
def conv_transpose(ctx: InferenceContext) -> None:
    """ConvTranspose: Y [N, W[1]*group, *out]; out from output_shape, else
    stride*(in-1) + output_padding + extent - pads (in*stride for SAME_*)."""
    dtype = ctx.input_dtype(0)
    x = require_rank(ctx, 0, "X", 3)
    w = require_rank(ctx, 1, "W", 3)
    group = int(ctx.attr("group", 1) or 1)
    if x is None:
        ctx.set_output(0, dtype, None if w is None else [None] * len(w))
        return
    rank = len(x) - 2
    if w is not None:
        if len(w) != len(x):
            fail(ctx, f"W must have the rank of X: expected {len(x)}, found {len(w)}")
        same_dim(ctx, x[1], w[0], "channel mismatch: W's first dim must equal X's channels")
    if known(x[1]) is not None and known(x[1]) % group:
        fail(ctx, f"X's {x[1]} channels are not divisible by group={group}")
    maps = w[1] * group if w is not None and w[1] is not None else None
    output_shape = ctx.attr("output_shape")
    if output_shape:
        if len(output_shape) < rank:
            fail(ctx, f"output_shape {list(output_shape)} must have {rank} spatial values")
        ctx.set_output(0, dtype, [x[0], maps, *[int(v) for v in list(output_shape)[-rank:]]])
        return
    kernel = _conv_kernel(ctx, w, rank)
    if kernel is None:
        ctx.set_output(0, dtype, [x[0], maps] + [None] * rank)
        return
    window = read_window(ctx, kernel)
    padding = int_list(ctx, "output_padding", rank, 0)
    spatial = [_transpose_size(x[2 + a], window, a, padding[a]) for a in range(rank)]
    ctx.set_output(0, dtype, [x[0], maps, *spatial])


@rule("CausalConvWithState", since=27)
def causal_conv_with_state(ctx: InferenceContext) -> None:
    """CausalConvWithState: output [B, C, L]; present_state [B, C, k-1] (k = weight[-1])."""
    dtype = ctx.input_dtype(0)
    x = require_rank(ctx, 0, "input", 3, 3)
    w = require_rank(ctx, 1, "weight", 3, 3)
    if x is not None and w is not None:
        same_dim(ctx, x[1], w[0], "weight's first dim must equal the input's channels")
    ctx.set_output(0, dtype, x)
    past = ctx.input_shape(3) if ctx.has_input(3) else None
    if past is not None:
        ctx.set_output(1, dtype, past)
        return
    width = w[2] - 1 if w is not None and w[2] is not None else None
    batch = x[0] if x is not None else None
    channels = x[1] if x is not None else (w[0] if w is not None else None)
    ctx.set_output(1, dtype, [batch, channels, width])


# -- pooling ----------------------------------------------------------------------------------


def _pool(ctx: InferenceContext) -> Shape | None:
    """Output shape of a windowed pool: [N, C, *windows] (None when X's rank is unknown)."""
    kernel = ctx.attr("kernel_shape")
    if not kernel:
        fail(ctx, "the kernel_shape attribute is required")
    x = require_rank(ctx, 0, "X", len(kernel) + 2, len(kernel) + 2)
    if x is None:
        return None
    window = read_window(ctx, [int(k) for k in kernel], ceil_mode=bool(ctx.attr("ceil_mode", 0)))
    return [x[0], x[1], *window_output_shape(ctx, x[2:], window)]


@rule("AveragePool", since=1)
@rule("LpPool", since=1)
def windowed_pool(ctx: InferenceContext) -> None:
    """AveragePool, LpPool: Y [N, C, *windows]."""
    ctx.set_output(0, ctx.input_dtype(0), _pool(ctx))


@rule("MaxPool", since=1)
def max_pool(ctx: InferenceContext) -> None:
    """MaxPool: Y [N, C, *windows]; Indices (int64) of the same shape."""
    shape = _pool(ctx)
    ctx.set_output(0, ctx.input_dtype(0), shape)
    ctx.set_output(1, DataType.INT64, shape)


@rule("GlobalAveragePool", since=1)
@rule("GlobalMaxPool", since=1)
@rule("GlobalLpPool", since=1)
def global_pool(ctx: InferenceContext) -> None:
    """Global*Pool: [N, C, 1, ...] (every spatial axis reduced to 1)."""
    x = require_rank(ctx, 0, "X", 2)
    ctx.set_output(0, ctx.input_dtype(0), None if x is None else [x[0], x[1]] + [1] * (len(x) - 2))


@rule("MaxRoiPool", since=1)
def max_roi_pool(ctx: InferenceContext) -> None:
    """MaxRoiPool: Y [num_rois, C, pooled_h, pooled_w]."""
    pooled = ctx.attr("pooled_shape")
    if not pooled or len(pooled) != 2:
        fail(ctx, f"pooled_shape must be [height, width], found {pooled}")
    x = require_rank(ctx, 0, "X", 4, 4)
    rois = require_rank(ctx, 1, "rois", 2, 2)
    if rois is not None and known(rois[1]) not in (None, 5):
        fail(ctx, f"rois must have shape [num_rois, 5], found {format_shape(rois)}")
    count = rois[0] if rois is not None else None
    ctx.set_output(0, ctx.input_dtype(0), [count, x[1] if x else None, *pooled])


@rule("MaxUnpool", since=9)
def max_unpool(ctx: InferenceContext) -> None:
    """MaxUnpool: output_shape's value when given, else [N, C, (in-1)*stride + k - pads]."""
    dtype = ctx.input_dtype(0)
    if ctx.has_input(2):
        elements = ctx.input_symbolic(2)
        if elements is None:
            length = ctx.input_shape(2)
            rank = known(length[0]) if length is not None and len(length) == 1 else None
            ctx.set_output(0, dtype, None if rank is None else [None] * rank)
        else:
            ctx.set_output(0, dtype, elements)
        return
    kernel = [int(k) for k in ctx.attr("kernel_shape") or []]
    if not kernel:
        fail(ctx, "the kernel_shape attribute is required")
    x = require_rank(ctx, 0, "X", len(kernel) + 2, len(kernel) + 2)
    if x is None:
        ctx.set_output(0, dtype, None)
        return
    window = read_window(ctx, kernel)
    spatial = [_transpose_size(x[2 + a], window, a, 0) for a in range(len(kernel))]
    ctx.set_output(0, dtype, [x[0], x[1], *spatial])


# -- normalization ----------------------------------------------------------------------------


def _check_channel_param(ctx: InferenceContext, x: Shape | None, index: int, name: str) -> None:
    """Input ``index`` (scale, bias, mean...) of a per-channel shape [C] must match X's C."""
    param = ctx.input_shape(index) if ctx.has_input(index) else None
    if x is None or param is None or len(x) < 2 or len(param) != 1:
        return
    same_dim(ctx, x[1], param[0], f"{name} must have one value per channel of X "
                                  f"{format_shape(x)}")


@rule("BatchNormalization", since=1)
def batch_normalization(ctx: InferenceContext) -> None:
    """BatchNormalization: Y like X; the statistics outputs (running/saved mean and var)
    have the shape and element type of input_mean."""
    x = require_rank(ctx, 0, "X", 2)
    for index, name in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")):
        _check_channel_param(ctx, x, index, name)
    copy_input(ctx)
    stats = ctx.input_shape(3)
    if stats is None and x is not None and (ctx.opset >= 9 or ctx.attr("spatial", 1)):
        stats = [x[1]]
    for output in range(1, ctx.num_outputs()):
        ctx.set_output(output, ctx.input_dtype(3), stats)


@rule("InstanceNormalization", since=1)
def instance_normalization(ctx: InferenceContext) -> None:
    """InstanceNormalization: output like input; scale and B hold one value per channel."""
    x = require_rank(ctx, 0, "input", 3)
    _check_channel_param(ctx, x, 1, "scale")
    _check_channel_param(ctx, x, 2, "B")
    copy_input(ctx)


@rule("GroupNormalization", since=18)
def group_normalization(ctx: InferenceContext) -> None:
    """GroupNormalization: Y like X; C divisible by num_groups; scale/bias per group (18)
    or per channel (21)."""
    x = require_rank(ctx, 0, "X", 2)
    groups = ctx.attr("num_groups")
    if x is not None and groups and known(x[1]) is not None and known(x[1]) % groups:
        fail(ctx, f"X's {x[1]} channels are not divisible by num_groups={groups}")
    for index, name in ((1, "scale"), (2, "bias")):
        if ctx.opset >= 21:
            _check_channel_param(ctx, x, index, name)
            continue
        param = ctx.input_shape(index)
        if groups and param is not None and len(param) == 1:
            same_dim(ctx, Expr.const(int(groups)), param[0],
                     f"{name} must have one value per group (num_groups={groups})")
    copy_input(ctx)


@rule("LayerNormalization", since=17)
def layer_normalization(ctx: InferenceContext) -> None:
    """LayerNormalization: Y like X; Mean and InvStdDev are X's shape with the normalized
    axes [axis, rank) set to 1, in stash_type (default float)."""
    copy_input(ctx)
    x = ctx.input_shape(0)
    try:
        stash = DataType(ctx.attr("stash_type", 1) or 1)
    except ValueError:
        fail(ctx, f"stash_type {ctx.attr('stash_type')} is not an element type")
    if x is None:
        ctx.set_output(1, stash, None)
        ctx.set_output(2, stash, None)
        return
    axis = normalize_axis(ctx, int(ctx.attr("axis", -1)), len(x))
    stats = [*x[:axis], *([1] * (len(x) - axis))]
    ctx.set_output(1, stash, stats)
    ctx.set_output(2, stash, stats)


@rule("RMSNormalization", since=23)
@rule("LpNormalization", since=1)
def axis_normalization(ctx: InferenceContext) -> None:
    """RMSNormalization, LpNormalization: output like the input; ``axis`` must be valid."""
    shape = ctx.input_shape(0)
    if shape is not None:
        normalize_axis(ctx, int(ctx.attr("axis", -1)), max(len(shape), 1))
    copy_input(ctx)


@rule("LRN", since=1)
@rule("MeanVarianceNormalization", since=9)
def elementwise_normalization(ctx: InferenceContext) -> None:
    """LRN, MeanVarianceNormalization: output like the input."""
    copy_input(ctx)


@rule("Dropout", since=1)
def dropout(ctx: InferenceContext) -> None:
    """Dropout: output like data; mask of the same shape, data's type before opset 10 and
    bool from 10 on."""
    copy_input(ctx)
    mask_type = ctx.input_dtype(0) if ctx.opset < 10 else DataType.BOOL
    ctx.set_output(1, mask_type, ctx.input_shape(0))
