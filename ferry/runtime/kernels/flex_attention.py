"""FlexAttention (ai.onnx.preview): scaled dot-product attention with subgraph modifiers.

Scores and probabilities are computed in the softmax precision (float32 unless the inputs
are double or the ``softmax_precision`` attribute says otherwise), handed to the optional
``score_mod`` / ``prob_mod`` subgraphs in that precision, and the result is rounded back to
the input type.
"""

from __future__ import annotations

import math

import numpy as np

from ferry.ir.dtypes import DataType
from ferry.ir.minifloat import from_float32, to_float32
from ferry.runtime.registry import kernel

PREVIEW_DOMAIN = "ai.onnx.preview"

_PRECISIONS = {
    DataType.FLOAT: np.float32,
    DataType.FLOAT16: np.float16,
    DataType.DOUBLE: np.float64,
    DataType.BFLOAT16: np.float32,  # no native bfloat16: computed in float32
}


def _precision(dtype: np.dtype, softmax_precision: int | None) -> type:
    if softmax_precision is None:
        return np.float64 if dtype == np.float64 else np.float32
    try:
        return _PRECISIONS[DataType(softmax_precision)]
    except (ValueError, KeyError):
        raise ValueError(
            "FlexAttention softmax_precision must be FLOAT, FLOAT16, DOUBLE or BFLOAT16, "
            f"got {softmax_precision}"
        ) from None


def _widen(x: np.ndarray, precision: type) -> np.ndarray:
    x = np.asarray(x)
    return (to_float32(x) if x.dtype.names else x).astype(precision)


def _narrow(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.names:
        return from_float32(y.astype(np.float32), DataType.BFLOAT16)
    return y.astype(dtype)


def _check_shapes(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> int:
    """Validate the rank-4 layouts; returns the GQA group size (query heads per K/V head)."""
    for name, x in (("Q", q), ("K", k), ("V", v)):
        if x.ndim != 4:
            raise ValueError(
                f"FlexAttention {name} must be rank 4 (B, H, S, D), got shape {x.shape}"
            )
    if q.shape[3] != k.shape[3]:
        raise ValueError(f"FlexAttention Q head size {q.shape[3]} != K head size {k.shape[3]}")
    if k.shape[:3] != v.shape[:3]:
        raise ValueError(f"FlexAttention K {k.shape} and V {v.shape} disagree on (B, H, S)")
    if q.shape[0] != k.shape[0] or k.shape[1] == 0 or q.shape[1] % k.shape[1]:
        raise ValueError(
            f"FlexAttention Q {q.shape} and K {k.shape}: batch must match and the query "
            "heads must be a multiple of the key/value heads"
        )
    return q.shape[1] // k.shape[1]


def _modify(run_graph, graph, x: np.ndarray, name: str) -> np.ndarray:
    if graph is None:
        return x
    (out,) = run_graph(graph, x)
    out = np.asarray(out)
    if out.shape != x.shape:
        raise ValueError(f"FlexAttention {name} changed the shape {x.shape} to {out.shape}")
    return out.astype(x.dtype, copy=False)


def _softmax(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


@kernel("FlexAttention", since=1, domain=PREVIEW_DOMAIN)
def flex_attention(Q, K, V, *, prob_mod, scale, score_mod, softmax_precision, _run_graph):
    """softmax(score_mod(Q K^T * scale)) -> prob_mod -> @ V, with K/V heads shared by GQA groups."""
    group = _check_shapes(Q, K, V)
    precision = _precision(Q.dtype, softmax_precision)
    q, k, v = (_widen(x, precision) for x in (Q, K, V))
    if group > 1:
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    if scale is None:
        scale = 1.0 / math.sqrt(Q.shape[3])
    scores = (q @ np.swapaxes(k, -1, -2)) * precision(scale)
    scores = _modify(_run_graph, score_mod, scores, "score_mod")
    probs = _modify(_run_graph, prob_mod, _softmax(scores), "prob_mod")
    return _narrow(probs @ v, Q.dtype)
