"""lme4-style text summary of a fitted linear mixed model.

The layout is ``print(summary(m), correlation = TRUE)`` of lme4: title, formula,
criterion (REML) or the AIC/BIC/logLik/deviance/df.resid table (ML), quantiles of
the scaled Pearson residuals, the variance components with correlations, the
number of observations and of levels, the fixed-effects table and the
correlation of the fixed effects, then convergence messages.  Numbers are
formatted as R formats a numeric vector with ``digits = 4`` (a common number of
decimals, enough to show four significant digits of every element).
"""

from __future__ import annotations

import html
import math
import re
from typing import TYPE_CHECKING

import numpy as np

from pyglmm.mixed.varcorr import unique_group_names

if TYPE_CHECKING:  # pragma: no cover
    from pyglmm.mixed.lmer import LinearMixedModel


def _needed_decimals(x: float, digits: int) -> int:
    if x == 0 or not math.isfinite(x):
        return 0
    ax = abs(x)
    e = math.floor(math.log10(ax))
    rounded = round(ax, digits - 1 - e)
    if rounded == 0:
        return 0
    e = math.floor(math.log10(rounded))
    for sig in range(1, digits + 1):
        if abs(round(rounded, sig - 1 - e) - rounded) <= 1e-12 * rounded:
            return max(0, sig - 1 - e)
    return max(0, digits - 1 - e)


def r_format(values: np.ndarray | list[float], digits: int = 4) -> list[str]:
    """Format numbers as R's ``format(x, digits = digits)`` (fixed notation)."""
    vals = [float(v) for v in values]
    dec = max((_needed_decimals(v, digits) for v in vals), default=0)
    out = []
    for v in vals:
        if math.isnan(v):
            out.append("NaN")
        else:
            s = f"{v:.{dec}f}"
            if s.startswith("-") and float(s) == 0:
                s = s[1:]
            out.append(s)
    return out


_VOWELS = set("aeiou")


def r_abbreviate(name: str, minlength: int = 6) -> str:
    """R's ``abbreviate(name, minlength)`` (the default method, for ASCII names)."""
    s = name
    if len(s) <= minlength:
        return s
    chars = list(s)
    # drop lower-case vowels from the right (not the first character)
    i = len(chars) - 1
    while len(chars) > minlength and i > 0:
        if chars[i] in _VOWELS and chars[i - 1] != " ":
            del chars[i]
        i -= 1
    i = len(chars) - 1
    while len(chars) > minlength and i > 0:
        if chars[i].islower() and chars[i - 1] != " ":
            del chars[i]
        i -= 1
    return "".join(chars)[: max(minlength, 0)] if len(chars) > minlength else "".join(chars)


def _table(rows: list[list[str]], align: list[str], header: list[str] | None = None) -> list[str]:
    allrows = ([header] if header else []) + rows
    ncol = max(len(r) for r in allrows)
    allrows = [r + [""] * (ncol - len(r)) for r in allrows]
    widths = [max(len(r[j]) for r in allrows) for j in range(ncol)]
    lines = []
    for r in allrows:
        cells = []
        for j, c in enumerate(r):
            cells.append(c.ljust(widths[j]) if align[j] == "l" else c.rjust(widths[j]))
        lines.append(" ".join(cells))
    return lines


def short_repr(m: LinearMixedModel) -> str:
    """One-paragraph description (``repr``)."""
    crit = "REML criterion" if m.reml else "deviance"
    return (
        f"<LinearMixedModel {m.formula!r}: {crit} {m.objective:.4f}, "
        f"n = {m.nobs}, fixef = { ({k: round(float(v), 6) for k, v in m.fixef.items()}) }, "
        f"sigma = {m.sigma:.6g}>"
    )


