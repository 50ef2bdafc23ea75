"""Recurrent layers: RNN, GRU and LSTM (all versions).

The input projection X W^T + bias is one matmul over all time steps; the time loop then does
one H R^T matmul per step into preallocated buffers and applies the gates in place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ferry.runtime.registry import kernel

Activation = Callable[[np.ndarray], None]  # overwrites its argument with the activation


def _sigmoid_(x: np.ndarray) -> None:
    """Logistic sigmoid, in place: 1 / (1 + exp(-x))."""
    np.negative(x, out=x)
    np.exp(x, out=x)  # overflow to inf gives the correct limit 0 (warning silenced by the scan)
    x += 1
    np.reciprocal(x, out=x)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0, x).astype(x.dtype)


# name -> (function of (x, alpha, beta), default alpha or None, default beta or None)
_ACTIVATIONS: dict[str, tuple[Callable, float | None, float | None]] = {
    "relu": (lambda x, a, b: np.maximum(x, 0), None, None),
    "tanh": (lambda x, a, b: np.tanh(x), None, None),
    "sigmoid": (lambda x, a, b: 1 / (1 + np.exp(-x)), None, None),
    "affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: np.where(x > a, x, 0), 1.0, None),
    "scaledtanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: np.clip(a * x + b, 0, 1), 0.2, 0.5),
    "elu": (lambda x, a, b: np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0))), 1.0, None),
    "softsign": (lambda x, a, b: x / (1 + np.abs(x)), None, None),
    "softplus": (lambda x, a, b: _softplus(x), None, None),
}

# In-place versions of the parameterless activations used by default.
_IN_PLACE: dict[str, Activation] = {
    "sigmoid": _sigmoid_,
    "tanh": lambda x: np.tanh(x, out=x),
    "relu": lambda x: np.maximum(x, 0, out=x),
}


def _in_place(name: str, alpha: float | None, beta: float | None) -> Activation:
    """The activation ``name`` as a function overwriting its argument."""
    key = name.lower()
    if key in _IN_PLACE:
        return _IN_PLACE[key]
    fn = _ACTIVATIONS[key][0]

    def apply(x: np.ndarray) -> None:
        x[...] = fn(x, alpha, beta)

    return apply


def _activation_functions(
    names: Sequence[str] | None,
    alphas: Sequence[float] | None,
    betas: Sequence[float] | None,
    defaults: Sequence[str],
    num_directions: int,
) -> list[list[Activation]]:
    """One list of in-place activations per direction; alpha/beta values are consumed in order."""
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
            _, default_alpha, default_beta = _ACTIVATIONS[name.lower()]
        except KeyError:
            raise ValueError(f"unsupported recurrent activation {name!r}") from None
        alpha = next(alpha_iter, default_alpha) if default_alpha is not None else None
        beta = next(beta_iter, default_beta) if default_beta is not None else None
        functions.append(_in_place(name, alpha, beta))
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


def _clipper(clip: float | None) -> Activation:
    """In-place clipping of gate pre-activations (a no-op without ``clip``)."""
    if clip is None:
        return lambda x: None
    return lambda x: np.clip(x, -clip, clip, out=x)


def _gated(act: Activation, clip: Activation) -> Activation:
    """Clip, then activate, in place."""
    def apply(x: np.ndarray) -> None:
        clip(x)
        act(x)

    return apply


def _scan(xw, states, lengths, reverse: bool, step, y) -> tuple[np.ndarray, ...]:
    """Run ``step(xw_t, states, new_states)`` over time, writing H into ``y`` ([T, B, H]).

    Padded steps (t >= length of a batch row) keep the state and output 0 (``y`` starts
    zeroed). ``states`` are owned buffers, reused as scratch; returns the final states.
    """
    steps = xw.shape[0]
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    masked = bool(np.any(lengths < steps))
    scratch = tuple(np.empty_like(s) for s in states)
    with np.errstate(over="ignore"):
        for t in order:
            if masked:
                step(xw[t], states, scratch)
                active = (t < lengths)[:, None]
                for s, n in zip(states, scratch, strict=True):
                    np.copyto(s, n, where=active)
                np.copyto(y[t], scratch[0], where=active)
            else:  # H is written straight into Y; the other states alternate buffers
                new = (y[t], *scratch[1:])
                step(xw[t], states, new)
                states, scratch = new, (scratch[0], *states[1:])
    return states


def _run_layer(x, w, r, b, lengths, initial, *, layout, direction, hidden_size, make_step):
    """Shared driver: layout handling, input projection, one scan per direction, outputs.

    ``initial`` lists the optional initial states (h, then c for LSTM). ``make_step(d, r_d,
    b_d, batch)`` returns (bias added to X W^T, step function) for direction ``d``.
    """
    out_dtype, dtype = x.dtype, _compute_dtype(x)
    if layout:
        x = np.swapaxes(x, 0, 1)
        initial = [None if s is None else np.swapaxes(s, 0, 1) for s in initial]
    steps, batch = x.shape[0], x.shape[1]
    hidden = hidden_size if hidden_size else r.shape[-1]
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths, np.int64)
    x2 = x.reshape(steps * batch, x.shape[-1]).astype(dtype, copy=False)
    reverses = _directions(direction)
    y = np.zeros((steps, len(reverses), batch, hidden), dtype)
    finals = []
    for d, reverse in enumerate(reverses):
        b_d = None if b is None else b[d].astype(dtype, copy=False)
        bias, step = make_step(d, r[d].astype(dtype, copy=False), b_d, batch)
        xw = x2 @ w[d].astype(dtype, copy=False).T
        xw += bias
        xw = xw.reshape(steps, batch, xw.shape[-1])
        states = tuple(
            np.zeros((batch, hidden), dtype) if s is None else s[d].astype(dtype) for s in initial
        )
        finals.append(_scan(xw, states, lengths, reverse, step, y[:, d]))
    outs = [np.stack([f[i] for f in finals]) for i in range(len(initial))]  # [D, B, H]
    if layout:
        y = np.transpose(y, (2, 0, 1, 3))
        outs = [np.swapaxes(o, 0, 1) for o in outs]
    return tuple(o.astype(out_dtype, copy=False) for o in [y, *outs])


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

    def make_step(d, r, b, batch):
        f = _gated(funcs[d][0], clipped)
        rt = r.T  # BLAS reads the transpose in place

        def step(xw, states, new):
            h_new = new[0]
            np.matmul(states[0], rt, out=h_new)
            h_new += xw
            f(h_new)

        return _summed_bias(b, r.dtype), step

    return _run_layer(
        X, W, R, B, sequence_lens, [initial_h], layout=_check_layout(layout),
        direction=direction, hidden_size=hidden_size, make_step=make_step,
    )


def _gru_step(r, rb_h, batch, f: Activation, g: Activation, linear_before_reset):
    """The GRU step on preallocated buffers (``rb_h`` is only used with linear_before_reset)."""
    hid, dtype = r.shape[-1], r.dtype
    zr, cand = np.empty((batch, 2 * hid), dtype), np.empty((batch, hid), dtype)
    z, reset = zr[:, :hid], zr[:, hid:]
    if linear_before_reset:  # one H R^T product a step
        rt, hr = r.T, np.empty((batch, 3 * hid), dtype)
        hr_zr, hr_h = hr[:, : 2 * hid], hr[:, 2 * hid :]
    else:  # H R_zr^T, then (reset * H) R_h^T
        rt_zr, rt_h = r[: 2 * hid].T, r[2 * hid :].T
        tmp = np.empty((batch, hid), dtype)

    def step(xw, states, new):
        (h,), (h_new,) = states, new
        if linear_before_reset:
            np.matmul(h, rt, out=hr)
            np.add(hr_zr, xw[:, : 2 * hid], out=zr)
            f(zr)
            np.add(hr_h, rb_h, out=hr_h)
            np.multiply(hr_h, reset, out=cand)
        else:
            np.matmul(h, rt_zr, out=zr)
            np.add(zr, xw[:, : 2 * hid], out=zr)
            f(zr)
            np.multiply(reset, h, out=tmp)
            np.matmul(tmp, rt_h, out=cand)
        np.add(cand, xw[:, 2 * hid :], out=cand)
        g(cand)
        np.subtract(h, cand, out=h_new)  # H = (1 - z) * cand + z * H = cand + z * (H - cand)
        h_new *= z
        h_new += cand

    return step


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

    def make_step(d, r, b, batch):
        f, g = (_gated(a, clipped) for a in funcs[d])
        hid = r.shape[-1]
        if b is None:
            b = np.zeros(6 * hid, r.dtype)
        wb, rb = b[: 3 * hid], b[3 * hid :]
        bias = wb + rb
        if linear_before_reset:  # R_h's bias is applied inside the reset product
            bias[2 * hid :] = wb[2 * hid :]
        step = _gru_step(r, rb[2 * hid :], batch, f, g, linear_before_reset)
        return bias, step

    return _run_layer(
        X, W, R, B, sequence_lens, [initial_h], layout=_check_layout(layout),
        direction=direction, hidden_size=hidden_size, make_step=make_step,
    )


def _lstm_step(rt, batch, f: Activation, g: Activation, h_act: Activation, peep, input_forget):
    """The LSTM step (gates i, o, f, c) on preallocated buffers; ``f``/``g`` also clip."""
    hid, dtype = rt.shape[0], rt.dtype
    gates, tmp = np.empty((batch, 4 * hid), dtype), np.empty((batch, hid), dtype)
    i, o, fg, cc = (gates[:, k * hid : (k + 1) * hid] for k in range(4))
    ifo = gates[:, : 3 * hid]
    joint = peep is None and not input_forget  # i, o and f activate in one call

    def step(xw, states, new):
        (h, c), (h_new, c_new) = states, new
        np.matmul(h, rt, out=gates)
        np.add(gates, xw, out=gates)
        if peep is not None:
            np.multiply(peep[0], c, out=tmp)
            np.add(i, tmp, out=i)
            np.multiply(peep[2], c, out=tmp)
            np.add(fg, tmp, out=fg)
        if joint:
            f(ifo)
        else:
            f(i)
            if input_forget:
                np.subtract(1, i, out=fg)
            else:
                f(fg)
        g(cc)
        np.multiply(fg, c, out=c_new)
        np.multiply(i, cc, out=tmp)
        c_new += tmp
        if not joint:
            if peep is not None:
                np.multiply(peep[1], c_new, out=tmp)
                np.add(o, tmp, out=o)
            f(o)
        np.copyto(tmp, c_new)
        h_act(tmp)
        np.multiply(o, tmp, out=h_new)

    return step


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

    def make_step(d, r, b, batch):
        f, g, h_act = funcs[d]
        hid = r.shape[-1]
        peep = None if P is None else P[d].astype(r.dtype, copy=False).reshape(3, hid)
        step = _lstm_step(
            r.T, batch, _gated(f, clipped), _gated(g, clipped), h_act, peep, input_forget
        )
        return _summed_bias(b, r.dtype), step

    return _run_layer(
        X, W, R, B, sequence_lens, [initial_h, initial_c], layout=_check_layout(layout),
        direction=direction, hidden_size=hidden_size, make_step=make_step,
    )
