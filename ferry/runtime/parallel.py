"""Intra-op parallelism: kernels split their work into independent blocks run on threads.

OpenBLAS parallelises each GEMM call by itself, but a convolution made of many
cache-sized GEMMs and im2col copies keeps one core idle during every copy and pays a
thread hand-over per small call. Instead, a kernel can hand its blocks to
:func:`run_blocks`: inside a session run with more than one thread (and with
``threadpoolctl`` installed to pin BLAS), the blocks go to the session's worker threads, each
calling single-threaded BLAS (numpy releases the GIL in BLAS calls and in copies); otherwise
they run one after the other with BLAS's own threading. Results do not depend on the
number of threads: every block computes the same numbers either way.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

__all__ = ["Workers", "run_blocks", "workers_for"]

_ACTIVE: contextvars.ContextVar[Workers | None] = contextvars.ContextVar("ferry_workers", default=None)
_inside = threading.local()


class Workers:
    """A pool of ``count`` threads plus the BLAS controller that pins BLAS to one thread."""

    def __init__(self, count: int, controller: object) -> None:
        self.count = count
        self._controller = controller
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="ferry-intra-op")

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Make this pool the one kernels use while the block runs."""
        token = _ACTIVE.set(self)
        try:
            yield
        finally:
            _ACTIVE.reset(token)

    def map(self, function: Callable[[int], None], count: int) -> None:
        with self._controller.limit(limits=1, user_api="blas"):
            for future in [self._pool.submit(_in_worker, function, i) for i in range(count)]:
                future.result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False)


def _in_worker(function: Callable[[int], None], index: int) -> None:
    _inside.active = True
    try:
        function(index)
    finally:
        _inside.active = False


def workers_for(threads: int) -> Workers | None:
    """A pool for ``threads`` threads (0: one per CPU), or None when it cannot help: one
    thread, or no ``threadpoolctl`` to keep BLAS single-threaded inside the workers."""
    count = threads or os.cpu_count() or 1
    if count < 2:
        return None
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    controller = ThreadpoolController()
    if not controller.select(user_api="blas").lib_controllers:
        return None
    return Workers(count, controller)


def run_blocks(function: Callable[[int], None], count: int) -> None:
    """Call ``function(i)`` for i in range(count): on the active workers when there are some
    (and this is not already a worker thread), else in order on this thread."""
    workers = _ACTIVE.get()
    if workers is None or count < 2 or getattr(_inside, "active", False):
        for index in range(count):
            function(index)
        return
    workers.map(function, count)
