"""R's printed output of a GLM: ``print.glm``, ``summary.glm`` and an HTML table.

The text reproduces R 4.2's ``print.summary.glm`` (with the "Deviance Residuals"
block of that version): the call, the quantiles of the deviance residuals, the
coefficient table of ``printCoefmat`` with significance stars, the dispersion
line, null and residual deviances, AIC and the number of Fisher scoring
iterations. Numbers are formatted by :mod:`pyglmm.glm.rformat` as R formats them.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pyglmm.glm.rformat import (
    format_r,
    format_scalar,
    print_coefmat,
    print_named_vector,
    signif,
    zapsmall,
)

if TYPE_CHECKING:  # pragma: no cover
    from pyglmm.glm.model import GeneralizedLinearModel

#: R's default ``digits`` for summaries: ``max(3, getOption("digits") - 3)``.
DIGITS = 4


def deparse_call(call: str, width: int = 60) -> str:
    """Break a call over lines after the argument where R's ``deparse`` would (width 60)."""
    head, _, rest = call.partition("(")
    args, depth, cur = [], 0, ""
    for ch in rest[:-1]:
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
            continue
        depth += ch in "([{"
        depth -= ch in ")]}"
        cur += ch
    args.append(cur.strip())
    lines, line = [], head + "("
    for i, a in enumerate(args):
        line += a + (", " if i < len(args) - 1 else ")")
        if len(line) > width and i < len(args) - 1:
            lines.append(line.rstrip())
            line = "    "
    if line.strip():
        lines.append(line)
    return "\n".join(lines)


def _r_quantiles(x: np.ndarray) -> np.ndarray:
    """R's ``quantile`` type 7 at 0, .25, .5, .75, 1."""
    return np.quantile(x, [0, 0.25, 0.5, 0.75, 1.0])


class GLMSummary:
    """``summary(glm)``: the coefficient table and the rest of R's summary.

    Attributes
    ----------
    coefficients : pandas.DataFrame
        Estimate, Std. Error, z or t value, Pr(>|z|) or Pr(>|t|) (non-aliased rows).
    dispersion, deviance, null_deviance, df_resid, df_null, aic, iterations
    deviance_residuals : pandas.Series
    """

    def __init__(self, model: GeneralizedLinearModel, dispersion: float | None = None) -> None:
        self.model = model
        if dispersion is None:
            self.dispersion = model.dispersion
            self.dispersion_estimated = model.dispersion_estimated
            se, stat, pv = model.se, model.statistic, model.p_values
        else:
            # R: summary(fit, dispersion = phi) uses phi as known (z tests)
            from scipy import stats

            self.dispersion = float(dispersion)
            self.dispersion_estimated = False
            se = np.sqrt(np.diag(model.cov_unscaled.to_numpy()) * self.dispersion)
            se = pd.Series(se, index=model.coef.index)
            with np.errstate(divide="ignore", invalid="ignore"):
                stat = model.coef / se
            pv = pd.Series(2 * stats.norm.sf(np.abs(stat.to_numpy())), index=model.coef.index)
        self.se, self.statistic, self.p_values = se, stat, pv
        stat_name = "t" if self.dispersion_estimated else "z"
        keep = ~model.aliased
        self.coefficients = pd.DataFrame(
            {
                "Estimate": model.coef[keep],
                "Std. Error": se[keep],
                f"{stat_name} value": stat[keep],
                f"Pr(>|{stat_name}|)": pv[keep],
            }
        )
        self.deviance = model.deviance
        self.null_deviance = model.null_deviance
        self.df_resid = model.df_resid
        self.df_null = model.df_null
        self.aic = model.aic
        self.iterations = model.iterations
        self.aliased = pd.Series(model.aliased, index=model.coef.index)
        from pyglmm.diagnostics.residuals import deviance_residuals

        self.deviance_residuals = pd.Series(
            deviance_residuals(model.y, model.fitted.to_numpy(), model.prior_weights, model.family),
            index=model.row_labels,
        )

    def __str__(self) -> str:
        return summary_text(self)

    def __repr__(self) -> str:
        return summary_text(self)

    def _repr_html_(self) -> str:
        return summary_html(self.model)


