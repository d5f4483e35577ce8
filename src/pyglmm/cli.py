"""The ``pyglmm`` command line: fit a model to a data file, print R's summary, save plots.

Examples
--------
::

    pyglmm fit "y ~ dur + res + educ + offset(log(n))" --data ceb --family poisson
    pyglmm fit "cbind(incidence, size - incidence) ~ period" --data cbpp.csv \\
        --family binomial --plots out/ --json out/fit.json
    pyglmm lm "score ~ Machine * Worker" --data Machines --anova
    pyglmm lmer "Reaction ~ Days + (Days | Subject)" --data sleepstudy --json -
    pyglmm glmer "cbind(incidence, size - incidence) ~ period + (1 | herd)" --data cbpp
    pyglmm datasets
    pyglmm --version

``--data`` is a file (``.csv``, ``.csv.gz``, ``.tsv``, ``.parquet``, whitespace-separated
``.dat``/``.txt``) or the name of a bundled data set (``pyglmm datasets`` lists them).
Mistakes in the input (a missing file, an unknown column, a response outside the family,
a formula that does not parse) end with one line ``pyglmm: error: ...`` on stderr and
exit status 1; warnings of the fit are printed as ``pyglmm: warning: ...``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pyglmm.errors import DataError, PyglmmError

PROG = "pyglmm"
PLOT_FILES = {
    "diagnostics": "diagnostics.png",
    "residuals": "residuals.png",
    "cooks": "cooks.png",
}


class CommandLineError(Exception):
    """An error to report as one line and exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage mistakes are reported as one line (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{PROG}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


# ------------------------------------------------------------------------ data
def _row_names(df: pd.DataFrame) -> pd.DataFrame:
    first = str(df.columns[0]) if len(df.columns) else ""
    if first in ("rownames", "") or first.startswith("Unnamed: 0"):
        df = df.set_index(df.columns[0])
        df.index = df.index.astype(str)
        df.index.name = None
    return df


def read_data(spec: str) -> pd.DataFrame:
    """Read ``spec``: a data file (by its extension) or the name of a bundled data set.

    CSV (``.csv``, ``.csv.gz``), TSV (``.tsv``), Parquet (``.parquet``, ``.pq``) and
    whitespace-separated text (``.dat``, ``.txt``, R's ``write.table`` layout with row
    names). A first column named ``rownames`` or left unnamed becomes the row labels.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        raise DataError(f"--data {spec!r} is a directory, not a data file")
    if path.is_file():
        name = path.name.lower()
        try:
            if name.endswith((".parquet", ".pq")):
                try:
                    df = pd.read_parquet(path)
                except ImportError as exc:
                    raise DataError("reading Parquet needs pyarrow (pip install pyarrow)") from exc
                return _row_names(df)
            if name.endswith((".dat", ".txt", ".dat.gz", ".txt.gz")):
                df = pd.read_csv(path, sep=r"\s+")
                if not isinstance(df.index, pd.RangeIndex):
                    df.index = df.index.astype(str)
                return _row_names(df)
            sep = "\t" if name.endswith((".tsv", ".tsv.gz", ".tab")) else ","
            return _row_names(pd.read_csv(path, sep=sep))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {spec!r}: {exc}".splitlines()[0]) from exc
    from pyglmm import datasets

    known = {n.casefold(): n for n in datasets.names()}
    if spec.casefold() in known:
        return datasets.load(known[spec.casefold()])
    raise DataError(
        f"no data file {spec!r} and no bundled data set of that name "
        f"(bundled: {', '.join(datasets.names())})"
    )


# ---------------------------------------------------------------------- output
def _number(x: Any) -> Any:
    """A JSON-safe scalar: NaN and infinities become null."""
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return v if math.isfinite(v) else None


def _coefficient_rows(model: Any) -> list[dict[str, Any]]:
    stat = getattr(model, "statistic", None)
    if stat is None:
        stat = getattr(model, "t_values", None)
    rows = []
    for name in model.coef.index:
        rows.append(
            {
                "term": str(name),
                "estimate": _number(model.coef[name]),
                "std_error": _number(model.se[name]),
                "statistic": _number(None if stat is None else stat[name]),
                "p_value": _number(model.p_values[name]),
            }
        )
    return rows


def _diagnostics_summary(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rtype = "response" if getattr(model, "is_lm", False) else "deviance"
    try:
        w, p = model.shapiro(rtype)
        out["shapiro_wilk"] = {"residuals": rtype, "W": _number(w), "p_value": _number(p)}
    except PyglmmError:
        out["shapiro_wilk"] = None
    cook = model.cooks_distance().sort_values(ascending=False)
    out["cooks_distance_largest"] = [
        {"row": str(k), "value": _number(v)} for k, v in cook.head(3).items()
    ]
    try:
        table = model.influence()
        out["influential_rows"] = [str(k) for k in table.index[table["inf"].to_numpy()]]
    except (PyglmmError, ValueError):
        out["influential_rows"] = None
    return out


def glm_results(model: Any) -> dict[str, Any]:
    """JSON-ready results of a fitted GLM."""
    return {
        "model": "glm",
        "formula": model.formula,
        "family": model.family.name,
        "link": model.family.link.name,
        "nobs": _number(model.nobs),
        "coefficients": _coefficient_rows(model),
        "deviance": _number(model.deviance),
        "null_deviance": _number(model.null_deviance),
        "df_resid": _number(model.df_resid),
        "df_null": _number(getattr(model, "df_null", None)),
        "aic": _number(model.aic),
        "bic": _number(getattr(model, "bic", None)),
        "loglik": _number(getattr(model, "loglik", None)),
        "dispersion": _number(model.dispersion),
        "iterations": _number(getattr(model, "iterations", None)),
        "converged": _number(getattr(model, "converged", None)),
        "theta": _number(getattr(model, "theta", None)),
        "diagnostics": _diagnostics_summary(model),
    }


def lm_results(model: Any) -> dict[str, Any]:
    """JSON-ready results of a fitted linear model."""
    fstat = getattr(model, "fstatistic", None)
    return {
        "model": "lm",
        "formula": model.formula,
        "nobs": _number(model.nobs),
        "coefficients": _coefficient_rows(model),
        "sigma": _number(model.sigma),
        "r_squared": _number(getattr(model, "r_squared", None)),
        "adj_r_squared": _number(getattr(model, "adj_r_squared", None)),
        "fstatistic": None if fstat is None else [_number(v) for v in fstat],
        "rss": _number(model.deviance),
        "df_resid": _number(model.df_resid),
        "aic": _number(getattr(model, "aic", None)),
        "bic": _number(getattr(model, "bic", None)),
        "loglik": _number(getattr(model, "loglik", None)),
        "diagnostics": _diagnostics_summary(model),
    }


def write_plots(model: Any, directory: str) -> list[Path]:
    """Save the diagnostic panels, residual plots and Cook's distances as PNG in ``directory``."""
    out = Path(directory).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "diagnostics": model.plot(),
        "residuals": model.plot_residuals(),
        "cooks": model.plot_cooks(),
    }
    paths = []
    for key, fig in figures.items():
        path = out / PLOT_FILES[key]
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths


