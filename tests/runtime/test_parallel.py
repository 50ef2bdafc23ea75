"""Intra-op worker threads: every block runs once, nesting stays serial, results agree."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ferry.runtime.kernels.conv_algorithms import conv_packed, pack_conv_weights
from ferry.runtime.parallel import run_blocks, workers_for

threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture(scope="module")
def workers():
    pool = workers_for(2)
    if pool is None:
        pytest.skip("no controllable BLAS")
    yield pool
    pool.shutdown()


def test_blocks_run_once_each_on_worker_threads(workers):
    seen: list[tuple[int, str]] = []
    lock = threading.Lock()

    def block(index: int) -> None:
        with lock:
            seen.append((index, threading.current_thread().name))

    with workers.active():
        run_blocks(block, 16)
    assert sorted(i for i, _ in seen) == list(range(16))
    assert all(name.startswith("ferry-intra-op") for _, name in seen)


def test_without_active_workers_blocks_run_in_order_here():
    seen = []
    run_blocks(lambda i: seen.append((i, threading.current_thread().name)), 4)
    assert seen == [(i, threading.current_thread().name) for i in range(4)]


def test_nested_blocks_run_serially_inside_a_worker(workers):
    inner_threads = []

    def outer(index: int) -> None:
        here = threading.current_thread().name
        run_blocks(lambda j: inner_threads.append(threading.current_thread().name == here), 3)

    with workers.active():
        run_blocks(outer, 2)
    assert inner_threads == [True] * 6


def test_blas_is_pinned_to_one_thread_inside_blocks_and_restored(workers):
    controller = threadpoolctl.ThreadpoolController()
    before = [lib.num_threads for lib in controller.select(user_api="blas").lib_controllers]
    observed = []

    def block(index: int) -> None:
        observed.append(threadpoolctl.threadpool_info()[0]["num_threads"])

    with workers.active():
        run_blocks(block, 2)
    assert observed == [1, 1]
    after = [lib.num_threads for lib in threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers]
    assert after == before


@pytest.mark.parametrize("shape", [(1, 16, 64, 64, 3), (2, 8, 40, 50, 3), (1, 32, 120, 30, 5)])
def test_parallel_convolution_equals_serial(workers, shape):
    n, c, h, w, k = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weights = rng.standard_normal((6, c, k, k)).astype(np.float32)
    for algorithm in ("im2col", "shifted"):
        packed = pack_conv_weights(weights, pads=[k // 2] * 4, algorithm=algorithm)
        serial = conv_packed(x, packed, activation="relu")
        with workers.active():
            parallel = conv_packed(x, packed, activation="relu")
        np.testing.assert_allclose(parallel, serial, rtol=1e-5, atol=1e-4)  # sums of up to 800 terms
