"""Peak memory of one pyglmm fit, in a fresh interpreter (run by common.pyglmm_memory).

Usage: python benchmarks/memprobe.py spec.json  ->  prints one JSON line:
rss_before_mib (peak RSS, VmHWM, after loading the data and importing pyglmm), rss_peak_mib
(peak RSS after the fit), tracemalloc_peak_mib (peak of memory allocated during the fit, numpy
buffers included).
"""

from __future__ import annotations

import json
import resource
import sys
import tracemalloc
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402


def _maxrss_mib() -> float:
    """Peak resident set size of this process so far, MiB.

    ``VmHWM`` of /proc/self/status belongs to this process's address space, which starts anew
    at exec; ``ru_maxrss`` is the fallback, but on Linux it carries over the parent's peak
    across fork + exec (so a probe started from a large benchmark process would report the
    parent's memory)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    df = pd.read_pickle(spec["data"])
    fit = peers.pyglmm_call(spec)
    before = _maxrss_mib()
    tracemalloc.start()
    fit(df)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    after = _maxrss_mib()
    print(
        json.dumps(
            {
                "rss_before_mib": before,
                "rss_peak_mib": after,
                "tracemalloc_peak_mib": peak / 1024**2,
            }
        )
    )


if __name__ == "__main__":
    main()
