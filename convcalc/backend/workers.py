"""Running independent pieces of work on two threads.

NumPy releases the GIL in copyto and matmul, so two threads each running
single-threaded BLAS on their own tiles beat one BLAS call on two threads
once there are at least two independent pieces (measured in benchmarks/).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from functools import lru_cache

WORKERS = max(1, min(2, os.cpu_count() or 1))


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, WORKERS - 1), thread_name_prefix="convcalc")


@lru_cache(maxsize=1)
def _controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # still correct without it, only slower
        return None
    return ThreadpoolController()


@contextmanager
def single_threaded_blas():
    """BLAS on one thread inside the block (our own threads supply the parallelism)."""
    controller = _controller()
    with controller.limit(limits=1, user_api="blas") if controller is not None else nullcontext():
        yield


def run_parallel(task, items) -> None:
    """Call ``task(item, worker_index)`` for every item, spread over the workers.

    Each worker takes every WORKERS-th item, so a worker can own a reusable
    buffer indexed by ``worker_index``.
    """
    items = list(items)
    if WORKERS == 1 or len(items) < 2:
        for item in items:
            task(item, 0)
        return

    def share(worker: int) -> None:
        for item in items[worker::WORKERS]:
            task(item, worker)

    # The calling thread takes the first share itself: waking a pool thread and
    # waiting for it costs tens of microseconds on a busy machine, as much as a
    # small layer's whole work.
    with single_threaded_blas():
        futures = [_pool().submit(share, w) for w in range(1, WORKERS)]
        try:
            share(0)
        finally:
            wait(futures)  # even when the caller's share failed: no worker outlives the call
        for future in futures:
            future.result()
