"""Coefficient tables and ANOVA tables of linear mixed models with Satterthwaite or
Kenward-Roger denominator degrees of freedom, as lmerTest's ``summary`` and ``anova``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pyglmm.errors import PyglmmError
from pyglmm.inference.contrasts import type1_contrasts, type3_contrasts
from pyglmm.inference.kenward_roger import kr_contest1d, kr_contest_md
from pyglmm.inference.satterthwaite import contest1d, contest_md

_FCOLS = ("Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)")
_DDF = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger", "kr": "Kenward-Roger"}


def _ddf_name(ddf: str) -> str:
    key = str(ddf).lower().replace("_", "-").replace(" ", "-")
    if key not in _DDF:
        raise PyglmmError(f"ddf must be 'Satterthwaite' or 'Kenward-Roger', not {ddf!r}")
    return _DDF[key]


def coef_table(model, ddf: str = "Satterthwaite") -> pd.DataFrame:
    """lmerTest's ``coef(summary(m, ddf=...))``: ``Estimate, Std. Error, df, t value, Pr(>|t|)``.

    With ``ddf="Kenward-Roger"`` the standard errors are the square roots of the
    diagonal of the Kenward-Roger adjusted covariance.
    """
    method = _ddf_name(ddf)
    names = list(model.fixef.index)
    rows = []
    for j in range(len(names)):
        lv = np.zeros(len(names))
        lv[j] = 1.0
        rows.append(contest1d(model, lv) if method == "Satterthwaite" else kr_contest1d(model, lv))
    out = pd.DataFrame(rows, index=pd.Index(names))
    out.attrs["ddf"] = method
    return out


class LmmAnovaTable(pd.DataFrame):
    """lmerTest's ANOVA table (a DataFrame with a heading; ``str()`` prints as R)."""

    _metadata = ["heading", "hypotheses"]

    @property
    def _constructor(self):
        return LmmAnovaTable

    def __str__(self) -> str:
        from pyglmm.inference.format import format_anova_table

        return format_anova_table(self)

    def __repr__(self) -> str:
        return self.__str__()


def lme4_anova(model) -> LmmAnovaTable:
    """lme4's ``anova(m)`` of one model: sequential sums of squares of the effects
    ``R_Xβ̂`` by term, ``F = MS/σ̂²``, no denominator degrees of freedom."""
    f = model.factor_at(np.asarray(model.theta, dtype=float))
    eff = (f.RX() @ model.fixef.to_numpy()) ** 2
    cols = {}
    for term, idx in _term_columns_of(model).items():
        if idx.size:
            cols[term] = idx
    rows, names = [], []
    s2 = float(model.sigma) ** 2
    for term, idx in cols.items():
        ss = float(eff[idx].sum())
        rows.append(
            {
                "npar": float(idx.size),
                "Sum Sq": ss,
                "Mean Sq": ss / idx.size,
                "F value": ss / idx.size / s2,
            }
        )
        names.append(term)
    tab = LmmAnovaTable(
        pd.DataFrame(rows, index=pd.Index(names), columns=["npar", "Sum Sq", "Mean Sq", "F value"])
    )
    tab.heading = "Analysis of Variance Table"
    tab.hypotheses = {}
    return tab


def _term_columns_of(model):
    from pyglmm.inference.contrasts import _term_columns

    return _term_columns(model)


def lmm_anova(model, type: int | str = 3, ddf: str = "Satterthwaite") -> LmmAnovaTable:
    """lmerTest's ``anova(m, type=, ddf=)``: F tests of the fixed-effect terms.

    Parameters
    ----------
    model : LinearMixedModel
    type : 1 or 3 (also "I", "III")
        Sequential or marginal (type III, lmerTest's definition) hypotheses.
    ddf : "Satterthwaite", "Kenward-Roger" or "lme4"
        ``"lme4"``: lme4's sequential table without denominator df (``type`` ignored).

    Returns
    -------
    LmmAnovaTable
        Columns ``Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F)``, one row per term.
    """
    if str(ddf).lower() == "lme4":
        return lme4_anova(model)
    t = str(type).upper()
    t = {"I": "1", "III": "3"}.get(t, t)
    if t not in ("1", "3"):
        raise PyglmmError(f"type must be 1 or 3 (I or III), not {type!r}")
    method = _ddf_name(ddf)
    Ls = type1_contrasts(model) if t == "1" else type3_contrasts(model)
    rows, names = [], []
    for term, L in Ls.items():
        names.append(term)
        if L.shape[0] == 0:
            rows.append(dict.fromkeys(_FCOLS, np.nan))
        elif method == "Satterthwaite":
            rows.append(contest_md(model, L))
        else:
            rows.append(kr_contest_md(model, L))
    tab = LmmAnovaTable(pd.DataFrame(rows, index=pd.Index(names), columns=list(_FCOLS)))
    roman = {"1": "I", "3": "III"}[t]
    tab.heading = f"Type {roman} Analysis of Variance Table with {method}'s method"
    tab.hypotheses = Ls
    return tab
