"""Recurrent layers: ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` (``torch.lstm``, ``torch.gru``,
``torch.rnn_tanh``, ``torch.rnn_relu``) as one ONNX LSTM / GRU / RNN node per layer, and
the cells (``torch.lstm_cell`` ...) as the same node over one time step.

Torch packs each layer's gates as LSTM ``i,f,g,o`` and GRU ``r,z,n``; ONNX wants LSTM
``i,o,f,c`` and GRU ``z,r,h`` (with ``linear_before_reset=1``, torch's GRU form). The
weights are reordered once into initializers when they are parameters or constants,
by Slice/Concat nodes otherwise.
"""

from __future__ import annotations

import numpy as np
import torch

from ferry.errors import UnsupportedOperatorError
from ferry.trace.registry import symbolic
from ferry.trace.tracer import Var, numpy_of, user_frame

# op type -> (gates per layer, torch gate index of each ONNX gate)
_GATES = {"LSTM": (4, (0, 3, 1, 2)), "GRU": (3, (1, 0, 2)), "RNN": (1, (0,))}


def _unsupported(what: str) -> UnsupportedOperatorError:
    filename, lineno = user_frame()
    return UnsupportedOperatorError(f"{filename}:{lineno}: {what} is not supported by the tracer")


def derived_initializer(g, sources: list[Var], tag: object, name: str, make) -> object:
    """An initializer computed (by ``make()``, a numpy array) from constant tensors, made
    once per trace: a layer called at every step of a loop shares its reordered weights."""
    cache = g.tracer.__dict__.setdefault("_derived_initializers", {})
    key = (tuple(id(v.tensor) for v in sources), tag)
    if key not in cache:
        cache[key] = ([v.tensor for v in sources], g.tracer.root.add_initializer(name, make()))
    return cache[key][1]


def _is_constant(g, var: Var) -> bool:
    return not g.tracer.is_traced(var.tensor)


def _reorder_array(array: np.ndarray, kind: str) -> np.ndarray:
    gates, order = _GATES[kind]
    chunks = np.split(array, gates, axis=0)
    return np.concatenate([chunks[i] for i in order], axis=0)


