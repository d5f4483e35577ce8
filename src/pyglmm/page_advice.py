"""Large arrays on ordinary pages while a model is fitted.

numpy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``) for
every array of 4 MiB or more. Where the kernel's THP ``defrag`` setting is
``madvise`` (the default of many distributions), each first touch of such an
array may stall in direct memory compaction. A fit allocates its model matrix
anew (the result keeps it), and on a machine whose memory is fragmented the
stalls are most of its time: measured here for a Poisson GLM of 10^6 x 20,
0.25-0.93 s a fit with the advice (0.06-0.70 s of it in the kernel) against a
steady 0.40-0.54 s without it. :func:`ordinary_pages` switches numpy's advice off
for the duration of a fit and restores the previous setting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def _advice_switch():
    """numpy's ``_set_madvise_hugepage`` (private; moved between numpy 1 and 2), or None."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # pragma: no cover - numpy < 2
        try:
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            return None
    return _set_madvise_hugepage


@contextmanager
def ordinary_pages() -> Iterator[None]:
    """Within the block, numpy does not advise huge pages for new arrays."""
    switch = _advice_switch()
    if switch is None:  # pragma: no cover - a numpy without the switch
        yield
        return
    previous = switch(False)
    try:
        yield
    finally:
        switch(previous)