def summary_text(s: GLMSummary, digits: int = DIGITS) -> str:
    """Text of R's ``print.summary.glm``."""
    m = s.model
    out = ["", "Call:", deparse_call(m.call), "", "Deviance Residuals: "]
    dres = s.deviance_residuals.to_numpy()
    if m.df_resid > 5:
        vals = zapsmall(_r_quantiles(dres), digits + 1)
        out.append(print_named_vector(vals, ["Min", "1Q", "Median", "3Q", "Max"], digits, gap=2))
    else:
        vals = zapsmall(dres, digits + 1)
        out.append(print_named_vector(vals, [str(x) for x in m.row_labels], digits, gap=2))
    n_aliased = int(np.sum(m.aliased))
    if len(m.aliased) == 0:
        out.append("\nNo Coefficients")
    else:
        if n_aliased:
            out.append(f"\nCoefficients: ({n_aliased} not defined because of singularities)")
        else:
            out.append("\nCoefficients:")
        stat_name = "t" if s.dispersion_estimated else "z"
        table = np.column_stack(
            [m.coef.to_numpy(), s.se.to_numpy(), s.statistic.to_numpy(), s.p_values.to_numpy()]
        )
        out.append(
            print_coefmat(
                table,
                list(m.coef.index),
                ["Estimate", "Std. Error", f"{stat_name} value", f"Pr(>|{stat_name}|)"],
                digits,
            )
        )
    from pyglmm.glm.model import r_family_name

    disp = format_scalar(s.dispersion) if np.isfinite(s.dispersion) else "NaN"
    out.append(f"\n(Dispersion parameter for {r_family_name(m.family)} family taken to be {disp})")
    out.append("")
    devs = format_r([m.null_deviance, m.deviance], max(5, digits + 1))
    dfs = format_r([m.df_null, m.df_resid])
    labels = ["    Null", "Residual"]
    for lab, d, f in zip(labels, devs, dfs, strict=True):
        out.append(f"{lab} deviance: {d}  on {f}  degrees of freedom")
    if m.frame.n_dropped:
        n = m.frame.n_dropped
        out.append(f"  ({n} observation{'s' if n > 1 else ''} deleted due to missingness)")
    aic = format_scalar(m.aic, max(4, digits + 1)) if np.isfinite(m.aic) else "NA"
    out.append(f"AIC: {aic}")
    out.append("")
    out.append(f"Number of Fisher Scoring iterations: {m.iterations}")
    out.append("")
    if m.theta_estimated:
        dp = max(2 - int(np.floor(np.log10(m.theta_se))), 0)
        out.append("")
        out.append(f"              Theta:  {format_scalar(round(m.theta, dp), nsmall=dp)} ")
        out.append(f"          Std. Err.:  {format_scalar(round(m.theta_se, dp), nsmall=dp)} ")
        if m.theta_warning:
            out.append(f"Warning while fitting theta: {m.theta_warning} ")
        out.append("")
        out.append(f" 2 x log-likelihood:  {format_scalar(round(2 * m.loglik, 3), nsmall=dp)} ")
    return "\n".join(out)


def print_glm(m: GeneralizedLinearModel, digits: int = DIGITS) -> str:
    """Text of R's ``print.glm``."""
    lines = ["", "Call:  " + deparse_call(m.call), ""]
    if len(m.coef):
        lines.append("Coefficients:")
        vals = format_r(m.coef.to_numpy(), digits)
        names = list(m.coef.index)
        w = max([len(v) for v in vals] + [len(n) for n in names])
        per_line = max(1, 80 // (w + 2))
        for start in range(0, len(names), per_line):
            chunk = range(start, min(start + per_line, len(names)))
            lines.append("".join(names[i].rjust(w) + "  " for i in chunk).rstrip())
            lines.append("".join(vals[i].strip().rjust(w) + "  " for i in chunk).rstrip())
    else:
        lines.append("No coefficients\n")
    lines.append("")
    lines.append(f"Degrees of Freedom: {m.df_null} Total (i.e. Null);  {m.df_resid} Residual")
    nd = format_scalar(signif(m.null_deviance, digits), 7)
    rd = format_scalar(signif(m.deviance, digits), 7)
    aic = format_scalar(signif(m.aic, digits), 7) if np.isfinite(m.aic) else "NA"
    lines.append(f"Null Deviance:\t    {nd} ")
    lines.append(f"Residual Deviance: {rd} \tAIC: {aic}")
    return "\n".join(lines)


def summary_html(m: GeneralizedLinearModel) -> str:
    """An HTML rendering of the summary for notebooks."""
    s = m.summary()
    from pyglmm.glm.model import r_family_name

    stat_name = "t" if m.dispersion_estimated else "z"
    rows = []
    for name in m.coef.index:
        cells = [m.coef[name], m.se[name], m.statistic[name], m.p_values[name]]
        txt = ["NA" if not np.isfinite(c) else f"{c:.5g}" for c in cells]
        rows.append(
            "<tr><th>"
            + html.escape(str(name))
            + "</th>"
            + "".join(f"<td>{t}</td>" for t in txt)
            + "</tr>"
        )
    head = (
        "<tr><th></th><th>Estimate</th><th>Std. Error</th>"
        f"<th>{stat_name} value</th><th>Pr(&gt;|{stat_name}|)</th></tr>"
    )
    info = (
        f"<p>Generalized linear model: {html.escape(r_family_name(m.family))} family, "
        f"{html.escape(m.family.link.name)} link<br>"
        f"<code>{html.escape(m.formula)}</code><br>"
        f"n = {m.nobs}, dispersion = {m.dispersion:.6g}, deviance = {m.deviance:.6g} on "
        f"{m.df_resid} df (null {m.null_deviance:.6g} on {m.df_null} df), AIC = {m.aic:.6g}, "
        f"{m.iterations} Fisher scoring iterations</p>"
    )
    del s
    return f"<div>{info}<table>{head}{''.join(rows)}</table></div>"