def _reorder_value(g, var: Var, kind: str):
    gates, order = _GATES[kind]
    if order == tuple(range(gates)):
        return var.value
    chunks = g.op("Split", var, g.int64([var.shape[0] // gates] * gates), axis=0, num_outputs=gates)
    return g.op("Concat", *[chunks[i] for i in order], axis=0)


def _pack(g, per_direction: list[list[Var]], kind: str, name: str):
    """ONNX's ``[num_directions, ...]`` tensor: each direction's torch tensors with gates
    reordered, concatenated (the bias: input then hidden), stacked over directions."""
    flat = [v for vs in per_direction for v in vs]
    if all(_is_constant(g, v) for v in flat):
        def make():
            return np.stack([
                np.concatenate([_reorder_array(numpy_of(v.tensor), kind) for v in vs], axis=0)
                for vs in per_direction
            ])

        return derived_initializer(g, flat, (kind, len(per_direction)), name, make)
    directions = []
    for vs in per_direction:
        parts = [_reorder_value(g, v, kind) for v in vs]
        joined = parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=0)
        directions.append(g.op("Unsqueeze", joined, g.int64([0])))
    return directions[0] if len(directions) == 1 else g.op("Concat", *directions, axis=0)


def _is_default_zeros(g, var: Var) -> bool:
    """The zero state torch makes when none is given (a constant, or zeros of a dynamic batch)."""
    if torch.count_nonzero(var.tensor) != 0:
        return False
    if _is_constant(g, var):
        return True
    producer = var.value.producer()
    return producer is not None and producer.op_type == "ConstantOfShape"


def _layer_state(g, state: Var, layer: int, dirs: int, num_layers: int):
    """Layer ``layer``'s slice ``[dirs, batch, hidden]`` of a ``[layers*dirs, batch, hidden]`` state."""
    if _is_default_zeros(g, state):
        return None
    if num_layers == 1:
        return state.value
    return g.op("Slice", state, g.int64([layer * dirs]), g.int64([(layer + 1) * dirs]), g.int64([0]))


def _param_prefix(g, var: Var, kind: str) -> str:
    name = g.tracer.params.get(id(var.tensor), "")
    return name.rsplit(".", 1)[0] if "." in name else kind.lower()


def _recurrent(g, kind, x: Var, states, params, has_biases, num_layers, bidirectional, batch_first,
               activation=None):
    """The stacked layers; returns (output, final state(s) per output) like torch."""
    dirs = 2 if bidirectional else 1
    per = 4 if has_biases else 2
    if len(params) != num_layers * dirs * per:
        raise _unsupported("nn.LSTM with proj_size (a projection of the hidden state)")
    hidden = int(params[1].shape[1])
    prefix = _param_prefix(g, params[0], kind)
    seq = g.op("Transpose", x, perm=[1, 0, 2]) if batch_first else x.value
    finals: list[list] = [[] for _ in states]
    attrs = {"hidden_size": hidden, "direction": "bidirectional" if bidirectional else "forward"}
    if kind == "GRU":
        attrs["linear_before_reset"] = 1
    if activation:
        attrs["activations"] = [activation] * dirs
    for layer in range(num_layers):
        group = [params[(layer * dirs + d) * per:(layer * dirs + d + 1) * per] for d in range(dirs)]
        w = _pack(g, [[p[0]] for p in group], kind, f"{prefix}.W_l{layer}")
        r = _pack(g, [[p[1]] for p in group], kind, f"{prefix}.R_l{layer}")
        b = _pack(g, [[p[2], p[3]] for p in group], kind, f"{prefix}.B_l{layer}") if has_biases else None
        init = [_layer_state(g, s, layer, dirs, num_layers) for s in states]
        while init and init[-1] is None:
            init.pop()
        y, *last = g.op(kind, seq, w, r, b, None, *init, num_outputs=1 + len(states), **attrs)
        # Y [T, dirs, B, H] -> [T, B, dirs * H]: the next layer's input
        seq = g.op("Reshape", g.op("Transpose", y, perm=[0, 2, 1, 3]), g.int64([0, 0, -1]))
        for collected, value in zip(finals, last):
            collected.append(value)
    output = g.op("Transpose", seq, perm=[1, 0, 2]) if batch_first else seq
    return (output, *[v[0] if len(v) == 1 else g.op("Concat", *v, axis=0) for v in finals])


def _check_batched(args, name: str) -> None:
    """The packed form takes (data, batch_sizes, hx, params, ...): params come fourth."""
    if len(args) > 3 and isinstance(args[3], (list, tuple)):
        raise _unsupported(f"{name} on a PackedSequence (pack_padded_sequence); pass the padded batch")


@symbolic(torch.lstm)
def lstm(g, *args):
    """torch.lstm(input, (h0, c0), params, has_biases, num_layers, dropout, train,
    bidirectional, batch_first) -> (output, h_n, c_n)."""
    _check_batched(args, "nn.LSTM")
    x, hx, params, has_biases, num_layers, _dropout, _train, bidirectional, batch_first = args
    return _recurrent(g, "LSTM", x, list(hx), params, has_biases, num_layers, bidirectional, batch_first)


def _single_state(kind: str, activation: str | None = None):
    def fn(g, *args):
        _check_batched(args, f"nn.{kind}")
        x, h0, params, has_biases, num_layers, _dropout, _train, bidirectional, batch_first = args
        return _recurrent(g, kind, x, [h0], params, has_biases, num_layers, bidirectional, batch_first,
                          activation)

    fn.__doc__ = f"torch.{kind.lower()}(input, h0, params, ...) -> (output, h_n) as ONNX {kind}."
    return fn


gru = symbolic(torch.gru)(_single_state("GRU"))
rnn_tanh = symbolic(torch.rnn_tanh)(_single_state("RNN", "Tanh"))
rnn_relu = symbolic(torch.rnn_relu)(_single_state("RNN", "Relu"))


def _cell(g, kind, x: Var, states: list[Var], w_ih, w_hh, b_ih, b_hh, activation=None):
    """One step of a cell: the layer op over a sequence of length one."""
    if x.rank != 2:
        raise _unsupported(f"an unbatched {kind} cell input (rank {x.rank})")
    hidden = int(w_hh.shape[1])
    prefix = _param_prefix(g, w_ih, kind)
    w = _pack(g, [[w_ih]], kind, f"{prefix}.W")
    r = _pack(g, [[w_hh]], kind, f"{prefix}.R")
    b = _pack(g, [[b_ih, b_hh]], kind, f"{prefix}.B") if b_ih is not None else None
    axis0 = g.int64([0])
    init = [None if _is_default_zeros(g, s) else g.op("Unsqueeze", s, axis0) for s in states]
    while init and init[-1] is None:
        init.pop()
    attrs = {"hidden_size": hidden}
    if kind == "GRU":
        attrs["linear_before_reset"] = 1
    if activation:
        attrs["activations"] = [activation]
    _y, *last = g.op(kind, g.op("Unsqueeze", x, axis0), w, r, b, None, *init, num_outputs=1 + len(states),
                     **attrs)
    squeezed = [g.op("Squeeze", v, axis0) for v in last]
    return squeezed[0] if len(squeezed) == 1 else tuple(squeezed)


@symbolic(torch.lstm_cell)
def lstm_cell(g, x, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """torch.lstm_cell(input, (h, c), w_ih, w_hh, b_ih, b_hh) -> (h', c')."""
    return _cell(g, "LSTM", x, list(hx), w_ih, w_hh, b_ih, b_hh)


@symbolic(torch.gru_cell)
def gru_cell(g, x, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """torch.gru_cell(input, h, w_ih, w_hh, b_ih, b_hh) -> h'."""
    return _cell(g, "GRU", x, [hx], w_ih, w_hh, b_ih, b_hh)


@symbolic(torch.rnn_tanh_cell)
def rnn_tanh_cell(g, x, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    return _cell(g, "RNN", x, [hx], w_ih, w_hh, b_ih, b_hh, "Tanh")


@symbolic(torch.rnn_relu_cell)
def rnn_relu_cell(g, x, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    return _cell(g, "RNN", x, [hx], w_ih, w_hh, b_ih, b_hh, "Relu")



@symbolic(torch._pack_padded_sequence)
def pack_padded_sequence(g, *args):
    """Packed sequences have data-dependent layouts: not exportable, say so clearly."""
    raise _unsupported("nn.utils.rnn.pack_padded_sequence (a PackedSequence); run the recurrent layer "
                       "on the padded batch instead (mask or gather the outputs by length)")
