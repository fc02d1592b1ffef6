"""Running independent pieces of work on two threads.

NumPy releases the GIL in copyto and matmul, so two threads each running
single-threaded BLAS on their own tiles beat one BLAS call on two threads
once there are at least two independent pieces (measured in benchmarks/).

A call hands the other thread its share through a queue and waits on a lock
the thread releases when done: a concurrent.futures pool's futures and
threadpoolctl's limit cost about 40-60 microseconds more per call (measured:
the batch-1 depthwise, grouped and transposed layers of the benchmark ran
4-5% faster without them, best of 5 alternating processes).
"""

from __future__ import annotations

import os
import queue
import threading
from contextlib import contextmanager, nullcontext
from functools import lru_cache

from .blas import thread_count_calls

WORKERS = max(1, min(2, os.cpu_count() or 1))
_DONE = object()  # the end of a call's items

_jobs: queue.SimpleQueue = queue.SimpleQueue()
_threads: list[threading.Thread] = []
_start_lock = threading.Lock()


def _serve() -> None:
    while True:
        job, done, failure = _jobs.get()
        try:
            job()
        except BaseException as error:  # handed to the caller, which raises it
            failure.append(error)
        finally:
            done.release()


def _start_threads() -> None:
    with _start_lock:
        while len(_threads) < WORKERS - 1:
            thread = threading.Thread(target=_serve, name="convcalc", daemon=True)
            thread.start()
            _threads.append(thread)


def _forget_threads() -> None:
    # A forked child has the parent's list but none of its threads.
    global _jobs, _start_lock
    _threads.clear()
    _jobs, _start_lock = queue.SimpleQueue(), threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads)


@lru_cache(maxsize=1)
def _controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # still correct without it, only slower
        return None
    return ThreadpoolController()


@contextmanager
def single_threaded_blas():
    """BLAS on one thread inside the block (our own threads supply the parallelism):
    through OpenBLAS's own calls where found, else threadpoolctl."""
    calls = thread_count_calls()
    if calls is None:
        controller = _controller()
        with controller.limit(limits=1, user_api="blas") if controller is not None else nullcontext():
            yield
        return
    set_count, get_count = calls
    before = get_count()
    set_count(1)
    try:
        yield
    finally:
        set_count(before)


def run_parallel(task, items) -> None:
    """Call ``task(item, worker_index)`` for every item, spread over the workers.

    Each worker takes the next item as it finishes one, so a worker slowed by
    the machine, or given a costlier item, does fewer; ``worker_index`` says
    which worker runs it. An exception from any worker is raised here, after
    every worker has finished.
    """
    items = list(items)
    if WORKERS == 1 or len(items) < 2:
        for item in items:
            task(item, 0)
        return
    pending = iter(items)
    taking = threading.Lock()

    def share(worker: int) -> None:
        while True:
            with taking:
                item = next(pending, _DONE)
            if item is _DONE:
                return
            task(item, worker)

    _start_threads()
    # The calling thread takes the first share itself: waking a thread and
    # waiting for it costs tens of microseconds on a busy machine, as much as a
    # small layer's whole work.
    with single_threaded_blas():
        handed = []
        for worker in range(1, WORKERS):
            done, failure = threading.Lock(), []
            done.acquire()
            _jobs.put((lambda worker=worker: share(worker), done, failure))
            handed.append((done, failure))
        try:
            share(0)
        finally:
            for done, _ in handed:
                done.acquire()  # even when the caller's share failed: no worker outlives the call
        for _, failure in handed:
            if failure:
                raise failure[0]