def _write_json(results: dict[str, Any], target: str) -> None:
    text = json.dumps(results, indent=2, allow_nan=False)
    if target == "-":
        sys.stdout.write(text + "\n")
    else:
        path = Path(target).expanduser()
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        print(f"{PROG}: wrote {path}", file=sys.stderr)


# -------------------------------------------------------------------- commands
def _report(model: Any, results: dict[str, Any], args: argparse.Namespace, extra: str = "") -> None:
    quiet = args.quiet or args.json == "-"
    if not quiet:
        print(model.summary())
        if extra:
            print(extra)
    if args.plots:
        for path in write_plots(model, args.plots):
            print(f"{PROG}: wrote {path}", file=sys.stderr)
    if args.json:
        _write_json(results, args.json)


def load_data(args: argparse.Namespace) -> pd.DataFrame:
    """Read ``--data`` and convert the ``--factor`` columns to R-ordered factors."""
    from pyglmm.formula.levels import as_r_factor

    data = read_data(args.data)
    for spec in args.factor:
        for col in filter(None, (c.strip() for c in spec.split(","))):
            if col not in data.columns:
                raise DataError(
                    f"--factor {col!r} is not a column of the data "
                    f"(columns: {', '.join(map(str, data.columns))})"
                )
            data[col] = as_r_factor(data[col])
    return data


