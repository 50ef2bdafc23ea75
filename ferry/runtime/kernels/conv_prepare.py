"""Work done once per Conv (and FusedConv) node when the session compiles its plan.

Constant weights are packed once (:func:`~ferry.runtime.kernels.conv_algorithms.pack_conv_weights`)
instead of on every run.

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
from dataclasses import dataclass

import numpy as np

from ferry.runtime.kernels._activation import activate_in_place
from ferry.runtime.kernels.conv_algorithms import PackedConv, conv_packed, pack_conv_weights
from ferry.runtime.kernels.fused import INTERNAL_DOMAIN
from ferry.runtime.registry import RUN_TIME, preparer


def duplicate_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(first index of each distinct row, row -> its distinct row's position), or None when
    every row is distinct. Rows are compared bit for bit."""
    if rows.shape[0] < 2:
        return None
    if np.unique(_row_keys(rows[:, :8])).size == rows.shape[0]:
        return None  # rows already differ in their first elements (the usual case: cheap)
    keys = _row_keys(rows)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    if first.size == rows.shape[0]:
        return None
    order = np.argsort(first)  # keep channels in their original order
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    return first[order], position[inverse.reshape(-1)]


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """Each row's bytes as one opaque (void) value, so equality is bitwise."""
    rows = np.ascontiguousarray(rows)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).reshape(-1)


@dataclass(frozen=True)
class PreparedConv:
    """Packed (distinct-channel) weights, the constant bias, and how to expand channels."""

    packed: PackedConv
    bias: np.ndarray | None  # constant bias of the distinct channels, None if fed or absent
    expand: np.ndarray | None  # channel -> distinct channel, None when all are distinct
    compute: np.dtype

    def run(self, x: np.ndarray, bias=None, residual=None, activation: str = "", alpha=0.0,
            beta=0.0) -> np.ndarray:
        """Conv of ``x`` + bias (+ residual) then ``activation``, in ``x``'s dtype."""
        bias = self.bias if self.bias is not None else bias
        late = self.expand is not None or (  # repeated channels: finish after expanding them
            residual is not None and residual.shape != self._output_shape(x.shape))
        epilogue = (activation, alpha, beta) if activation else None
        y = conv_packed(x.astype(self.compute, copy=False), self.packed, bias=bias,
                        residual=None if late else residual, activation=None if late else epilogue)
        if self.expand is not None:
            y = np.take(y, self.expand, axis=1)
        if late:
            if residual is not None:
                if np.broadcast_shapes(y.shape, residual.shape) == y.shape:
                    y += residual
                else:
                    y = y + residual
            y = activate_in_place(y, activation, alpha, beta)
        return y.astype(x.dtype, copy=False)

    def _output_shape(self, x_shape) -> tuple[int, ...]:
        channels = len(self.expand) if self.expand is not None else self.packed.weights.shape[0]
        return (x_shape[0], channels, *self.packed.window(x_shape).out)


def prepare_weights(w: np.ndarray, b, *, group: int = 1, auto_pad: str = "NOTSET", dilations=None,
                    kernel_shape=None, pads=None, strides=None,
                    x_shape: tuple | None = None) -> PreparedConv | None:
    """Pack constant float weights ``w`` (and a constant bias ``b``, else None / RUN_TIME);
    ``x_shape``, the input's static shape if known, lets the algorithm's layout be packed now."""
    if not isinstance(w, np.ndarray) or w.dtype.kind != "f" or w.ndim < 3:
        return None
    compute = np.dtype(np.float32) if w.dtype == np.float16 else w.dtype
    constant_bias = b if isinstance(b, np.ndarray) else None
    expand = None
    if group == 1 and b is not RUN_TIME:  # a fed bias could tell repeated weight rows apart
        rows = w.reshape(w.shape[0], -1)
        if constant_bias is not None:
            rows = np.concatenate([rows, constant_bias.reshape(-1, 1).astype(rows.dtype)], axis=1)
        found = duplicate_rows(rows)
        if found is not None:
            first, expand = found
            w = w[first]
            constant_bias = constant_bias[first] if constant_bias is not None else None
    packed = pack_conv_weights(np.ascontiguousarray(w, dtype=compute), group=group,
                               kernel_shape=kernel_shape, strides=strides, dilations=dilations,
                               pads=pads, auto_pad=auto_pad)
    packed.prepare_for(x_shape)
    bias = np.ascontiguousarray(constant_bias, dtype=compute) if constant_bias is not None else None
    return PreparedConv(packed, bias, expand, compute)


def _first(shapes: Sequence[tuple | None]) -> tuple | None:
    return shapes[0] if shapes else None


def _inputs(constants: Sequence[object], count: int) -> list[object]:
    return [*constants, *([None] * (count - len(constants)))][:count]


@preparer("Conv", since=(1, 11, 22))
def prepare_conv(constants: Sequence[object], _input_shapes=(), **attributes) -> Callable | None:
    """Pack constant weights once; compute repeated output channels once."""
    _, w, b = _inputs(constants, 3)
    prepared = prepare_weights(w, b, x_shape=_first(_input_shapes), **attributes)
    if prepared is None:
        return None

    def conv_prepared(x, w_, b_=None, **_):
        return prepared.run(x, b_)

    return conv_prepared


@preparer("FusedConv", since=1, domain=INTERNAL_DOMAIN)
def prepare_fused_conv(constants: Sequence[object], *, activation="", alpha=0.0, beta=0.0,
                       _input_shapes=(), **attributes) -> Callable | None:
    """FusedConv with its weights packed once and the epilogue applied block by block."""
    _, w, b, _ = _inputs(constants, 4)
    prepared = prepare_weights(w, b, x_shape=_first(_input_shapes), **attributes)
    if prepared is None:
        return None

    def fused_conv_prepared(x, w_, b_=None, residual=None, **_):
        return prepared.run(x, b_, residual, activation, alpha, beta)

    return fused_conv_prepared
