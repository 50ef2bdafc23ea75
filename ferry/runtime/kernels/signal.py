"""Signal kernels: DFT, STFT, the Blackman/Hamming/Hann windows and MelWeightMatrix.

Complex tensors follow the ONNX layout: a trailing axis of size 2 holding the real and
imaginary parts (size 1 for a real signal).
"""

from __future__ import annotations

import numpy as np

from ferry.ir.dtypes import DataType
from ferry.runtime.kernels._numeric import narrow, widen
from ferry.runtime.registry import kernel


def _scalar(value, name: str) -> int:
    array = np.asarray(value)
    if array.size != 1:
        raise ValueError(f"{name} must be a scalar, got shape {array.shape}")
    return int(array.reshape(-1)[0])


def _complex_dtype(dtype: np.dtype) -> np.dtype:
    """Transforms run in the input's precision: complex128 for double, else complex64."""
    return np.dtype(np.complex128 if dtype == np.float64 else np.complex64)


def _to_complex(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """A [..., 1] or [..., 2] tensor as complex values, and whether it was complex."""
    values = widen(x)
    if values.ndim < 1 or values.shape[-1] not in (1, 2):
        raise ValueError(f"expected a last axis of size 1 (real) or 2 (complex), got {x.shape}")
    result = values[..., 0].astype(_complex_dtype(values.dtype))
    if values.shape[-1] == 2:
        result.imag = values[..., 1]
    return result, values.shape[-1] == 2


def _from_complex(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return narrow(np.stack([values.real, values.imag], axis=-1), dtype)


def _dft(x: np.ndarray, dft_length, axis: int, inverse: int, onesided: int) -> np.ndarray:
    rank = x.ndim
    if not (-rank <= axis <= -2 or 0 <= axis <= rank - 2):
        raise ValueError(f"DFT axis must lie in [-{rank}, -2] or [0, {rank - 2}], got {axis}")
    axis %= rank
    signal, is_complex = _to_complex(x)
    size = signal.shape[axis]
    if dft_length is not None:
        n = _scalar(dft_length, "dft_length")
    else:
        n = 2 * (size - 1) if onesided and inverse else size
    if onesided and inverse:
        real = np.fft.irfft(signal, n=n, axis=axis)
        return narrow(real[..., np.newaxis], x.dtype)
    if onesided and is_complex:
        raise ValueError("a onesided forward DFT needs a real input (last axis of size 1)")
    spectrum = (np.fft.ifft if inverse else np.fft.fft)(signal, n=n, axis=axis)
    if onesided:
        spectrum = np.take(spectrum, np.arange(n // 2 + 1), axis=axis)
    return _from_complex(spectrum, x.dtype)


@kernel("DFT", since=17)
def dft_v17(input, dft_length=None, *, axis, inverse, onesided):
    """DFT (or inverse, or real-onesided) of a [..., 1|2] tensor along the `axis` attribute."""
    return _dft(input, dft_length, axis, inverse, onesided)


@kernel("DFT", since=20)
def dft(input, dft_length=None, axis=None, *, inverse, onesided):
    """DFT (or inverse, or real-onesided) of a [..., 1|2] tensor along the `axis` input (-2)."""
    axis = -2 if axis is None else _scalar(axis, "axis")
    return _dft(input, dft_length, axis, inverse, onesided)


@kernel("STFT", since=17)
def stft(signal, frame_step, window=None, frame_length=None, *, onesided):
    """DFT of each windowed frame of a [batch, length, 1|2] signal: [batch, frames, bins, 2]."""
    values, is_complex = _to_complex(signal)
    if values.ndim != 2:
        raise ValueError(f"STFT expects a signal of shape [batch, length, 1|2], got {signal.shape}")
    step = _scalar(frame_step, "frame_step")
    if frame_length is not None:
        length = _scalar(frame_length, "frame_length")
    else:
        length = window.shape[0] if window is not None else values.shape[1]
    if window is None:
        window = np.ones(length)
    elif window.ndim != 1 or window.shape[0] != length:
        raise ValueError(f"STFT window must have shape [{length}], got {window.shape}")
    if step <= 0 or not 0 < length <= values.shape[1]:
        raise ValueError(f"STFT needs frame_step > 0 and 0 < frame_length <= {values.shape[1]}")
    if onesided and is_complex:
        raise ValueError("a onesided STFT needs a real signal (last axis of size 1)")
    frames = (values.shape[1] - length) // step + 1
    positions = np.arange(frames)[:, None] * step + np.arange(length)
    frames_data = values[:, positions] * widen(window).astype(values.real.dtype)
    spectrum = np.fft.fft(frames_data, axis=-1)
    if onesided:
        spectrum = spectrum[..., : length // 2 + 1]
    return _from_complex(spectrum, signal.dtype)


def _cosine_window(size, periodic: int, output_datatype: int, coefficients) -> np.ndarray:
    """sum_k (-1)^k a_k cos(2 pi k n / D), D = size (periodic) or size - 1 (symmetric).

    The symmetric one-point window, where D = 0, is [1] (numpy's and scipy's convention).
    """
    n = _scalar(size, "size")
    if n < 0:
        raise ValueError(f"window size must be >= 0, got {n}")
    denominator = n if periodic else n - 1
    if denominator == 0:  # a symmetric window of one point: 1, as numpy and scipy define it
        window = np.ones(n)
    else:
        phase = 2 * np.pi * np.arange(n) / denominator
        window = sum((-1) ** k * a * np.cos(k * phase) for k, a in enumerate(coefficients))
    return narrow(np.asarray(window, dtype=np.float64), DataType(output_datatype).numpy)


@kernel("HannWindow", since=17)
def hann_window(size, *, periodic, output_datatype):
    """Hann window 0.5 - 0.5 cos(2 pi n / D)."""
    return _cosine_window(size, periodic, output_datatype, (0.5, 0.5))


@kernel("HammingWindow", since=17)
def hamming_window(size, *, periodic, output_datatype):
    """Hamming window 25/46 - 21/46 cos(2 pi n / D)."""
    return _cosine_window(size, periodic, output_datatype, (25 / 46, 21 / 46))


@kernel("BlackmanWindow", since=17)
def blackman_window(size, *, periodic, output_datatype):
    """Blackman window 0.42 - 0.5 cos(2 pi n / D) + 0.08 cos(4 pi n / D)."""
    return _cosine_window(size, periodic, output_datatype, (0.42, 0.5, 0.08))


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@kernel("MelWeightMatrix", since=17)
def mel_weight_matrix(
    num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz, *, output_datatype
):
    """[dft_length // 2 + 1, num_mel_bins] triangular filters with peak 1 on the mel scale.

    Band edges are num_mel_bins + 2 points spaced by (mel(upper) - mel(lower)) /
    (num_mel_bins + 2) from mel(lower), mapped to DFT bins floor((dft_length + 1) * hz /
    sample_rate).
    """
    bands, length = _scalar(num_mel_bins, "num_mel_bins"), _scalar(dft_length, "dft_length")
    rate = _scalar(sample_rate, "sample_rate")
    low = _hz_to_mel(float(widen(np.asarray(lower_edge_hertz)).reshape(-1)[0]))
    high = _hz_to_mel(float(widen(np.asarray(upper_edge_hertz)).reshape(-1)[0]))
    mels = low + np.arange(bands + 2) * (high - low) / (bands + 2)
    edges = np.floor((length + 1) * _mel_to_hz(mels) / rate).astype(np.int64)
    left, center, right = edges[:-2], edges[1:-1], edges[2:]
    j = np.arange(length // 2 + 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where(center > left, (j - left) / (center - left), 1.0)
        falling = (right - j) / (right - center)
    matrix = np.where((left <= j) & (j <= center), rising, 0.0)
    matrix = np.where((center <= j) & (j < right), falling, matrix)
    return narrow(matrix, DataType(output_datatype).numpy)
