"""Convolution algorithms for the Conv kernel, with weights packed once per model.

``pack_conv_weights`` prepares every layout an algorithm needs from the weights and the
node's window attributes (a pure function: a session may call it at creation);
``conv_packed`` runs the convolution of an input with packed weights, choosing the
algorithm from the shapes unless the packing forced one, and applies an optional
epilogue (bias, residual add, activation) in place on each output block while it is hot.

Algorithms (ONNX Conv semantics: zero-padded N-d grouped cross-correlation):
``pointwise``  1x1 kernel, no padding: one GEMM (M, C) @ (C, P) per image and group.
``depthwise``  one input channel per group: weighted sum of per-tap strided views.
``im2col``     GEMM of (M, C*K) weights with cache-sized blocks of an im2col matrix.
``shifted``    2-D, stride 1, group 1: out += W_tap (M, C) @ x_flat[:, tap offset:] per tap,
               computed at the padded width on the flat padded image (no im2col copy);
               available when forced, measured no faster than im2col here.
``winograd2``/``winograd4``  2-D 3x3 stride 1 group 1: Winograd F(2x2|4x4, 3x3), see
               ``_winograd``. Available when forced; measured slower than im2col on this
               numpy/OpenBLAS stack for the shapes of issue #6, so never chosen by default.
``native_winograd``  the same case in float32 with the compiled F(4x4, 3x3) kernel of
               ``native_conv`` (when built and the CPU has AVX2/FMA): chosen by default
               for outputs at least 9 pixels wide (2-5x faster than numpy im2col; about
               as fast as the compiled im2col + GEMM, and without its 9x-sized matrix).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ferry.runtime.kernels import native_conv
from ferry.runtime.kernels._activation import activate_in_place, check_activation
from ferry.runtime.kernels._window import Window, geometry, padded, tap_view
from ferry.runtime.kernels._winograd import pack_winograd, winograd_conv

__all__ = ["PackedConv", "pack_conv_weights", "conv_packed", "applicable_algorithms",
           "choose_algorithm", "ALGORITHMS"]

ALGORITHMS = ("pointwise", "depthwise", "im2col", "shifted", "winograd2", "winograd4",
              "native_winograd")
_NATIVE_MIN_WIDTH = 9  # narrower outputs fill under 3 of the native kernel's 8 lanes: im2col
_CHUNK_BYTES = 1 << 21  # im2col block size: keeps the column buffer cache-resident
_NATIVE_BLOCK_BYTES = 1 << 24  # compiled im2col: whole images up to 16 MiB of matrix, else row blocks
_SHIFT_BLOCK_BYTES = 1 << 21  # shifted: bytes of one block's (M, rows * padded width) output


@dataclass(frozen=True)
class PackedConv:
    """Weights (M, C/group, *k) with the Conv attributes and per-algorithm layouts."""

    weights: np.ndarray
    group: int
    strides: tuple | None
    dilations: tuple | None
    pads: tuple | None
    auto_pad: str
    algorithm: str | None = None  # forced algorithm, or None to choose per input shape
    layouts: dict = field(default_factory=dict)  # algorithm name -> packed weights
    native: tuple[str, ...] = ()  # compiled layouts allowed: "native_winograd", "native_gemm"
    # input shape -> (window, chosen algorithm): sessions see few shapes, each many times
    _by_shape: dict = field(default_factory=dict, compare=False, repr=False)

    def layout(self, name: str) -> np.ndarray:
        """The weights packed for ``name`` (an algorithm, or "native_gemm"), packed on first
        use unless packed already (``pack_conv_weights`` packs the compiled GEMM's layout,
        ``prepare_for`` the layout a known input shape selects): Winograd's transformed
        weights, 4x the size of the weights, exist only where Winograd runs."""
        packed = self.layouts.get(name)
        if packed is None:
            w = self.weights
            if name == "shifted":
                packed = np.ascontiguousarray(w.reshape(*w.shape[:2], -1).transpose(2, 0, 1))
            elif name in ("winograd2", "winograd4"):
                packed = pack_winograd(w, int(name[-1]))
            elif name == "native_winograd":
                packed = native_conv.pack_f43(w)
            else:
                packed = native_conv.pack_gemm(w.reshape(w.shape[0], -1))
            self.layouts[name] = packed
        return packed

    def prepare_for(self, x_shape: tuple[int | None, ...] | None) -> None:
        """Pack now what an input of ``x_shape`` will run (a static shape, batch may be
        None), so that the first run does not pay for it."""
        if x_shape is None or len(x_shape) != self.weights.ndim or None in x_shape[1:]:
            return
        shape = (1, *x_shape[1:])
        try:
            algorithm = choose_algorithm(shape, self)
        except ValueError:
            return  # the kernel does not fit: the run reports it
        if algorithm in ("pointwise", "im2col") and "native_gemm" in self.native:
            self.layout("native_gemm")
        elif algorithm in ("shifted", "winograd2", "winograd4", "native_winograd"):
            self.layout(algorithm)

    def window(self, x_shape: tuple[int, ...]) -> Window:
        """Resolved window geometry for an input of ``x_shape`` (N, C, *spatial)."""
        known = self._by_shape.get(tuple(x_shape))
        if known is not None:
            return known[0]
        win = geometry(x_shape[2:], self.weights.shape[2:], strides=self.strides,
                       dilations=self.dilations, pads=self.pads, auto_pad=self.auto_pad)
        if any(size < 1 for size in win.out) and int(np.prod(x_shape)):
            raise ValueError(
                f"the kernel {list(self.weights.shape[2:])} (dilations {list(win.dilations)}) "
                f"does not fit the padded input {list(x_shape[2:])}: output size would be "
                f"{list(win.out)}")
        return win


def _static_candidates(w: np.ndarray, group: int, strides, dilations) -> list[str]:
    """Algorithms the weights and attributes allow, whatever the input shape."""
    rank, c = w.ndim - 2, w.shape[1] * group
    ones = (1,) * rank
    stride1 = tuple(strides or ones) == ones
    names = ["im2col"]
    if group > 1 and c == group and np.issubdtype(w.dtype, np.floating):
        names.insert(0, "depthwise")
    if all(k == 1 for k in w.shape[2:]):
        names.insert(0, "pointwise")
    if rank == 2 and group == 1 and stride1 and np.issubdtype(w.dtype, np.floating):
        names.append("shifted")
        if w.shape[2:] == (3, 3) and tuple(dilations or ones) == ones:
            names += ["winograd2", "winograd4"]
            if w.dtype == np.float32 and native_conv.available():
                names.append("native_winograd")
    return names


def pack_conv_weights(w: np.ndarray, *, group: int = 1, kernel_shape=None, strides=None,
                      dilations=None, pads=None, auto_pad: str | None = "NOTSET",
                      algorithm: str | None = None) -> PackedConv:
    """Pack Conv weights ``w`` (M, C/group, *k) for ``conv_packed``; ``algorithm`` forces one
    of ``ALGORITHMS`` (it must suit the attributes), None chooses per input shape."""
    if kernel_shape and list(kernel_shape) != list(w.shape[2:]):
        raise ValueError(f"kernel_shape {list(kernel_shape)} does not match W shape {w.shape}")
    allowed = _static_candidates(w, group, strides, dilations)
    if algorithm is not None and algorithm not in allowed:
        raise ValueError(f"Conv algorithm {algorithm!r} does not apply to W{w.shape} with "
                         f"group={group}, strides={strides}, dilations={dilations}: "
                         f"expected one of {allowed}")
    native = []
    if "native_winograd" in allowed and algorithm in (None, "native_winograd"):
        native.append("native_winograd")
    if (group == 1 and w.dtype == np.float32 and algorithm in (None, "pointwise", "im2col")
            and native_conv.available()):
        native.append("native_gemm")
    packed = PackedConv(w, group, _ints(strides), _ints(dilations), _ints(pads),
                        auto_pad or "NOTSET", algorithm, {}, tuple(native))
    if "native_gemm" in native:  # whatever the input, a possible layout: pack it now
        packed.layout("native_gemm")
    return packed


def _ints(values) -> tuple[int, ...] | None:
    """An attribute list as a tuple of ints; None when absent or empty."""
    return tuple(int(v) for v in values) if values is not None and len(values) else None


def applicable_algorithms(x_shape: tuple[int, ...], packed: PackedConv) -> list[str]:
    """Every algorithm that can run ``packed`` on an input of ``x_shape``."""
    win = packed.window(x_shape)
    names = _static_candidates(packed.weights, packed.group, packed.strides, packed.dilations)
    if "pointwise" in names and any(win.pads_begin + win.pads_end):
        names.remove("pointwise")
    return names


def choose_algorithm(x_shape: tuple[int, ...], packed: PackedConv) -> str:
    """The algorithm ``conv_packed`` runs: the forced one, else pointwise / depthwise where
    they apply, else the native Winograd kernel for outputs at least ``_NATIVE_MIN_WIDTH``
    wide, else im2col. (``shifted`` and numpy Winograd measured no faster than im2col on
    the shapes of bench/conv_micro.py with numpy's OpenBLAS, so they run only when forced.)"""
    if packed.algorithm is not None:
        return packed.algorithm
    x_shape = tuple(x_shape)
    known = packed._by_shape.get(x_shape)
    if known is not None:
        return known[1]
    names = applicable_algorithms(x_shape, packed)
    win = packed.window(x_shape)
    if names[0] in ("pointwise", "depthwise"):
        chosen = names[0]
    elif "native_winograd" in packed.native and win.out[1] >= _NATIVE_MIN_WIDTH:
        chosen = "native_winograd"
    else:
        chosen = "im2col"
    if len(packed._by_shape) < 16:  # a bound, for callers that feed ever new shapes
        packed._by_shape[x_shape] = (win, chosen)
    return chosen


def conv_packed(x: np.ndarray, packed: PackedConv, *, bias: np.ndarray | None = None,
                residual: np.ndarray | None = None, activation=None) -> np.ndarray:
    """Conv of ``x`` (N, C, *spatial) with packed weights, then ``+ bias`` (per output
    channel), ``+ residual`` (output-shaped) and ``activation``: None or (name, alpha, beta)
    as in :mod:`~ferry.runtime.kernels._activation`. Computes in the dtype of the weights."""
    w = packed.weights
    if x.ndim < 3 or w.ndim != x.ndim or x.shape[1] != w.shape[1] * packed.group:
        raise ValueError(f"Conv expects X of rank >= 3 with {w.shape[1] * packed.group} "
                         f"channels (W{w.shape}, group={packed.group}), got X{x.shape}")
    win = packed.window(x.shape)
    x = x.astype(w.dtype, copy=False)
    algorithm = choose_algorithm(x.shape, packed)
    if packed.algorithm is not None and algorithm not in applicable_algorithms(x.shape, packed):
        raise ValueError(f"Conv algorithm {algorithm!r} does not apply to X{x.shape} with "
                         f"W{w.shape} and pads {list(win.pads)}")
    epilogue = _Epilogue.make(bias, residual, activation, w.dtype)
    out_shape = (x.shape[0], w.shape[0], *win.out)
    if residual is not None and residual.shape != out_shape:
        raise ValueError(f"Conv residual has shape {residual.shape}, expected the output "
                         f"shape {out_shape}")
    if 0 in win.out or x.shape[0] == 0:
        y = np.zeros((x.shape[0], w.shape[0], *win.out), dtype=w.dtype)
        return epilogue.finish(y)
    if algorithm == "native_winograd":
        return _run_native(x, packed, win, epilogue)
    if algorithm in ("pointwise", "im2col") and "native_gemm" in packed.native:
        return _run_native_gemm(x, packed, win, algorithm, epilogue)
    if algorithm in ("shifted", "winograd2", "winograd4"):
        return _run_2d(x, packed, win, algorithm, epilogue)
    if algorithm == "pointwise":
        y = pointwise_conv(x, w, win, packed.group)
    elif algorithm == "depthwise":
        y = depthwise_conv(x, w, win, packed.group)
    else:
        y = im2col_conv(x, w, win, packed.group)
    return epilogue.finish(y)


@dataclass(frozen=True)
class _Epilogue:
    """Bias, residual and activation applied in place on output blocks."""

    bias: np.ndarray | None
    residual: np.ndarray | None
    activation: tuple[str, float, float] | None

    @classmethod
    def make(cls, bias, residual, activation, dtype) -> _Epilogue:
        if activation is not None:
            check_activation(activation[0])
        if bias is not None:
            bias = np.asarray(bias).astype(dtype, copy=False).reshape(-1)
        return cls(bias, residual, activation)

    def apply(self, y: np.ndarray, image: int, rows: slice | None = None) -> None:
        """Finish image ``image`` of the output; ``y`` is its (M, *out) slab, or the block of
        its rows ``rows`` (2-D outputs) when given."""
        if self.bias is not None:
            y += self.bias.reshape(-1, *([1] * (y.ndim - 1)))
        if self.residual is not None:
            res = self.residual[image]
            y += res if rows is None else res[:, rows]
        if self.activation is not None:
            activate_in_place(y, *self.activation)

    def finish(self, y: np.ndarray) -> np.ndarray:
        if self.bias is not None or self.residual is not None or self.activation is not None:
            for i in range(y.shape[0]):
                self.apply(y[i], i)
        return y


def _run_native(x: np.ndarray, packed: PackedConv, win: Window,
                epilogue: _Epilogue) -> np.ndarray:
    """The compiled Winograd kernel, epilogue included."""
    m = packed.weights.shape[0]
    return native_conv.conv_f43(x, packed.layout("native_winograd"), m, win.pads_begin, win.out,
                                bias=epilogue.bias, residual=epilogue.residual,
                                activation=epilogue.activation)


def _run_native_gemm(x: np.ndarray, packed: PackedConv, win: Window, algorithm: str,
                     epilogue: _Epilogue) -> np.ndarray:
    """1x1 or im2col convolution (one group, float32) on the compiled GEMM, epilogue included."""
    n, m = x.shape[0], packed.weights.shape[0]
    y = np.empty((n, m, *win.out), dtype=np.float32)
    flat = y.reshape(n, m, -1)
    residual = epilogue.residual
    if residual is not None:
        residual = np.ascontiguousarray(residual, dtype=np.float32).reshape(n, m, -1)
    if algorithm == "pointwise" and all(s == 1 for s in win.strides):
        pixels = np.ascontiguousarray(x).reshape(n, x.shape[1], -1)
        blocks = ((i, 0, pixels[i]) for i in range(n))
    elif x.ndim == 4:  # 2-D: the compiled im2col, whole images
        blocks = _native_im2col(np.ascontiguousarray(x), win)
    elif algorithm == "pointwise":
        pixels = _strided_pixels(x, win).reshape(n, x.shape[1], -1)
        blocks = ((i, 0, pixels[i]) for i in range(n))
    else:
        blocks = _im2col_blocks(x, win)
    layout = packed.layout("native_gemm")
    for i, start, part in blocks:
        native_conv.gemm_into(layout, m, part, flat[i], start, bias=epilogue.bias,
                              residual=None if residual is None else residual[i],
                              activation=epilogue.activation)
    return y


def _native_im2col(x: np.ndarray, win: Window):
    """(image, first output column, im2col block) of the contiguous float32 ``x`` (N, C, H, W)
    in blocks of output rows of at most ``_NATIVE_BLOCK_BYTES`` (one buffer, reused)."""
    taps, (rows, cols) = x.shape[1] * int(np.prod(win.kernel)), win.out
    step = max(1, min(rows, _NATIVE_BLOCK_BYTES // max(1, taps * cols * 4)))
    buffer = np.empty(taps * step * cols, np.float32)
    for i in range(x.shape[0]):
        for r0 in range(0, rows, step):
            count = min(step, rows - r0)
            block = buffer[:taps * count * cols].reshape(taps, count * cols)
            yield i, r0 * cols, native_conv.im2col_into(
                x[i], win.kernel, win.strides, win.dilations, win.pads_begin, (count, cols),
                block, r0)


def _run_2d(x: np.ndarray, packed: PackedConv, win: Window, algorithm: str,
            epilogue: _Epilogue) -> np.ndarray:
    """Image-by-image 2-D algorithms that finish output row blocks as they go."""
    n, m = x.shape[0], packed.weights.shape[0]
    y = np.empty((n, m, *win.out), dtype=packed.weights.dtype)
    layout = packed.layout(algorithm)
    if algorithm == "shifted":
        buf = None
        for i in range(n):
            buf = _padded_flat(x[i], win, 1, buf)
            shifted_conv(buf, layout, win, y[i], lambda rows, i=i: epilogue.apply(
                y[i][:, rows], i, rows))
        return y
    tile = int(algorithm[-1])
    buf = None
    for i in range(n):
        buf = _padded_tiles(x[i], win, tile, buf)
        winograd_conv(buf, layout, tile, y[i],
                      lambda rows, i=i: epilogue.apply(y[i][:, rows], i, rows))
    return y


def _pad_into(x: np.ndarray, win: Window, shape: tuple[int, ...], buf) -> np.ndarray:
    """(C, *shape) zero buffer with ``x`` (C, H, W) at the top-left pads; reuses ``buf``."""
    if buf is None:
        buf = np.zeros((x.shape[0], *shape), dtype=x.dtype)
    (pt, pl), (h, w) = win.pads_begin, x.shape[1:]
    buf[:, pt:pt + h, pl:pl + w] = x
    return buf


def _padded_flat(x, win: Window, extra_rows: int, buf) -> np.ndarray:
    """Padded image with ``extra_rows`` more zero rows so flat tap slices stay in bounds."""
    (h, w), (pt, pl), (pb, pr) = x.shape[1:], win.pads_begin, win.pads_end
    return _pad_into(x, win, (h + pt + pb + extra_rows, w + pl + pr), buf)


def _padded_tiles(x, win: Window, tile: int, buf) -> np.ndarray:
    """Padded image covering whole output tiles of ``tile`` pixels (Winograd)."""
    rows, cols = (-(-o // tile) * tile + e - 1 for o, e in zip(win.out, win.extent, strict=True))
    return _pad_into(x, win, (rows, cols), buf)


def shifted_conv(xp: np.ndarray, taps: np.ndarray, win: Window, out: np.ndarray,
                 epilogue=None) -> None:
    """Stride-1 2-D correlation as one GEMM per kernel tap on the flat padded image.

    ``xp`` (C, Hp, Wp) padded with at least one extra zero row, ``taps`` (K, M, C), ``out``
    (M, OH, OW). Output pixel (r, c) sits at flat index r * Wp + c; tap (i, j) reads the
    input at that index plus i * dh * Wp + j * dw. Columns past OW are computed and dropped.
    """
    c, _, wp = xp.shape
    m, oh, ow = out.shape
    flat = xp.reshape(c, -1)
    step = max(1, min(oh, _SHIFT_BLOCK_BYTES // (m * wp * xp.itemsize)))
    offsets = [i * win.dilations[0] * wp + j * win.dilations[1]
               for i, j in itertools.product(range(win.kernel[0]), range(win.kernel[1]))]
    starts = range(0, oh, step)

    def block(index: int) -> None:
        r0 = starts[index]
        rows = min(step, oh - r0)
        span = rows * wp
        a = np.empty((m, span), dtype=xp.dtype)
        t = np.empty_like(a)
        for k, off in enumerate(offsets):
            src = flat[:, r0 * wp + off:r0 * wp + off + span]
            np.matmul(taps[k], src, out=t if k else a)
            if k:
                a += t
        out[:, r0:r0 + rows] = a.reshape(m, rows, wp)[:, :, :ow]
        if epilogue is not None:
            epilogue(slice(r0, r0 + rows))

    for index in range(len(starts)):
        block(index)


def _window_view(xp: np.ndarray, win: Window) -> np.ndarray:
    """Strided (no copy) view (N, C, *k, *out) of the padded ``xp`` (N, C, *in)."""
    sp = xp.strides[2:]
    shape = (*xp.shape[:2], *win.kernel, *win.out)
    strides = (*xp.strides[:2], *(s * d for s, d in zip(sp, win.dilations, strict=True)),
               *(s * t for s, t in zip(sp, win.strides, strict=True)))
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


def _im2col_blocks(x: np.ndarray, win: Window):
    """(image, first output column, im2col block (C*K, columns)) for cache-sized blocks of
    output rows of every image of ``x``; each block is a fresh contiguous array."""
    xp = padded(x, win, 0)
    c, rank = xp.shape[1], len(win.kernel)
    view = _window_view(xp, win)
    rows, rest = win.out[0], int(np.prod(win.out[1:]))
    chunks = -(-c * int(np.prod(win.kernel)) * rows * rest * xp.itemsize // _CHUNK_BYTES)
    step = -(-rows // max(1, min(rows, chunks)))  # near-equal blocks of output rows
    tail = [slice(None)] * (rank - 1)
    for i in range(xp.shape[0]):
        for r0 in range(0, rows, step):
            r1 = min(rows, r0 + step)
            part = np.empty((c, *win.kernel, r1 - r0, *win.out[1:]), dtype=xp.dtype)
            np.copyto(part, view[(i, Ellipsis, slice(r0, r1), *tail)])
            yield i, r0 * rest, part.reshape(c * int(np.prod(win.kernel)), -1)


def im2col_conv(x: np.ndarray, w: np.ndarray, win: Window, group: int) -> np.ndarray:
    """(G, Mg, Cg*K) weights times im2col blocks of padded ``x``, block by block of rows."""
    wm = w.reshape(group, w.shape[0] // group, -1)
    g, mg, ck = wm.shape
    out = np.empty((x.shape[0], g, mg, int(np.prod(win.out))), dtype=np.result_type(x, wm))
    for i, start, part in _im2col_blocks(x, win):
        np.matmul(wm, part.reshape(g, ck, -1), out=out[i, :, :, start:start + part.shape[1]])
    return out.reshape(x.shape[0], w.shape[0], *win.out)


def _strided_pixels(x: np.ndarray, win: Window) -> np.ndarray:
    """The pixels a 1x1 unpadded convolution reads, (N, C, *out), contiguous."""
    view = x[(Ellipsis, *(slice(0, (o - 1) * s + 1 if o else 0, s)
                          for o, s in zip(win.out, win.strides, strict=True)))]
    return np.ascontiguousarray(view)


def pointwise_conv(x: np.ndarray, w: np.ndarray, win: Window, group: int) -> np.ndarray:
    """1x1 convolution without padding: strided pick of the pixels, one GEMM per image."""
    cols = _strided_pixels(x, win).reshape(*x.shape[:2], -1)
    n, p, m = x.shape[0], cols.shape[-1], w.shape[0]
    cols = cols.reshape(n, group, -1, p)  # (N, G, Cg, P)
    wm = w.reshape(group, m // group, -1)  # (G, Mg, Cg)
    out = np.empty((n, group, m // group, p), dtype=np.result_type(cols, wm))
    for i in range(n):  # one GEMM per image keeps the working set small
        np.matmul(wm, cols[i], out=out[i])
    return out.reshape(n, m, *win.out)


def depthwise_conv(x: np.ndarray, w: np.ndarray, win: Window, group: int) -> np.ndarray:
    """Grouped conv with one input channel per group: weighted sum of per-tap views.

    Channels go in cache-sized blocks through one reused padded buffer.
    """
    n, mg, rank = x.shape[0], w.shape[0] // group, len(win.kernel)
    wk = w.reshape(group, mg, -1)
    out = np.empty((n, group, mg, *win.out), dtype=np.result_type(x, w))
    step = max(1, _CHUNK_BYTES // max(1, x[0, :1].nbytes * (mg + 1)))
    taps = list(itertools.product(*(range(kk) for kk in win.kernel)))
    scratch = np.empty_like(out[0, :step])
    for i in range(n):
        buf = None
        for c0 in range(0, group, step):
            c1 = min(group, c0 + step)
            if buf is not None and len(buf) != c1 - c0:
                buf = buf[: c1 - c0]
            buf = padded(x[i, c0:c1], win, 0, buf)
            acc, tmp = out[i, c0:c1], scratch[: c1 - c0]
            for k, tap in enumerate(taps):
                view = tap_view(buf, win, tap)[:, None]  # (Gb, 1, *out)
                wt = wk[c0:c1, :, k].reshape(c1 - c0, mg, *([1] * rank))
                np.multiply(view, wt, out=tmp if k else acc)
                if k:
                    acc += tmp
    return out.reshape(n, group * mg, *win.out)
