"""A small, honest GLM/LM fit implementing the shared protocol of fitted regression models.

Used by the diagnostics and plot tests so that they do not depend on the GLM and LM
result classes: IRLS exactly as R's ``glm.fit`` (same start, convergence on the relative
change in deviance < 1e-8, working weights of the last iteration); OLS through the same
code with the Gaussian family.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pyglmm.diagnostics import DiagnosticsMixin
from pyglmm.families import NegativeBinomial, get_family
from pyglmm.formula.frame import model_frame


class ProtocolFit(DiagnosticsMixin):
    """Fitted GLM (or LM with ``is_lm=True``) exposing the protocol's attributes."""

    def __init__(
        self,
        formula,
        data,
        family="gaussian",
        *,
        weights=None,
        is_lm=False,
        epsilon=1e-8,
        dispersion=None,
        pg_family=None,
    ):
        self._formula, self._data, self._weights = formula, data, weights
        self.family = get_family(family)
        self.is_lm = is_lm
        mf = model_frame(formula, data, weights=weights)
        pw = np.ones(mf.nobs) if mf.weights is None else np.asarray(mf.weights, float)
        mustart, y, pw, _ = self.family.initialize(np.asarray(mf.y, float), pw)
        x = np.asarray(mf.X, float)
        offset = np.asarray(mf.offset, float)
        # pivoting out aliased columns (none in the test models, but keep the protocol honest)
        q, r = np.linalg.qr(x)
        aliased = np.abs(np.diag(r)) < 1e-7 * np.abs(np.diag(r)).max()
        xr = x[:, ~aliased]
        eta = self.family.linkfun(mustart)
        mu = self.family.linkinv(eta)
        dev_old = float(np.sum(self.family.dev_resids(y, mu, pw)))
        for _ in range(100):
            mu_eta = self.family.mu_eta(eta)
            z = eta - offset + (y - mu) / mu_eta
            w = pw * mu_eta**2 / self.family.variance(mu)
            sw = np.sqrt(w)
            beta = np.linalg.lstsq(sw[:, None] * xr, sw * z, rcond=None)[0]
            eta = xr @ beta + offset
            mu = self.family.linkinv(eta)
            dev = float(np.sum(self.family.dev_resids(y, mu, pw)))
            if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
                break
            dev_old = dev
        # as R's glm.fit: the working weights of the last iteration (before its update)
        self.working_weights = w
        coef = np.full(x.shape[1], np.nan)
        coef[~aliased] = beta
        self.coef = pd.Series(coef, index=mf.column_names)
        self.aliased = aliased
        self.rank = int(xr.shape[1])
        self.model_matrix_rank = xr
        self.nobs = int(mf.nobs)
        self.row_labels = mf.row_labels
        self.y = y
        self.prior_weights = pw
        self.linear_predictor = eta
        self.fitted = pd.Series(mu, index=mf.row_labels)
        self.deviance = dev
        self.df_resid = int(np.sum(pw > 0)) - self.rank
        if dispersion is not None:
            self.dispersion = float(dispersion)
        elif self.family.name in ("poisson", "binomial"):  # R's summary.glm rule
            self.dispersion = 1.0
        else:  # R's summary.glm: working weights (of the last iteration) x working residuals^2
            working = (y - mu) / self.family.mu_eta(eta)
            good = self.working_weights > 0
            self.dispersion = float(
                np.sum((self.working_weights * working**2)[good]) / self.df_resid
            )
        self._mf = mf
        self.terms = list(mf.terms)
        self.assign = np.asarray(mf.assign)

    def refit_without(self, keep):
        data = self._data.loc[self._mf.row_labels[np.asarray(keep, dtype=bool)]]
        weights = self._weights
        if weights is not None and not isinstance(weights, str):
            weights = np.asarray(weights)[np.asarray(keep, dtype=bool)]
        return ProtocolFit(self._formula, data, self.family, weights=weights, is_lm=self.is_lm)


NB_THETA = 2.05081812136757  # MASS::glm.nb(incidence ~ period + offset(log(size)), cbpp)$theta


def _model_specs():
    import pyglmm as pg

    ceb = pg.datasets.load("ceb")
    ss = pg.datasets.load("sleepstudy")
    ss_aliased = ss.assign(Days2=2 * ss["Days"])
    cbpp = pg.datasets.load("cbpp")
    cbpp_zero = cbpp.assign(w=cbpp["size"].astype(float))
    cbpp_zero.loc[cbpp_zero.index[[0, 4]], "w"] = 0.0
    return {
        "ceb_poisson_rounded": ("round(y) ~ dur + res + educ + offset(log(n))", ceb, "poisson", {}),
        "ceb_poisson_unrounded": ("y ~ dur + res + educ + offset(log(n))", ceb, "poisson", {}),
        "cbpp_binomial": (
            "cbind(incidence, size - incidence) ~ period",
            cbpp,
            "binomial",
            {},
        ),
        "cbpp_binomial_zero_weights": (
            "incidence / size ~ period",
            cbpp_zero,
            "binomial",
            {"weights": "w"},
        ),
        # glm(family = negative.binomial(theta)) at MASS::glm.nb's theta: Pearson dispersion
        "cbpp_negbin_glm": (
            "incidence ~ period + offset(log(size))",
            cbpp,
            NegativeBinomial(theta=NB_THETA),
            {},
        ),
        # glm.nb: dispersion 1 (pg.glm estimates theta itself)
        "cbpp_negbin": (
            "incidence ~ period + offset(log(size))",
            cbpp,
            NegativeBinomial(theta=NB_THETA),
            {"epsilon": 1e-14, "dispersion": 1.0, "pg_family": "negative.binomial"},
        ),
        "sleepstudy_lm_aliased": (
            "Reaction ~ Days + Days2",
            ss_aliased,
            "gaussian",
            {"is_lm": True},
        ),
        "sleepstudy_gamma": ("Reaction ~ Days", ss, get_family("Gamma", link="log"), {}),
        "sleepstudy_lm": ("Reaction ~ Days", ss, "gaussian", {"is_lm": True}),
        "machines_lm": (
            "score ~ Machine + Worker",
            pg.datasets.load("Machines"),
            "gaussian",
            {"is_lm": True},
        ),
        "sleepstudy_lm_weighted": (
            "Reaction ~ Days",
            ss,
            "gaussian",
            {"is_lm": True, "weights": ss["Days"].to_numpy() + 1.0},
        ),
    }


MODEL_NAMES = (
    "ceb_poisson_rounded",
    "ceb_poisson_unrounded",
    "cbpp_binomial",
    "sleepstudy_gamma",
    "sleepstudy_lm",
    "machines_lm",
    "sleepstudy_lm_weighted",
    "sleepstudy_lm_aliased",
    "cbpp_binomial_zero_weights",
    "cbpp_negbin_glm",
    "cbpp_negbin",
)


def model_spec(name):
    """(formula, data, family, kwargs) of the reference model ``name`` (as in diagnostics.R)."""
    return _model_specs()[name]


def protocol_fit(name):
    """The reference model ``name`` fitted by :class:`ProtocolFit`."""
    formula, data, family, kwargs = model_spec(name)
    return ProtocolFit(formula, data, family, **kwargs)
