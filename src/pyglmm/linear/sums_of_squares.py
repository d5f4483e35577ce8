r"""Sums of squares of types I, II and III for a linear model, as R and ``car::Anova``.

With :math:`Q^\top W^{1/2} y` the effects of the pivoted QR of the model matrix,

* **Type I** (sequential, R's ``anova.lm``): the sum of squares of term :math:`T` is the
  sum of the squared effects of its columns, i.e. the reduction in RSS when :math:`T`
  is added to the terms before it in the formula.
* **Type II** (``car::Anova(type=2)``): each term after all terms that do not contain
  it (marginality):

  .. math:: SS_{II}(T) = \mathrm{RSS}(M \setminus \{T\} \setminus \mathcal R_T)
                       - \mathrm{RSS}(M \setminus \mathcal R_T),

  :math:`\mathcal R_T` the higher-order relatives of :math:`T` (terms whose variables
  include all of :math:`T`'s). ``car`` computes the same number as a linear hypothesis
  in the metric of :math:`\widehat{\mathrm{Var}}(\hat\beta)`; with aliased
  coefficients it compares models, as here.
* **Type III** (``car::Anova(type=3)``): each term (the intercept included) last, as
  the Wald test of :math:`\beta_T = 0` in the full model,

  .. math:: SS_{III}(T) = \hat\beta_T^\top \big[(X^\top W X)^{-1}_{TT}\big]^{-1} \hat\beta_T .

  Type III tests depend on the contrasts: they test meaningful hypotheses with
  sum-to-zero (``contr.sum``) or other orthogonal contrasts; with R's default
  treatment contrasts the main-effect rows test simple effects at the reference levels
  (``car`` prints them all the same, and so does pyglmm).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import linalg

from pyglmm.errors import PyglmmError
from pyglmm.formula.parse import split_top_level
from pyglmm.linear.least_squares import least_squares

if TYPE_CHECKING:  # pragma: no cover
    from pyglmm.linear.model import LinearModel


def _term_variables(term: str) -> frozenset[str]:
    return frozenset(split_top_level(term, ":", drop_empty=False))


def relatives(term: str, terms: list[str]) -> list[str]:
    """Higher-order relatives of ``term``: other terms containing all of its variables."""
    mine = _term_variables(term)
    return [t for t in terms if t != term and mine <= _term_variables(t)]


def sequential(model: LinearModel) -> tuple[list[str], list[float], list[float]]:
    """Type I: term labels, degrees of freedom and sums of squares (R's ``anova.lm``)."""
    fit = model._fit
    rank = fit.rank
    effects = fit.qr.effects[:rank]
    asgn = model.assign[fit.qr.pivot[:rank]]
    terms, dfs, sss = [], [], []
    for k in sorted(set(asgn.tolist())):
        if k == 0:
            continue
        sel = asgn == k
        terms.append(model.terms[k - 1])
        dfs.append(float(sel.sum()))
        sss.append(float(np.sum(effects[sel] ** 2)))
    return terms, dfs, sss


def _rss_without(model: LinearModel, drop_terms: list[str]) -> tuple[float, int]:
    drop = {model.terms.index(t) + 1 for t in drop_terms}
    cols = np.array([a not in drop for a in model.assign])
    fit = least_squares(model._X[:, cols], model.y, model.prior_weights, model._offset)
    return fit.rss, fit.df_resid


def type2(model: LinearModel) -> tuple[list[str], list[float], list[float]]:
    """Type II: each term after every term that does not contain it (``car::Anova``)."""
    terms, dfs, sss = [], [], []
    for term in model.terms:
        rel = relatives(term, model.terms)
        rss_small, df_small = _rss_without(model, [term, *rel])
        rss_big, df_big = _rss_without(model, rel) if rel else (model.deviance, model.df_resid)
        terms.append(term)
        dfs.append(float(df_small - df_big))
        sss.append(float(rss_small - rss_big) if df_small > df_big else np.nan)
    return terms, dfs, sss


def type3(model: LinearModel) -> tuple[list[str], list[float], list[float]]:
    """Type III: Wald sums of squares of each term's coefficients in the full model."""
    if np.any(model.aliased):
        raise PyglmmError(
            "there are aliased coefficients in the model "
            f"({', '.join(np.asarray(model.coef.index)[model.aliased])}); type III tests need a "
            "full-rank model matrix (car::Anova refuses too); drop the aliased terms or use type "
            "I or II"
        )
    cov = model._fit.unscaled_cov()
    beta = model.coef.to_numpy()
    labels = (["(Intercept)"] if model.has_intercept else []) + list(model.terms)
    first = 0 if model.has_intercept else 1
    terms, dfs, sss = [], [], []
    for k, label in enumerate(labels, start=first):
        sel = model.assign == k
        if not sel.any():
            continue
        b = beta[sel]
        v = cov[np.ix_(sel, sel)]
        ss = float(b @ linalg.solve(v, b, assume_a="pos"))
        terms.append(label)
        dfs.append(float(sel.sum()))
        sss.append(ss)
    return terms, dfs, sss
