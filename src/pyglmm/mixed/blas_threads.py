"""Limit the threads of the OpenBLAS libraries bundled with numpy and scipy.

The per-θ work of a linear mixed model is one dense Cholesky of moderate order
(≈1 000 on InstEval).  Multithreaded OpenBLAS gains little at that size and loses
badly when the machine is busy (threads spin waiting for a core): measured here,
``dpotrf`` of order 1 145 took 16–21 ms with one thread but 25–490 ms with two
threads on a loaded 2-core machine.  :func:`blas_threads` sets the thread count
of the OpenBLAS copies that numpy and scipy load (found with ``ctypes``; a no-op
when they cannot be found) and restores it afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
from collections.abc import Iterator

_LIBS: list[tuple[ctypes.CDLL, str, str]] | None = None


def _find_libs() -> list[tuple[ctypes.CDLL, str, str]]:
    global _LIBS
    if _LIBS is not None:
        return _LIBS
    found: list[tuple[ctypes.CDLL, str, str]] = []
    try:
        import numpy
        import scipy
        import scipy.linalg  # noqa: F401  (loads scipy's OpenBLAS)

        dirs = [
            os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs"),
            os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs"),
        ]
        for d in dirs:
            for path in glob.glob(os.path.join(d, "*openblas*.so*")):
                try:
                    lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)
                except OSError:
                    continue
                for setter, getter in (
                    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                    ("openblas_set_num_threads", "openblas_get_num_threads"),
                ):
                    if hasattr(lib, setter) and hasattr(lib, getter):
                        found.append((lib, setter, getter))
                        break
    except Exception:  # pragma: no cover - never fail a fit over thread control
        found = []
    _LIBS = found
    return found


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Run the block with at most ``n`` OpenBLAS threads (``None``: unchanged)."""
    if n is None:
        yield
        return
    libs = _find_libs()
    saved = []  # the previous count of each library whose count was changed, else -1
    for lib, setter, getter in libs:
        try:
            current = int(getattr(lib, getter)())
            if current == int(n):
                # already so (a nested block): OpenBLAS's setter is not free (tens of
                # microseconds when its threads have just worked), so it is not called
                saved.append(-1)
                continue
            getattr(lib, setter)(ctypes.c_int(int(n)))
            saved.append(current)
        except Exception:  # pragma: no cover
            saved.append(-1)
    try:
        yield
    finally:
        for (lib, setter, _), k in zip(libs, saved, strict=True):
            if k > 0:
                getattr(lib, setter)(ctypes.c_int(k))
