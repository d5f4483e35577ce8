"""Likelihood-ratio tests between nested mixed models, as lme4's ``anova(m0, m1, ...)``.

The models are ordered by their number of parameters ``npar``; for each model
after the first,

.. math:: χ^2 = 2\\max(0, \\ell_k − \\ell_{k−1}),\\qquad
          \\mathrm{Df} = \\mathrm{npar}_k − \\mathrm{npar}_{k−1},

compared with a ``χ²(Df)`` distribution.  REML fits are first refitted by maximum
likelihood ("refitting model(s) with ML (instead of REML)"), because REML
likelihoods of models with different fixed effects are not comparable; pass
``refit=False`` to compare REML criteria (only meaningful for equal fixed
effects).  Works for any fitted model with ``loglik``, ``npar``, ``aic``, ``bic``,
``nobs`` (and ``reml`` plus ``refit(reml=False)`` for LMMs): the same function
serves LMMs and GLMMs (GLMMs are never refitted).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.errors import PyglmmError
from pyglmm.inference.format import format_anova_table


class LrtTable(pd.DataFrame):
    """lme4's ``anova`` table of nested models: ``npar, AIC, BIC, logLik, deviance, Chisq,
    Df, Pr(>Chisq)``; ``str()`` prints it as R (with the models' formulas)."""

    _metadata = ["heading", "formulas", "refitted"]

    @property
    def _constructor(self):
        return LrtTable

    def __str__(self) -> str:
        head = "\n".join([getattr(self, "heading", "") or ""] + list(self.formulas or []))
        return format_anova_table(pd.DataFrame(self), head.strip())

    def __repr__(self) -> str:
        return self.__str__()


def _ml(model: Any) -> Any:
    from pyglmm.inference.optim import refit_ml

    return refit_ml(model)


def lrt_table(
    models: Sequence[Any],
    refit: bool = True,
    names: Sequence[str] | None = None,
    **_: Any,
) -> LrtTable:
    """Likelihood-ratio tests between nested fits (lme4's ``anova.merMod``).

    Parameters
    ----------
    models : sequence of fitted LMMs or GLMMs
        Fitted to the same observations; any order (sorted by ``npar`` as lme4).
    refit : bool
        Refit REML fits by ML first (lme4's default ``refit = TRUE``).
    names : sequence of str, optional
        Row names (default ``m1, m2, ...`` in the order given).

    Returns
    -------
    LrtTable
    """
    models = list(models)
    if len(models) < 2:
        raise PyglmmError("a likelihood-ratio test needs at least two models")
    if names is None:
        names = [f"m{i + 1}" for i in range(len(models))]
    names = list(names)
    if len(names) != len(models):
        raise PyglmmError("names must have one entry per model")
    nobs = {int(m.nobs) for m in models}
    if len(nobs) > 1:
        raise PyglmmError(
            f"models were not all fitted to the same size of data set (nobs: {sorted(nobs)})"
        )
    refitted = False
    if refit and any(getattr(m, "reml", False) for m in models):
        warnings.warn("refitting model(s) with ML (instead of REML)", UserWarning, stacklevel=3)
        models = [_ml(m) if getattr(m, "reml", False) else m for m in models]
        refitted = True
    npar = np.array([int(m.npar) for m in models])
    order = np.argsort(npar, kind="stable")
    models = [models[i] for i in order]
    names = [names[i] for i in order]
    npar = npar[order]
    llk = np.array([float(m.loglik) for m in models])
    chisq = np.concatenate([[np.nan], 2.0 * np.maximum(0.0, np.diff(llk))])
    dfc = np.concatenate([[np.nan], np.diff(npar).astype(float)])
    with np.errstate(invalid="ignore"):
        pv = np.where(dfc == 0, np.nan, stats.chi2.sf(chisq, np.where(dfc > 0, dfc, np.nan)))
    pv[0] = np.nan
    tab = LrtTable(
        {
            "npar": npar.astype(float),
            "AIC": [float(m.aic) for m in models],
            "BIC": [float(m.bic) for m in models],
            "logLik": llk,
            "deviance": -2.0 * llk,
            "Chisq": chisq,
            "Df": dfc,
            "Pr(>Chisq)": pv,
        },
        index=pd.Index(names),
    )
    dname = getattr(models[0], "data_name", None)
    tab.heading = (f"Data: {dname}\n" if dname else "") + "Models:"
    tab.formulas = [
        f"{nm}: {getattr(m, 'formula', '')}" for nm, m in zip(names, models, strict=True)
    ]
    tab.refitted = refitted
    return tab


def anova_compare(models: Sequence[Any], **kwargs: Any) -> LrtTable:
    """Entry point for ``pg.anova(m0, m1, ...)`` (``_anova_compare`` of the mixed-model classes)."""
    return lrt_table(models, **kwargs)
