"""Reduction, linear algebra, sorting, loss and signal kernels against the official cases."""

from __future__ import annotations

import numpy as np
import onnx.helper
import pytest

from ferry.ir.dtypes import DataType
from tests.runtime.node_harness import node_case_test, run_node

OPS = {
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "ArgMax",
    "ArgMin",
    "MatMul",
    "Gemm",
    "Einsum",
    "Det",
    "TopK",
    "Unique",
    "NegativeLogLikelihoodLoss",
    "SoftmaxCrossEntropyLoss",
    "DFT",
    "STFT",
    "BlackmanWindow",
    "HammingWindow",
    "HannWindow",
    "MelWeightMatrix",
}

SKIPS: dict[str, str] = {}


test_node_case = node_case_test(OPS, SKIPS)


# ---------------------------------------------------------------------------
# Hand-written cases: old opsets and edge cases the official cases miss.


def run(op_type: str, inputs, opset: int, **attributes):
    """Run one ``op_type`` node at ``opset`` (None inputs are omitted optionals)."""
    names = [f"in{i}" if x is not None else "" for i, x in enumerate(inputs)]
    outputs = [f"out{i}" for i in range(attributes.pop("_outputs", 1))]
    node = onnx.helper.make_node(op_type, names, outputs, **attributes)
    scope = {n: x for n, x in zip(names, inputs, strict=True) if n}
    return run_node(node, {"": opset}, scope)


def assert_exact(got, want):
    want = np.asarray(want)
    assert got.dtype == want.dtype, f"dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


X = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 10


def test_reduce_axes_attribute_old_opsets():
    (got,) = run("ReduceSum", [X], 11, axes=[-1], keepdims=0)
    assert_exact(got, X.sum(axis=-1))
    (got,) = run("ReduceMean", [X], 13, axes=[0, 2])
    assert_exact(got, X.mean(axis=(0, 2), keepdims=True))
    (got,) = run("ReduceMax", [X], 1)  # no axes: all of them
    assert_exact(got, X.max(keepdims=True))


def test_reduce_axes_input():
    axes = np.array([1], dtype=np.int64)
    (got,) = run("ReduceProd", [X, axes], 18, keepdims=0)
    assert_exact(got, X.prod(axis=1))
    (got,) = run("ReduceSum", [X, np.array([], np.int64)], 13)
    assert_exact(got, X.sum(keepdims=True))


def test_reduce_noop_with_empty_axes_keeps_elementwise_steps():
    (got,) = run("ReduceSum", [X], 13, noop_with_empty_axes=1)
    assert_exact(got, X)
    (got,) = run("ReduceSumSquare", [X], 18, noop_with_empty_axes=1)
    assert_exact(got, X * X)
    (got,) = run("ReduceL1", [X, np.array([], np.int64)], 18, noop_with_empty_axes=1)
    assert_exact(got, np.abs(X))
    positive = np.abs(X) + 1
    (got,) = run("ReduceLogSum", [positive], 18, noop_with_empty_axes=1)
    assert_exact(got, np.log(positive))


@pytest.mark.parametrize(
    ("op_type", "dtype", "want"),
    [
        ("ReduceMax", np.float32, -np.inf),
        ("ReduceMax", np.int32, np.iinfo(np.int32).min),
        ("ReduceMin", np.float64, np.inf),
        ("ReduceMin", np.uint8, 255),
        ("ReduceMin", np.bool_, True),
        ("ReduceProd", np.int64, 1),
        ("ReduceSum", np.float32, 0),
        ("ReduceL2", np.float32, 0),
        ("ReduceLogSumExp", np.float32, -np.inf),
    ],
)
def test_reduce_empty_set(op_type, dtype, want):
    data = np.zeros((2, 0, 3), dtype=dtype)
    (got,) = run(op_type, [data, np.array([1], np.int64)], 20, keepdims=0)
    assert_exact(got, np.full((2, 3), want, dtype=dtype))


