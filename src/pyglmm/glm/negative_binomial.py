r"""Negative binomial regression with :math:`\theta` estimated, as ``MASS::glm.nb``.

With :math:`Y_i \sim \mathrm{NB}(\mu_i, \theta)`, :math:`V(\mu) = \mu + \mu^2/\theta`,
the log-likelihood is

.. math::

    \ell(\beta, \theta) = \sum_i w_i\{\log\Gamma(\theta + y_i) - \log\Gamma(\theta)
    - \log\Gamma(y_i + 1) + \theta\log\theta + y_i\log\mu_i - (\theta + y_i)\log(\theta + \mu_i)\}.

``glm.nb`` alternates: IRLS for :math:`\beta` at fixed :math:`\theta` (a GLM with
the ``negative.binomial(theta)`` family) and Newton-Raphson on the score of
:math:`\theta` at fixed :math:`\mu` (:func:`theta_ml`, R's ``theta.ml``), starting
from a Poisson fit, until
:math:`|\ell_{\text{old}} - \ell|/d_1 + |\Delta\theta|/d_2 < \epsilon` with
:math:`d_1 = \sqrt{2\max(1, n - p)}` and :math:`d_2 = 1`. The standard error of
:math:`\hat\theta` is :math:`1/\sqrt{I(\hat\theta)}` from the observed information.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import special

from pyglmm.errors import ConvergenceWarning
from pyglmm.families import NegativeBinomial, Poisson
from pyglmm.formula.frame import ModelFrame
from pyglmm.glm.control import GLMControl
from pyglmm.glm.design import design_of_frame
from pyglmm.glm.irls import fit_irls, null_deviance
from pyglmm.glm.warn import warn

_EPS_THETA = np.finfo(float).eps ** 0.25


def nb_loglik(theta: float, mu: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Negative binomial log-likelihood (``glm.nb``'s ``loglik``)."""
    return float(
        np.sum(
            w
            * (
                special.gammaln(theta + y)
                - special.gammaln(theta)
                - special.gammaln(y + 1)
                + theta * np.log(theta)
                + y * np.log(mu + (y == 0))
                - (theta + y) * np.log(theta + mu)
            )
        )
    )


def theta_ml(
    y: np.ndarray,
    mu: np.ndarray,
    n: float | None = None,
    weights: np.ndarray | None = None,
    limit: int = 10,
    eps: float = _EPS_THETA,
) -> tuple[float, float, str | None]:
    r"""Maximum-likelihood :math:`\theta` at fixed means, as ``MASS::theta.ml``.

    Newton-Raphson on the score
    :math:`U(\theta) = \sum_i w_i\{\psi(\theta + y_i) - \psi(\theta) + \log\theta + 1
    - \log(\theta + \mu_i) - (y_i + \theta)/(\mu_i + \theta)\}`, starting from the
    moment estimate :math:`n/\sum_i w_i (y_i/\mu_i - 1)^2`.

    Returns
    -------
    theta, se, warning
        ``warning`` is R's message when the iteration limit was reached or the
        estimate was truncated at zero, else None.
    """
    y = np.asarray(y, dtype=float)
    mu = np.asarray(mu, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    n = float(np.sum(w)) if n is None else float(n)

    def score(th):
        return np.sum(
            w
            * (
                special.digamma(th + y)
                - special.digamma(th)
                + np.log(th)
                + 1
                - np.log(th + mu)
                - (y + th) / (mu + th)
            )
        )

    def info(th):
        return np.sum(
            w
            * (
                -special.polygamma(1, th + y)
                + special.polygamma(1, th)
                - 1 / th
                + 2 / (mu + th)
                - (y + th) / (mu + th) ** 2
            )
        )

    t0 = n / np.sum(w * (y / mu - 1) ** 2)
    it = 0
    delta = 1.0
    i = np.nan
    msg = None
    while True:
        it += 1
        if not (it < limit and abs(delta) > eps):
            break
        t0 = abs(t0)
        i = info(t0)
        delta = score(t0) / i
        t0 = t0 + delta
    if t0 < 0:
        t0 = 0.0
        msg = "estimate truncated at zero"
        warn(msg, ConvergenceWarning)
    if it == limit:
        msg = "iteration limit reached"
        warn(f"theta.ml: {msg}", ConvergenceWarning)
    return float(t0), float(np.sqrt(1 / i)), msg


def fit_glm_nb(
    frame: ModelFrame,
    link: str,
    *,
    control: GLMControl,
    start,
    formula: str,
    call: str,
    weights_arg,
    offset_arg,
    contrasts,
    warn: bool = True,
    offset_expression: str | None = None,
):
    """Fit ``glm.nb``: IRLS for :math:`\\beta` alternating with :func:`theta_ml`."""
    from pyglmm.glm.model import GeneralizedLinearModel, keep_design

    X, Y = design_of_frame(frame), np.asarray(frame.y, dtype=float)
    w = np.ones(len(Y)) if frame.weights is None else frame.weights
    offset = frame.offset
    intercept = frame.fixed.has_intercept
    ctx = warnings.catch_warnings()
    with ctx:
        if not warn:
            warnings.simplefilter("ignore")
        fit = fit_irls(
            X,
            Y,
            Poisson(link),
            weights=w,
            offset=offset,
            start=start,
            control=control,
            column_names=frame.column_names,
        )
        mu = fit.mu
        th, th_se, th_warn = theta_ml(Y, mu, np.sum(w), w, limit=control.maxit)
        fam = NegativeBinomial(th, link=link)
        it = 0
        df_resid = len(Y) - np.sum(w == 0) - fit.rank
        d1 = np.sqrt(2 * max(1, df_resid))
        d2 = delta = 1.0
        Lm = nb_loglik(th, mu, Y, w)
        Lm0 = Lm + 2 * d1
        fam_fit = fam
        while True:
            it += 1
            if not (
                it <= control.maxit and (abs(Lm0 - Lm) / d1 + abs(delta) / d2) > control.epsilon
            ):
                break
            eta = fam.linkfun(mu)
            fit = fit_irls(
                X,
                Y,
                fam,
                weights=w,
                offset=offset,
                etastart=eta,
                control=control,
                column_names=frame.column_names,
            )
            fam_fit = fam
            t0 = th
            th, th_se, th_warn = theta_ml(Y, mu, np.sum(w), w, limit=control.maxit)
            fam = NegativeBinomial(th, link=link)
            mu = fit.mu
            delta = t0 - th
            Lm0 = Lm
            Lm = nb_loglik(th, mu, Y, w)
        if it > control.maxit:
            warn("glm.nb: alternation limit reached", ConvergenceWarning)
            th_warn = "alternation limit reached"
        if frame.offset_given and intercept and np.any(offset != 0):
            null_dev = null_deviance(
                fit.y, fam, fit.prior_weights, offset, fit.mu, True, control, True
            )
        else:
            null_dev = null_deviance(
                fit.y, fam_fit, fit.prior_weights, offset, fit.mu, intercept, control, False
            )
    model = GeneralizedLinearModel(
        frame=frame,
        family=fam_fit,
        fit=fit,
        null_dev=null_dev,
        control=control,
        formula=formula,
        call=call,
        weights_arg=weights_arg,
        offset_arg=offset_arg,
        contrasts=contrasts,
        theta_estimated=True,
        theta_se=th_se,
        nb_loglik=Lm,
        nb_warning=th_warn,
        offset_expression=offset_expression,
    )
    model.theta = th
    model.call = f"glm.nb(formula = {formula}, data = data, init.theta = {th:.10g}, link = {link})"
    return keep_design(model, X)
