"""GLMM benchmark (issue 5): pyglmm.glmer against lme4's glmer, glmm, mixedlm and statsmodels'
BinomialBayesMixedGLM, in one run.

Cases (binomial, Laplace): cbpp ``cbind(incidence, size - incidence) ~ period + (1|herd)``;
7,500 rows of 0/1 responses with crossed factors of 300 and 25 levels (complete design, as
VerbAgg's subjects x items); 200,000 rows with crossed factors of 5,000 and 200 levels.
Targets: fastest on every case > 10,000 rows, >= 10x faster than lme4.

statsmodels' BinomialBayesMixedGLM is a variational-Bayes fit of the same model: its time is
shown, its objective is not comparable, its coefficients are posterior means. On cbpp it gets
the data expanded to one 0/1 row per animal (it takes no binomial totals).

    benchmarks/.peers/bin/python benchmarks/bench_glmm.py [--quick] [--reps N] [--no-r]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# isort: off
import threads  # noqa: E402, F401  (first: --blas-threads must act before numpy loads)

# isort: on
import common  # noqa: E402
import data  # noqa: E402
import peers  # noqa: E402

SM_LIMIT = 300.0

FORMULA_CROSSED = "y ~ 1 + x1 + x2 + (1 | g1) + (1 | g2)"


def cases(quick: bool) -> list[dict]:
    big = (20_000, 500, 40) if quick else (200_000, 5000, 200)
    mid = (60, 25) if quick else (300, 25)
    return [
        {
            "name": "cbpp",
            "title": "cbpp: cbind(incidence, size - incidence) ~ period + (1|herd) (56 rows)",
            "df": data.cbpp,
            "formula": "cbind(incidence, notinc) ~ period + (1 | herd)",
            # mixedlm has no cbind(); it reads successes / trials as a binomial response
            "mixedlm_formula": "incidence / size ~ period + (1 | herd)",
            "sm": lambda: (data.cbpp_bernoulli(), ["period"], ["herd"]),
        },
        {
            "name": f"binomial_crossed_{mid[0] * mid[1]}",
            "title": f"binomial crossed: {FORMULA_CROSSED} ({mid[0] * mid[1]:,} rows, "
            f"{mid[0]} x {mid[1]} levels)",
            "df": lambda: data.binomial_crossed(*mid),
            "formula": FORMULA_CROSSED,
            "sm": None,
        },
        {
            "name": f"binomial_crossed_{big[0]}",
            "title": f"binomial crossed: {FORMULA_CROSSED} ({big[0]:,} rows, "
            f"{big[1]:,} x {big[2]} levels)",
            "df": lambda: data.binomial_crossed(big[1], big[2], n=big[0]),
            "formula": FORMULA_CROSSED,
            "sm": None,
        },
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small data, 2 repetitions: smoke run")
    ap.add_argument(
        "--reps", type=int, default=None, help="repetitions (default 5; 3 if > 10^4 rows)"
    )
    ap.add_argument("--no-r", action="store_true", help="skip lme4")
    ap.add_argument("--no-statsmodels", action="store_true", help="skip BinomialBayesMixedGLM")
    ap.add_argument("--no-memory", action="store_true", help="skip the pyglmm memory probe")
    ap.add_argument("--only", default="", help="run only cases whose name contains this")
    ap.add_argument("--out", default=None, help="also write the report (markdown) here")
    ap.add_argument(
        "--blas-threads", default=None, help="BLAS/OpenMP threads for every package (threads.py)"
    )
    args = ap.parse_args()

    report = ["## GLMM benchmark\n", common.print_machine(), ""]
    use_r = not args.no_r and common.r_available()
    if not use_r:
        print("lme4: skipped (no Rscript with lme4, or --no-r)")
    have_pg = peers.pyglmm_has("glmer")
    summary = []
    sm_limit = 30.0 if args.quick else SM_LIMIT
    for case in cases(args.quick):
        if args.only and args.only not in case["name"]:
            continue
        df = case["df"]()
        n = len(df)
        large = n > 10_000
        reps = args.reps or (2 if args.quick else (3 if large else 5))
        budget = 60.0
        results = []
        spec = {"kind": "glmer", "formula": case["formula"], "family": "binomial"}
        if have_pg:
            results.append(
                peers.run(
                    "pyglmm", peers.fit_pyglmm(df, spec), reps=reps, warmup=not large, budget=budget
                )
            )
        else:
            print("pyglmm: not available yet (pyglmm.glmer missing)")
            results.append(common.skipped("pyglmm", "not available yet"))
        if use_r:
            results.append(
                common.run_r(
                    df,
                    case["name"],
                    kind="glmer",
                    formula=case["formula"],
                    family="binomial",
                    reps=reps,
                    warmup=not large,
                    budget=budget,
                )
            )
        results.append(
            peers.run(
                "glmm",
                peers.fit_glmm(df, case["formula"], "binomial"),
                reps=reps,
                warmup=not large,
                budget=budget,
            )
        )
        results.append(
            peers.run(
                "mixedlm",
                peers.fit_mixedlm(df, case.get("mixedlm_formula", case["formula"]), "binomial"),
                reps=reps,
                warmup=not large,
                budget=budget,
            )
        )
        if args.no_statsmodels:
            results.append(common.skipped("statsmodels VB", "--no-statsmodels"))
        else:
            if case["sm"] is not None:
                sm_df, fixed, vc = case["sm"]()
            else:
                sm_df, fixed, vc = df, ["x1", "x2"], ["g1", "g2"]
            r = peers.run(
                "statsmodels VB",
                peers.fit_statsmodels_bayes_binomial(sm_df, "y", fixed, vc),
                reps=reps,
                warmup=n <= 2_000,
                budget=budget,
                limit=sm_limit,
            )
            if r.skipped and "FitTimeout" in r.note:
                r.note = f"skipped: one fit takes > {sm_limit:.0f} s"
            elif not r.skipped:
                r.note = (r.note + "; " if r.note else "") + "variational Bayes: objective n/a"
            results.append(r)
        text = common.report_case(case["title"], results)
        mem = None
        if have_pg and large and not args.no_memory:
            mem = common.pyglmm_memory(df, case["name"], spec)
            line = common.memory_line(mem)
            print(line)
            text += "\n" + line + "\n"
        report.append(text)
        line = common.mixed_target_line(
            case["name"], results, lme4_factor=10, objective_label="-2logLik", mem=mem
        )
        if line:
            summary.append(line)
    common.finish_report(report, summary, args.out)


if __name__ == "__main__":
    main()
