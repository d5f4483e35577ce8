"""ANOVA tables: pandas DataFrames that print as R prints them.

:class:`AnovaTable` is a :class:`pandas.DataFrame` (index = term names and
``Residuals``, columns ``df``, ``sum_sq``, ``mean_sq``, ``F``, ``p_value``) whose
``str()`` is R's ``print.anova`` text; :class:`ModelComparisonTable` holds the partial
*F* test between nested linear models (columns ``df_resid``, ``rss``, ``df``,
``sum_sq``, ``F``, ``p_value``), printed as R's ``anova(m1, m2)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pyglmm.linear.rprint import print_coefmat

ANOVA_COLUMNS = ["df", "sum_sq", "mean_sq", "F", "p_value"]
COMPARISON_COLUMNS = ["df_resid", "rss", "df", "sum_sq", "F", "p_value"]

# R's column headers for printing
_R_HEADERS = {
    "df": "Df",
    "sum_sq": "Sum Sq",
    "mean_sq": "Mean Sq",
    "F": "F value",
    "p_value": "Pr(>F)",
}


class _RTable(pd.DataFrame):
    """A DataFrame with a heading, printed as R's ``print.anova``."""

    _metadata = ["heading"]

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return type(self)

    def to_frame(self) -> pd.DataFrame:
        """The table as a plain :class:`pandas.DataFrame`."""
        return pd.DataFrame(self)

    def _r_lines(self) -> list[str] | None:  # pragma: no cover - overridden
        return None

    def __str__(self) -> str:
        lines = self._r_lines()
        if lines is None:
            return pd.DataFrame.__repr__(self.to_frame())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str | None:
        heading = getattr(self, "heading", None) or []
        head = "".join(f"<p><b>{h}</b></p>" for h in heading if h)
        return head + self.to_frame().to_html(float_format=lambda v: f"{v:.6g}", na_rep="")


class AnovaTable(_RTable):
    """ANOVA table (types I, II, III) of a linear model.

    A :class:`pandas.DataFrame` with index = term names (and ``Residuals``) and
    columns ``df``, ``sum_sq``, ``mean_sq``, ``F``, ``p_value``; ``heading`` holds the
    title lines R prints above it. ``print(table)`` gives R's layout.
    """

    _metadata = ["heading", "show_mean_sq"]

    def _r_lines(self) -> list[str] | None:
        if list(self.columns) != ANOVA_COLUMNS:
            return None
        show_mean = getattr(self, "show_mean_sq", True)
        cols = (
            ["df", "sum_sq", "mean_sq", "F", "p_value"]
            if show_mean
            else [
                "sum_sq",
                "df",
                "F",
                "p_value",
            ]
        )
        values = self[cols].to_numpy(dtype=float)
        headers = [_R_HEADERS[c] for c in cols]
        df_col = cols.index("df")
        f_col = cols.index("F")
        zap = [i for i in range(len(cols) - 1) if i not in (df_col, f_col)]
        lines = list(getattr(self, "heading", None) or [])
        lines += print_coefmat(
            values,
            [str(i) for i in self.index],
            headers,
            digits=5,
            tst_ind=[f_col],
            zap_ind=zap,
            has_pvalue=True,
            na_print="",
        )
        return lines


class ModelComparisonTable(_RTable):
    """Partial *F* tests between nested linear models (R's ``anova(m1, m2, ...)``).

    Columns ``df_resid``, ``rss``, ``df``, ``sum_sq``, ``F``, ``p_value``; one row per
    model, in the order given; the first row has NaN in the difference columns.
    """

    def _r_lines(self) -> list[str] | None:
        if list(self.columns) != COMPARISON_COLUMNS:
            return None
        values = self[COMPARISON_COLUMNS].to_numpy(dtype=float)
        headers = ["Res.Df", "RSS", "Df", "Sum of Sq", "F", "Pr(>F)"]
        lines = list(getattr(self, "heading", None) or [])
        lines += print_coefmat(
            values,
            [str(i) for i in self.index],
            headers,
            digits=5,
            tst_ind=[4],
            zap_ind=[1, 3],
            has_pvalue=True,
            na_print="",
        )
        return lines


def make_anova_table(
    terms: list[str],
    df: list[float],
    sum_sq: list[float],
    df_resid: float,
    rss: float,
    heading: list[str],
    *,
    show_mean_sq: bool = True,
) -> AnovaTable:
    """Assemble an :class:`AnovaTable` with *F* = (SS/df)/(RSS/df_resid) and its p-value."""
    from scipy import stats

    df_arr = np.asarray(list(df) + [df_resid], dtype=float)
    ss_arr = np.asarray(list(sum_sq) + [rss], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ms = ss_arr / df_arr
        scale = rss / df_resid if df_resid > 0 else np.nan
        f = ms / scale
    f[-1] = np.nan
    f[df_arr == 0] = np.nan
    p = np.where(np.isnan(f), np.nan, stats.f.sf(f, df_arr, df_resid))
    table = AnovaTable(
        {"df": df_arr, "sum_sq": ss_arr, "mean_sq": ms, "F": f, "p_value": p},
        index=pd.Index(list(terms) + ["Residuals"], name="term"),
    )
    table.heading = heading
    table.show_mean_sq = show_mean_sq
    return table


def make_comparison_table(
    df_resid: list[float], rss: list[float], heading: list[str], test: str = "F", **_: Any
) -> ModelComparisonTable:
    """R's ``anova.lmlist``: differences between successive models, *F* on the biggest model."""
    from scipy import stats

    rdf = np.asarray(df_resid, dtype=float)
    rss_arr = np.asarray(rss, dtype=float)
    big = int(np.argmin(rdf))
    scale = rss_arr[big] / rdf[big]
    ddf = np.r_[np.nan, -np.diff(rdf)]
    dss = np.r_[np.nan, -np.diff(rss_arr)]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (dss / ddf) / scale
    f[ddf == 0] = np.nan
    f[f < 0] = np.nan
    if test == "F":
        p = np.where(np.isnan(f), np.nan, stats.f.sf(f, np.abs(ddf), rdf[big]))
    else:  # "Chisq": likelihood-ratio test with the scale of the biggest model
        stat = dss / scale
        p = np.where(np.isnan(stat), np.nan, stats.chi2.sf(np.abs(stat), np.abs(ddf)))
    table = ModelComparisonTable(
        {"df_resid": rdf, "rss": rss_arr, "df": ddf, "sum_sq": dss, "F": f, "p_value": p},
        index=pd.Index([str(i + 1) for i in range(len(rdf))], name="model"),
    )
    table.heading = heading
    return table
