"""Shape rules for the recurrent layers RNN, GRU and LSTM.

With ``layout=0`` (the default) X is [seq, batch, input], Y [seq, directions, batch,
hidden] and Y_h/Y_c [directions, batch, hidden]; with ``layout=1`` (opset 14+) X is
[batch, seq, input], Y [batch, seq, directions, hidden] and Y_h/Y_c [batch, directions,
hidden]. ``directions`` is 2 for bidirectional, else 1; ``hidden`` is the hidden_size
attribute or, when absent, R's last dim. W is [directions, gates*hidden, input] and R
[directions, gates*hidden, hidden] with 1, 3 and 4 gates for RNN, GRU and LSTM.
"""

from __future__ import annotations

from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.rules._nn_common import fail, format_shape, known, require_rank, rule, same_dim

_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2, "foward": 1}  # GRU-1's typo


def _hidden_size(ctx: InferenceContext, w, r, gates: int) -> Expr | None:
    """hidden_size, checked against W and R when their dims are known."""
    attr = ctx.attr("hidden_size")
    hidden = Expr.const(int(attr)) if attr else (r[2] if r is not None else None)
    if hidden is None and w is not None and known(w[1]) is not None:
        hidden = Expr.const(known(w[1]) // gates)
    if hidden is None:
        return None
    for name, shape in (("W", w), ("R", r)):
        if shape is not None:
            same_dim(ctx, hidden * gates, shape[1],
                     f"{name} {format_shape(shape)} must have {gates}*hidden_size rows")
    if r is not None:
        same_dim(ctx, hidden, r[2], f"R {format_shape(r)} must have hidden_size columns")
    return hidden


@rule("RNN", since=1)
@rule("GRU", since=1)
@rule("LSTM", since=1)
def recurrent(ctx: InferenceContext) -> None:
    """RNN, GRU, LSTM: Y, Y_h (and LSTM's Y_c) per the module docs."""
    dtype = ctx.input_dtype(0)
    x = require_rank(ctx, 0, "X", 3, 3)
    w = require_rank(ctx, 1, "W", 3, 3)
    r = require_rank(ctx, 2, "R", 3, 3)
    direction = ctx.attr("direction", "forward")
    if direction not in _DIRECTIONS:
        fail(ctx, f"direction must be forward, reverse or bidirectional, found {direction!r}")
    directions = Expr.const(_DIRECTIONS[direction])
    for name, shape in (("W", w), ("R", r)):
        if shape is not None:
            same_dim(ctx, directions, shape[0],
                     f"{name} {format_shape(shape)} must have {directions} direction(s) "
                     f"for direction={direction!r}")
    layout = int(ctx.attr("layout", 0) or 0)
    if layout not in (0, 1):
        fail(ctx, f"layout must be 0 or 1, found {layout}")
    hidden = _hidden_size(ctx, w, r, _GATES[ctx.node.op_type])
    if x is not None and w is not None:
        same_dim(ctx, x[2], w[2], f"W {format_shape(w)} must have X's input size {x[2]} columns")
    seq, batch = (None, None) if x is None else ((x[1], x[0]) if layout else (x[0], x[1]))
    if layout:
        y, state = [batch, seq, directions, hidden], [batch, directions, hidden]
    else:
        y, state = [seq, directions, batch, hidden], [directions, batch, hidden]
    ctx.set_output(0, dtype, y)
    ctx.set_output(1, dtype, state)
    ctx.set_output(2, dtype, state)
