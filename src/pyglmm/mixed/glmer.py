"""Generalized linear mixed models: :func:`glmer` and :class:`GeneralizedLinearMixedModel`.

The fit follows lme4's ``glmer``:

1. **Stage 1** (lme4's ``nAGQ = 0``, also offered as ``nagq=0``): ``β`` is estimated
   inside PIRLS jointly with the modes ``u``; the Laplace deviance of θ alone is
   minimised from ``λ = I`` (BOBYQA; L-BFGS-B with the analytic gradient where it
   exists).  When the second stage has the analytic gradient, stage 1 is the single
   PIRLS solution at the start θ (its θ search was measured to save no second-stage
   evaluation).
2. **Stage 2** (``nagq ≥ 1``): starting from stage 1, the Laplace deviance
   (``nagq = 1``) or the adaptive Gauss-Hermite deviance (``nagq > 1``, one scalar
   term only) of ``(θ, β)`` is minimised jointly, PIRLS giving ``ũ(θ, β)``: L-BFGS-B
   with the analytic gradient (:mod:`pyglmm.mixed.glmm_gradient`; scalar terms, canonical
   binomial/Poisson links), BOBYQA otherwise; a second run from the optimum polishes it.
   The deviance is even in each scalar ``θ_k``, so a run that stops on ``θ_k = 0`` is
   repeated without that bound (:func:`_escape_bounds`).
3. **Small models** with scalar terms and a canonical link (``n < 10 000``, few
   random-effects columns) go through the dense engine :mod:`pyglmm.mixed.glmm_dense`
   (a few numpy calls per PIRLS iteration): stage 1 is its joint PIRLS at ``θ = 1``;
   with one term, one EM step for θ and then Newton's method with the *exact* Hessian of
   the Laplace deviance (θ unbounded, ``|θ|`` reported), that Hessian also giving the
   convergence checks and the standard errors; with several terms one L-BFGS-B run, the
   central-difference Hessian of the analytic gradient and one Newton step with it.

Reported quantities are lme4's: ``objective`` (``-2 logLik``, the optimum of the
deviance function), ``deviance`` (``Σ`` squared deviance residuals, lme4's
``deviance()`` for GLMMs), ``loglik``, ``aic``/``bic`` from the objective, standard
errors from the Hessian of the stage-2 objective (finite differences of the gradient, or
exact on the one-term dense path) when lme4 would compute it (``n < 10 000`` and a
non-singular fit), otherwise from ``R_X``.  The pandas views (``fixef``, ``se``,
``vcov``, ``vcov_rx``) are built on first use.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import warnings
from typing import Any

import nlopt
import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.errors import (
    ConvergenceWarning,
    DataError,
    FamilyError,
    FormulaError,
    PyglmmError,
    SeparationWarning,
    SingularFitWarning,
)
from pyglmm.families import Family, get_family
from pyglmm.formula.frame import ModelFrame, model_frame
from pyglmm.formula.random import random_terms
from pyglmm.mixed.convergence import ConvergenceInfo, check_convergence, is_singular
from pyglmm.mixed.glmm_dense import DenseLaplace, dense_applicable
from pyglmm.mixed.glmm_gradient import gradient_available, laplace_and_gradient
from pyglmm.mixed.lmer import LinearMixedModel, _drop_rank_deficient, drop_aliased
from pyglmm.mixed.optimizer import OptResult, bobyqa
from pyglmm.mixed.pirls import GlmmResponse, Pirls, PirlsError
from pyglmm.mixed.quadrature import agq_deviance, check_agq_model
from pyglmm.mixed.remat import ReMat
from pyglmm.mixed.varcorr import varcorr_frame
from pyglmm.plots.mixed import MixedPlotsMixin

_SUPPORTED = ("binomial", "poisson", "Gamma", "inverse.gaussian", "negative.binomial")


# ----------------------------------------------------------------------------------------
# optimisation


def _nlopt_bobyqa(
    fun, x0: np.ndarray, lower: np.ndarray, step: np.ndarray, ftol_rel: float, maxeval: int
) -> OptResult:
    """nlopt BOBYQA with explicit initial steps (for the stage-2 parameters)."""
    n = x0.size
    best = [math.inf, x0.copy()]
    count = [0]

    def f(x, grad):
        count[0] += 1
        v = fun(x)
        if not math.isfinite(v):
            v = 1e300
        if v < best[0]:
            best[0], best[1] = v, x.copy()
        return v

    opt = nlopt.opt(nlopt.LN_BOBYQA, n)
    opt.set_min_objective(f)
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    opt.set_upper_bounds(np.full(n, np.inf))
    opt.set_initial_step(step)
    opt.set_ftol_rel(ftol_rel)
    opt.set_xtol_abs(1e-9)
    opt.set_maxeval(maxeval)
    x = np.maximum(x0, lower)
    status = 1
    try:
        x = opt.optimize(x)
        status = opt.last_optimize_result()
    except (nlopt.RoundoffLimited, RuntimeError, ValueError):
        status = -4
    return OptResult(best[1].copy(), float(best[0]), count[0], int(status), "")


def _lbfgs(
    pirls: Pirls,
    x0: np.ndarray,
    lower: np.ndarray,
    ntheta: int,
    *,
    joint: bool = False,
    ftol: float = 1e-14,
) -> OptResult:
    """L-BFGS-B on the Laplace deviance with its analytic gradient (``joint``: the
    ``nAGQ = 0`` objective of θ alone)."""
    from scipy.optimize import minimize

    count = [0]
    best = [math.inf, np.asarray(x0, dtype=float).copy()]

    def fg(x):
        count[0] += 1
        saved = pirls.state.copy()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                if joint:
                    v, g = laplace_and_gradient(pirls, x, None)
                else:
                    v, g = laplace_and_gradient(pirls, x[:ntheta], x[ntheta:])
        except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
            pirls.state = saved
            return 1e300, np.zeros_like(x)
        if not math.isfinite(v):
            pirls.state = saved
            return 1e300, np.zeros_like(x)
        if v < best[0]:
            best[0], best[1] = v, x.copy()
        return v, g

    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    res = minimize(
        fg,
        np.maximum(x0, np.where(np.isfinite(lower), lower, -np.inf)),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": ftol, "gtol": 1e-8, "maxiter": 1000, "maxcor": 20},
    )
    status = 1 if res.success else -1
    return OptResult(best[1].copy(), float(best[0]), count[0], status, str(res.message))


def _grad_hessian(
    pirls: Pirls, x: np.ndarray, lower: np.ndarray, ntheta: int, delta: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Analytic gradient at ``x`` and the Hessian from central differences of it
    (forward differences next to a bound): ``2k`` gradients instead of lme4's
    ``1 + 2k²`` deviances for ``deriv12``, and more accurate."""
    x = np.asarray(x, dtype=float)

    def grad(z):
        return laplace_and_gradient(pirls, z[:ntheta], z[ntheta:])[1]

    g0 = grad(x)
    k = x.size
    H = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = delta
        gp = grad(x + e)
        if np.isfinite(lower[j]) and x[j] - delta < lower[j]:
            H[:, j] = (gp - g0) / delta
        else:
            H[:, j] = (gp - grad(x - e)) / (2 * delta)
    H = 0.5 * (H + H.T)
    grad(x)  # leave the modes at the optimum
    return g0, H


