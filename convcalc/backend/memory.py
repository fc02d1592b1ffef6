"""How much memory an execution may take, checked before anything is allocated."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from ..engine.errors import ResourceError, SpecError
from ..engine.units import human_bytes, parse_bytes

# A tile buffer of about this size keeps the copied columns cache-friendly
# while giving the matrix multiply enough columns to run at full speed.
TILE_BYTES = 2 * 2**20

_limit: int | None = None


@lru_cache(maxsize=1)
def machine_memory() -> int:
    """Bytes of memory available when first asked (MemAvailable), or in all if that
    is unknown. Read once: the default limit is a guard, not a live gauge."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def memory_limit() -> int:
    """The most one operation may allocate: set_memory_limit's value, else
    CONVCALC_MEMORY_LIMIT (bytes), else half of the memory available."""
    if _limit is not None:
        return _limit
    env = os.environ.get("CONVCALC_MEMORY_LIMIT")
    if env:
        limit = parse_bytes(env)
        if limit is None:
            raise SpecError(f"CONVCALC_MEMORY_LIMIT={env[:40]!r} is not a memory size",
                            hint="give bytes or a size such as 2GiB, 500MB", field="memory_limit")
        return limit
    return machine_memory() // 2


def set_memory_limit(limit: int | None) -> None:
    """Set the per-operation memory limit in bytes (None restores the default)."""
    global _limit
    _limit = limit


_held = threading.local()

# Elementwise work is done in chunks of this many bytes of input, each making at most
# CHUNK_TEMPORARIES temporaries of its size: the work buffers an elementwise kernel counts.
CHUNK_BYTES = 2**18
CHUNK_TEMPORARIES = 16
CHUNK_WORK = CHUNK_BYTES * CHUNK_TEMPORARIES


@contextmanager
def holding(parts: dict[str, int]):
    """Within the block, every check also counts ``parts``: what the caller already holds
    (a run's live activations and the layer's parameters) beside the operation's own allocations."""
    previous = getattr(_held, "parts", {})
    _held.parts = {**previous, **parts}
    try:
        yield
    finally:
        _held.parts = previous


def check_memory(operation: str, parts: dict[str, int]) -> None:
    """Refuse an operation whose allocations, listed by name, exceed the limit (with what
    ``holding`` says is already held).

    >>> set_memory_limit(1000)
    >>> try:
    ...     check_memory("conv", {"output": 800, "padded input": 400})
    ... except ResourceError as err:
    ...     print(err.message)
    conv would need 1.17 KiB (output 800 B, padded input 400 B), over the limit of 1000 B
    >>> set_memory_limit(None)
    """
    parts = {**getattr(_held, "parts", {}), **parts}
    needed = sum(parts.values())
    limit = memory_limit()
    if needed > limit:
        detail = ", ".join(f"{name} {human_bytes(size)}" for name, size in parts.items() if size)
        raise ResourceError(
            f"{operation} would need {human_bytes(needed)} ({detail}), over the limit of {human_bytes(limit)}",
            hint="use a smaller batch or input, or raise the limit (--memory-limit, CONVCALC_MEMORY_LIMIT)",
            field="memory",
        )


_local = threading.local()
_every_thread: list[dict] = []  # each thread's buffers, so release_scratch reaches them all
_registry_lock = threading.Lock()

# Scratch larger than this is not kept between calls (it is rare and big).
KEEP_SCRATCH_BYTES = 4 * TILE_BYTES


def scratch(size: int, dtype, slot: str = "tiles") -> np.ndarray:
    """A flat work buffer of ``size`` elements, reused by the calling thread.

    Different ``slot`` names are different buffers, so one operation can hold
    several at once (the padded input and its column tiles).

    Fresh buffers cost a page fault per page on first touch (about a
    millisecond for a few MiB), more than a whole small convolution; each
    thread keeps its own, so concurrent callers never share one.
    """
    dtype = np.dtype(dtype)
    if size * dtype.itemsize > KEEP_SCRATCH_BYTES:
        return np.empty(size, dtype=dtype)
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
        with _registry_lock:
            _every_thread.append(buffers)
    buffer = buffers.get((slot, dtype))
    if buffer is None or buffer.size < size:
        buffer = buffers[slot, dtype] = np.empty(size, dtype=dtype)
    return buffer[:size]



def release_scratch() -> None:
    """Free every thread's kept work buffers (they are made again when needed)."""
    with _registry_lock:
        for buffers in _every_thread:
            buffers.clear()


def chunked(function, x: np.ndarray, operation: str, dtype=None) -> np.ndarray:
    """``function`` (elementwise) over ``x`` in chunks of CHUNK_BYTES, into one new array:
    its temporaries are a chunk's, not the whole input's; the output and that bounded work
    are checked first."""
    dtype = np.dtype(dtype or x.dtype)
    check_memory(operation, {"output": x.size * dtype.itemsize, "work buffers": CHUNK_WORK})
    y = np.empty(x.shape, dtype=dtype)
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)
    step = max(1, CHUNK_BYTES // x.itemsize)
    for start in range(0, flat_x.size, step):
        flat_y[start : start + step] = function(flat_x[start : start + step])
    return y
