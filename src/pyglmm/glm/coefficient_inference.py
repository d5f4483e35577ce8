r"""Wald inference and likelihood criteria of a fitted GLM, from the IRLS results.

Shared by the in-memory :class:`~pyglmm.glm.model.GeneralizedLinearModel` and the
Dask :class:`~pyglmm.distributed.glm_model.DistributedGeneralizedLinearModel`, which
differ only in how they get the sums over rows.

* :func:`summary_dispersion`: R's ``summary.glm`` dispersion
  :math:`\hat\phi = \sum_i W_i r_i^2/(n-p)` (1 when it is known).
* :func:`coefficient_inference`: :math:`\operatorname{Var}(\hat\beta) = \hat\phi
  (X^\top W X)^{-1}` from the Cholesky factor of :math:`X^\top W X`, standard errors,
  z or t statistics and two-sided p-values.
* :func:`likelihood_criteria`: R's ``logLik``, ``AIC`` and ``BIC``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.families import Family
from pyglmm.glm.weighted_ls import cholesky_inverse

#: Families whose ``logLik`` counts the dispersion as one more parameter.
DISPERSION_PARAMETER_FAMILIES = ("gaussian", "Gamma", "inverse.gaussian")


@dataclass(frozen=True)
class CoefficientInference:
    r"""Covariance and Wald tests of :math:`\hat\beta` (NaN for aliased coefficients).

    Attributes
    ----------
    cov_unscaled : pandas.DataFrame
        :math:`(X^\top W X)^{-1}`.
    vcov : pandas.DataFrame
        :math:`\hat\phi (X^\top W X)^{-1}`.
    se : pandas.Series
        :math:`\sqrt{\hat\phi\,[(X^\top W X)^{-1}]_{jj}}`.
    statistic : pandas.Series
        :math:`\hat\beta_j / \mathrm{se}_j`.
    p_values : pandas.Series
        Two-sided p-values: normal when the dispersion is known, :math:`t_{n-p}` when
        it is estimated (NaN when :math:`n - p = 0`).
    """

    cov_unscaled: pd.DataFrame
    vcov: pd.DataFrame
    se: pd.Series
    statistic: pd.Series
    p_values: pd.Series


@dataclass(frozen=True)
class LikelihoodCriteria:
    r"""R's ``logLik`` (with its ``df``), ``AIC`` and ``BIC`` (NaN for quasi families)."""

    loglik: float
    aic: float
    df_loglik: int
    bic: float


def summary_dispersion(
    dispersion_estimated: bool, df_resid: int, weighted_rss: Callable[[], float]
) -> float:
    r"""R's ``summary.glm`` dispersion.

    :math:`\hat\phi = \sum_i W_i r_i^2/(n-p)` with the working weights and residuals
    (``weighted_rss()`` gives the sum; it is only called when needed), 1 when the
    dispersion is known, NaN when :math:`n - p = 0`.
    """
    if not dispersion_estimated:
        return 1.0
    if df_resid > 0:
        return float(weighted_rss() / df_resid)
    return float("nan")


def coefficient_inference(
    coef: pd.Series,
    aliased: np.ndarray,
    chol: np.ndarray,
    dispersion: float,
    dispersion_estimated: bool,
    df_resid: int,
) -> CoefficientInference:
    r"""Covariance, standard errors, statistics and p-values of :math:`\hat\beta`.

    Parameters
    ----------
    coef : pandas.Series
        :math:`\hat\beta` by column name (NaN for aliased columns).
    aliased : numpy.ndarray of bool
        Which columns of :math:`X` are aliased.
    chol : numpy.ndarray
        Cholesky factor of :math:`X^\top W X` over the non-aliased columns.
    dispersion : float
        :math:`\hat\phi`.
    dispersion_estimated : bool
        True for t tests with ``df_resid`` degrees of freedom, False for z tests.
    df_resid : int
        :math:`n - p`.
    """
    names = list(coef.index)
    p = len(names)
    cov_unscaled = np.full((p, p), np.nan)
    keep = np.flatnonzero(~aliased)
    if len(keep):
        cov_unscaled[np.ix_(keep, keep)] = cholesky_inverse(chol)
    cov_unscaled_df = pd.DataFrame(cov_unscaled, index=names, columns=names)
    vcov = cov_unscaled_df * dispersion
    se = pd.Series(np.sqrt(np.diag(vcov.to_numpy())), index=names, name="se")
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = coef / se
    if not dispersion_estimated:
        pv = 2 * stats.norm.sf(np.abs(stat.to_numpy()))
    elif df_resid > 0:
        pv = 2 * stats.t.sf(np.abs(stat.to_numpy()), df_resid)
    else:
        pv = np.full(p, np.nan)
    return CoefficientInference(
        cov_unscaled=cov_unscaled_df,
        vcov=vcov,
        se=se,
        statistic=stat.rename("statistic"),
        p_values=pd.Series(pv, index=names, name="p_value"),
    )


def likelihood_criteria(
    family: Family,
    rank: int,
    nobs: int,
    family_aic: Callable[[], float],
    nb_loglik: float | None = None,
) -> LikelihoodCriteria:
    r"""R's ``logLik``, ``AIC`` and ``BIC`` of a GLM.

    ``family_aic()`` gives R's ``family$aic`` (:math:`-2\ell` up to the parameters;
    called only for families with a likelihood). With ``nb_loglik`` (a negative
    binomial fit that estimated :math:`\theta`) :math:`\ell` is that value and
    :math:`\theta` counts as a parameter. Otherwise
    :math:`\mathrm{AIC} = \text{family\$aic} + 2p` and :math:`\ell = k - \mathrm{AIC}/2`
    with :math:`k = p` (+1 for a dispersion parameter);
    :math:`\mathrm{BIC} = -2\ell + k\log n`.
    """
    if nb_loglik is not None:
        loglik = float(nb_loglik)
        aic = -2 * loglik + 2 * rank + 2
        df_loglik = rank + 1
    elif not family.has_likelihood:
        loglik = float("nan")
        aic = float("nan")
        df_loglik = rank
    else:
        aic = float(family_aic() + 2 * rank)
        df_loglik = rank + (1 if family.name in DISPERSION_PARAMETER_FAMILIES else 0)
        loglik = float(df_loglik - aic / 2)
    bic = float(-2 * loglik + np.log(nobs) * df_loglik)
    return LikelihoodCriteria(loglik=loglik, aic=aic, df_loglik=df_loglik, bic=bic)
