"""Profile one pyglmm fit of a benchmark case (for py-spy, or with cProfile built in).

    benchmarks/.peers/bin/python benchmarks/profile_fit.py lmm insteval_reml --cprofile
    benchmarks/.peers/bin/py-spy record -o /tmp/p.svg -- \
        benchmarks/.peers/bin/python benchmarks/profile_fit.py glm poisson_1000000x20

AREA is glm, lmm or glmm; CASE a case name of that script (see ``--list``).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_glm  # noqa: E402
import bench_glmm  # noqa: E402
import bench_lmm  # noqa: E402
import peers  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("area", choices=["glm", "lmm", "glmm"])
    ap.add_argument("case", nargs="?", default="")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--cprofile", action="store_true", help="print cProfile's top functions")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()

    module = {"glm": bench_glm, "lmm": bench_lmm, "glmm": bench_glmm}[args.area]
    all_cases = module.cases(args.quick)
    if args.list or not args.case:
        print("\n".join(c["name"] for c in all_cases))
        return
    case = next(c for c in all_cases if c["name"] == args.case)
    kind = {"glm": "glm", "lmm": "lmer", "glmm": "glmer"}[args.area]
    spec = {
        "kind": kind,
        "formula": case["formula"],
        "family": case.get("family", "binomial"),
        "reml": case.get("reml", True),
    }
    df = case["df"]()
    fit = peers.pyglmm_call(spec)
    prof = cProfile.Profile() if args.cprofile else None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        m = fit(df)
        if prof:
            prof.disable()
        print(f"fit: {time.perf_counter() - t0:.3f} s", getattr(m, "optinfo", ""))
    if prof:
        stats = pstats.Stats(prof).strip_dirs()
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
