"""Shape rules for image operators: ImageDecoder, GridSample, AffineGrid and Col2Im."""

from __future__ import annotations

from ferry.ir import DataType
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule
from ferry.shapes.rules.indexing import common_dim

_CHANNELS = {"RGB": 3, "BGR": 3, "Grayscale": 1}


@shape_rule("ImageDecoder", since=20)
def image_decoder(ctx: InferenceContext) -> None:
    """uint8 [H, W, C]: C from ``pixel_format``; height and width depend on the image."""
    rank = ctx.input_rank(0)
    if rank is not None and rank != 1:
        ctx.error(f"the encoded stream must be 1-D, got rank {rank}")
        return
    pixel_format = ctx.attr("pixel_format", "RGB")
    if pixel_format not in _CHANNELS:
        ctx.error(f"pixel_format must be RGB, BGR or Grayscale, got {pixel_format!r}")
        return
    height = ctx.fresh("the image height is stored in the encoded stream")
    width = ctx.fresh("the image width is stored in the encoded stream")
    ctx.set_output(0, DataType.UINT8, [height, width, Expr.const(_CHANNELS[pixel_format])])


@shape_rule("GridSample", since=16)
def grid_sample(ctx: InferenceContext) -> None:
    """[N, C, *grid spatial] from X [N, C, *in] and grid [N, *out, r]."""
    x, grid, dtype = ctx.input_shape(0), ctx.input_shape(1), ctx.input_dtype(0)
    if x is None and grid is None:
        ctx.set_output(0, dtype, None)
        return
    rank = len(x) if x is not None else len(grid)  # type: ignore[arg-type]
    if rank < 3 or (x is not None and grid is not None and len(grid) != len(x)):
        ctx.error(f"X and grid must have the same rank >= 3, got ranks "
                  f"{len(x) if x is not None else '?'} and {len(grid) if grid is not None else '?'}")
        return
    if ctx.opset < 20 and rank != 4:
        ctx.error(f"GridSample before opset 20 takes 4-D inputs, got rank {rank}")
        return
    x = x if x is not None else [None] * rank
    grid = grid if grid is not None else [None] * rank
    last = grid[-1]
    if last is not None and last.is_const and last.value != rank - 2:
        ctx.error(f"grid's last axis must be {rank - 2} (one coordinate per spatial axis), "
                  f"got {last.value}")
        return
    ctx.set_output(0, dtype, [common_dim(x[0], grid[0]), x[1], *grid[1:-1]])


@shape_rule("AffineGrid", since=20)
def affine_grid(ctx: InferenceContext) -> None:
    """[N, *spatial, r] for size [N, C, *spatial] and theta [N, r, r+1]."""
    theta, dtype = ctx.input_shape(0), ctx.input_dtype(0)
    size = ctx.input_symbolic(1)
    if size is None:
        size_dims = ctx.input_shape(1)
        if size_dims is None or len(size_dims) != 1 or size_dims[0] is None or not size_dims[0].is_const:
            ctx.set_output(0, dtype, None)
            return
        size = [None] * size_dims[0].value
    if len(size) not in (4, 5):
        ctx.error(f"size must give [N, C, H, W] or [N, C, D, H, W], got {len(size)} values")
        return
    rank = len(size) - 2
    if theta is not None:
        expected = [None, Expr.const(rank), Expr.const(rank + 1)]
        if len(theta) != 3 or any(t is not None and t.is_const and t != e
                                  for t, e in zip(theta[1:], expected[1:])):
            ctx.error(f"theta must be [N, {rank}, {rank + 1}] for a size of {len(size)} values")
            return
    batch = common_dim(size[0], theta[0] if theta is not None else None)
    ctx.set_output(0, dtype, [batch, *size[2:], Expr.const(rank)])


def _block_size(ctx: InferenceContext, block: list[Expr | None] | None) -> Expr | None:
    """prod(block_shape), or None when not known."""
    if block is None or any(size is None for size in block):
        return None
    product = Expr.const(1)
    for size in block:
        product = product * size
    return product


@shape_rule("Col2Im", since=18)
def col2im(ctx: InferenceContext) -> None:
    """[N, C, *image_shape] from columns [N, C * prod(block_shape), L]."""
    dims, dtype = ctx.input_shape(0), ctx.input_dtype(0)
    image, block = ctx.input_symbolic(1), ctx.input_symbolic(2)
    if dims is not None and len(dims) != 3:
        ctx.error(f"the input must be [N, C*prod(block_shape), L], got rank {len(dims)}")
        return
    if image is None:
        image_dims = ctx.input_shape(1)
        count = image_dims[0] if image_dims is not None and len(image_dims) == 1 else None
        if count is None or not count.is_const:
            ctx.set_output(0, dtype, None)
            return
        image = [None] * count.value
    if block is not None and len(block) != len(image):
        ctx.error(f"block_shape has {len(block)} values, image_shape has {len(image)}")
        return
    batch, columns = (dims[0], dims[1]) if dims is not None else (None, None)
    kernel = _block_size(ctx, block)
    channels = None
    if columns is not None and kernel is not None:
        if columns.is_const and kernel.is_const and columns.value % kernel.value:
            ctx.error(f"input dim 1 ({columns.value}) is not a multiple of prod(block_shape) "
                      f"({kernel.value})")
            return
        channels = columns // kernel
    ctx.set_output(0, dtype, [batch, channels, *image])
