"""Recurrent layers: RNN, GRU and LSTM (all versions), stepping over time with one matmul a step."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ferry.runtime.registry import kernel

Activation = Callable[[np.ndarray], np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -x)).astype(x.dtype)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0, x).astype(x.dtype)


# name -> (function of (x, alpha, beta), default alpha or None, default beta or None)
_ACTIVATIONS: dict[str, tuple[Callable, float | None, float | None]] = {
    "relu": (lambda x, a, b: np.maximum(x, 0), None, None),
    "tanh": (lambda x, a, b: np.tanh(x), None, None),
    "sigmoid": (lambda x, a, b: _sigmoid(x), None, None),
    "affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: np.where(x > a, x, 0), 1.0, None),
    "scaledtanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: np.clip(a * x + b, 0, 1), 0.2, 0.5),
    "elu": (lambda x, a, b: np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0))), 1.0, None),
    "softsign": (lambda x, a, b: x / (1 + np.abs(x)), None, None),
    "softplus": (lambda x, a, b: _softplus(x), None, None),
}


def _activation_functions(
    names: Sequence[str] | None,
    alphas: Sequence[float] | None,
    betas: Sequence[float] | None,
    defaults: Sequence[str],
    num_directions: int,
) -> list[list[Activation]]:
    """One list of activation callables per direction; alpha/beta values are consumed in order."""
    per_direction = len(defaults)
    names = list(names) if names else list(defaults) * num_directions
    if len(names) < per_direction * num_directions:
        if len(names) != per_direction:
            raise ValueError(
                f"expected {per_direction * num_directions} activations, found {len(names)}"
            )
        names = names * num_directions
    alpha_iter, beta_iter = iter(alphas or ()), iter(betas or ())
    functions: list[Activation] = []
    for name in names:
        try:
            fn, default_alpha, default_beta = _ACTIVATIONS[name.lower()]
        except KeyError:
            raise ValueError(f"unsupported recurrent activation {name!r}") from None
        alpha = next(alpha_iter, default_alpha) if default_alpha is not None else None
        beta = next(beta_iter, default_beta) if default_beta is not None else None
        functions.append(lambda x, fn=fn, a=alpha, b=beta: np.asarray(fn(x, a, b), x.dtype))
    return [
        functions[d * per_direction : (d + 1) * per_direction] for d in range(num_directions)
    ]


def _directions(direction: str) -> list[bool]:
    """The `reverse` flag of each direction."""
    table = {
        "forward": [False], "reverse": [True], "bidirectional": [False, True],
        "foward": [False],  # GRU-1's schema default is misspelled
    }
    if direction not in table:
        raise ValueError(f"direction must be forward, reverse or bidirectional, found {direction!r}")
    return table[direction]


def _compute_dtype(x: np.ndarray) -> np.dtype:
    return np.promote_types(x.dtype, np.float32)


def _scan(xw, states, lengths, reverse: bool, cell):
    """Run ``cell(xw_t, states) -> states`` over time; padded steps keep state and output 0."""
    steps = xw.shape[0]
    ys = np.zeros((steps, *states[0].shape), states[0].dtype)
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        new = cell(xw[t], states)
        active = (t < lengths)[:, None]
        states = tuple(np.where(active, n, s) for n, s in zip(new, states, strict=True))
        ys[t] = np.where(active, states[0], 0)
    return ys, states


def _clipper(clip: float | None) -> Activation:
    if clip is None:
        return lambda x: x
    return lambda x: np.clip(x, -clip, clip)


def _run_layer(x, w, r, b, lengths, initial, *, layout, direction, hidden_size, make_cell):
    """Shared driver: layout handling, one scan per direction, output assembly.

    ``initial`` lists the optional initial states (h, then c for LSTM). ``make_cell(d, r_d,
    b_d, dtype)`` returns (bias added to X W^T, cell callable) for direction ``d``.
    """
    out_dtype, dtype = x.dtype, _compute_dtype(x)
    if layout:
        x = np.swapaxes(x, 0, 1)
        initial = [None if s is None else np.swapaxes(s, 0, 1) for s in initial]
    steps, batch = x.shape[0], x.shape[1]
    hidden = hidden_size if hidden_size else r.shape[-1]
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths, np.int64)
    x = x.astype(dtype)
    ys, finals = [], []
    for d, reverse in enumerate(_directions(direction)):
        b_d = None if b is None else b[d].astype(dtype)
        bias, cell = make_cell(d, r[d].astype(dtype), b_d, dtype)
        xw = x @ w[d].astype(dtype).T + bias
        states = tuple(
            np.zeros((batch, hidden), dtype) if s is None else s[d].astype(dtype) for s in initial
        )
        y, states = _scan(xw, states, lengths, reverse, cell)
        ys.append(y)
        finals.append(states)
    y = np.stack(ys, axis=1)  # [T, D, B, H]
    outs = [np.stack([f[i] for f in finals]) for i in range(len(initial))]  # [D, B, H]
    if layout:
        y = np.transpose(y, (2, 0, 1, 3))
        outs = [np.swapaxes(o, 0, 1) for o in outs]
    return tuple(o.astype(out_dtype) for o in [y, *outs])


def _summed_bias(b: np.ndarray | None, dtype) -> np.ndarray:
    """Wb + Rb of a [Wb, Rb] bias vector (0 when B is omitted)."""
    if b is None:
        return np.zeros((), dtype)
    return b[: b.shape[0] // 2] + b[b.shape[0] // 2 :]


def _check_layout(layout: int | None) -> int:
    if layout not in (None, 0, 1):
        raise ValueError(f"layout must be 0 or 1, found {layout}")
    return layout or 0


@kernel("RNN", since=(1, 7, 14, 22))
def rnn(
    X, W, R, B=None, sequence_lens=None, initial_h=None, *,
    activation_alpha, activation_beta, activations, clip, direction, hidden_size,
    layout=None, output_sequence=None,
):
    """Simple RNN: H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb), per direction."""
    funcs = _activation_functions(
        activations, activation_alpha, activation_beta, ["Tanh"], len(_directions(direction))
    )
    clipped = _clipper(clip)

    def make_cell(d, r, b, dtype):
        (f,) = funcs[d]
        return _summed_bias(b, dtype), lambda xw, s: (f(clipped(xw + s[0] @ r.T)),)

    return _run_layer(
        X, W, R, B, sequence_lens, [initial_h], layout=_check_layout(layout),
        direction=direction, hidden_size=hidden_size, make_cell=make_cell,
    )


@kernel("GRU", since=(1, 3, 7, 14, 22))
def gru(
    X, W, R, B=None, sequence_lens=None, initial_h=None, *,
    activation_alpha, activation_beta, activations, clip, direction, hidden_size,
    layout=None, linear_before_reset=None, output_sequence=None,
):
    """GRU with gates z, r, h (optionally applying R_h before the reset gate)."""
    funcs = _activation_functions(
        activations, activation_alpha, activation_beta, ["Sigmoid", "Tanh"],
        len(_directions(direction)),
    )
    clipped = _clipper(clip)

    def make_cell(d, r, b, dtype):
        f, g = funcs[d]
        hid = r.shape[-1]
        if b is None:
            b = np.zeros(6 * hid, dtype)
        wb, rb = b[: 3 * hid], b[3 * hid :]
        r_zr, r_h, rb_h = r[: 2 * hid], r[2 * hid :], rb[2 * hid :]
        bias = wb + np.concatenate([rb[: 2 * hid], np.zeros(hid, dtype)])

        def cell(xw, s):
            (h,) = s
            zr = f(clipped(xw[:, : 2 * hid] + h @ r_zr.T))
            z, reset = zr[:, :hid], zr[:, hid:]
            if linear_before_reset:
                candidate = xw[:, 2 * hid :] + reset * (h @ r_h.T + rb_h)
            else:
                candidate = xw[:, 2 * hid :] + (reset * h) @ r_h.T + rb_h
            return ((1 - z) * g(clipped(candidate)) + z * h,)

        return bias, cell

    return _run_layer(
        X, W, R, B, sequence_lens, [initial_h], layout=_check_layout(layout),
        direction=direction, hidden_size=hidden_size, make_cell=make_cell,
    )


@kernel("LSTM", since=(1, 7, 14, 22))
def lstm(
    X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None, *,
    activation_alpha, activation_beta, activations, clip, direction, hidden_size,
    input_forget, layout=None, output_sequence=None,
):
    """LSTM with gates i, o, f, c, optional peepholes (P = [Pi, Po, Pf]) and coupled i/f."""
    funcs = _activation_functions(
        activations, activation_alpha, activation_beta, ["Sigmoid", "Tanh", "Tanh"],
        len(_directions(direction)),
    )
    clipped = _clipper(clip)

    def make_cell(d, r, b, dtype):
        f, g, h_act = funcs[d]
        hid = r.shape[-1]
        p = np.zeros((3, hid), dtype) if P is None else P[d].astype(dtype).reshape(3, hid)

        def cell(xw, s):
            h, c = s
            gates = xw + h @ r.T
            i = f(clipped(gates[:, :hid] + p[0] * c))
            forget = 1 - i if input_forget else f(clipped(gates[:, 2 * hid : 3 * hid] + p[2] * c))
            c_new = forget * c + i * g(clipped(gates[:, 3 * hid :]))
            o = f(clipped(gates[:, hid : 2 * hid] + p[1] * c_new))
            return o * h_act(c_new), c_new

        return _summed_bias(b, dtype), cell

    return _run_layer(
        X, W, R, B, sequence_lens, [initial_h, initial_c], layout=_check_layout(layout),
        direction=direction, hidden_size=hidden_size, make_cell=make_cell,
    )
