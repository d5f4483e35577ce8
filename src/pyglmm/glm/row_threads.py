r"""Sums over rows split between threads: the cores share the passes of an IRLS step.

The work of one IRLS iteration on a tall design is a sum over rows
(:math:`X^\top W X = \sum_i w_i x_i x_i^\top`, :math:`X\beta` row by row). numpy's
ufuncs and matrix products release the GIL, so splitting the rows into one range per
core and running the ranges in threads (each calling single-threaded BLAS) uses every
core without the spin-waiting of multithreaded OpenBLAS on tiny ``p x p`` outputs,
which loses badly on a busy machine. A thread that finds its core busy simply runs
later: the result is the same, only slower.

The partial results are combined in a fixed order, so a fit is deterministic for a
given number of threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Result = TypeVar("Result")

#: Rows below which a range is not split further (the threads' overhead is ~50 µs).
MIN_ROWS_PER_THREAD = 16_384

#: Most threads used for one sum (beyond this the memory bandwidth is the limit).
MAX_THREADS = 8

_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_pool_lock = threading.Lock()
_thread_limit: int | None = None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _environment_limit() -> int | None:
    """The thread count asked for by ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS``."""
    for var in ("PYGLMM_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def set_row_threads(n: int | None) -> None:
    """Use at most ``n`` threads for the row sums of GLM fits (``None``: one per core,
    or ``PYGLMM_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` if set)."""
    global _thread_limit
    if n is not None and int(n) < 1:
        raise ValueError("the number of threads must be at least 1")
    _thread_limit = None if n is None else int(n)


def row_threads() -> int:
    """Threads the row sums may use: :func:`set_row_threads`, else the environment,
    else the available cores (at most :data:`MAX_THREADS`)."""
    limit = _thread_limit if _thread_limit is not None else _environment_limit()
    cores = available_cores()
    return max(1, min(limit if limit is not None else cores, cores, MAX_THREADS))


def row_ranges(n: int, *, min_rows: int = MIN_ROWS_PER_THREAD) -> list[tuple[int, int]]:
    """Split ``range(n)`` into at most :func:`row_threads` contiguous ranges of at least
    ``min_rows`` rows each (one range when ``n`` is small)."""
    k = max(1, min(row_threads(), n // max(min_rows, 1)))
    bounds = [n * i // k for i in range(k + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(k)]


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pyglmm-rows")
            _pool_workers = workers
        return _pool


def map_row_ranges(
    work: Callable[[int, int], Result], ranges: list[tuple[int, int]]
) -> list[Result]:
    """``[work(lo, hi) for lo, hi in ranges]``, the first range in the calling thread and
    the others in worker threads (``work`` must release the GIL to gain anything)."""
    if len(ranges) == 1:
        return [work(*ranges[0])]
    pool = _executor(len(ranges) - 1)
    futures = [pool.submit(work, lo, hi) for lo, hi in ranges[1:]]
    first = work(*ranges[0])
    return [first, *(f.result() for f in futures)]
