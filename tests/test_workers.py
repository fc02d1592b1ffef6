"""Running work on the backend's threads."""

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
