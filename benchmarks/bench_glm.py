"""GLM benchmark (issue 2): pyglmm.glm against glum, statsmodels GLM and R's glm, one run.

Cases: dense Poisson and logistic regressions, 10^5 and 10^6 rows by 20 columns (intercept +
19 covariates), and a Poisson fit with a 1,000-level factor (10^5 rows, 1,005 columns).
Targets: pyglmm/glum <= 1.0, statsmodels/pyglmm >= 10, coefficients agreeing to 1e-6.

    benchmarks/.peers/bin/python benchmarks/bench_glm.py [--quick] [--reps N] [--no-r]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# isort: off
import threads  # noqa: E402, F401  (first: --blas-threads must act before numpy loads)

# isort: on
import common  # noqa: E402
import data  # noqa: E402
import peers  # noqa: E402

SM_LIMIT = 300.0  # statsmodels: give up on a fit after 5 minutes (printed as a note)
R_LIMIT = 900.0  # R: give up on a case after 15 minutes


def cases(quick: bool) -> list[dict]:
    sizes = [10_000] if quick else [100_000, 1_000_000]
    out = []
    for family in ["poisson", "binomial"]:
        for n in sizes:
            out.append(
                {
                    "name": f"{family}_{n}x20",
                    "title": f"{'Poisson' if family == 'poisson' else 'logistic'}, "
                    f"{n:,} rows x 20 columns",
                    "df": lambda n=n, family=family: data.glm_dense(n, family),
                    "terms": [f"x{j}" for j in range(1, 20)],
                    "formula": data.glm_formula(20),
                    "family": family,
                    "large": n >= 1_000_000,
                }
            )
    n, k = (10_000, 100) if quick else (100_000, 1000)
    out.append(
        {
            "name": f"poisson_factor{k}_{n}",
            "title": f"Poisson with a {k:,}-level factor, {n:,} rows x {k + 5} columns",
            "df": lambda n=n, k=k: data.glm_factor(n, k),
            "terms": [f"x{j}" for j in range(1, 6)] + ["f"],
            "formula": data.glm_factor_formula(5),
            "family": "poisson",
            "large": False,
        }
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small data, 2 repetitions: smoke run")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5; 3 at 10^6)")
    ap.add_argument("--no-r", action="store_true", help="skip R's glm")
    ap.add_argument(
        "--no-statsmodels",
        action="store_true",
        help="skip statsmodels (minutes a fit on the factor case)",
    )
    ap.add_argument("--only", default="", help="run only cases whose name contains this")
    ap.add_argument("--out", default=None, help="also write the report (markdown) here")
    ap.add_argument(
        "--blas-threads", default=None, help="BLAS/OpenMP threads for every package (threads.py)"
    )
    args = ap.parse_args()

    report = ["## GLM benchmark\n", common.print_machine(), ""]
    use_r = not args.no_r and common.r_available()
    if not use_r:
        print("R glm: skipped (no Rscript with lme4, or --no-r)")
    have_pg = peers.pyglmm_has("glm")
    summary = []
    for case in cases(args.quick):
        if args.only and args.only not in case["name"]:
            continue
        df = case["df"]()
        reps = args.reps or (2 if args.quick else (3 if case["large"] else 5))
        budget = 120.0
        results = []
        spec = {"kind": "glm", "formula": case["formula"], "family": case["family"]}
        if have_pg:
            results.append(
                peers.run(
                    "pyglmm", peers.fit_pyglmm(df, spec), reps=reps, warmup=True, budget=budget
                )
            )
        else:
            print("pyglmm: not available yet (pyglmm.glm missing)")
            results.append(common.skipped("pyglmm", "not available yet"))
        results.append(
            peers.run(
                "glum",
                peers.fit_glum(df, case["terms"], case["family"]),
                reps=reps,
                warmup=True,
                budget=budget,
            )
        )
        if args.no_statsmodels:
            results.append(common.skipped("statsmodels", "--no-statsmodels"))
        else:
            results.append(
                peers.run(
                    "statsmodels",
                    peers.fit_statsmodels_glm(df, case["terms"], case["family"]),
                    reps=reps,
                    # no warm-up where one fit takes long (10^6 rows; the 1,005-column design)
                    warmup=not case["large"] and "factor" not in case["name"],
                    budget=budget,
                    limit=SM_LIMIT,
                )
            )
        if results[-1].skipped and "FitTimeout" in results[-1].note:
            results[-1].note = f"skipped: one fit takes > {SM_LIMIT:.0f} s"
        if use_r:
            results.append(
                common.run_r(
                    df,
                    case["name"],
                    kind="glm",
                    formula=case["formula"],
                    family=case["family"],
                    # R's glm on the 1,005-column design (unblocked QR) takes minutes a fit
                    reps=1 if "factor" in case["name"] and not args.quick else reps,
                    warmup=not case["large"] and "factor" not in case["name"],
                    budget=budget,
                    timeout=R_LIMIT,
                )
            )
        report.append(common.report_case(case["title"], results))
        by = {r.peer: r for r in results if not r.skipped}
        if "pyglmm" in by:
            pg = by["pyglmm"].seconds
            diffs = [
                common.max_rel_diff(r.coef, by["pyglmm"].coef)
                for p, r in by.items()
                if p != "pyglmm"
            ]
            line = (
                f"{case['title']}: pyglmm/glum = "
                f"{pg / by['glum'].seconds if 'glum' in by else math.nan:.2f} (target <= 1), "
                f"statsmodels/pyglmm = "
                f"{by['statsmodels'].seconds / pg if 'statsmodels' in by else math.nan:.1f}"
                f" (target >= 10), max rel coef diff = {max(diffs) if diffs else math.nan:.1e}"
                " (target <= 1e-6)"
            )
            summary.append(line)
    common.finish_report(report, summary, args.out)


if __name__ == "__main__":
    main()
