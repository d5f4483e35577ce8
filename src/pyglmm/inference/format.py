"""Printing of the inference tables in R's style (heading, aligned columns, p-values)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def format_pval(p: float, digits: int = 4) -> str:
    """R's ``format.pval``: ``< 2.2e-16`` below machine precision."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return ""
    eps = np.finfo(float).eps
    if p < eps:
        return "< 2.2e-16"
    return f"{p:.{digits}g}"


def _stars(p: float) -> str:
    if p is None or not np.isfinite(p):
        return ""
    for cut, s in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return s
    return ""


def format_table(
    tab: pd.DataFrame,
    heading: str | None = None,
    pcol: str | None = None,
    digits: int = 5,
    int_cols: tuple[str, ...] = (),
) -> str:
    """A DataFrame as R prints an ``anova``/coefficient table (signif. stars when ``pcol``)."""
    cols: dict[str, list[str]] = {}
    for c in tab.columns:
        vals = tab[c].to_numpy()
        if c == pcol:
            cols[c] = [format_pval(float(v)) for v in vals]
        elif c in int_cols:
            cols[c] = ["" if not np.isfinite(v) else f"{int(round(v))}" for v in vals.astype(float)]
        else:
            cols[c] = ["" if not np.isfinite(v) else f"{v:.{digits}g}" for v in vals.astype(float)]
    body = pd.DataFrame(cols, index=tab.index)
    if pcol is not None:
        body[""] = [_stars(float(v)) for v in tab[pcol].to_numpy()]
    lines = []
    if heading:
        lines.append(heading)
    lines.append(body.to_string())
    if pcol is not None:
        lines.append("---")
        lines.append("Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1")
    return "\n".join(lines)


def format_anova_table(tab) -> str:
    """Print an :class:`~pyglmm.inference.lmm_tests.LmmAnovaTable` as lmerTest does."""
    return format_table(
        pd.DataFrame(tab), getattr(tab, "heading", None), pcol="Pr(>F)", int_cols=("NumDF",)
    )
