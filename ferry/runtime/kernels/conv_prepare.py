"""Work done once per Conv node when the session compiles its plan.

Identical output channels (equal weight rows and bias) must give bit-identical outputs.
BLAS kernels do not promise that: OpenBLAS rounds some output columns differently from
others (it depends on the column's position in its micro-tiles), and a model whose channels
are equal by construction (onnx's light squeezenet has constant weights) can then turn a
1-ulp difference on 1e10-sized activations into a different softmax. When a Conv's weights
repeat channels, the prepared step computes each distinct channel once and copies it to its
duplicates: exact, and cheaper. Finding repeats costs one matrix-vector product per weight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ferry.runtime.kernels.conv import conv
from ferry.runtime.registry import preparer


def duplicate_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(first index of each distinct row, row -> its distinct row's position), or None when
    every row is distinct (or not finite, where equality is not exact)."""
    if rows.shape[0] < 2 or not np.isfinite(rows).all():
        return None
    probe = np.random.default_rng(0).standard_normal(rows.shape[1])
    fingerprints = rows.astype(np.float64) @ probe
    if np.unique(fingerprints).size == rows.shape[0]:
        return None  # equal rows have equal fingerprints: no two rows are equal
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    if first.size == rows.shape[0]:
        return None
    order = np.argsort(first)  # keep channels in their original order
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    return first[order], position[inverse.reshape(-1)]


@preparer("Conv", since=(1, 11, 22))
def prepare_conv(constants: Sequence[np.ndarray | None], *, group: int, **attributes) -> Callable | None:
    """Compute repeated output channels once (group 1, constant weights and bias)."""
    w = constants[1]
    b = constants[2] if len(constants) > 2 else None
    has_bias = len(constants) > 2 and constants[2] is not None
    if w is None or group != 1 or w.dtype.kind != "f" or w.ndim < 3:
        return None
    rows = w.reshape(w.shape[0], -1)
    if has_bias:
        rows = np.concatenate([rows, b.reshape(-1, 1).astype(rows.dtype)], axis=1)
    found = duplicate_rows(rows)
    if found is None:
        return None
    first, expand = found
    w_distinct = np.ascontiguousarray(w[first])
    b_distinct = np.ascontiguousarray(b[first]) if has_bias else None

    def conv_distinct_channels(x, w_, b_=None, **kwargs):
        y = conv(x, w_distinct, b_distinct, **kwargs)
        return np.take(y, expand, axis=1)

    return conv_distinct_channels
