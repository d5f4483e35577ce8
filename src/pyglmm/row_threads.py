r"""Sums over rows split between threads: the cores share the passes over a tall matrix.

The work of one IRLS iteration on a tall design is a sum over rows
(:math:`X^\top W X = \sum_i w_i x_i x_i^\top`, :math:`X\beta` row by row). numpy's
ufuncs and matrix products release the GIL, so splitting the rows into one range per
core and running the ranges in threads (each calling single-threaded BLAS) uses every
core without the spin-waiting of multithreaded OpenBLAS on tiny ``p x p`` outputs,
which loses badly on a busy machine. A thread that finds its core busy simply runs
later: the result is the same, only slower.

The rows are cut into chunks that depend on the number of rows only, and the partial
results are combined in chunk order, so a fit gives the same numbers whatever the
number of threads.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Result = TypeVar("Result")

#: Rows per chunk of :func:`map_row_chunks` (a thread takes one chunk at a time; the
#: threads' overhead is some 10 µs a chunk; 13 chunks at 10^5 rows share out evenly).
CHUNK_ROWS = 8_192

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


def row_chunks(n: int, chunk_rows: int = CHUNK_ROWS) -> list[tuple[int, int]]:
    """``range(n)`` cut into consecutive chunks of ``chunk_rows`` rows (the last shorter).

    The cut depends on ``n`` only, not on the number of threads, so sums over chunks
    added in chunk order are the same numbers whatever the threads."""
    return [(lo, min(lo + chunk_rows, n)) for lo in range(0, n, chunk_rows)] or [(0, 0)]


def _forget_pool_after_fork() -> None:
    """In a forked child the pool's threads do not exist (tasks would wait forever) and
    its lock may be held: start afresh."""
    global _pool, _pool_workers, _pool_lock
    _pool, _pool_workers, _pool_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pyglmm-rows")
            _pool_workers = workers
        return _pool


def map_row_chunks(
    work: Callable[[int, int], Result], n: int, chunk_rows: int = CHUNK_ROWS
) -> list[Result]:
    """``[work(lo, hi) for lo, hi in row_chunks(n, chunk_rows)]``, the chunks shared out
    between the calling thread and :func:`row_threads` ``- 1`` worker threads.

    Each thread takes the next chunk not yet taken, so a thread whose core is busy
    simply does fewer chunks (no thread waits for a fixed share of a slow one). The
    results are returned in chunk order. ``work`` must release the GIL (numpy ufuncs
    and BLAS do) for the threads to gain anything.
    """
    chunks = row_chunks(n, chunk_rows)
    threads = min(row_threads(), len(chunks))
    if threads == 1:
        return [work(lo, hi) for lo, hi in chunks]
    results: list = [None] * len(chunks)
    taken = itertools.count()  # next() on it is atomic under the GIL

    def drain() -> None:
        while (i := next(taken)) < len(chunks):
            results[i] = work(*chunks[i])

    futures = [_executor(threads - 1).submit(drain) for _ in range(threads - 1)]
    try:
        drain()
    finally:
        for future in futures:
            future.result()
    return results
