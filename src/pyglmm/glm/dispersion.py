r"""Estimators of the GLM dispersion :math:`\phi` (seed notes 3.4).

* Pearson: :math:`\hat\phi_P = X^2/(n-p)` with
  :math:`X^2 = \sum_i w_i (y_i - \hat\mu_i)^2/V(\hat\mu_i)`.
* Fletcher (2012): :math:`\hat\phi_F = \hat\phi_P/(1 - \bar s)`,
  :math:`\bar s = n^{-1}\sum_i V'(\hat\mu_i)(y_i - \hat\mu_i)/V(\hat\mu_i)`, better behaved
  than Pearson's for Poisson data with small counts.
* Deviance: :math:`D/(n-p)`.

R's ``summary.glm`` reports :math:`\sum_i W_i r_i^2/(n-p)` with the working weights and
working residuals of the last IRLS iteration, which equals :math:`\hat\phi_P` at
convergence (see :attr:`GeneralizedLinearModel.dispersion`).
"""

from __future__ import annotations

import numpy as np

from pyglmm.families import Family


def pearson_chisq(y, mu, family: Family, weights=None) -> float:
    r"""Pearson's :math:`X^2 = \sum_i w_i (y_i - \mu_i)^2 / V(\mu_i)`."""
    y, mu = np.asarray(y, float), np.asarray(mu, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = w * (y - mu) ** 2 / family.variance(mu)
    return float(np.sum(terms[w > 0]))


def pearson_dispersion(y, mu, family: Family, df: float, weights=None) -> float:
    r""":math:`\hat\phi_P = X^2/\text{df}`."""
    return pearson_chisq(y, mu, family, weights) / df if df > 0 else float("nan")


def fletcher_dispersion(y, mu, family: Family, df: float, weights=None) -> float:
    r"""Fletcher's :math:`\hat\phi_F = \hat\phi_P / (1 - \bar s)`."""
    y, mu = np.asarray(y, float), np.asarray(mu, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    used = w > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        s = family.variance_derivative(mu) * (y - mu) / family.variance(mu)
    s_bar = float(np.mean(s[used]))
    return pearson_dispersion(y, mu, family, df, weights) / (1 - s_bar)


def deviance_dispersion(deviance: float, df: float) -> float:
    r""":math:`D/\text{df}`."""
    return deviance / df if df > 0 else float("nan")
