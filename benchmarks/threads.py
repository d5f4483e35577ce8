"""``--blas-threads N`` for the benchmark scripts: sets the thread count of BLAS / OpenMP for
every package in the run (and for R, through the environment) before numpy is imported.

Import this module first. The default leaves each package's own default (all cores). On a
busy 2-core machine multithreaded OpenBLAS can lose badly (threads spin waiting for a core);
pyglmm limits its own BLAS threads inside its fits, the peers do not, so a run with
``--blas-threads 1`` shows how much of a ratio is thread contention.
"""

from __future__ import annotations

import os
import sys

if "--blas-threads" in sys.argv:
    _n = sys.argv[sys.argv.index("--blas-threads") + 1]
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[_var] = _n
