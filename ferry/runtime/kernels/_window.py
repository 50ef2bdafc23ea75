"""Sliding-window geometry shared by the convolution and pooling kernels.

``geometry`` resolves the ONNX window attributes (kernel_shape, strides, dilations,
pads, auto_pad, ceil_mode) into explicit per-axis numbers and the output size;
``windows`` returns a strided view of every window of a padded input, ``taps``
yields one strided view per kernel tap (for running reductions), and ``coverage`` counts how many cells of each window fall inside the input (or the
explicitly padded input).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Window", "geometry", "windows", "taps", "tap_view", "padded", "coverage",
           "spatial_params"]

_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


@dataclass(frozen=True)
class Window:
    """Explicit window parameters along each spatial axis, and the output size."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    out: tuple[int, ...]

    @property
    def extent(self) -> tuple[int, ...]:
        """Span of one dilated window along each axis."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilations, strict=True))

    @property
    def pads(self) -> list[int]:
        return [*self.pads_begin, *self.pads_end]


def spatial_params(values: Sequence[int] | None, rank: int, default: int, name: str) -> tuple:
    """``values`` as a tuple of ``rank`` ints, or ``default`` repeated when absent."""
    if values is None or len(values) == 0:
        return (default,) * rank
    if len(values) != rank:
        raise ValueError(f"{name} must have {rank} values (one per spatial axis), got {values}")
    return tuple(int(v) for v in values)


def geometry(
    in_shape: Sequence[int],
    kernel_shape: Sequence[int],
    *,
    strides: Sequence[int] | None = None,
    dilations: Sequence[int] | None = None,
    pads: Sequence[int] | None = None,
    auto_pad: str | None = "NOTSET",
    ceil_mode: int | None = 0,
) -> Window:
    """Resolve window attributes for spatial input ``in_shape`` (no batch/channel axes)."""
    rank = len(in_shape)
    kernel = tuple(int(k) for k in kernel_shape)
    if len(kernel) != rank:
        raise ValueError(f"kernel_shape must have {rank} values, got {list(kernel_shape)}")
    strides = spatial_params(strides, rank, 1, "strides")
    dilations = spatial_params(dilations, rank, 1, "dilations")
    auto_pad = auto_pad or "NOTSET"
    if auto_pad not in _AUTO_PADS:
        raise ValueError(f"auto_pad must be one of {_AUTO_PADS}, got {auto_pad!r}")
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-n // s) for n, s in zip(in_shape, strides, strict=True)]
        total = [max(0, (o - 1) * s + e - n)
                 for o, s, e, n in zip(out, strides, extent, in_shape, strict=True)]
        small = [t // 2 for t in total]
        big = [t - t // 2 for t in total]
        begin, end = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
        return Window(kernel, strides, dilations, tuple(begin), tuple(end), tuple(out))
    if auto_pad == "VALID" or pads is None or len(pads) == 0:
        begin = end = (0,) * rank
    else:
        if len(pads) != 2 * rank:
            raise ValueError(f"pads must have {2 * rank} values, got {list(pads)}")
        begin, end = tuple(pads[:rank]), tuple(pads[rank:])
    out = []
    for n, b, e, x, s in zip(in_shape, begin, end, extent, strides, strict=True):
        span = n + b + e - x
        size = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (size - 1) * s >= n + b:
            size -= 1  # the last window would start inside the end padding
        out.append(max(size, 0))
    return Window(kernel, strides, dilations, tuple(begin), tuple(end), tuple(out))


def _pad_width(in_shape: Sequence[int], w: Window) -> list[tuple[int, int]]:
    """Padding that makes every window fit, including ceil_mode overhang past the pads."""
    widths = []
    axes = zip(in_shape, w.pads_begin, w.pads_end, w.extent, w.strides, w.out, strict=True)
    for n, b, e, x, s, o in axes:
        need = (o - 1) * s + x if o > 0 else 0
        widths.append((b, max(e, need - n - b)))
    return widths


def padded(x: np.ndarray, w: Window, fill=0, buf: np.ndarray | None = None) -> np.ndarray:
    """``x`` padded on its trailing spatial axes so that every window fits (``x`` if none).

    ``buf``, a previous result for inputs of the same shape, is reused: only its interior
    is overwritten.
    """
    rank = len(w.kernel)
    lead = x.ndim - rank
    widths = _pad_width(x.shape[lead:], w)
    if not any(b or e for b, e in widths):
        return x
    inner = tuple(slice(b, b + n) for n, (b, _) in zip(x.shape[lead:], widths, strict=True))
    if buf is not None:
        buf[(Ellipsis, *inner)] = x
        return buf
    shape = (*x.shape[:lead], *(n + b + e for n, (b, e) in zip(x.shape[lead:], widths,
                                                                  strict=True)))
    out = np.empty(shape, dtype=x.dtype)
    out[(Ellipsis, *inner)] = x
    for d, (b, e) in enumerate(widths):  # fill only the border slabs
        axis = lead + d
        if b:
            out[(slice(None),) * axis + (slice(0, b),)] = fill
        if e:
            out[(slice(None),) * axis + (slice(shape[axis] - e, None),)] = fill
    return out


def tap_view(xp: np.ndarray, w: Window, tap: Sequence[int]) -> np.ndarray:
    """Strided view ``(*lead, *w.out)`` of the padded ``xp`` at kernel position ``tap``."""
    index = tuple(slice(t * d, t * d + (o - 1) * s + 1 if o else t * d, s)
                  for t, d, o, s in zip(tap, w.dilations, w.out, w.strides, strict=True))
    return xp[(Ellipsis, *index)]


def taps(x: np.ndarray, w: Window, fill=0) -> Iterator[np.ndarray]:
    """One view ``(*lead, *w.out)`` per kernel tap of ``x`` padded with ``fill``."""
    xp = padded(x, w, fill)
    for tap in itertools.product(*(range(k) for k in w.kernel)):
        yield tap_view(xp, w, tap)


def windows(x: np.ndarray, w: Window, fill=0) -> np.ndarray:
    """View of shape ``(*lead, *w.out, *w.kernel)`` over ``x`` padded with ``fill``.

    The last ``len(w.kernel)`` axes of ``x`` are spatial; the leading ones are kept.
    """
    lead = x.ndim - len(w.kernel)
    x = padded(x, w, fill)
    view = sliding_window_view(x, w.extent, axis=tuple(range(lead, x.ndim)))
    index = [slice(None)] * lead
    index += [slice(0, (o - 1) * s + 1 if o else 0, s)
              for o, s in zip(w.out, w.strides, strict=True)]
    index += [slice(None, None, d) for d in w.dilations]
    return view[tuple(index)]


def coverage(in_shape: Sequence[int], w: Window, include_pad: bool) -> np.ndarray:
    """Cells per window that lie inside the input (or inside input+pads), shape ``w.out``."""
    inside = np.ones(tuple(in_shape), dtype=np.int64)
    if include_pad:
        inside = np.pad(inside, list(zip(w.pads_begin, w.pads_end, strict=True)), constant_values=1)
        shifted = Window(w.kernel, w.strides, w.dilations, (0,) * len(w.kernel),
                         (0,) * len(w.kernel), w.out)
        return sum(taps(inside, shifted, 0))
    return sum(taps(inside, w, 0))
