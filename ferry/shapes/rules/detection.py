"""Shape rules for RoiAlign and NonMaxSuppression."""

from __future__ import annotations

from ferry.ir import DataType
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule
from ferry.shapes.rules.indexing import common_dim


def _leading(ctx: InferenceContext, index: int, rank: int, what: str) -> list | None:
    """Input ``index``'s dims (unknown rank: ``rank`` unknown dims); error on a wrong rank."""
    dims = ctx.input_shape(index)
    if dims is None:
        return [None] * rank
    if len(dims) != rank:
        ctx.error(f"input {index} ({what}) must have rank {rank}, got rank {len(dims)}")
        return None
    return dims


@shape_rule("RoiAlign", since=10)
def roi_align(ctx: InferenceContext) -> None:
    """[num_rois, C, output_height, output_width] from X [N, C, H, W] and rois [num_rois, 4]."""
    x = _leading(ctx, 0, 4, "X [N, C, H, W]")
    rois = _leading(ctx, 1, 2, "rois [num_rois, 4]")
    batch_indices = _leading(ctx, 2, 1, "batch_indices [num_rois]")
    if x is None or rois is None or batch_indices is None:
        return
    if rois[1] is not None and rois[1].is_const and rois[1].value != 4:
        ctx.error(f"rois must have 4 columns, got {rois[1].value}")
        return
    height, width = ctx.attr("output_height", 1), ctx.attr("output_width", 1)
    count = common_dim(rois[0], batch_indices[0])
    ctx.set_output(0, ctx.input_dtype(0), [count, x[1], Expr.const(height), Expr.const(width)])


@shape_rule("NonMaxSuppression", since=10)
def non_max_suppression(ctx: InferenceContext) -> None:
    """int64 [selected, 3] rows (batch, class, box); how many are selected depends on data."""
    boxes = _leading(ctx, 0, 3, "boxes [batch, boxes, 4]")
    scores = _leading(ctx, 1, 3, "scores [batch, classes, boxes]")
    if boxes is None or scores is None:
        return
    selected = ctx.fresh("how many boxes NonMaxSuppression selects depends on the data")
    ctx.set_output(0, DataType.INT64, [selected, 3])