def test_reduce_keeps_integer_and_float16_dtypes():
    ints = np.arange(6, dtype=np.int32).reshape(2, 3)
    (got,) = run("ReduceSum", [ints], 11, axes=[1], keepdims=0)
    assert_exact(got, np.array([3, 12], np.int32))
    (got,) = run("ReduceMean", [ints], 11, axes=[1], keepdims=0)
    assert_exact(got, np.array([1, 4], np.int32))
    halves = np.full(4096, 1, np.float16)
    (got,) = run("ReduceSum", [halves], 11, keepdims=0)
    assert_exact(got, np.array(4096, np.float16))  # accumulated beyond float16's 2048 step


def test_reduce_bfloat16():
    bf16 = DataType.BFLOAT16.numpy
    data = np.array([0x3F80, 0x4000, 0x4040], np.uint16).view(bf16)  # 1, 2, 3
    (got,) = run("ReduceMax", [data], 20, keepdims=0)
    assert got.dtype == bf16 and got.view(np.uint16) == 0x4040
    (got,) = run("ReduceSum", [data], 13, keepdims=0)
    assert got.view(np.uint16) == 0x40C0  # 6


def test_argmax_old_opset_and_ties():
    data = np.array([[1, 3, 3], [2, 2, 0]], np.int32)
    (got,) = run("ArgMax", [data], 11, axis=1)
    assert_exact(got, np.array([[1], [0]], np.int64))
    (got,) = run("ArgMin", [data], 12, axis=0, keepdims=0, select_last_index=1)
    assert_exact(got, np.array([0, 1, 1], np.int64))


def test_topk_k_attribute_and_input():
    data = np.array([[3, 1, 3, 2], [0, 5, 5, 5]], np.float32)
    values, indices = run("TopK", [data], 1, k=2, _outputs=2)
    assert_exact(values, np.array([[3, 3], [5, 5]], np.float32))
    assert_exact(indices, np.array([[0, 2], [1, 2]], np.int64))
    values, indices = run("TopK", [data, np.array([3], np.int64)], 10, axis=1, _outputs=2)
    assert_exact(indices, np.array([[0, 2, 3], [1, 2, 3]], np.int64))
    values, indices = run("TopK", [data, np.array([2], np.int64)], 11, largest=0, _outputs=2)
    assert_exact(values, np.array([[1, 2], [0, 5]], np.float32))
    assert_exact(indices, np.array([[1, 3], [0, 1]], np.int64))


def test_topk_rejects_k_beyond_axis():
    with pytest.raises(ValueError, match="k="):
        run("TopK", [X, np.array([5], np.int64)], 11, _outputs=2)


def test_unique_strings_and_first_occurrence_order_along_axis():
    words = np.array(["b", "a", "b", "c"], dtype=object)
    y, first, inverse, counts = run("Unique", [words], 11, _outputs=4)
    assert list(y) == ["a", "b", "c"]
    assert_exact(first, np.array([1, 0, 3], np.int64))
    assert_exact(inverse, np.array([1, 0, 1, 2], np.int64))
    assert_exact(counts, np.array([1, 2, 1], np.int64))
    data = np.array([[2, 1, 2, 1], [0, 0, 0, 0]], np.int32)
    y, first, inverse, counts = run("Unique", [data], 11, axis=1, sorted=0, _outputs=4)
    assert_exact(y, np.array([[2, 1], [0, 0]], np.int32))
    assert_exact(first, np.array([0, 1], np.int64))
    assert_exact(inverse, np.array([0, 1, 0, 1], np.int64))
    assert_exact(counts, np.array([2, 2], np.int64))


def test_gemm_old_broadcast_attribute():
    a, b = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    c = np.arange(4, dtype=np.float32)
    (got,) = run("Gemm", [a, b, c], 6, broadcast=1, transB=1, alpha=2.0, beta=0.5)
    assert_exact(got, 6 + 0.5 * np.tile(c, (2, 1)))
    with pytest.raises(ValueError, match="broadcast=0"):
        run("Gemm", [a, b, c], 6, transB=1)