def _stage1(
    pirls: Pirls, x0: np.ndarray, lower: np.ndarray, eta_start: np.ndarray, rough: bool = False
) -> OptResult:
    """lme4's first stage: BOBYQA on θ with β inside PIRLS (``nAGQ = 0``).  ``rough``: only
    start values for a gradient-based second stage are needed (tolerances 1e-4)."""
    pirls.set_start(eta_start)
    if gradient_available(pirls):
        v = pirls.laplace(x0)  # the first (joint) PIRLS from the start η
        if rough:
            # the gradient-based second stage needs only start values: β (and the modes)
            # of lme4's nAGQ = 0 system at the start θ; optimizing θ here first was measured
            # to save no second-stage evaluation
            return OptResult(np.asarray(x0, dtype=float).copy(), float(v), 1, 1, "")
        return _lbfgs(pirls, x0, lower, len(x0), joint=True, ftol=1e-15)
    fun = pirls.safe(lambda th: pirls.laplace(th))
    tol = 1e-4 if rough else 1e-8
    return bobyqa(fun, x0, lower, xtol_abs=tol, ftol_abs=tol)


def _stage2_fun(pirls: Pirls, ntheta: int, nagq: int):
    if nagq <= 1:
        return pirls.safe(lambda x: pirls.laplace(x[:ntheta], x[ntheta:]))
    return pirls.safe(lambda x: agq_deviance(pirls, x[:ntheta], x[ntheta:], nagq))


# ----------------------------------------------------------------------------------------
# result class


