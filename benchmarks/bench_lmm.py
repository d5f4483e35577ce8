"""LMM benchmark (issue 4): pyglmm.lmer against lme4, glmm, mixedlm and statsmodels MixedLM.

Cases: sleepstudy ``Reaction ~ Days + (Days|Subject)`` (REML); Penicillin-sized crossed data
(144 rows, ``(1|plate) + (1|sample)``, 24 x 6 levels); a larger crossed set (20,000 rows,
1,000 x 50 levels); InstEval ``y ~ 1 + service + (1|s) + (1|d) + (1|dept)`` (REML) and
``y ~ 1 + service*dept + (1|s) + (1|d)`` (ML).

Reported: median times, pyglmm/peer ratios, the objective each package reached (REML criterion
or ML deviance on lme4's scale: compare optima), evaluation counts, pyglmm's peak memory.
Targets: fastest on every case > 10,000 rows, InstEval 3-term REML < 1 s, >= 20x faster than
lme4, peak memory < 1 GB, sleepstudy < 10 ms.

    benchmarks/.peers/bin/python benchmarks/bench_lmm.py [--quick] [--reps N] [--no-r]
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

SM_LIMIT = 300.0  # statsmodels MixedLM: give up on a fit after 5 minutes


def _crossed_sm(fixed: str, factors: list[str]) -> dict:
    return {
        "fixed": fixed,
        "groups": None,
        "re_formula": "0",
        "vc_formula": {f: f"0 + C({f})" for f in factors},
    }


def _insteval(quick: bool):
    df = data.bundled("InstEval")
    if quick:  # the first 10,000 rows, unused levels dropped
        df = df.iloc[:10_000].copy()
        for c in ["s", "d", "dept", "service"]:
            df[c] = df[c].cat.remove_unused_categories()
    return df[["y", "s", "d", "dept", "service"]]


def cases(quick: bool) -> list[dict]:
    n_big, n1, n2 = (3_000, 150, 20) if quick else (20_000, 1000, 50)
    tag = "InstEval (first 10,000 rows)" if quick else "InstEval"
    return [
        {
            "name": "sleepstudy",
            "title": "sleepstudy: Reaction ~ Days + (Days | Subject), REML (180 rows)",
            "df": lambda: data.bundled("sleepstudy"),
            "formula": "Reaction ~ Days + (Days | Subject)",
            "reml": True,
            "sm": {"fixed": "Reaction ~ Days", "groups": "Subject", "re_formula": "~Days"},
        },
        {
            "name": "penicillin_like",
            "title": "Penicillin-sized crossed: diameter ~ 1 + (1|plate) + (1|sample), REML "
            "(144 rows, 24 x 6 levels)",
            "df": data.penicillin_like,
            "formula": "diameter ~ 1 + (1 | plate) + (1 | sample)",
            "reml": True,
            "sm": _crossed_sm("diameter ~ 1", ["plate", "sample"]),
        },
        {
            "name": f"crossed_{n_big}",
            "title": f"crossed: y ~ 1 + x + (1|g1) + (1|g2), REML ({n_big:,} rows, "
            f"{n1:,} x {n2} levels)",
            "df": lambda: data.crossed_lmm(n_big, n1, n2),
            "formula": "y ~ 1 + x + (1 | g1) + (1 | g2)",
            "reml": True,
            "sm": _crossed_sm("y ~ 1 + x", ["g1", "g2"]),
        },
        {
            "name": "insteval_reml" + ("_quick" if quick else ""),
            "title": f"{tag}: y ~ 1 + service + (1|s) + (1|d) + (1|dept), REML",
            "df": lambda: _insteval(quick),
            "formula": "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)",
            "reml": True,
            "sm": _crossed_sm("y ~ 1 + service", ["s", "d", "dept"]),
        },
        {
            "name": "insteval_ml" + ("_quick" if quick else ""),
            "title": f"{tag}: y ~ 1 + service*dept + (1|s) + (1|d), ML",
            "df": lambda: _insteval(quick),
            "formula": "y ~ 1 + service * dept + (1 | s) + (1 | d)",
            "reml": False,
            "sm": _crossed_sm("y ~ 1 + service * dept", ["s", "d"]),
        },
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small data, 2 repetitions: smoke run")
    ap.add_argument(
        "--reps", type=int, default=None, help="repetitions (default 5; 3 if > 10^4 rows)"
    )
    ap.add_argument("--no-r", action="store_true", help="skip lme4")
    ap.add_argument("--no-statsmodels", action="store_true", help="skip statsmodels MixedLM")
    ap.add_argument("--no-memory", action="store_true", help="skip the pyglmm memory probe")
    ap.add_argument("--only", default="", help="run only cases whose name contains this")
    ap.add_argument("--out", default=None, help="also write the report (markdown) here")
    ap.add_argument(
        "--blas-threads", default=None, help="BLAS/OpenMP threads for every package (threads.py)"
    )
    args = ap.parse_args()

    report = ["## LMM benchmark\n", common.print_machine(), ""]
    use_r = not args.no_r and common.r_available()
    if not use_r:
        print("lme4: skipped (no Rscript with lme4, or --no-r)")
    have_pg = peers.pyglmm_has("lmer")
    summary = []
    for case in cases(args.quick):
        if args.only and args.only not in case["name"]:
            continue
        df = case["df"]()
        n = len(df)
        large = n > 10_000
        reps = args.reps or (2 if args.quick else (3 if large else 5))
        budget = 60.0
        reml = case["reml"]
        results = []
        spec = {"kind": "lmer", "formula": case["formula"], "reml": reml}
        if have_pg:
            results.append(
                peers.run(
                    "pyglmm", peers.fit_pyglmm(df, spec), reps=reps, warmup=True, budget=budget
                )
            )
        else:
            print("pyglmm: not available yet (pyglmm.lmer missing)")
            results.append(common.skipped("pyglmm", "not available yet"))
        if use_r:
            results.append(
                common.run_r(
                    df,
                    case["name"],
                    kind="lmer",
                    formula=case["formula"],
                    reml=reml,
                    reps=reps,
                    warmup=not large,
                    budget=budget,
                )
            )
        results.append(
            peers.run(
                "glmm",
                peers.fit_glmm(df, case["formula"], "gaussian", reml=reml),
                reps=reps,
                warmup=True,
                budget=budget,
            )
        )
        results.append(
            peers.run(
                "mixedlm",
                peers.fit_mixedlm(df, case["formula"], "gaussian", reml=reml),
                reps=reps,
                warmup=not large,
                budget=budget,
            )
        )
        sm_limit = 30.0 if args.quick else SM_LIMIT
        if args.no_statsmodels:
            results.append(common.skipped("statsmodels", "--no-statsmodels"))
        else:
            r = peers.run(
                "statsmodels",
                peers.fit_statsmodels_mixedlm(df, case["sm"], reml),
                reps=reps,
                warmup=n <= 2_000,
                budget=budget,
                limit=sm_limit,
            )
            if r.skipped and "FitTimeout" in r.note:
                r.note = f"skipped: one fit takes > {sm_limit:.0f} s"
                print(f"statsmodels MixedLM: {r.note}")
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
            case["name"], results, lme4_factor=20, objective_label="objective", mem=mem
        )
        if line:
            summary.append(line)
    common.finish_report(report, summary, args.out)


if __name__ == "__main__":
    main()
