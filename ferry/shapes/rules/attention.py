"""Shape rules for the attention family: Attention, LinearAttention, RotaryEmbedding and
FlexAttention (ai.onnx.preview).

Attention takes 4-D [B, heads, seq, head_size] operands, or 3-D [B, seq, heads*head_size]
ones with q_num_heads / kv_num_heads giving the head counts. Y follows Q's form with V's
head size; present_key/present_value are 4-D with the past sequence (if any) followed by
the new keys; qk_matmul_output is [B, q_heads, q_seq, total_seq].
"""

from __future__ import annotations

from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.rules._nn_common import (
    Shape,
    copy_input,
    fail,
    format_shape,
    require_rank,
    rule,
    same_dim,
)


def _heads_attr(ctx: InferenceContext, name: str, operand: str) -> Expr:
    heads = ctx.attr(name)
    if not heads:
        fail(ctx, f"{operand} is 3-D, so the {name} attribute is required")
    return Expr.const(int(heads))


def _split(ctx: InferenceContext, shape: Shape, heads_attr: str, operand: str) -> tuple:
    """(batch, heads, seq, head_size) of a 3-D or 4-D attention operand."""
    if len(shape) == 4:
        return shape[0], shape[1], shape[2], shape[3]
    heads = _heads_attr(ctx, heads_attr, operand)
    hidden = shape[2]
    if hidden is not None and hidden.is_const and hidden.value % heads.value:
        fail(ctx, f"{operand} {format_shape(shape)}: hidden size {hidden} is not divisible "
                  f"by {heads_attr}={heads.value}")
    return shape[0], heads, shape[1], None if hidden is None else hidden // heads


@rule("Attention", since=23)
def attention(ctx: InferenceContext) -> None:
    """Attention: Y, present_key, present_value, qk_matmul_output (see the module docs)."""
    q = require_rank(ctx, 0, "Q", 3, 4)
    k = require_rank(ctx, 1, "K", 3, 4)
    v = require_rank(ctx, 2, "V", 3, 4)
    q_dtype, v_dtype = ctx.input_dtype(0), ctx.input_dtype(2)
    if q is None or k is None or v is None:
        ctx.set_output(0, q_dtype, None)
        return
    batch, q_heads, q_seq, head = _split(ctx, q, "q_num_heads", "Q")
    k_batch, kv_heads, kv_seq, k_head = _split(ctx, k, "kv_num_heads", "K")
    v_batch, v_heads, v_seq, v_head = _split(ctx, v, "kv_num_heads", "V")
    batch = same_dim(ctx, batch, k_batch, "Q and K must have the same batch size")
    batch = same_dim(ctx, batch, v_batch, "Q and V must have the same batch size")
    kv_heads = same_dim(ctx, kv_heads, v_heads, "K and V must have the same number of heads")
    kv_seq = same_dim(ctx, kv_seq, v_seq, "K and V must have the same sequence length")
    same_dim(ctx, head, k_head, "Q and K must have the same head size")
    total = kv_seq
    past = ctx.input_shape(4) if ctx.has_input(4) else None
    if past is not None:
        if len(past) != 4:
            fail(ctx, f"past_key must be 4-D, found {format_shape(past)}")
        total = past[2] + kv_seq if past[2] is not None and kv_seq is not None else None
    if len(q) == 4:
        y = [batch, q_heads, q_seq, v_head]
    elif len(v) == 3 and q_heads == kv_heads:
        y = [batch, q_seq, v[2]]
    else:
        y = [batch, q_seq, q_heads * v_head if v_head is not None else None]
    ctx.set_output(0, q_dtype, y)
    ctx.set_output(1, ctx.input_dtype(1), [batch, kv_heads, total, k_head])
    ctx.set_output(2, v_dtype, [batch, kv_heads, total, v_head])
    ctx.set_output(3, q_dtype, [batch, q_heads, q_seq, total])


@rule("LinearAttention", since=27)
def linear_attention(ctx: InferenceContext) -> None:
    """LinearAttention: output [B, T, q_heads*dv]; present_state [B, kv_heads, dk, dv] with
    dk = query's head size and dv = value's head size."""
    query = require_rank(ctx, 0, "query", 3, 3)
    value = require_rank(ctx, 2, "value", 3, 3)
    dtype = ctx.input_dtype(0)
    q_heads = _heads_attr(ctx, "q_num_heads", "query")
    kv_heads = _heads_attr(ctx, "kv_num_heads", "key")
    if q_heads.value % kv_heads.value:
        fail(ctx, f"q_num_heads {q_heads.value} is not a multiple of kv_num_heads "
                  f"{kv_heads.value}")
    batch = steps = dk = dv = None
    if query is not None:
        batch, _, steps, dk = _split(ctx, query, "q_num_heads", "query")
    if value is not None:
        batch = same_dim(ctx, batch, value[0], "query and value must have the same batch size")
        steps = same_dim(ctx, steps, value[1], "query and value must have the same length")
        dv = _split(ctx, value, "kv_num_heads", "value")[3]
    ctx.set_output(0, dtype, [batch, steps, q_heads * dv if dv is not None else None])
    past = ctx.input_shape(3) if ctx.has_input(3) else None
    state_type = ctx.input_dtype(3) if ctx.has_input(3) else dtype
    ctx.set_output(1, state_type, past if past is not None else [batch, kv_heads, dk, dv])


@rule("RotaryEmbedding", since=23)
def rotary_embedding(ctx: InferenceContext) -> None:
    """RotaryEmbedding: Y like X (3-D needs num_heads)."""
    x = require_rank(ctx, 0, "X", 3, 4)
    if x is not None and len(x) == 3:
        _split(ctx, x, "num_heads", "X")
    copy_input(ctx)


@rule("FlexAttention", since=1, domain="ai.onnx.preview")
def flex_attention(ctx: InferenceContext) -> None:
    """FlexAttention: Y [B, q_heads, q_seq, V's head size] from 4-D Q, K, V."""
    q = require_rank(ctx, 0, "Q", 4, 4)
    k = require_rank(ctx, 1, "K", 4, 4)
    v = require_rank(ctx, 2, "V", 4, 4)
    if q is not None and k is not None:
        same_dim(ctx, q[3], k[3], "Q and K must have the same head size")
        same_dim(ctx, q[0], k[0], "Q and K must have the same batch size")
    if k is not None and v is not None:
        same_dim(ctx, k[2], v[2], "K and V must have the same sequence length")
    if q is None:
        ctx.set_output(0, ctx.input_dtype(0), None)
        return
    ctx.set_output(0, ctx.input_dtype(0), [*q[:3], v[3] if v is not None else None])