class GeneralizedLinearMixedModel(MixedPlotsMixin):
    """A fitted GLMM (the result of :func:`glmer`).

    Attributes
    ----------
    fixef, coef : pandas.Series
        ``β̂``.
    se : pandas.Series
        Standard errors (z tests in :meth:`summary`).
    vcov : pandas.DataFrame
    theta : numpy.ndarray
        Relative covariance parameters (lme4's ``getME(m, "theta")``).
    objective : float
        ``-2 logLik`` (lme4's ``m@devcomp$cmp["dev"]``).
    deviance : float
        Sum of squared deviance residuals (lme4's ``deviance(m)`` for a GLMM).
    loglik, aic, bic : float
    sigma : float
        ``1`` for binomial/Poisson/negative binomial; ``√(pwrss/n)`` otherwise (lme4).
    varcorr : pandas.DataFrame
        As R's ``as.data.frame(VarCorr(m))``.
    ranef : dict of DataFrame
        Conditional modes per grouping factor; :meth:`ranef_frame` adds conditional SDs.
    fitted : pandas.Series
        ``μ̂`` (response scale, proportions for binomial).
    singular : bool
    nagq : int
    """

    _terms_in_re_form = LinearMixedModel._terms_in_re_form
    ranef = LinearMixedModel.ranef
    fixef_correlation = LinearMixedModel.fixef_correlation

    def __init__(
        self,
        frame: ModelFrame,
        terms: list[ReMat],
        pirls: Pirls,
        family: Family,
        X: np.ndarray,
        fixef_names: list[str],
        theta: np.ndarray,
        beta: np.ndarray,
        nagq: int,
        opt: OptResult,
        conv: ConvergenceInfo | None,
        stage1: OptResult,
        extra_params: int = 0,
        objective: float | None = None,
    ) -> None:
        self.frame = frame
        self.formula = frame.formula.text
        self.terms = terms
        self.family = family
        self._pirls = pirls
        self.X = X
        self.nagq = int(nagq)
        self.theta = np.asarray(theta, dtype=float)
        self.theta_names = [nm for t in terms for nm in t.theta_names()]
        self.theta_lower = np.concatenate([t.theta_lower() for t in terms])
        ntheta = len(self.theta)
        resp = pirls.resp
        self.response = resp
        n, p = X.shape
        self.nobs = n
        self.p = p
        self.row_labels = frame.row_labels
        if objective is not None:
            # the engine's state is at the optimum already (the dense path)
            self.objective = float(objective)
        else:
            # final evaluation at the optimum (sets the modes, μ, the factor)
            with pirls.precise():
                if self.nagq == 0:
                    self.objective = pirls.laplace(self.theta)
                    beta = pirls.state.beta.copy()
                elif self.nagq == 1:
                    self.objective = pirls.laplace(self.theta, beta)
                else:
                    self.objective = agq_deviance(pirls, self.theta, beta, self.nagq)
        self._fixef_names = list(fixef_names)
        self._beta = np.array(beta, dtype=float)
        st = pirls.state
        lams = pirls.lambdas(self.theta)
        self._lambdas = lams
        self._u = np.concatenate([st.u0, st.ur])
        self._b = pirls.b_of(st, lams)
        self._eta = pirls.eta.copy()
        self._mu = pirls.mu.copy()
        self._devres = pirls.devres.copy()
        self.y = resp.y
        self.prior_weights = resp.wt / np.where(resp.ntrials > 0, resp.ntrials, 1.0)
        self.offset = resp.offset
        var = family.variance(self._mu)
        self._var = var
        pr = (resp.y - self._mu) * np.sqrt(resp.wt / var)
        self.wrss = float(pr @ pr)
        self.ussq = float(self._u @ self._u)
        self.pwrss = self.wrss + self.ussq
        self.sigma = float(np.sqrt(self.pwrss / n)) if family.estimates_dispersion else 1.0
        self.deviance = float(self._devres.sum())
        self.npar = p + ntheta + (1 if family.estimates_dispersion else 0) + extra_params
        self.loglik = -0.5 * self.objective
        self.aic = self.objective + 2 * self.npar
        self.bic = self.objective + math.log(n) * self.npar
        self.df_resid = n - self.npar
        self.singular = is_singular(self.theta, self.theta_lower)
        self.convergence = conv
        self.optinfo = {
            "stage1_nevals": stage1.nevals,
            "nevals": opt.nevals,
            "status": opt.status,
            "pirls_iterations": pirls.pirls_iterations,
            "quasi_newton_steps": pirls.quasi_iterations,
            "seconds": 0.0,
        }
        self.working_weights, _ = resp.working(self._eta, self._mu)
        # covariance of β̂: from the Hessian when lme4 would use it, else from R_X
        V = None
        self.hessian_used = False
        if conv is not None and conv.hessian is not None and self.nagq >= 1:
            H = conv.hessian
            try:
                Hi = np.linalg.inv(H)
                Vh = Hi[ntheta:, ntheta:]
                Vh = Vh + Vh.T
                if np.all(np.isfinite(Vh)) and np.linalg.eigvalsh(Vh).min() > 0:
                    V = Vh
                    self.hessian_used = True
                else:
                    warnings.warn(
                        "variance-covariance matrix computed from finite-difference Hessian is "
                        "not positive definite or contains NA values: falling back to var-cov "
                        "estimated from RX",
                        ConvergenceWarning,
                        stacklevel=3,
                    )
            except np.linalg.LinAlgError:
                pass
        self._V = V if V is not None else self._vcov_rx_array
        self._condvar: list[np.ndarray] | None = None

    # -- pandas views, built on first use ------------------------------------------
    @functools.cached_property
    def fixef(self) -> pd.Series:
        """``β̂``."""
        return pd.Series(self._beta.copy(), index=self._fixef_names, name="Estimate")

    @functools.cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of ``β̂`` (Hessian-based when :attr:`hessian_used`)."""
        return pd.DataFrame(self._V, index=self._fixef_names, columns=self._fixef_names)

    @functools.cached_property
    def se(self) -> pd.Series:
        """Standard errors of ``β̂``."""
        return pd.Series(np.sqrt(np.diag(self._V)), index=self._fixef_names, name="Std. Error")

    @functools.cached_property
    def _vcov_rx_array(self) -> np.ndarray:
        return self._vcov_rx()

    @functools.cached_property
    def vcov_rx(self) -> pd.DataFrame:
        """``σ²(R_XᵀR_X)^{-1}`` (lme4's covariance without the Hessian)."""
        names = self._fixef_names
        return pd.DataFrame(self._vcov_rx_array, index=names, columns=names)

    # -- basic aliases -------------------------------------------------------------
    @property
    def coef(self) -> pd.Series:
        """Fixed effects (alias of :attr:`fixef`)."""
        return self.fixef

    @property
    def lambdas(self) -> list[np.ndarray]:
        """``λ_k`` per term."""
        return self._lambdas

    @property
    def linear_predictor(self) -> np.ndarray:
        """``η̂ = Xβ̂ + Zb̂ + offset``."""
        return self._eta.copy()

    @property
    def fitted(self) -> pd.Series:
        """``μ̂`` (response scale; proportions for binomial)."""
        return pd.Series(self._mu, index=self.row_labels, name="fitted")

    @property
    def dispersion(self) -> float:
        return self.sigma**2

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components as R's ``as.data.frame(VarCorr(m))`` (a residual row only for
        families with a dispersion parameter)."""
        sig = self.sigma if self.family.estimates_dispersion else None
        df = varcorr_frame(self.terms, self._lambdas, sig)
        if sig is None:
            return df
        # lme4 scales the random-effect variances by σ² for Gamma / inverse Gaussian too
        return df

    @property
    def ranef_terms(self) -> list[np.ndarray]:
        return [bk.copy() for bk in self._b]

    def _vcov_rx(self) -> np.ndarray:
        """``σ² (R_XᵀR_X)^{-1}`` from the joint PIRLS system at the final weights."""
        pl = self._pirls
        bl = pl.blocks_ux
        W, _ = self.response.working(self._eta, self._mu)
        bl.reweight(W)
        f = bl.factor(self.theta)
        RX = f.RX()
        Ri = np.linalg.inv(RX)
        return self.sigma**2 * (Ri @ Ri.T)

    def _cond_var(self) -> list[np.ndarray]:
        if self._condvar is None:
            pl = self._pirls
            W, _ = self.response.working(self._eta, self._mu)
            pl.blocks_u.reweight(W)
            f = pl.blocks_u.factor(self.theta)
            vu = f.cond_var_u()
            s2 = self.sigma**2
            self._condvar = [
                s2 * np.einsum("ab,lbc,dc->lad", lam, V, lam)
                for V, lam in zip(vu, self._lambdas, strict=True)
            ]
        return self._condvar

    @property
    def ranef_condvar(self) -> list[np.ndarray]:
        """Conditional covariance of ``b_k`` per term, ``(ℓ_k, q_k, q_k)``."""
        return self._cond_var()

    def ranef_frame(self) -> pd.DataFrame:
        """As R's ``as.data.frame(ranef(m, condVar = TRUE))``."""
        return LinearMixedModel.ranef_frame(self)

    # -- residuals ---------------------------------------------------------------
    def residuals(self, type: str = "deviance") -> pd.Series:
        """Residuals as lme4's ``residuals(m, type=)``: ``"deviance"`` (default),
        ``"pearson"``, ``"response"`` or ``"working"``."""
        y, mu, r = self.y, self._mu, self.response
        if type == "deviance":
            v = np.sign(y - mu) * np.sqrt(np.maximum(self._devres, 0.0))
        elif type == "pearson":
            v = (y - mu) * np.sqrt(r.wt / self._var)
        elif type == "response":
            v = y - mu
        elif type == "working":
            v = (y - mu) / self.family.mu_eta(self._eta)
        else:
            raise ValueError(
                f"unknown residual type {type!r}; use 'deviance', 'pearson', 'response' or "
                "'working'"
            )
        return pd.Series(v, index=self.row_labels, name="residuals")

    def overdispersion(self) -> dict[str, float]:
        """Pearson χ² over residual df (the usual overdispersion check) with its p-value."""
        chisq = float((self.residuals("pearson") ** 2).sum())
        rdf = self.df_resid
        return {
            "chisq": chisq,
            "ratio": chisq / rdf,
            "rdf": rdf,
            "p": float(stats.chi2.sf(chisq, rdf)),
        }

    # -- prediction ----------------------------------------------------------------
    def predict(
        self,
        newdata: Any = None,
        *,
        re_form: Any = None,
        type: str = "link",
        allow_new_levels: bool = False,
    ) -> np.ndarray:
        """Predictions on the link (``type="link"``) or response scale.

        ``re_form``: None (all random effects), ``"NA"``/``"~0"`` (population level) or a
        formula of the terms to include; new levels contribute 0 when ``allow_new_levels``.
        """
        if type not in ("link", "response"):
            raise ValueError("type must be 'link' or 'response'")
        used = self._terms_in_re_form(re_form)
        if newdata is None:
            eta = self.X @ self.fixef.to_numpy() + self.offset
            for k in used:
                eta = eta + self.terms[k].mul_b(self._b[k])
        else:
            from pyglmm.data import to_pandas
            from pyglmm.formula.expressions import evaluate

            nd = to_pandas(newdata)
            # grouping factors are not part of the fixed design (new levels are fine there)
            gf = {f for t in self.terms for f in t.factors}
            fixed_txt = self.frame.formula.fixed
            drop = [c for c in nd.columns if c in gf and c not in fixed_txt]
            X = self.frame.fixed.transform(nd.drop(columns=drop))
            if self._kept_columns is not None:
                X = X[:, self._kept_columns]
            eta = X @ self.fixef.to_numpy()
            for expr in self.frame.formula.offsets:
                eta = eta + np.asarray(evaluate(expr, nd, "offset"), dtype=float)
            if used:
                eta = eta + self._random_part(nd, used, allow_new_levels)
        return eta if type == "link" else self.family.linkinv(eta)

    _kept_columns: np.ndarray | None = None

    def _random_part(
        self, newdata: pd.DataFrame, terms_used: list[int], allow_new_levels: bool
    ) -> np.ndarray:
        """``Σ_k Z_k b̂_k`` on new data (new levels contribute 0 when allowed)."""
        from pyglmm.mixed.lmer import _codes_in

        out = np.zeros(len(newdata))
        for k in terms_used:
            t = self.terms[k]
            codes = _codes_in(newdata, t, allow_new_levels)
            # the grouping factors are not variables of the term's own model matrix
            drop = [c for c in t.factors if c in newdata.columns and c not in t.cnames]
            z = t.design.transform(newdata.drop(columns=drop))
            ok = codes >= 0
            out[ok] += np.einsum("ij,ij->i", z[ok], self._b[k][codes[ok]])
        return out

    def simulate(self, nsim: int = 1, seed: int | None = None) -> pd.DataFrame:
        """Simulate responses (unconditional, as lme4's ``simulate``: new ``u ~ N(0, I)``).

        Binomial responses are returned as proportions of the trials (as the fit's ``y``).
        """
        rng = np.random.default_rng(seed)
        n = self.nobs
        base = self.X @ self.fixef.to_numpy() + self.offset
        out = np.empty((n, nsim))
        fam = self.family
        ntr = self.response.ntrials
        for s in range(nsim):
            eta = base.copy()
            for t, lam in zip(self.terms, self._lambdas, strict=True):
                u = rng.standard_normal((t.nlevels, t.q))
                eta += t.mul_b(u @ lam.T)
            mu = fam.linkinv(eta)
            out[:, s] = _draw(fam, mu, ntr, self.prior_weights, self.sigma, rng)
        return pd.DataFrame(
            out, index=self.row_labels, columns=[f"sim_{i + 1}" for i in range(nsim)]
        )

    # -- tables and printing ---------------------------------------------------------
    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value (t value for dispersion families), Pr(>|z|)."""
        z = self.fixef / self.se
        stat = "t value" if self.family.estimates_dispersion else "z value"
        return pd.DataFrame(
            {
                "Estimate": self.fixef,
                "Std. Error": self.se,
                stat: z,
                "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z)),
            }
        )

    def confint(self, method: str = "wald", level: float = 0.95, **kw: Any) -> pd.DataFrame:
        """Confidence intervals for the fixed effects: ``"wald"`` or ``"profile"``
        (profile likelihood of the stage-2 objective, as lme4's ``confint(method="profile")``
        for ``β``)."""
        method = method.lower()
        if method == "wald":
            zq = stats.norm.ppf(0.5 + level / 2)
            lo = self.fixef - zq * self.se
            hi = self.fixef + zq * self.se
            pct = [f"{100 * (1 - level) / 2:.1f} %", f"{100 * (1 + level) / 2:.1f} %"]
            return pd.DataFrame({pct[0]: lo, pct[1]: hi})
        if method == "profile":
            from pyglmm.mixed.glmm_profile import profile_confint

            return profile_confint(self, level=level, **kw)
        raise ValueError("method must be 'wald' or 'profile'")

    def deviance_function(self):
        """The stage-2 objective ``(θ, β) ↦ −2 log L`` (Laplace or AGQ), lme4's ``devFunOnly``."""
        nt = len(self.theta)
        pirls = self._pirls
        inner = _stage2_fun(pirls, nt, max(self.nagq, 1))

        def fun(x: np.ndarray) -> float:
            with pirls.precise():
                return inner(x)

        return fun

    def summary(self, correlation: bool | None = None):
        """lme4-style summary (print it)."""
        from pyglmm.mixed.glmm_summary import GlmerSummary

        return GlmerSummary(self, correlation=correlation)

    def __repr__(self) -> str:
        from pyglmm.mixed.glmm_summary import short_repr

        return short_repr(self)

    def _repr_html_(self) -> str:
        from pyglmm.mixed.glmm_summary import GlmerSummary

        return GlmerSummary(self)._repr_html_()

    reml = False

    @classmethod
    def _anova_compare(cls, models: list, **kw: Any) -> pd.DataFrame:
        """Likelihood-ratio tests between nested GLMMs (lme4's ``anova(m0, m1)``; the
        implementation is shared with LMMs, :mod:`pyglmm.inference.lrt`)."""
        from pyglmm.inference.lrt import anova_compare

        return anova_compare(models, **kw)

    def refit(self, y: np.ndarray, *, calc_derivs: bool = False) -> GeneralizedLinearMixedModel:
        """The same model fitted to a new response (on the fit's scale: proportions for
        binomial, as :meth:`simulate` returns them), reusing the design; for the parametric
        bootstrap (:func:`pyglmm.bootstrap`, shared with LMMs)."""
        r = self.response
        y = np.asarray(y, dtype=float).reshape(-1)
        if y.shape[0] != self.nobs:
            raise DataError(f"refit: y has length {y.shape[0]}, the model {self.nobs} rows")
        resp = GlmmResponse(self.family, y, r.wt, r.ntrials, r.offset)
        pirls = Pirls(self.terms, self.X, resp)
        from pyglmm.mixed.blas_threads import blas_threads

        with blas_threads(1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            new = _fit(
                self.frame,
                self.terms,
                pirls,
                self.family,
                self.X,
                list(self.fixef.index),
                self.nagq,
                _mustart(self.family, y, r.wt),
                None,
                calc_derivs,
                extra_params=self.npar
                - self.p
                - len(self.theta)
                - (1 if self.family.estimates_dispersion else 0),
            )
        new._kept_columns = self._kept_columns
        return new


def _kept_columns_of(X: np.ndarray, names: list[str]) -> np.ndarray:
    """Columns of ``X`` to keep: all when a Householder QR shows full rank (|R_jj| above
    1e-7 of the column norms, as R's ``qr``), else the LMM engine's pivoting rule."""
    p = X.shape[1]
    if p == 0:
        return np.arange(0)
    R = np.linalg.qr(X, mode="r")
    norms = np.linalg.norm(X, axis=0)
    if np.all(np.abs(np.diag(R)) > 1e-7 * np.maximum(norms, 1e-300)) and np.all(norms > 0):
        return np.arange(p)
    return _drop_rank_deficient(X, names)


def _mustart(fam: Family, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """Starting means as R's ``family$initialize`` for a response on the fit's scale."""
    if fam.name == "binomial":
        return (wt * y + 0.5) / (wt + 1.0)
    if fam.name == "poisson":
        return y + 0.1
    if fam.name == "negative.binomial":
        return y + (y == 0) / 6.0
    return y.copy()


def _draw(fam: Family, mu, ntr, pw, sigma, rng) -> np.ndarray:
    name = fam.name
    if name == "binomial":
        nn = np.round(ntr * pw).astype(int) if np.any(ntr > 1) else np.round(pw).astype(int)
        nn = np.maximum(nn, 1)
        return rng.binomial(nn, np.clip(mu, 0, 1)) / nn
    if name == "poisson":
        return rng.poisson(mu).astype(float)
    if name == "negative.binomial":
        th = fam.theta
        return rng.negative_binomial(th, th / (th + mu)).astype(float)
    if name == "Gamma":
        shape = 1.0 / sigma**2
        return rng.gamma(shape * pw, mu / (shape * pw))
    if name == "inverse.gaussian":
        return rng.wald(mu, pw / sigma**2)
    raise FamilyError(f"simulate is not available for the {name} family")


# ----------------------------------------------------------------------------------------
# input checks


def _check_response(fam: Family, y_raw: np.ndarray, y: np.ndarray, wt: np.ndarray) -> None:
    name = fam.name
    if name in ("poisson", "negative.binomial"):
        if np.any(np.abs(y - np.round(y)) > 1e-8):
            warnings.warn(
                f"non-integer response values for the {name} family (the likelihood uses "
                "lgamma; check that the response is a count)",
                stacklevel=3,
                category=_data_warning(),
            )
    if name == "binomial" and np.ndim(y_raw) == 1:
        k = y * wt
        if np.any(np.abs(k - np.round(k)) > 1e-7):
            warnings.warn(
                "non-integer #successes in a binomial glmer (proportions need the number of "
                "trials as weights, or use cbind(successes, failures))",
                stacklevel=3,
                category=_data_warning(),
            )
    if len(np.unique(y)) < 2:
        raise DataError("the response is constant: a GLMM cannot be fitted")


def _data_warning():
    from pyglmm.errors import DataWarning

    return DataWarning


def _degenerate_groups(terms: list[ReMat], fam: Family, y: np.ndarray, wt: np.ndarray) -> None:
    """Warn about groups whose responses are all 0 (or all 1 for binomial)."""
    if fam.name not in ("binomial", "poisson", "negative.binomial"):
        return
    for t in terms:
        tot = np.bincount(t.refs, weights=wt, minlength=t.nlevels)
        s = np.bincount(t.refs, weights=wt * y, minlength=t.nlevels)
        zero = (s <= 0) & (tot > 0)
        ones = (s >= tot - 1e-12) & (tot > 0) if fam.name == "binomial" else np.zeros_like(zero)
        if zero.all() or (fam.name == "binomial" and ones.all()):
            continue
        frac = (zero | ones).mean()
        if frac >= 0.5:
            what = "all-zero or all-one" if fam.name == "binomial" else "all-zero"
            warnings.warn(
                f"{int((zero | ones).sum())} of {t.nlevels} levels of {t.group!r} have "
                f"{what} responses; their conditional modes sit far in the tails and the "
                "variance estimate may be unreliable",
                _data_warning(),
                stacklevel=3,
            )


def _separation(fam: Family, mu: np.ndarray) -> bool:
    if fam.name != "binomial":
        return False
    eps = 10 * np.finfo(float).eps
    return bool(np.any((mu < eps) | (mu > 1 - eps)))


# ----------------------------------------------------------------------------------------
# the fitting function


def glmer(
    formula: str,
    data: Any,
    family: str | Family = "binomial",
    nagq: int = 1,
    weights: Any = None,
    offset: Any = None,
    *,
    link: str | None = None,
    contrasts: dict[str, str] | None = None,
    start: dict[str, np.ndarray] | None = None,
    calc_derivs: bool | None = None,
    optimizer: str = "auto",
    nAGQ: int | None = None,
) -> GeneralizedLinearMixedModel:
    """Fit a generalized linear mixed model as lme4's ``glmer``.

    Parameters
    ----------
    formula : str
        lme4 formula, e.g. ``"cbind(incidence, size - incidence) ~ period + (1 | herd)"``:
        random-effects terms ``(1|g)``, ``(x|g)``, ``(x||g)``, ``(1|g1/g2)``, ``(1|g1:g2)``,
        crossed terms; ``offset(...)``.
    data : DataFrame
    family : str or Family
        ``"binomial"`` (0/1, proportions with ``weights`` = trials, or
        ``cbind(successes, failures)``), ``"poisson"``, ``"Gamma"``, ``"inverse.gaussian"``,
        or a :class:`~pyglmm.families.NegativeBinomial` with fixed θ (see
        :func:`pyglmm.glmer_nb` to estimate θ).
    nagq : int
        ``1``: Laplace approximation (default); ``2 … 25`` (up to 100): adaptive
        Gauss-Hermite quadrature (one scalar random-effects term only); ``0``: lme4's fast
        ``nAGQ = 0`` fit (β estimated inside PIRLS; stage 1 only).
    weights, offset : str or array-like, optional
        Prior weights and an offset (a column name or one value per row).
    link : str, optional
        Link function (default: the family's canonical link).
    start : dict, optional
        ``{"theta": ..., "fixef": ...}`` start values for the optimizer.
    calc_derivs : bool, optional
        Finite-difference gradient/Hessian at the optimum (lme4's ``calc.derivs``; default
        when ``n < 10 000``): convergence checks and Hessian-based standard errors.
    optimizer : {"auto", "lbfgs", "bobyqa"}
        Second stage: ``"lbfgs"`` uses the analytic gradient of the Laplace deviance
        (:mod:`pyglmm.mixed.glmm_gradient`; scalar random-effects terms and the canonical
        binomial/Poisson links); ``"bobyqa"`` is derivative-free (any model); ``"auto"``
        takes the gradient where it exists, and for small models with one scalar term
        Newton's method with the exact Hessian of the Laplace deviance
        (:mod:`pyglmm.mixed.glmm_dense`; that Hessian then also gives the standard errors).

    Returns
    -------
    GeneralizedLinearMixedModel
    """
    from pyglmm import distributed

    if distributed.is_dask_collection(data):  # see docs/readme_dask.md: not yet for GLMMs
        raise distributed.DistributedNotSupported("pg.glmer needs pandas/polars data")
    t_start = time.perf_counter()
    if nAGQ is not None:
        nagq = nAGQ
    nagq = int(nagq)
    if nagq < 0:
        raise PyglmmError("nagq must be >= 0")
    fam = get_family(family, link)
    if fam.name not in _SUPPORTED:
        if fam.name == "gaussian":
            raise FamilyError("use pg.lmer for a linear mixed model (gaussian family)")
        raise FamilyError(
            f"glmer supports the binomial, poisson, Gamma, inverse.gaussian and negative "
            f"binomial families, not {fam.name!r} (quasi families have no likelihood)"
        )
    frame = model_frame(formula, data, weights=weights, offset=offset, contrasts=contrasts)
    if not frame.random:
        raise FormulaError(
            f"formula {formula!r} has no random-effects terms such as (1 | g); "
            "use pg.glm for a model without random effects"
        )
    if frame.y is None:
        raise FormulaError(f"formula {formula!r} has no response")
    n = frame.nobs
    prior = np.ones(n) if frame.weights is None else np.asarray(frame.weights, dtype=float)
    y_raw = np.asarray(frame.y, dtype=float)
    mustart, y, wt, ntrials = fam.initialize(y_raw, prior)
    _check_response(fam, y_raw, y, wt)
    X = frame.X
    names = list(frame.column_names)
    keep = _kept_columns_of(X, names)
    names, kept_columns = drop_aliased(names, keep)
    if kept_columns is not None:
        X = np.ascontiguousarray(X[:, keep])
    # glmerControl() ignores lmer's checks "levels < n" and "random effects < n" (an
    # observation-level random effect is the usual model of overdispersion)
    terms = random_terms(frame.random, frame.data, n=np.iinfo(np.int64).max)
    _degenerate_groups(terms, fam, y, wt)
    resp = GlmmResponse(fam, y, wt, ntrials, frame.offset)
    pirls = Pirls(terms, X, resp)
    if nagq > 1:
        check_agq_model(pirls)
    from pyglmm.mixed.blas_threads import blas_threads

    # the dense pieces are small: one BLAS thread avoids spinning threads on a busy machine
    with blas_threads(1):
        model = _fit(
            frame,
            terms,
            pirls,
            fam,
            X,
            names,
            nagq,
            mustart,
            start,
            calc_derivs,
            warn_level=3,
            optimizer=optimizer,
        )
    model._kept_columns = kept_columns
    model.optinfo["seconds"] = time.perf_counter() - t_start
    return model


def _fit(
    frame: ModelFrame,
    terms: list[ReMat],
    pirls: Pirls,
    fam: Family,
    X: np.ndarray,
    names: list[str],
    nagq: int,
    mustart: np.ndarray,
    start: dict[str, np.ndarray] | None,
    calc_derivs: bool | None,
    warn_level: int = 3,
    extra_params: int = 0,
    optimizer: str = "auto",
) -> GeneralizedLinearMixedModel:
    """Stages 1 and 2, convergence checks, the result object."""
    n = X.shape[0]
    lower = np.concatenate([t.theta_lower() for t in terms])
    ntheta = lower.size
    theta0 = np.concatenate([t.theta_start() for t in terms])
    start = start or {}
    if "theta" in start:
        theta0 = np.asarray(start["theta"], dtype=float)
    with np.errstate(all="ignore"):
        eta_start = fam.linkfun(mustart)
    use_grad = nagq == 1 and optimizer != "bobyqa" and gradient_available(pirls)
    if use_grad and dense_applicable(pirls):
        return _fit_dense(
            frame,
            terms,
            pirls,
            fam,
            X,
            names,
            theta0,
            eta_start,
            start,
            calc_derivs,
            warn_level + 1,
            extra_params,
            newton=optimizer == "auto",
        )
    try:
        pirls.set_start(eta_start)
        if not gradient_available(pirls):
            pirls.laplace(theta0)  # a clear error when the start values already fail
        s1 = _stage1(pirls, theta0, lower, eta_start, rough=use_grad)
    except PirlsError as exc:
        raise PirlsError(f"glmer: PIRLS failed at the start values: {exc}") from None
    if not math.isfinite(s1.fun):
        raise PirlsError(
            "PIRLS failed at every covariance parameter tried in the first stage (the model "
            "may be degenerate: check for complete separation or a constant response)"
        )
    theta1 = s1.x
    if not (use_grad and s1.nevals == 1):
        pirls.laplace(theta1)  # restore the stage-1 modes and β at the optimum
    beta1 = pirls.state.beta.copy()
    if "fixef" in start:
        beta1 = np.asarray(start["fixef"], dtype=float)
    if nagq == 0:
        opt = s1
        theta, beta = theta1, beta1
        conv = None
        if is_singular(theta, lower):
            conv = ConvergenceInfo(None, None, ["boundary (singular) fit: see help('isSingular')"])
            conv.singular = True
    else:
        fun = _stage2_fun(pirls, ntheta, nagq)
        x0 = np.concatenate([theta1, beta1])
        lo = np.concatenate([lower, np.full(len(beta1), -np.inf)])
        # initial steps: θ as lme4's Nelder-Mead (0.2·|θ|), β on the scale of its std. error
        step = None
        if not use_grad:
            se0 = _stage1_se(pirls, theta1)
            step = np.concatenate([np.maximum(0.1 * np.abs(theta1), 0.05), np.maximum(se0, 1e-3)])
        if optimizer == "lbfgs" and not use_grad:
            raise PyglmmError(
                "optimizer='lbfgs' needs the Laplace approximation, scalar random-effects "
                "terms and a canonical binomial/Poisson link"
            )
        if use_grad:
            opt = _lbfgs(pirls, x0, lo, ntheta)
        else:
            opt = _nlopt_bobyqa(fun, x0, lo, step, ftol_rel=1e-12, maxeval=20_000)
        # polish: a second run from the optimum with small steps and a tighter PIRLS
        # (Fisher scoring converges only linearly for non-canonical links)
        with pirls.precise():
            if use_grad and n >= 10_000:
                opt2 = OptResult(opt.x, math.inf, 0, 1, "")  # large n: no polish run
            elif use_grad:
                opt2 = _lbfgs(pirls, opt.x, lo, ntheta)
            else:
                opt2 = _nlopt_bobyqa(fun, opt.x, lo, step * 0.05, ftol_rel=1e-14, maxeval=20_000)
        if opt2.fun <= opt.fun:
            opt = OptResult(opt2.x, opt2.fun, opt.nevals + opt2.nevals, opt2.status, "")
        else:
            opt.nevals += opt2.nevals
        if use_grad:
            with pirls.precise() if n < 10_000 else contextlib.nullcontext():
                opt = _escape_bounds(lambda x, low: _lbfgs(pirls, x, low, ntheta), opt, lo, ntheta)
        theta, beta = opt.x[:ntheta], opt.x[ntheta:]
        if calc_derivs is None:
            calc_derivs = n < 10_000
        # derivatives: every evaluation starts PIRLS from the optimum's modes, with a tight
        # tolerance, so that the objective is smooth at the scale of the differences
        want = bool(calc_derivs) and not is_singular(theta, lower)
        if want:
            with pirls.precise():
                fun(opt.x)
            pirls.fixed_start = pirls.state.copy()
            try:
                with pirls.precise():
                    derivs = _grad_hessian(pirls, opt.x, lo, ntheta) if use_grad else None
                    conv = check_convergence(
                        fun, opt.x, fun(opt.x), lo, calc_derivs=True, derivs=derivs
                    )
            finally:
                pirls.fixed_start = None
        else:
            conv = check_convergence(fun, opt.x, opt.fun, lo, calc_derivs=False)
        if is_singular(theta, lower) and not conv.singular:
            conv.singular = True
            conv.messages.insert(0, "boundary (singular) fit: see help('isSingular')")
    return _finish(
        frame,
        terms,
        pirls,
        fam,
        X,
        names,
        theta,
        beta,
        nagq,
        opt,
        conv,
        s1,
        extra_params,
        warn_level,
    )


def _fit_dense(
    frame: ModelFrame,
    terms: list[ReMat],
    pirls: Pirls,
    fam: Family,
    X: np.ndarray,
    names: list[str],
    theta0: np.ndarray,
    eta_start: np.ndarray,
    start: dict[str, np.ndarray],
    calc_derivs: bool | None,
    warn_level: int,
    extra_params: int,
    newton: bool = True,
) -> GeneralizedLinearMixedModel:
    """The Laplace fit of a small model with scalar terms and a canonical link
    (:mod:`pyglmm.mixed.glmm_dense`): stage 1 is the joint PIRLS at the start θ; stage 2, for
    one term (and ``newton``), Newton's method with the exact Hessian, otherwise one
    L-BFGS-B run, then (when lme4 computes derivatives) the finite-difference Hessian of the
    analytic gradient and one Newton step with it."""
    n = X.shape[0]
    lower = np.concatenate([t.theta_lower() for t in terms])
    ntheta = lower.size
    dense = DenseLaplace(pirls)
    with np.errstate(all="ignore"):
        try:
            v1 = dense.joint_modes(theta0, eta_start, eta_tol=1e-4)
        except (PirlsError, np.linalg.LinAlgError) as exc:
            raise PirlsError(f"glmer: PIRLS failed at the start values: {exc}") from None
        if not math.isfinite(v1):
            raise PirlsError(
                "PIRLS failed at the start values (the model may be degenerate: check for "
                "complete separation or a constant response)"
            )
        s1 = OptResult(np.asarray(theta0, dtype=float).copy(), float(v1), 1, 1, "")
        beta1 = dense.beta.copy()
        if "fixef" in start:
            beta1 = np.asarray(start["fixef"], dtype=float)
        x0 = np.concatenate([theta0, beta1])
        lo = np.concatenate([lower, np.full(len(beta1), -np.inf)])
        H = None
        done = False
        u1 = dense.u
        if dense.single and newton:
            # one term: Newton's method with the exact Hessian (also lme4's vcov Hessian)
            xn = x0
            if "theta" not in start:
                # one EM step from the stage-1 modes: a start nearer the optimum than θ = 1
                # (a quarter fewer Newton iterations over simulated one-term models)
                xn = x0.copy()
                xn[0] = dense.em_theta(theta0)
            newton_opt = None
            try:
                newton_opt, g, H, done = dense.newton_single(xn)
                opt = newton_opt
            except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
                done = False
            if done and opt.x[0] < 1e-6:
                # a singular fit: lme4's optimizer ends on the bound θ = 0
                xb = opt.x.copy()
                xb[0] = 0.0
                try:
                    vb = dense.modes(xb[:1], xb[1:], dense.u)
                except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
                    vb = math.inf
                if vb <= opt.fun:
                    opt = OptResult(xb, vb, opt.nevals + 1, opt.status, opt.message)
                    H = None
            if not done:
                # L-BFGS-B instead, from Newton's best point (its modes) or the start
                if newton_opt is not None and math.isfinite(newton_opt.fun):
                    x0 = newton_opt.x
                else:
                    dense.u = u1
        if not done:
            opt, g = dense.minimize(x0, lo)
            if g is None:
                raise PirlsError(
                    "PIRLS failed at every parameter value tried (the model may be degenerate: "
                    "check for complete separation)"
                )
            kept = (opt, g, dense._u_opt)
            opt = _escape_bounds(lambda x, low: dense.minimize(x, low)[0], opt, lo, ntheta)
            if opt is kept[0]:
                g, dense._u_opt = kept[1], kept[2]
                dense.u = dense._u_opt[0]
            else:
                # |θ| of the unbounded run: the modes and derivatives there
                dense.u = np.zeros(dense.q)
                dense.modes(opt.x[:ntheta], opt.x[ntheta:])
                g = dense.gradient()
                dense._u_opt = (dense.u, dense.sensitivity())
        if calc_derivs is None:
            calc_derivs = n < 10_000
        want = bool(calc_derivs) and not is_singular(opt.x[:ntheta], lower)
        if want:
            if H is None:
                opt, g, H = dense.newton_polish(opt, g, lo)
            conv = check_convergence(None, opt.x, opt.fun, lo, calc_derivs=True, derivs=(g, H))
        else:
            conv = check_convergence(None, opt.x, opt.fun, lo, calc_derivs=False)
    theta, beta = opt.x[:ntheta], opt.x[ntheta:]
    if is_singular(theta, lower) and not conv.singular:
        conv.singular = True
        conv.messages.insert(0, "boundary (singular) fit: see help('isSingular')")
    at = dense.theta_at
    if at is not None and np.array_equal(at, theta) and np.array_equal(dense.beta, beta):
        objective = dense.value  # the modes are at the optimum
    else:
        with np.errstate(all="ignore"):
            objective = dense.modes(theta, beta, dense.u)
    dense.to_pirls(theta, beta)
    return _finish(
        frame,
        terms,
        pirls,
        fam,
        X,
        names,
        theta,
        beta,
        1,
        opt,
        conv,
        s1,
        extra_params,
        warn_level,
        objective=objective,
    )


def _finish(
    frame: ModelFrame,
    terms: list[ReMat],
    pirls: Pirls,
    fam: Family,
    X: np.ndarray,
    names: list[str],
    theta: np.ndarray,
    beta: np.ndarray,
    nagq: int,
    opt: OptResult,
    conv: ConvergenceInfo | None,
    s1: OptResult,
    extra_params: int,
    warn_level: int,
    objective: float | None = None,
) -> GeneralizedLinearMixedModel:
    """lme4's messages, the result object and the separation warnings (``objective``: the
    engine's state is at the optimum already, with this deviance)."""
    for msg in conv.messages if conv is not None else []:
        if msg.startswith("boundary (singular)"):
            warnings.warn(msg, SingularFitWarning, stacklevel=warn_level + 1)
        else:
            warnings.warn(msg, ConvergenceWarning, stacklevel=warn_level + 1)
    model = GeneralizedLinearMixedModel(
        frame,
        terms,
        pirls,
        fam,
        X,
        names,
        theta,
        beta,
        nagq,
        opt,
        conv,
        s1,
        extra_params,
        objective=objective,
    )
    if _separation(fam, model._mu):
        warnings.warn(
            "fitted probabilities numerically 0 or 1 occurred (possible complete separation; "
            "consider a penalized/Bayesian fit)",
            SeparationWarning,
            stacklevel=warn_level + 1,
        )
    if np.any(np.abs(model._beta) > 15) and fam.name == "binomial":
        warnings.warn(
            "some fixed effects exceed 15 on the logit scale: probable (quasi-)complete "
            "separation; the estimates and standard errors are unreliable",
            SeparationWarning,
            stacklevel=warn_level + 1,
        )
    return model


def _escape_bounds(run, opt: OptResult, lower: np.ndarray, ntheta: int) -> OptResult:
    """Scalar terms: the deviance is even in each ``θ_k`` (its sign flips the signs of the
    term's modes only), so ``θ_k = 0`` is always stationary and L-BFGS-B can stop on that bound
    ("projected gradient 0") although the optimum is inside.  When it ends there, run it again
    without bounds on θ (from ``θ_k = 0.1``) and keep ``|θ|`` if that is better.  ``run(x0,
    lower)`` returns an :class:`OptResult`."""
    th = opt.x[:ntheta]
    trapped = np.isfinite(lower[:ntheta]) & (th <= lower[:ntheta] + 1e-10)
    if not trapped.any():
        return opt
    xs = opt.x.copy()
    xs[:ntheta] = np.where(trapped, lower[:ntheta] + 0.1, th)
    free = lower.copy()
    free[:ntheta] = -np.inf
    res = run(xs, free)
    if not res.fun < opt.fun:
        return OptResult(opt.x, opt.fun, opt.nevals + res.nevals, opt.status, opt.message)
    x = res.x.copy()
    x[:ntheta] = np.abs(x[:ntheta])
    return OptResult(x, res.fun, opt.nevals + res.nevals, res.status, res.message)


def _stage1_se(pirls: Pirls, theta: np.ndarray) -> np.ndarray:
    """Standard errors of β from ``R_X`` of the joint system at the stage-1 optimum."""
    bl = pirls.blocks_ux
    W, _ = pirls.resp.working(pirls.eta, pirls.mu)
    bl.reweight(W)
    f = bl.factor(theta)
    try:
        Ri = np.linalg.inv(f.RX())
        return np.sqrt(np.sum(Ri * Ri, axis=1))
    except np.linalg.LinAlgError:
        return np.full(pirls.p, 0.1)


__all__ = ["GeneralizedLinearMixedModel", "glmer"]
