"""Shape rules for DFT, STFT, the Blackman/Hamming/Hann windows and MelWeightMatrix.

Complex tensors carry a trailing axis of 2 (real, imaginary); a real signal's is 1.
Lengths given as inputs (dft_length, frame_step, window sizes...) are read from constant
or propagated data and are fresh unknown dims otherwise.
"""

from __future__ import annotations

from ferry.ir import DataType
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule


def scalar_input(ctx: InferenceContext, index: int, what: str) -> Expr | None:
    """A one-element integer input as an expression; a fresh dim when not known; None
    when the input is absent."""
    if not ctx.has_input(index):
        return None
    elements = ctx.input_symbolic(index)
    if elements is not None and len(elements) == 1 and elements[0] is not None:
        return elements[0]
    return ctx.fresh(f"{what} is not a known constant")


def _last_axis(ctx: InferenceContext, dims: list[Expr | None]) -> bool:
    last = dims[-1] if dims else None
    if not dims or (last is not None and last.is_const and last.value not in (1, 2)):
        ctx.error(f"the signal's last axis must be 1 (real) or 2 (complex), got shape "
                  f"[{','.join('?' if d is None else str(d) for d in dims)}]")
        return False
    return True


def _dft(ctx: InferenceContext, axis: int | None) -> None:
    """The DFT output; ``axis`` None when it is not known (any non-last axis may change)."""
    dims, dtype = ctx.input_shape(0), ctx.input_dtype(0)
    if dims is None:
        ctx.set_output(0, dtype, None)
        return
    if not _last_axis(ctx, dims):
        return
    rank = len(dims)
    inverse, onesided = bool(ctx.attr("inverse", 0)), bool(ctx.attr("onesided", 0))
    if axis is not None:
        if not (-rank <= axis <= -2 or 0 <= axis <= rank - 2):
            ctx.error(f"axis {axis} must lie in [{-rank}, -2] or [0, {rank - 2}] for rank {rank}")
            return
        axis %= rank
    length = scalar_input(ctx, 1, "dft_length")
    changes = length is not None or onesided
    out = list(dims)
    out[-1] = Expr.const(1 if onesided and inverse else 2)
    if axis is None:
        out[:-1] = [None] * (rank - 1) if changes else dims[:-1]
    else:
        size = dims[axis]
        if length is None and size is not None:
            length = 2 * (size - 1) if onesided and inverse else size
        if onesided and not inverse and length is not None:
            length = length // 2 + 1
        out[axis] = length
    ctx.set_output(0, dtype, out)


@shape_rule("DFT", since=17)
def dft_17(ctx: InferenceContext) -> None:
    """DFT-17: the ``axis`` attribute (default 1) gets the DFT length (onesided: n//2+1)."""
    _dft(ctx, int(ctx.attr("axis", 1)))


@shape_rule("DFT", since=20)
def dft(ctx: InferenceContext) -> None:
    """DFT-20: the ``axis`` input (default -2) gets the DFT length (onesided: n//2+1)."""
    if not ctx.has_input(2):
        _dft(ctx, -2)
        return
    elements = ctx.input_symbolic(2)
    known = elements is not None and len(elements) == 1 and elements[0] is not None
    _dft(ctx, elements[0].value if known and elements[0].is_const else None)


@shape_rule("STFT", since=17)
def stft(ctx: InferenceContext) -> None:
    """[batch, frames, bins, 2]: frames = (length - frame_length) // frame_step + 1,
    bins = frame_length // 2 + 1 when onesided, else frame_length."""
    dims, dtype = ctx.input_shape(0), ctx.input_dtype(0)
    if dims is not None and (len(dims) != 3 or not _last_axis(ctx, dims)):
        if len(dims) != 3:
            ctx.error(f"the signal must be [batch, length, 1|2], got rank {len(dims)}")
        return
    batch, length = (dims[0], dims[1]) if dims is not None else (None, None)
    step = scalar_input(ctx, 1, "frame_step")
    frame = scalar_input(ctx, 3, "frame_length")
    if frame is None and ctx.has_input(2):
        window = ctx.input_shape(2)
        frame = window[0] if window is not None and len(window) == 1 else None
    elif frame is None:
        frame = length
    frames = None
    if length is not None and frame is not None and step is not None:
        if step.is_const and step.value <= 0:
            ctx.error(f"frame_step must be positive, got {step.value}")
            return
        frames = (length - frame) // step + 1
    bins = frame // 2 + 1 if frame is not None and ctx.attr("onesided", 1) else frame
    ctx.set_output(0, dtype, [batch, frames, bins, Expr.const(2)])


def _window(ctx: InferenceContext) -> None:
    size = scalar_input(ctx, 0, "the window size")
    ctx.set_output(0, DataType(ctx.attr("output_datatype", int(DataType.FLOAT))), [size])


@shape_rule("HannWindow", since=17)
def hann_window(ctx: InferenceContext) -> None:
    """[size] in ``output_datatype`` (default float)."""
    _window(ctx)


@shape_rule("HammingWindow", since=17)
def hamming_window(ctx: InferenceContext) -> None:
    """[size] in ``output_datatype`` (default float)."""
    _window(ctx)


@shape_rule("BlackmanWindow", since=17)
def blackman_window(ctx: InferenceContext) -> None:
    """[size] in ``output_datatype`` (default float)."""
    _window(ctx)


@shape_rule("MelWeightMatrix", since=17)
def mel_weight_matrix(ctx: InferenceContext) -> None:
    """[dft_length // 2 + 1, num_mel_bins] in ``output_datatype`` (default float)."""
    bins = scalar_input(ctx, 0, "num_mel_bins")
    length = scalar_input(ctx, 1, "dft_length")
    rows = length // 2 + 1 if length is not None else None
    ctx.set_output(0, DataType(ctx.attr("output_datatype", int(DataType.FLOAT))), [rows, bins])