def _weights_argument(spec: str | None, data: pd.DataFrame) -> str | None:
    if spec is not None and spec not in data.columns:
        raise DataError(
            f"--weights {spec!r} is not a column of the data "
            f"(columns: {', '.join(map(str, data.columns))})"
        )
    return spec


def _no_random_terms(formula: str, command: str) -> None:
    from pyglmm.formula.parse import parse_formula

    bars = parse_formula(formula).random
    if bars:
        terms = ", ".join(f"({b.lhs} {'|' if b.correlated else '||'} {b.group})" for b in bars)
        raise CommandLineError(
            f"'{command}' fits models without random effects, but the formula has {terms}"
        )


def command_fit(args: argparse.Namespace) -> int:
    import pyglmm as pg

    _no_random_terms(args.formula, "fit")
    data = load_data(args)
    model = pg.glm(
        args.formula,
        data,
        family=args.family,
        link=args.link,
        weights=_weights_argument(args.weights, data),
        offset=args.offset,
        **({} if args.theta is None else {"theta": args.theta}),
    )
    _report(model, glm_results(model), args)
    return 0


def command_lm(args: argparse.Namespace) -> int:
    import pyglmm as pg

    _no_random_terms(args.formula, "lm")
    data = load_data(args)
    model = pg.lm(
        args.formula, data, weights=_weights_argument(args.weights, data), offset=args.offset
    )
    results = lm_results(model)
    extra = ""
    if args.anova:
        table = model.anova(type=args.anova_type)
        extra = "\n" + str(table)
        frame = getattr(table, "table", None)
        if isinstance(frame, pd.DataFrame):
            results["anova"] = json.loads(frame.to_json(orient="index"))
    _report(model, results, args, extra)
    return 0


