"""Negative binomial GLMMs with the shape θ estimated, as lme4's ``glmer.nb``.

lme4 first fits the Poisson GLMM, takes a first θ from the conditional means by
maximum likelihood (``MASS::theta.ml``), then maximises the Laplace
log-likelihood of the negative binomial GLMM *profiled* over the shape:
each trial value ``θ`` is a full :func:`~pyglmm.mixed.glmer.glmer` fit with the
family ``NegativeBinomial(θ)``, and ``log θ`` is optimised by a one-dimensional
bounded search.  The shape counts as one more parameter in ``AIC``/``BIC``.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
from scipy import optimize, special

from pyglmm.errors import ConvergenceWarning, FamilyError
from pyglmm.families import NegativeBinomial
from pyglmm.mixed.glmer import GeneralizedLinearMixedModel, _fit, glmer
from pyglmm.mixed.pirls import GlmmResponse, Pirls


def theta_ml(y: np.ndarray, mu: np.ndarray, weights: np.ndarray, limit: int = 25) -> float:
    """ML estimate of the negative binomial shape given the means (``MASS::theta.ml``)."""
    w = weights
    n = w.sum()
    t0 = n / np.sum(w * (y / mu - 1.0) ** 2)
    t0 = t0 if np.isfinite(t0) and t0 > 0 else 1.0
    for _ in range(limit):
        t0 = abs(t0)
        score = np.sum(
            w
            * (
                special.digamma(t0 + y)
                - special.digamma(t0)
                + np.log(t0)
                + 1
                - np.log(t0 + mu)
                - (y + t0) / (mu + t0)
            )
        )
        info = np.sum(
            w
            * (
                -special.polygamma(1, t0 + y)
                + special.polygamma(1, t0)
                - 1 / t0
                + 2 / (mu + t0)
                - (y + t0) / (mu + t0) ** 2
            )
        )
        step = score / info
        t0 = t0 + step
        if abs(step) < 1e-8 * max(t0, 1e-8):
            break
    return float(max(t0, 1e-8))


def glmer_nb(
    formula: str,
    data: Any,
    weights: Any = None,
    offset: Any = None,
    *,
    link: str = "log",
    contrasts: dict[str, str] | None = None,
    calc_derivs: bool | None = None,
    interval_width: float = 3.0,
) -> GeneralizedLinearMixedModel:
    """Negative binomial GLMM with the shape θ estimated (lme4's ``glmer.nb``).

    Returns a :class:`GeneralizedLinearMixedModel` whose ``family`` is
    ``NegativeBinomial(θ̂)``; ``model.nb_theta`` is ``θ̂`` (lme4's
    ``getME(m, "glmer.nb.theta")``).
    """
    t_start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m0 = glmer(
            formula,
            data,
            "poisson",
            weights=weights,
            offset=offset,
            contrasts=contrasts,
            link=link,
            calc_derivs=False,
        )
    y, mu = m0.y, m0._mu
    if np.any(y < 0):
        raise FamilyError("negative values are not allowed for the negative binomial family")
    th0 = theta_ml(y, mu, m0.prior_weights)
    frame, terms, X = m0.frame, m0.terms, m0.X
    names = list(m0.fixef.index)
    resp0 = m0.response
    state = {"theta": m0.theta.copy(), "fixef": m0.fixef.to_numpy().copy()}
    cache: dict[float, float] = {}

    def fit_at(nb_theta: float, derivs: bool | None) -> GeneralizedLinearMixedModel:
        fam = NegativeBinomial(nb_theta, link=link)
        resp = GlmmResponse(fam, resp0.y, resp0.wt, resp0.ntrials, resp0.offset)
        pl = Pirls(terms, X, resp)
        mustart = resp0.y + (resp0.y == 0) / 6.0
        return _fit(
            frame,
            terms,
            pl,
            fam,
            X,
            names,
            1,
            mustart,
            dict(state),
            derivs,
            warn_level=4,
            extra_params=1,
        )

    def objective(logth: float) -> float:
        key = round(logth, 12)
        if key in cache:
            return cache[key]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                m = fit_at(math.exp(logth), False)
            except Exception:  # noqa: BLE001 - a failed trial value is just a bad value
                cache[key] = math.inf
                return math.inf
        state["theta"], state["fixef"] = m.theta.copy(), m.fixef.to_numpy().copy()
        cache[key] = m.objective
        return m.objective

    lo, hi = math.log(th0) - interval_width, math.log(th0) + interval_width
    res = optimize.minimize_scalar(
        objective, bounds=(lo, hi), method="bounded", options={"xatol": 1e-7}
    )
    if not res.success:
        warnings.warn(
            "glmer_nb: the search for theta did not converge", ConvergenceWarning, stacklevel=2
        )
    if min(abs(res.x - lo), abs(res.x - hi)) < 1e-4:
        warnings.warn(
            "glmer_nb: theta at the end of the search interval; the estimate may be a boundary "
            "value",
            ConvergenceWarning,
            stacklevel=2,
        )
    th = math.exp(res.x)
    model = fit_at(th, calc_derivs)
    model.nb_theta = th
    model._kept_columns = m0._kept_columns
    model.optinfo["seconds"] = time.perf_counter() - t_start
    model.optinfo["theta_search_fits"] = len(cache)
    return model


__all__ = ["glmer_nb", "theta_ml"]