def test_gemm_optional_c_and_integers():
    a = np.arange(6, dtype=np.int32).reshape(3, 2)
    (got,) = run("Gemm", [a, a, None], 11, transA=1)
    assert_exact(got, a.T @ a)
    (got,) = run("Gemm", [a, a.T, np.array(1, np.int32)], 13, beta=3.0)
    assert_exact(got, a @ a.T + 3)


def test_matmul_keeps_integer_dtype():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    (got,) = run("MatMul", [a, a.T], 1)
    assert_exact(got, (a @ a.T).astype(np.int32))


@pytest.mark.parametrize(
    "equation",
    ["...ij,...jk->...ik", "ii->i", "bii", "ij, jk", "a...b,b...->...a", "ijk,ikl,ilm->jm"],
)
def test_einsum_general_equations(equation):
    rng = np.random.default_rng(0)
    shapes = {
        "...ij,...jk->...ik": [(2, 3, 4), (2, 4, 5)],
        "ii->i": [(3, 3)],
        "bii": [(2, 3, 3)],
        "ij, jk": [(2, 3), (3, 4)],
        "a...b,b...->...a": [(2, 5, 3), (3, 5)],
        "ijk,ikl,ilm->jm": [(2, 3, 4), (2, 4, 2), (2, 2, 5)],
    }[equation]
    operands = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    (got,) = run("Einsum", operands, 12, equation=equation)
    assert_exact(got, np.einsum(equation.replace(" ", ""), *operands))


def test_det_batches_and_float16():
    data = np.array([[[2, 0], [0, 3]], [[1, 2], [3, 4]]], np.float16)
    (got,) = run("Det", [data], 11)
    assert_exact(got, np.array([6, -2], np.float16))


def test_dft_axis_attribute_padding_and_roundtrip():
    signal = np.random.default_rng(1).standard_normal((2, 6, 1)).astype(np.float32)
    (got,) = run("DFT", [signal, np.array(8, np.int64)], 17, axis=1)
    spectrum = np.fft.fft(signal[..., 0], n=8, axis=1)
    assert_exact(got, np.stack([spectrum.real, spectrum.imag], -1).astype(np.float32))
    (half,) = run("DFT", [signal], 17, onesided=1)
    assert half.shape == (2, 4, 2)
    (back,) = run("DFT", [half, None, np.array(-2, np.int64)], 20, onesided=1, inverse=1)
    np.testing.assert_allclose(back, signal, atol=1e-5)


def test_stft_frame_length_from_window():
    signal = np.arange(32, dtype=np.float64).reshape(1, 32, 1)
    window = np.hanning(8)
    (got,) = run("STFT", [signal, np.array(4, np.int64), window], 17, onesided=0)
    assert got.shape == (1, 7, 8, 2) and got.dtype == np.float64
    first = np.fft.fft(signal[0, :8, 0] * window)
    np.testing.assert_allclose(got[0, 0, :, 0] + 1j * got[0, 0, :, 1], first, atol=1e-9)


def test_windows_output_datatype_and_length_one():
    (got,) = run("HannWindow", [np.array(4, np.int64)], 17, output_datatype=11)
    assert_exact(got, np.array([0, 0.5, 1, 0.5]))
    (got,) = run("BlackmanWindow", [np.array(1, np.int32)], 17, periodic=0)
    assert_exact(got, np.array([1], np.float32))


def test_nll_loss_ignore_index_and_mean():
    log_prob = np.log(np.full((3, 4), 0.25, np.float32))
    target = np.array([0, -1, 3], np.int32)
    (got,) = run("NegativeLogLikelihoodLoss", [log_prob, target], 13, ignore_index=-1)
    assert_exact(got, np.array(np.log(4), np.float32))
    with pytest.raises(ValueError, match="target values"):
        run("NegativeLogLikelihoodLoss", [log_prob, np.array([0, 4, 1])], 13)
