"""Running work on the backend's threads."""

import os
import threading
import time

import pytest

from convcalc.backend import workers


def test_a_failing_share_waits_for_the_other_worker(monkeypatch):
    # The caller's own share raising must not return while another worker still
    # runs: its work would go on writing into arrays the caller has given up.
    monkeypatch.setattr(workers, "WORKERS", 2)
    done = threading.Event()

    def task(item, worker):
        if worker == 0:
            raise RuntimeError("the caller's share failed")
        time.sleep(0.05)
        done.set()

    with pytest.raises(RuntimeError):
        workers.run_parallel(task, [0, 1])
    assert done.is_set()


def test_a_failing_worker_raises_in_the_caller(monkeypatch):
    monkeypatch.setattr(workers, "WORKERS", 2)
    ran, failed = [], []
    started = threading.Event()

    def task(item, worker):
        if worker == 1:
            failed.append(item)
            started.set()
            raise ValueError("the other share failed")
        started.wait(5)  # the other worker takes an item before the caller takes them all
        ran.append(item)

    with pytest.raises(ValueError, match="other share"):
        workers.run_parallel(task, [0, 1, 2, 3])
    assert len(failed) == 1 and sorted(ran + failed) == [0, 1, 2, 3]  # the others still ran, each once


def test_a_worker_held_up_leaves_its_items_to_the_other(monkeypatch):
    # Each worker takes the next item as it finishes one: while the caller is held
    # on its first item, the other worker runs all the rest.
    monkeypatch.setattr(workers, "WORKERS", 2)
    others_done = threading.Event()
    by_worker = {0: [], 1: []}

    def task(item, worker):
        by_worker[worker].append(item)
        if worker == 0 and len(by_worker[0]) == 1:
            others_done.wait(5)
        if worker == 1 and len(by_worker[1]) == 5:
            others_done.set()

    workers.run_parallel(task, range(6))
    assert len(by_worker[0]) == 1 and len(by_worker[1]) == 5
    assert sorted(by_worker[0] + by_worker[1]) == list(range(6))


@pytest.mark.parametrize("route", ["openblas", "threadpoolctl"])
def test_blas_runs_on_one_thread_inside_and_as_before_after(monkeypatch, route):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if route == "threadpoolctl":
        monkeypatch.setattr(workers, "thread_count_calls", lambda: None)
    elif workers.thread_count_calls() is None:
        pytest.skip("this NumPy's BLAS is not an OpenBLAS convcalc can call")

    def counts():
        return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]

    before = counts()
    assert before
    with workers.single_threaded_blas():
        assert set(counts()) == {1}
    assert counts() == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_starts_its_own_threads(monkeypatch):
    # A child of fork has none of the parent's threads; handing them work would hang.
    monkeypatch.setattr(workers, "WORKERS", 2)
    workers.run_parallel(lambda item, worker: None, [0, 1])
    child = os.fork()
    if child == 0:
        seen = []
        try:
            workers.run_parallel(lambda item, worker: seen.append(item), [0, 1, 2])
        finally:
            os._exit(0 if sorted(seen) == [0, 1, 2] else 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        finished, status = os.waitpid(child, os.WNOHANG)
        if finished:
            break
        time.sleep(0.02)
    else:
        os.kill(child, 9)
        os.waitpid(child, 0)
        pytest.fail("the forked child's run_parallel hung")
    assert os.waitstatus_to_exitcode(status) == 0