def _coef_table_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of an R-style coefficient table (Estimate, Std. Error, t/z value, Pr(>|.|))."""
    cols = list(table.columns)

    def pick(prefixes: tuple[str, ...]) -> str | None:
        return next((c for c in cols if str(c).startswith(prefixes)), None)

    est = pick(("Estimate", "estimate"))
    se = pick(("Std. Error", "std_error"))
    stat = pick(("t value", "z value", "statistic"))
    pval = pick(("Pr(", "p_value"))
    rows = []
    for term, row in table.iterrows():
        rows.append(
            {
                "term": str(term),
                "estimate": _number(row[est]) if est else None,
                "std_error": _number(row[se]) if se else None,
                "statistic": _number(row[stat]) if stat else None,
                "p_value": _number(row[pval]) if pval else None,
            }
        )
    return rows


def mixed_results(model: Any, kind: str) -> dict[str, Any]:
    """JSON-ready results of a fitted linear or generalized linear mixed model."""
    family = getattr(model, "family", None)
    varcorr = getattr(model, "varcorr", None)
    results: dict[str, Any] = {
        "model": kind,
        "formula": model.formula,
        "nobs": _number(model.nobs),
        "coefficients": _coef_table_rows(model.coef_table()),
        "varcorr": None
        if varcorr is None
        else [{k: _number(v) for k, v in rec.items()} for rec in varcorr.to_dict("records")],
        "objective": _number(getattr(model, "objective", None)),
        "deviance": _number(getattr(model, "deviance", None)),
        "loglik": _number(getattr(model, "loglik", None)),
        "aic": _number(getattr(model, "aic", None)),
        "bic": _number(getattr(model, "bic", None)),
        "df_resid": _number(getattr(model, "df_resid", None)),
        "sigma": _number(getattr(model, "sigma", None)),
        "theta": [_number(t) for t in np.atleast_1d(getattr(model, "theta", []))],
        "singular": _number(getattr(model, "singular", None)),
    }
    if kind == "lmer":
        results["reml"] = _number(getattr(model, "reml", None))
    if family is not None:
        results["family"] = family.name
        results["link"] = family.link.name
        results["nagq"] = _number(getattr(model, "nagq", None))
    return results


def write_mixed_plots(model: Any, directory: str, kind: str) -> list[Path]:
    """Residual plots and a caterpillar plot of the random effects of a mixed model, as PNG.

    ``residuals.png``: residuals against fitted values, normal QQ and histogram (scaled
    residuals for ``lmer``, Pearson residuals for ``glmer``); ``ranef.png``: conditional
    modes with 95% prediction intervals (:func:`pyglmm.plots.mixed.caterpillar_plot`).
    """
    from pyglmm.plots.regression import residual_figure

    if kind == "lmer":
        residuals = model.residuals(type="response", scaled=True)
        label = "scaled residuals"
    else:
        residuals = model.residuals(type="pearson")
        label = "Pearson residuals"
    fitted = np.asarray(model.fitted, dtype=float)
    figures = {
        "residuals.png": residual_figure(
            fitted, np.asarray(residuals, dtype=float), labels=list(residuals.index),
            residual_label=label, title=model.formula,
        ),
    }  # fmt: skip
    try:
        from pyglmm.plots.mixed import caterpillar_plot
    except ImportError:  # pragma: no cover - the mixed-model plots are optional
        caterpillar_plot = None
    if caterpillar_plot is not None:
        figures["ranef.png"] = caterpillar_plot(model)
    out = Path(directory).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        path = out / name
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths


def _report_mixed(model: Any, args: argparse.Namespace, kind: str) -> None:
    if not (args.quiet or args.json == "-"):
        print(model.summary())
    if args.plots:
        for path in write_mixed_plots(model, args.plots, kind):
            print(f"{PROG}: wrote {path}", file=sys.stderr)
    if args.json:
        _write_json(mixed_results(model, kind), args.json)


def _needs_random_terms(formula: str, command: str) -> None:
    from pyglmm.formula.parse import parse_formula

    if not parse_formula(formula).random:
        raise CommandLineError(
            f"'{command}' needs random-effects terms such as (1 | group) in the formula; "
            f"use '{'lm' if command == 'lmer' else 'fit'}' for a model without them"
        )


def command_lmer(args: argparse.Namespace) -> int:
    import pyglmm as pg

    _needs_random_terms(args.formula, "lmer")
    data = load_data(args)
    model = pg.lmer(
        args.formula, data, reml=not args.ml,
        weights=_weights_argument(args.weights, data), offset=args.offset,
    )  # fmt: skip
    _report_mixed(model, args, "lmer")
    return 0


def command_glmer(args: argparse.Namespace) -> int:
    import pyglmm as pg

    _needs_random_terms(args.formula, "glmer")
    data = load_data(args)
    model = pg.glmer(
        args.formula, data, family=args.family, nagq=args.nagq, link=args.link,
        weights=_weights_argument(args.weights, data), offset=args.offset,
    )  # fmt: skip
    _report_mixed(model, args, "glmer")
    return 0


def command_datasets(args: argparse.Namespace) -> int:
    from pyglmm import datasets

    names = datasets.names()
    width = max(len(n) for n in names)
    for name in names:
        print(f"{name:<{width}}  {datasets.describe(name)}")
    return 0


# ---------------------------------------------------------------------- parser
def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("formula", help='model formula in R\'s syntax, e.g. "y ~ x + f"')
    p.add_argument(
        "--data",
        required=True,
        metavar="NAME_OR_PATH",
        help="data file (.csv, .csv.gz, .tsv, .parquet, whitespace .dat/.txt) or bundled set",
    )
    p.add_argument(
        "--factor",
        action="append",
        default=[],
        metavar="COL[,COL...]",
        help="treat these columns as factors (levels in R's order), e.g. numeric codes",
    )
    p.add_argument("--weights", metavar="COL", help="column of prior weights")
    p.add_argument("--offset", metavar="EXPR", help="offset expression, e.g. 'log(n)'")
    p.add_argument("--plots", metavar="DIR", help="write diagnostic plots (PNG) to DIR")
    p.add_argument("--json", metavar="FILE", help="write results as JSON to FILE ('-': stdout)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the summary")
    p.add_argument(
        "--traceback",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the Python traceback of an error",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pyglmm`` command."""
    from pyglmm import __version__

    parser = _Parser(
        prog=PROG,
        description="Fit GLMs and linear models with R's formulas and R's numbers.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="show the Python traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    fit = sub.add_parser("fit", help="fit a generalized linear model (R's glm)")
    _common(fit)
    fit.add_argument(
        "--family",
        default="gaussian",
        help="gaussian, binomial, poisson, Gamma, inverse.gaussian, quasipoisson, "
        "quasibinomial, negative.binomial (default gaussian)",
    )
    fit.add_argument("--link", help="link function (default: the family's canonical link)")
    fit.add_argument(
        "--theta",
        type=float,
        help="known theta of the negative binomial family (default: estimated, as glm.nb)",
    )
    fit.set_defaults(handler=command_fit)

    lm = sub.add_parser("lm", help="fit a linear model by least squares (R's lm)")
    _common(lm)
    lm.add_argument("--anova", action="store_true", help="also print the ANOVA table")
    lm.add_argument(
        "--anova-type",
        default="1",
        choices=["1", "2", "3", "I", "II", "III"],
        help="sums of squares for --anova (default 1, sequential)",
    )
    lm.set_defaults(handler=command_lm)

    import pyglmm as pg

    if hasattr(pg, "lmer"):
        lmer = sub.add_parser("lmer", help="fit a linear mixed model (lme4's lmer)")
        _common(lmer)
        lmer.add_argument("--ml", action="store_true", help="maximum likelihood (default REML)")
        lmer.set_defaults(handler=command_lmer)
    if hasattr(pg, "glmer"):
        glmer = sub.add_parser("glmer", help="fit a generalized linear mixed model (lme4's glmer)")
        _common(glmer)
        glmer.add_argument("--family", default="binomial", help="family (default binomial)")
        glmer.add_argument("--link", help="link function (default: canonical)")
        glmer.add_argument(
            "--nagq",
            type=int,
            default=1,
            help="adaptive Gauss-Hermite points (1 = Laplace, default)",
        )
        glmer.set_defaults(handler=command_glmer)

    ds = sub.add_parser("datasets", help="list the bundled data sets")
    ds.set_defaults(handler=command_datasets)
    return parser


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    seen = set()
    for w in caught:
        text = str(w.message).strip()
        if text not in seen:
            seen.add(text)
            print(f"{PROG}: warning: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 1 error, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    if getattr(args, "anova_type", None) is not None:
        args.anova_type = {"I": 1, "II": 2, "III": 3}.get(args.anova_type, args.anova_type)
        args.anova_type = int(args.anova_type)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            status = args.handler(args)
        except (PyglmmError, OSError, CommandLineError) as exc:
            _show_warnings(caught)
            if args.traceback:
                raise
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if isinstance(exc, OSError) and exc.filename:
                message = f"{exc.strerror or message}: {exc.filename}"
            print(f"{PROG}: error: {message}", file=sys.stderr)
            return 1
        except Exception as exc:  # noqa: BLE001 - never show a traceback for bad input
            _show_warnings(caught)
            if args.traceback:
                raise
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            print(
                f"{PROG}: error: {type(exc).__name__}: {detail} (run with --traceback for details)",
                file=sys.stderr,
            )
            return 1
    _show_warnings(caught)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
