r"""Residuals of a fitted GLM or linear model, as R's ``residuals.glm`` / ``residuals.lm``.

With response :math:`y_i`, fitted mean :math:`\hat\mu_i`, linear predictor
:math:`\hat\eta_i`, prior weight :math:`w_i`, variance function :math:`V` and
dispersion :math:`\hat\phi`:

* response: :math:`y_i - \hat\mu_i`
* working: :math:`(y_i - \hat\mu_i) / (d\mu/d\eta)(\hat\eta_i)` (the IRLS working residual)
* Pearson: :math:`e^P_i = (y_i - \hat\mu_i)\sqrt{w_i} / \sqrt{V(\hat\mu_i)}`
* scaled Pearson: :math:`e^P_i / \sqrt{\hat\phi}` (approximately standard normal)
* deviance: :math:`e^D_i = \mathrm{sign}(y_i - \hat\mu_i)\sqrt{d_i}` with
  :math:`D = \sum_i d_i`.

For a Gaussian identity model (a linear model) the Pearson and deviance
residuals are both :math:`\sqrt{w_i}(y_i - \hat\mu_i)`, R's weighted residuals.
"""

from __future__ import annotations

import numpy as np

from pyglmm.families import Family


def response_residuals(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    r""":math:`y_i - \hat\mu_i`."""
    return np.asarray(y, dtype=float) - np.asarray(mu, dtype=float)


def working_residuals(y: np.ndarray, mu: np.ndarray, eta: np.ndarray, family: Family) -> np.ndarray:
    r"""IRLS working residuals :math:`(y_i - \hat\mu_i)/\mu'(\hat\eta_i)`."""
    return response_residuals(y, mu) / family.mu_eta(np.asarray(eta, dtype=float))


def pearson_residuals(
    y: np.ndarray, mu: np.ndarray, prior_weights: np.ndarray, family: Family
) -> np.ndarray:
    r"""Raw Pearson residuals :math:`(y_i - \hat\mu_i)\sqrt{w_i/V(\hat\mu_i)}` (R's "pearson")."""
    mu = np.asarray(mu, dtype=float)
    return response_residuals(y, mu) * np.sqrt(prior_weights) / np.sqrt(family.variance(mu))


def deviance_residuals(
    y: np.ndarray, mu: np.ndarray, prior_weights: np.ndarray, family: Family
) -> np.ndarray:
    r"""Deviance residuals :math:`\mathrm{sign}(y_i - \hat\mu_i)\sqrt{d_i}`."""
    y = np.asarray(y, dtype=float)
    mu = np.asarray(mu, dtype=float)
    d = family.dev_resids(y, mu, np.asarray(prior_weights, dtype=float))
    return np.sign(y - mu) * np.sqrt(np.maximum(d, 0.0))