class LmerSummary:
    """The summary of a :class:`~pyglmm.mixed.lmer.LinearMixedModel`; ``str()`` prints it."""

    def __init__(self, model: LinearMixedModel, correlation: bool | None = None) -> None:
        self.model = model
        p = model.p
        self.correlation = (p > 1 and p <= 12) if correlation is None else correlation
        self.coefficients = model.coef_table()
        self.varcorr = model.varcorr
        self.fixef_correlation = model.fixef_correlation()
        self.scaled_residual_quantiles = np.quantile(
            model.residuals("pearson", scaled=True).to_numpy(), [0, 0.25, 0.5, 0.75, 1]
        )

    # ---------------------------------------------------------------------
    def _title(self) -> list[str]:
        m = self.model
        meth = "REML" if m.reml else "maximum likelihood "
        lines = [f"Linear mixed model fit by {meth} ['lmerMod']", f"Formula: {m.formula}"]
        if m.data_name:
            lines.append(f"   Data: {m.data_name}")
        if m.weights is not None and isinstance(m.frame_weights_name, str):
            lines.append(f"Weights: {m.frame_weights_name}")
        lines.append("")
        if m.reml:
            lines.append(f"REML criterion at convergence: {_r_round1(m.objective)}")
        else:
            vals = [m.aic, m.bic, m.loglik, m.objective]
            cells = [f"{v:.1f}" for v in vals] + [str(int(m.df_resid))]
            names = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
            w = max(max(len(c) for c in cells), 8)
            lines.append(" ".join(n.rjust(w) for n in names) + " ")
            lines.append(" ".join(c.rjust(w) for c in cells) + " ")
        lines.append("")
        return lines

    def _residuals(self) -> list[str]:
        q = r_format(_zapsmall(self.scaled_residual_quantiles, 5), 4)
        names = ["Min", "1Q", "Median", "3Q", "Max"]
        w = max(max(len(s) for s in q), max(len(n) for n in names))
        return [
            "Scaled residuals: ",
            " ".join(n.rjust(w) for n in names) + " ",
            " ".join(s.rjust(w) for s in q) + " ",
            "",
        ]

    def _random(self) -> list[str]:
        m = self.model
        vc = self.varcorr
        diag = vc[vc["var2"].isna()]
        var_s = r_format(diag["vcov"].to_numpy(), 4)
        sd_s = r_format(diag["sdcor"].to_numpy(), 4)
        has_corr = any(t.q > 1 for t in m.terms)
        wv, ws = max(len(x) for x in var_s), max(len(x) for x in sd_s)
        var_s = [x.rjust(wv) for x in var_s]
        sd_s = [x.rjust(ws) for x in sd_s]
        rows: list[list[str]] = []
        k = 0
        covs = m.cov_re()
        for name, t, S in zip(unique_group_names(m.terms), m.terms, covs, strict=True):
            sd = np.sqrt(np.diag(S))
            for i in range(t.q):
                row = [name if i == 0 else "", t.cnames[i], var_s[k], sd_s[k]]
                if has_corr:
                    corr = []
                    for j in range(i):
                        den = sd[i] * sd[j]
                        corr.append(f"{S[i, j] / den:.2f}".rjust(5) if den > 0 else "  NaN")
                    row.append(" ".join(corr).lstrip() if corr else "")
                rows.append(row)
                k += 1
        rows.append(["Residual", "", var_s[k], sd_s[k]] + ([""] if has_corr else []))
        header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] if has_corr else [])
        lines = ["Random effects:"]
        lines += [" " + ln for ln in _table(rows, ["l"] * len(header), header)]
        groups = []
        seen = set()
        for t in m.terms:
            if t.group not in seen:
                seen.add(t.group)
                groups.append(f"{t.group}, {t.nlevels}")
        lines.append(f"Number of obs: {m.nobs}, groups:  {'; '.join(groups)}")
        lines.append("")
        return lines

    def _fixed(self) -> list[str]:
        ct = self.coefficients
        if len(ct) == 0:
            return ["No fixed effect coefficients"]
        est_se = r_format(np.concatenate([ct["Estimate"], ct["Std. Error"]]), 4)
        p = len(ct)
        tv = r_format(np.round(ct["t value"].to_numpy(), 3), 4)
        rows = [
            [name, est_se[i], est_se[p + i], tv[i]] for i, name in enumerate(ct.index.astype(str))
        ]
        lines = ["Fixed effects:"]
        lines += _table(rows, ["l", "r", "r", "r"], ["", "Estimate", "Std. Error", "t value"])
        return lines

    def _correlation(self) -> list[str]:
        if not self.correlation:
            return []
        C = self.fixef_correlation.to_numpy()
        names = list(self.fixef_correlation.index.astype(str))
        p = len(names)
        abbr = [r_abbreviate(n, 6) for n in names]
        rows = []
        for i in range(1, p):
            cells = [f"{C[i, j]:.3f}" for j in range(i)] + [""] * (p - 1 - i)
            rows.append([names[i]] + cells)
        lines = ["", "Correlation of Fixed Effects:"]
        lines += _table(rows, ["l"] + ["r"] * (p - 1), [""] + abbr[: p - 1])
        return lines

    def _messages(self) -> list[str]:
        m = self.model
        msgs = list(m.convergence.messages)
        if not msgs:
            return []
        return ["optimizer (nloptwrap) convergence code: 0 (OK)"] + msgs

    def __str__(self) -> str:
        lines = (
            self._title()
            + self._residuals()
            + self._random()
            + self._fixed()
            + self._correlation()
            + self._messages()
        )
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


def _zapsmall(x: np.ndarray, digits: int) -> np.ndarray:
    """R's (4.2) ``zapsmall(x, digits)``: ``round(x, digits - log10(max|x|))``, the
    number of decimals rounded to the nearest integer as R's ``round`` does."""
    mx = float(np.max(np.abs(x)))
    if mx <= 0:
        return np.round(x, digits)
    return np.round(x, max(0, math.floor(digits - math.log10(mx) + 0.5)))


def _r_round1(x: float) -> str:
    """R's printing of ``round(x, 1)`` (no trailing ``.0``)."""
    s = f"{round(x, 1):.1f}"
    return re.sub(r"\.0$", "", s)
