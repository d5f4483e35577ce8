"""One pass over the partitions of a Dask DataFrame: map, tree-reduce, compute.

Every distributed fit is a sequence of such passes. A pass applies a function to
each partition (a pandas DataFrame, on a worker), combines the per-partition
results pairwise in a binary tree (on the workers), and brings the single
combined result to the client. Nothing else travels to the client, so its memory
holds the reduced statistics only (``p × p`` matrices, level tables), never rows.

Warnings of checking passes are recorded on the workers and re-emitted on the client
(once per distinct message). Errors are made to say which partition and which stage of the
fit failed; errors that are already pyglmm errors (a bad response value, a new
factor level) keep their class.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from pyglmm.errors import PyglmmError


class PartitionError(PyglmmError):
    """A partition of a Dask DataFrame could not be read or processed during a fit.

    The fit is abandoned: no result object is created and nothing is written.
    """


#: ``warnings.catch_warnings`` swaps process-wide state: capture under a lock so that
#: threads of one worker (or of the local threaded scheduler) never interleave captures.
_CAPTURE_LOCK = threading.Lock()


def _run_partition(func: Callable, part: Any, index: int, stage: str, capture: bool, *args: Any):
    """Apply ``func(part, *args)`` on a worker, labelling errors (and recording warnings
    when ``capture``)."""
    caught: list = []
    try:
        if capture:
            with _CAPTURE_LOCK, warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always")
                out = func(part, *args)
            for w in record:
                item = (w.category, str(w.message))
                if item not in caught:
                    caught.append(item)
        else:
            out = func(part, *args)
    except PyglmmError as exc:
        raise type(exc)(f"partition {index} ({stage}): {exc}") from None
    except Exception as exc:
        raise PartitionError(
            f"partition {index} failed during {stage}: {type(exc).__name__}: {exc}"
        ) from None
    return out, caught


def _combine_pair(combine: Callable, a, b):
    (ra, wa), (rb, wb) = a, b
    return combine(ra, rb), wa + [w for w in wb if w not in wa]


def map_reduce(
    partitions: Sequence[Any],
    func: Callable,
    combine: Callable,
    *args: Any,
    stage: str,
    capture_warnings: bool = False,
) -> Any:
    """Map ``func`` over ``partitions`` and reduce with ``combine``; return the result.

    Parameters
    ----------
    partitions : sequence of dask.delayed.Delayed
        One delayed pandas DataFrame per partition (``ddf.to_delayed()``).
    func : callable
        ``func(partition_df, *args) -> result`` (runs on the workers; must be
        importable by them, i.e. a module-level function).
    combine : callable
        ``combine(result_a, result_b) -> result``, associative; ``a`` comes from
        partitions before ``b``'s.
    *args
        Broadcast arguments (wrapped once in ``dask.delayed`` so that large ones are
        shipped once per worker, not once per task).
    stage : str
        What the pass does, for error messages ("IRLS iteration 3").
    capture_warnings : bool
        Record the warnings the function raises and re-emit them on the client
        (serialized per worker process; for cheap checking passes).
    """
    import dask

    if not partitions:
        raise PyglmmError("the Dask DataFrame has no partitions")
    shared = [dask.delayed(a, pure=True) if _is_large(a) else a for a in args]
    run = dask.delayed(_run_partition, pure=False)
    nodes = [
        run(func, part, i, stage, capture_warnings, *shared) for i, part in enumerate(partitions)
    ]
    pair = dask.delayed(_combine_pair, pure=False)
    while len(nodes) > 1:
        nxt = [pair(combine, nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)]
        if len(nodes) % 2:
            nxt.append(nodes[-1])
        nodes = nxt
    try:
        (result, caught) = dask.compute(nodes[0])[0]
    except PyglmmError:
        raise
    except Exception as exc:
        raise PartitionError(
            f"reading or processing a partition failed during {stage}: {type(exc).__name__}: {exc}"
        ) from exc
    for category, message in caught:
        warnings.warn(message, category, stacklevel=3)
    return result


def _is_large(obj: Any) -> bool:
    """Arguments worth sending once (encoders, level tables) rather than inline."""
    return not isinstance(obj, int | float | str | bool | type(None))
