"""``pg.lmer``: linear mixed models by REML or ML, as lme4's ``lmer``.

The model is ``y = Xβ + Zb + offset + ε`` with ``b = Λ(θ)u``, ``u ~ N(0, σ²I)`` and
``ε ~ N(0, σ² W^{-1})`` (``W`` the prior weights).  For each θ the penalized
least-squares problem is solved through the blocked Cholesky factor
(:mod:`pyglmm.mixed.blocked_cholesky`); the profiled objective
(:mod:`pyglmm.mixed.lmm_objective`) is minimized over θ with BOBYQA
(:mod:`pyglmm.mixed.optimizer`) from lme4's start ``λ_k = I``.  Large models
(n ≥ 10 000) whose terms are all scalar take the gradient path instead: Newton
iterations with the analytic gradient and the average-information Hessian
(:meth:`~pyglmm.mixed.blocked_cholesky.BlockedCholesky.hessian_ai`), started at
one-way moment estimates (:mod:`pyglmm.mixed.start_values`); InstEval's crossed
model needs 5 factorizations and 4 gradients.  β̂, the conditional modes b̂ and σ̂
follow by back-substitution.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from pyglmm.errors import (
    ConvergenceWarning,
    DataError,
    FormulaError,
    RankDeficiencyWarning,
    SingularFitWarning,
)
from pyglmm.formula.frame import ModelFrame, model_frame
from pyglmm.formula.parse import parse_formula
from pyglmm.formula.random import expand_bars, random_terms
from pyglmm.mixed.blas_threads import blas_threads
from pyglmm.mixed.blocked_cholesky import BlockedCholesky, trsolve
from pyglmm.mixed.blocks import LmmBlocks
from pyglmm.mixed.convergence import ConvergenceInfo, check_convergence, is_singular
from pyglmm.mixed.lmm_objective import LmmObjective
from pyglmm.mixed.optimizer import OptResult, newton_polish, optimize_theta
from pyglmm.mixed.remat import ReMat
from pyglmm.mixed.start_values import moment_start
from pyglmm.mixed.varcorr import term_covariances, varcorr_frame
from pyglmm.plots.mixed import MixedPlotsMixin


def _fit_threads(blocks: LmmBlocks) -> int | None:
    """BLAS threads for the optimization loop (see :mod:`pyglmm.mixed.blas_threads`).

    One thread for small dense rests (order < 500) and whenever the machine is
    busy (1-minute load average above half the cores), where multithreaded
    OpenBLAS loses badly; otherwise the library default (all cores).
    """
    if blocks.m < 500:
        return 1
    try:
        busy = os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1)
    except OSError:  # pragma: no cover - no load average on this platform
        busy = False
    return 1 if busy else None


def _use_gradient(optimizer: str | None, obj: LmmObjective) -> bool:
    """Choose the optimizer: ``"bobyqa"`` (lme4's), ``"lbfgsb"`` (analytic gradient,
    scalar terms only) or ``None``: L-BFGS-B for large models (n ≥ 10 000) whose
    terms are all scalar, BOBYQA otherwise."""
    if optimizer is None:
        return obj.factor.supports_gradient() and obj.n >= 10_000
    name = optimizer.lower().replace("-", "").replace("_", "")
    if name in ("bobyqa", "nloptwrap"):
        return False
    if name == "lbfgsb":
        if not obj.factor.supports_gradient():
            raise ValueError("optimizer='lbfgsb' needs scalar random-effects terms only")
        return True
    raise ValueError(f"unknown optimizer {optimizer!r}; use 'bobyqa' or 'lbfgsb'")


def _start_theta(terms: list[ReMat], blocks: LmmBlocks, use_grad: bool) -> np.ndarray:
    """Start θ: lme4's ``λ_k = I``, or for the gradient path (scalar terms) one-way
    moment estimates (:func:`pyglmm.mixed.start_values.moment_start`)."""
    if use_grad:
        th = moment_start(blocks)
        if th is not None:
            return th
    return np.concatenate([t.theta_start() for t in terms])


def _drop_rank_deficient(X: np.ndarray, names: list[str], tol: float = 1e-7) -> np.ndarray:
    """Indices of the columns to keep: a column is dropped when it is (numerically)
    a linear combination of the columns kept before it (R's ``qr`` with ``tol = 1e-7``).

    The common full-rank case is decided by the Cholesky factor ``R`` of ``XᵀX``
    (one BLAS ``syrk``): ``R_jj`` is the norm of column j's residual on the columns
    before it.  When every ``R_jj > 10⁻⁴ ‖x_j‖`` (far above ``tol``, so the squaring
    in ``XᵀX`` cannot change the decision) no column is dropped.  Otherwise the
    columns are checked one by one against those kept (Gram-Schmidt with
    reorthogonalization).
    """
    from scipy.linalg import blas, lapack

    n, p = X.shape
    if p == 0:
        return np.zeros(0, dtype=int)
    if n >= p and np.all(np.isfinite(X)):
        if X.flags.c_contiguous:  # Xᵀ is Fortran-ordered: XᵀX = (Xᵀ)(Xᵀ)ᵀ, no copy
            G = blas.dsyrk(1.0, X.T, trans=0, lower=0)
        else:
            G = blas.dsyrk(1.0, np.asfortranarray(X), trans=1, lower=0)
        d = np.diagonal(G).copy()
        if np.all(d > 0):
            c, info = lapack.dpotrf(G, lower=0, clean=0)
            if info == 0 and np.all(np.diagonal(c) > 1e-4 * np.sqrt(d)):
                return np.arange(p)
    keep: list[int] = []
    Q = np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        x = X[:, j]
        nrm = np.linalg.norm(x)
        if nrm == 0:
            continue
        r = x - Q @ (Q.T @ x)
        r = r - Q @ (Q.T @ r)
        rn = np.linalg.norm(r)
        if rn > tol * nrm:
            keep.append(j)
            Q = np.column_stack([Q, r / rn])
    return np.asarray(keep, dtype=int)


class LinearMixedModel(MixedPlotsMixin):
    """A fitted linear mixed model (the result of :func:`lmer`).

    Attributes
    ----------
    formula : str
    reml : bool
    objective : float
        REML criterion (``reml=True``) or ML deviance, lme4's ``REMLcrit()`` / ``deviance()``.
    loglik, aic, bic : float
        Log-likelihood (REML log-likelihood for REML fits, as lme4's ``logLik``),
        AIC and BIC with ``df = p + len(θ) + 1``.
    fixef, coef, se : pandas.Series
        Fixed effects and their standard errors.
    vcov : pandas.DataFrame
        ``σ̂² (XᵀV^{-1}X)^{-1}`` (scaled by σ²).
    sigma : float
    theta : numpy.ndarray
        Relative covariance parameters (lme4's ``getME(m, "theta")``); names in
        :attr:`theta_names`, lower bounds in :attr:`theta_lower`.
    varcorr : pandas.DataFrame
        ``group, var1, var2, vcov, sdcor`` as R's ``as.data.frame(VarCorr(m))``.
    ranef : dict of str to pandas.DataFrame
        Conditional modes per grouping factor (levels × columns); conditional
        variances in :attr:`ranef_condvar`; long form in :meth:`ranef_frame`.
    fitted : pandas.Series
        ``Xβ̂ + Zb̂ + offset``.
    singular : bool
        lme4's ``isSingular``.
    convergence : ConvergenceInfo
        Derivatives at the optimum and lme4's messages.
    optinfo : dict
        ``nevals`` (objective evaluations in the optimizer), ``nevals_total``,
        ``status``, ``message``, ``seconds``.
    terms : list of ReMat
        The random-effects terms, in lme4's order.
    blocks : LmmBlocks
        The θ-independent blocks of ``[Z X y]ᵀW[Z X y]`` (shared by refits).
    factor : BlockedCholesky
        The blocked Cholesky factor at θ̂ (``L00``, ``Lrr``, ``RX()``, ``pwrss()``, ...).
    X, y, offset, weights
        Fixed-effects matrix (after dropping aliased columns), response, offset,
        prior weights (None if not given).
    pwrss, npar, df_resid, nobs, p

    Methods
    -------
    objective_at(θ), deviance_at(θ, β), objective_function(), factor_at(θ)
        The criterion at other parameter values (for profiling and inference).
    refit(y=None, reml=None, start=None)
        Same structure, new response and/or criterion (bootstrap, ML refits).
    predict, simulate, residuals, ranef_frame, tidy, coef_table, summary
    """

    def __init__(
        self,
        frame: ModelFrame,
        terms: list[ReMat],
        blocks: LmmBlocks,
        reml: bool,
        X: np.ndarray,
        fixef_names: list[str],
        y: np.ndarray,
        offset: np.ndarray,
        weights: np.ndarray | None,
        opt: OptResult,
        conv: ConvergenceInfo,
        seconds: float,
        data_name: str | None = None,
        *,
        objective: LmmObjective | None = None,
    ) -> None:
        self.frame = frame
        self.formula = frame.formula.text
        self.terms = terms
        self.blocks = blocks
        self.reml = bool(reml)
        self.X = X
        self.y = y
        self.offset = offset
        self.weights = weights
        self.data_name = data_name
        self.theta = np.asarray(opt.x, dtype=float)
        self.theta_names = [nm for t in terms for nm in t.theta_names()]
        self.theta_lower = np.concatenate([t.theta_lower() for t in terms])
        # the fit's objective, when given, usually holds the factor at θ̂ already
        if objective is None or objective.blocks is not blocks or objective.reml != bool(reml):
            objective = LmmObjective(blocks, reml)
        self._objective = objective
        fct = objective.factor
        if fct.ok and fct.theta is not None and np.array_equal(fct.theta, self.theta):
            self.objective = float(objective.value())
        else:
            self.objective = float(objective(self.theta))
        self.convergence = conv
        self.optinfo = {
            "nevals": opt.nevals,
            "nevals_total": opt.nevals + conv.nevals + 1,
            "status": opt.status,
            "message": opt.message,
            "seconds": seconds,
        }
        n, p = X.shape
        beta = self._set_estimates(n, p, fixef_names, reml)
        eta_fixed = X @ beta
        zb = np.zeros(n)
        for t, bk in zip(terms, self._b, strict=True):
            zb += t.mul_b(bk)
        mu = eta_fixed + zb + offset
        self._mu = mu
        self.fitted = pd.Series(mu, index=frame.row_labels, name="fitted")
        self._condvar: list[np.ndarray] | None = None

    # -- basic aliases -------------------------------------------------------
    def _set_estimates(self, n: int, p: int, fixef_names: list[str], reml: bool) -> np.ndarray:
        r"""β̂, the conditional modes, σ̂, vcov(β̂) and the information criteria from the
        factor at the optimum (shared with the Dask model).

        :math:`\hat\sigma^2 = r^2/(n-p)` (REML) or :math:`r^2/n` (ML);
        :math:`\operatorname{vcov}(\hat\beta) = \hat\sigma^2 (R_X^\top R_X)^{-1}`.
        Returns β̂.
        """
        f = self._objective.factor
        self.factor: BlockedCholesky = f
        self.nobs = n
        self.p = p
        beta, u, b = f._solution()  # computed once per factorization
        self._u = u
        self._b = b
        self.pwrss = f.pwrss()
        self.sigma = float(np.sqrt(self.pwrss / (n - p if reml else n)))
        names = pd.Index(fixef_names)  # one Index shared by fixef, se and vcov
        self.fixef = pd.Series(beta.copy(), index=names, name="Estimate", copy=False)
        RXinv = trsolve(f.RX(), np.eye(p), lower=False)
        V = self.sigma**2 * (RXinv @ RXinv.T)
        self.vcov = pd.DataFrame(V, index=names, columns=names, copy=False)
        self.se = pd.Series(np.sqrt(np.diag(V)), index=names, name="Std. Error", copy=False)
        self.singular = is_singular(self.theta, self.theta_lower)
        self.npar = p + len(self.theta) + 1
        self.loglik = -0.5 * self.objective
        self.aic = self.objective + 2 * self.npar
        self.bic = self.objective + np.log(n) * self.npar
        self.df_resid = n - self.npar
        return beta

    @property
    def coef(self) -> pd.Series:
        """Fixed effects (alias of :attr:`fixef`)."""
        return self.fixef

    @property
    def deviance(self) -> float:
        """``-2 log L``: the ML deviance for ML fits, the REML criterion for REML fits."""
        return self.objective

    @property
    def lambdas(self) -> list[np.ndarray]:
        """``λ_k(θ̂)`` per term."""
        return self.factor.lambdas_of(self.theta)

    @property
    def varcorr(self) -> pd.DataFrame:
        """R's ``as.data.frame(VarCorr(m))``."""
        return varcorr_frame(self.terms, self.lambdas, self.sigma)

    def cov_re(self) -> list[np.ndarray]:
        """``Σ_k = σ̂² λ_k λ_kᵀ`` for every term."""
        return term_covariances(self.terms, self.lambdas, self.sigma)

    # -- random effects ------------------------------------------------------
    @property
    def ranef_terms(self) -> list[np.ndarray]:
        """Conditional modes ``b̂_k`` per term as ``(ℓ_k, q_k)`` arrays (term order)."""
        return [bk.copy() for bk in self._b]

    def _cond_var(self) -> list[np.ndarray]:
        if self._condvar is None:
            with blas_threads(_fit_threads(self.blocks)):
                self._objective.factor.update(self.theta)
                vu = self.factor.cond_var_u()
            out = []
            for V, lam in zip(vu, self.lambdas, strict=True):
                out.append(self.sigma**2 * np.einsum("ab,lbc,dc->lad", lam, V, lam))
            self._condvar = out
        return self._condvar

    @property
    def ranef_condvar(self) -> list[np.ndarray]:
        """Conditional covariance of ``b_k`` given ``y`` (at θ̂, β̂): ``(ℓ_k, q_k, q_k)`` per term."""
        return self._cond_var()

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes per grouping factor (columns of terms on the same factor joined)."""
        out: dict[str, pd.DataFrame] = {}
        for t, bk in zip(self.terms, self._b, strict=True):
            df = pd.DataFrame(bk, index=pd.Index(t.levels, name=t.group), columns=t.cnames)
            if t.group in out:
                out[t.group] = out[t.group].join(df, rsuffix="_")
            else:
                out[t.group] = df
        return out

    def ranef_frame(self) -> pd.DataFrame:
        """Long form as R's ``as.data.frame(ranef(m, condVar = TRUE))``:
        ``grpvar, term, grp, condval, condsd``."""
        cv = self._cond_var()
        parts = []
        for t, bk, V in zip(self.terms, self._b, cv, strict=True):
            for j, cn in enumerate(t.cnames):
                parts.append(
                    pd.DataFrame(
                        {
                            "grpvar": t.group,
                            "term": cn,
                            "grp": t.levels,
                            "condval": bk[:, j],
                            "condsd": np.sqrt(V[:, j, j]),
                        }
                    )
                )
        return pd.concat(parts, ignore_index=True)

    # -- residuals -----------------------------------------------------------
    def residuals(self, type: str = "response", scaled: bool = False) -> pd.Series:
        """Residuals: ``"response"`` (``y − μ̂``), ``"pearson"`` (``√w (y − μ̂)``, lme4's
        ``wtres``) or ``"working"`` (same as response); ``scaled=True`` divides by σ̂."""
        r = self.y - self._mu
        if type == "pearson":
            if self.weights is not None:
                r = r * np.sqrt(self.weights)
        elif type not in ("response", "working", "raw", "deviance"):
            raise ValueError(f"unknown residual type {type!r}; use 'response' or 'pearson'")
        if scaled:
            r = r / self.sigma
        return pd.Series(r, index=self.frame.row_labels, name="residuals")

    @property
    def resid(self) -> pd.Series:
        """Raw residuals ``y − μ̂``."""
        return self.residuals()

    # -- objective at other parameter values -----------------------------------
    def objective_at(self, theta: np.ndarray, reml: bool | None = None) -> float:
        """The profiled objective (REML criterion or ML deviance) at any θ.

        Uses the fitted model's structure; ``reml=None`` means the fit's criterion.
        Does not change the fitted results.
        """
        reml = self.reml if reml is None else reml
        obj = LmmObjective(self.blocks, reml)
        with self.blas_threads():
            return obj(np.asarray(theta, dtype=float))

    def deviance_at(self, theta: np.ndarray, beta: np.ndarray) -> float:
        """ML deviance at ``(θ, β)``, profiled over σ only (for profiling β)."""
        obj = LmmObjective(self.blocks, False)
        with self.blas_threads():
            return obj.deviance_fixed_beta(np.asarray(theta, dtype=float), beta)

    def objective_function(self, reml: bool | None = None) -> LmmObjective:
        """A fresh callable ``θ ↦ objective`` sharing this model's blocks (for optimizers;
        ``.value_and_gradient(θ)`` too when all terms are scalar).  Call it inside
        ``with m.blas_threads():`` for the fit's BLAS threading."""
        return LmmObjective(self.blocks, self.reml if reml is None else reml)

    def factor_at(self, theta: np.ndarray) -> BlockedCholesky:
        """The blocked Cholesky factor at θ (a new object: ``L00``, ``Lrr``, ``RX()``, ...)."""
        f = BlockedCholesky(self.blocks)
        with self.blas_threads():
            f.update(np.asarray(theta, dtype=float))
        return f

    def blas_threads(self):
        """Context manager with the BLAS thread count the fit used (one thread for
        small models or a busy machine); wrap loops over :meth:`objective_function`
        in it: ``with m.blas_threads(): ...``."""
        return blas_threads(_fit_threads(self.blocks))

    # -- refits ----------------------------------------------------------------
    def refit(
        self,
        y: np.ndarray | None = None,
        *,
        reml: bool | None = None,
        start: np.ndarray | None = None,
        check_conv: bool = False,
    ) -> LinearMixedModel:
        """Refit with a new response (same X, Z, weights, offset) and/or criterion.

        Parameters
        ----------
        y : array, optional
            New response on the original scale (the offset is subtracted here), e.g.
            a column of :meth:`simulate`.  The θ-independent structure is reused:
            only ``Zᵀy``, ``Xᵀy``, ``yᵀy`` are recomputed.
        reml : bool, optional
            Criterion of the refit (default: the same); ``reml=False`` refits by ML.
        start : array, optional
            Start θ (default lme4's ``λ = I``).
        check_conv : bool
            Run lme4's derivative checks (off by default, for bootstrap speed).
        """
        t0 = time.perf_counter()
        reml = self.reml if reml is None else reml
        if y is None:
            blocks, ynew = self.blocks, self.y
        else:
            ynew = np.asarray(y, dtype=float).reshape(-1)
            with blas_threads(1):  # small BLAS work: extra threads would only spin
                blocks = self.blocks.with_response(ynew - self.offset)
        with blas_threads(_fit_threads(blocks)):
            obj = LmmObjective(blocks, reml)
            use_grad = _use_gradient(self.optimizer, obj)
            x0 = (
                _start_theta(self.terms, blocks, use_grad)
                if start is None
                else np.asarray(start, dtype=float)
            )
            fg = obj.value_and_gradient if use_grad else None
            dv = obj.derivatives if use_grad else None
            opt = optimize_theta(obj, x0, self.theta_lower, fun_grad=fg, derivs=dv)
            if check_conv:
                conv = check_convergence(obj, opt.x, opt.fun, self.theta_lower)
            else:
                conv = ConvergenceInfo(None, None, singular=is_singular(opt.x, self.theta_lower))
            new = self._new_fit(blocks, reml, ynew, opt, conv, t0, objective=obj)
        return new

    def _new_fit(self, blocks, reml, ynew, opt, conv, t0, objective=None) -> LinearMixedModel:
        new = LinearMixedModel(
            self.frame,
            self.terms,
            blocks,
            reml,
            self.X,
            list(self.fixef.index),
            ynew,
            self.offset,
            self.weights,
            opt,
            conv,
            time.perf_counter() - t0,
            self.data_name,
            objective=objective,
        )
        new._kept_columns = self._kept_columns
        new.optimizer = self.optimizer
        new.frame_weights_name = self.frame_weights_name
        new.optinfo["optimizer"] = (
            "lbfgsb" if _use_gradient(self.optimizer, new._objective) else "bobyqa"
        )
        return new

    # -- prediction and simulation ---------------------------------------------
    def _random_part(
        self, newdata: pd.DataFrame, terms_used: list[int], allow_new_levels: bool
    ) -> np.ndarray:
        n = len(newdata)
        out = np.zeros(n)
        for k in terms_used:
            t = self.terms[k]
            z = t.design.transform(_only_columns(newdata, t.design.rhs))
            codes = _codes_in(newdata, t, allow_new_levels)
            bk = self._b[k]
            ok = codes >= 0
            out[ok] += np.einsum("ij,ij->i", z[ok], bk[codes[ok]])
        return out

    def _terms_in_re_form(self, re_form: Any) -> list[int]:
        if re_form is None:
            return list(range(len(self.terms)))
        if re_form is False or (isinstance(re_form, float) and np.isnan(re_form)):
            return []
        if isinstance(re_form, str):
            txt = re_form.strip()
            if txt.upper() in ("NA", "~0", "~ 0", "0"):
                return []
            bars = parse_formula(txt if "~" in txt else "~" + txt).random
            wanted = {(eb.lhs.replace(" ", ""), eb.group) for eb in expand_bars(bars)}
            groups = {g for _, g in wanted}
            used = [k for k, t in enumerate(self.terms) if t.group in groups]
            return used
        raise ValueError("re_form must be None (all random effects), 'NA'/'~0' (none) or a formula")

    def predict(
        self,
        newdata: Any = None,
        *,
        re_form: Any = None,
        allow_new_levels: bool = False,
    ) -> np.ndarray:
        """Predictions ``Xβ̂ + Zb̂ + offset`` on the data or ``newdata``.

        Parameters
        ----------
        newdata : DataFrame, optional
        re_form : None, "NA"/"~0"/False, or a formula such as ``"~(1|Subject)"``
            Which random effects to include (None: all; NA: none, population level).
        allow_new_levels : bool
            Levels not seen in the fit contribute 0 (the population mean), as lme4's
            ``allow.new.levels = TRUE``; otherwise they are an error.
        """
        used = self._terms_in_re_form(re_form)
        if newdata is None:
            eta = self.X @ self.fixef.to_numpy() + self.offset
            if used:
                for k in used:
                    eta = eta + self.terms[k].mul_b(self._b[k])
            return eta
        from pyglmm.data import to_pandas

        nd = to_pandas(newdata)
        X = self.frame.fixed.transform(_only_columns(nd, self.frame.fixed.rhs))
        X = X[:, self._kept_columns] if self._kept_columns is not None else X
        eta = X @ self.fixef.to_numpy()
        for expr in self.frame.formula.offsets:
            from pyglmm.formula.expressions import evaluate

            eta = eta + np.asarray(evaluate(expr, nd, "offset"), dtype=float)
        if used:
            eta = eta + self._random_part(nd, used, allow_new_levels)
        return eta

    _kept_columns: np.ndarray | None = None
    frame_weights_name: str | None = None
    optimizer: str | None = None

    def simulate(self, nsim: int = 1, seed: int | None = None) -> pd.DataFrame:
        """Simulate responses from the fitted model (lme4's ``simulate``, unconditional):
        ``y* = Xβ̂ + Z Λ̂ u* + offset + ε*``, ``u* ~ N(0, σ̂²I)``, ``ε* ~ N(0, σ̂²/w)``."""
        rng = np.random.default_rng(seed)
        n = self.nobs
        base = self.X @ self.fixef.to_numpy() + self.offset
        out = np.empty((n, nsim))
        lams = self.lambdas
        sdw = np.ones(n) if self.weights is None else 1.0 / np.sqrt(self.weights)
        for s in range(nsim):
            y = base.copy()
            for t, lam in zip(self.terms, lams, strict=True):
                u = rng.standard_normal((t.nlevels, t.q)) * self.sigma
                y += t.mul_b(u @ lam.T)
            y += rng.standard_normal(n) * self.sigma * sdw
            out[:, s] = y
        return pd.DataFrame(
            out, index=self.frame.row_labels, columns=[f"sim_{i + 1}" for i in range(nsim)]
        )

    # -- tables and printing -----------------------------------------------------
    def coef_table(self, ddf: str | None = None) -> pd.DataFrame:
        """Estimate, Std. Error, t value (as lme4's summary).

        With ``ddf="Satterthwaite"`` or ``"Kenward-Roger"`` the table adds the
        denominator degrees of freedom and p-values of lmerTest's t-tests.
        """
        if ddf is not None and str(ddf).lower() != "lme4":
            from pyglmm.inference.lmm_tests import coef_table

            return coef_table(self, ddf=ddf)
        return pd.DataFrame(
            {
                "Estimate": self.fixef,
                "Std. Error": self.se,
                "t value": self.fixef / self.se,
            }
        )

    def tidy(self, effects: str = "fixed") -> pd.DataFrame:
        """Tidy DataFrames: ``effects="fixed"`` (term, estimate, std_error, statistic),
        ``"ran_pars"`` (the variance components) or ``"ran_vals"`` (conditional modes)."""
        if effects == "fixed":
            return pd.DataFrame(
                {
                    "term": self.fixef.index,
                    "estimate": self.fixef.to_numpy(),
                    "std_error": self.se.to_numpy(),
                    "statistic": (self.fixef / self.se).to_numpy(),
                }
            )
        if effects == "ran_pars":
            return self.varcorr
        if effects == "ran_vals":
            return self.ranef_frame()
        raise ValueError("effects must be 'fixed', 'ran_pars' or 'ran_vals'")

    def fixef_correlation(self) -> pd.DataFrame:
        """Correlation matrix of the fixed-effects estimates."""
        V = self.vcov.to_numpy()
        d = np.sqrt(np.diag(V))
        return pd.DataFrame(V / np.outer(d, d), index=self.vcov.index, columns=self.vcov.columns)

    def summary(self, correlation: bool | None = None, ddf: str | None = None):
        """lme4-style summary (print it); see :class:`pyglmm.mixed.summary_lmm.LmerSummary`.

        ``ddf="Satterthwaite"`` or ``"Kenward-Roger"`` prints lmerTest's summary,
        with t-tests on those degrees of freedom.
        """
        if ddf is None or str(ddf).lower() == "lme4":
            from pyglmm.mixed.summary_lmm import LmerSummary

            return LmerSummary(self, correlation=correlation)
        from pyglmm.inference.lmm_summary import lmm_summary

        return lmm_summary(self, ddf=ddf, correlation=correlation)

    # -- inference (pyglmm.inference) -------------------------------------------
    def anova(self, type: int | str = 3, ddf: str = "Satterthwaite"):
        """F tests of the fixed-effect terms, as lmerTest's ``anova`` (types 1 and 3)."""
        from pyglmm.inference.lmm_tests import lmm_anova

        return lmm_anova(self, type=type, ddf=ddf)

    @classmethod
    def _anova_compare(cls, models: list, **kw: Any):
        """Likelihood-ratio tests of nested fits, as lme4's ``anova(m0, m1)``."""
        from pyglmm.inference.lrt import lrt_table

        return lrt_table(models, **kw)

    def confint(self, parm=None, level: float = 0.95, method: str = "profile", **kw: Any):
        """Confidence intervals: ``"profile"`` (lme4's default), ``"wald"`` or ``"boot"``."""
        from pyglmm.inference.confint import confint

        return confint(self, parm=parm, level=level, method=method, **kw)

    def profile(self, which=None, **kw: Any):
        """Likelihood profiles of the parameters, as lme4's ``profile``."""
        from pyglmm.inference.profile import profile

        return profile(self, which, **kw)

    def vcov_kr(self) -> pd.DataFrame:
        """Kenward-Roger adjusted covariance of the fixed effects (as pbkrtest)."""
        from pyglmm.inference.kenward_roger import vcov_kr

        return vcov_kr(self)

    def bootstrap(self, nsim: int = 500, seed: int | None = None, **kw: Any):
        """Parametric bootstrap, as lme4's ``bootMer`` (see :func:`pyglmm.bootstrap`)."""
        from pyglmm.inference.bootstrap import bootstrap

        return bootstrap(self, nsim=nsim, seed=seed, **kw)

    def __repr__(self) -> str:
        from pyglmm.mixed.summary_lmm import short_repr

        return short_repr(self)

    def _repr_html_(self) -> str:
        from pyglmm.mixed.summary_lmm import LmerSummary

        return LmerSummary(self)._repr_html_()


def _codes_in(data: pd.DataFrame, t: ReMat, allow_new_levels: bool) -> np.ndarray:
    """Codes of ``data``'s rows in the fitted levels of term ``t`` (-1: new level)."""
    lookup = {lab: i for i, lab in enumerate(t.levels)}
    cols = []
    for name in t.factors:
        if name not in data.columns:
            raise DataError(f"grouping factor {name!r} is not a column of newdata")
        vals = data[name]
        if isinstance(vals.dtype, pd.CategoricalDtype):
            vals = vals.astype(object)
        cols.append([_label(v) for v in vals])
    labels = [":".join(parts) for parts in zip(*cols, strict=True)]
    codes = np.array([lookup.get(lab, -1) for lab in labels], dtype=np.intp)
    if not allow_new_levels and (codes < 0).any():
        new = sorted({lab for lab, c in zip(labels, codes, strict=True) if c < 0})
        raise DataError(
            f"new level(s) {new[:10]} of grouping factor {t.group!r} in newdata; "
            "use allow_new_levels=True to predict them at the population level"
        )
    return codes


def _only_columns(data: pd.DataFrame, rhs: str) -> pd.DataFrame:
    """The columns of ``data`` that the formula ``rhs`` uses (so that a grouping factor
    with new levels in ``newdata`` does not trip the fixed-part encoder)."""
    from pyglmm.formula.expressions import referenced_names

    names = [c for c in referenced_names(rhs) if c in data.columns]
    return data[names] if names else pd.DataFrame(index=data.index)


def _label(v: Any) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def lmer(
    formula: str,
    data: Any,
    reml: bool = True,
    weights: Any = None,
    offset: Any = None,
    *,
    REML: bool | None = None,
    contrasts: dict[str, str] | None = None,
    start: np.ndarray | None = None,
    calc_derivs: bool | None = None,
    optimizer: str | None = None,
) -> LinearMixedModel:
    """Fit a linear mixed model as lme4's ``lmer``.

    Parameters
    ----------
    formula : str
        lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``; random-effect
        terms ``(1|g)``, ``(1 + x|g)``, ``(0 + x|g)``, ``(x||g)``, ``(1|g1/g2)``,
        ``(1|g1:g2)``, crossed terms, factors inside bars; ``offset(...)`` terms.
    data : DataFrame
        pandas or polars.
    reml : bool
        REML (default) or maximum likelihood (``REML=`` is accepted as in R).
    weights, offset : str or array-like, optional
        Prior weights (a column name or one value per row) and an offset.
    contrasts : dict, optional
        Per-variable contrasts of the fixed part.
    start : array, optional
        Start θ (default lme4's: ones on the diagonal of each ``λ_k``, zeros below).
    calc_derivs : bool, optional
        Compute the finite-difference gradient/Hessian for lme4's convergence
        checks (default as lme4: only when n < 10 000).
    optimizer : {"bobyqa", "lbfgsb"}, optional
        BOBYQA (lme4's nloptwrap default) or the gradient path (scalar terms only):
        Newton iterations with the analytic gradient and the average-information
        Hessian, continued by L-BFGS-B when they stop near a bound.  Default: the
        gradient path for n ≥ 10 000 with scalar terms.

    Returns
    -------
    LinearMixedModel
    """
    from pyglmm import distributed

    if distributed.is_dask_collection(data):  # Dask DataFrame: fit on the cluster
        extra = {"REML": REML, "contrasts": contrasts, "start": start, "calc_derivs": calc_derivs}
        return distributed.lmer(formula, data, reml, weights, offset, **extra)
    t0 = time.perf_counter()
    if REML is not None:
        reml = REML
    frame = model_frame(formula, data, weights=weights, offset=offset, contrasts=contrasts)
    if not frame.random:
        raise FormulaError(
            f"formula {formula!r} has no random-effects terms such as (1 | g); "
            "use pg.lm for a linear model without random effects"
        )
    if frame.y is None:
        raise FormulaError(f"formula {formula!r} has no response (write 'y ~ ...')")
    y = np.asarray(frame.y, dtype=float)
    if y.ndim != 1:
        raise FormulaError("lmer needs a single numeric response (cbind() is for glmer)")
    X = frame.X
    names = list(frame.column_names)
    with blas_threads(1):  # small BLAS work: extra threads would only spin
        keep = _drop_rank_deficient(X, names)
    names, kept_columns = drop_aliased(names, keep)
    if kept_columns is not None:
        X = np.ascontiguousarray(X[:, keep])
    w = frame.weights
    if w is not None and np.any(w == 0):
        raise DataError("zero prior weights are not supported in lmer; drop those rows")
    terms = random_terms(frame.random, frame.data, n=len(y))
    with blas_threads(1):
        blocks = LmmBlocks(terms, X, y - frame.offset, w)
    obj, opt, conv, use_grad = fit_theta(
        terms, blocks, reml, optimizer=optimizer, start=start, calc_derivs=calc_derivs
    )
    with blas_threads(_fit_threads(blocks)):
        model = LinearMixedModel(
            frame,
            terms,
            blocks,
            reml,
            X,
            names,
            y,
            frame.offset,
            w,
            opt,
            conv,
            0.0,
            None,
            objective=obj,
        )
    model._kept_columns = kept_columns
    model.optimizer = optimizer
    model.optinfo["optimizer"] = "lbfgsb" if use_grad else "bobyqa"
    if isinstance(weights, str):
        model.frame_weights_name = weights
    model.optinfo["seconds"] = time.perf_counter() - t0
    return model


def drop_aliased(names: list[str], keep: np.ndarray) -> tuple[list[str], np.ndarray | None]:
    """Names of the kept fixed-effect columns and the kept indices (None when all are
    kept), warning as lme4 does when columns are dropped (shared by lmer, glmer and the
    Dask lmer)."""
    p = len(names)
    if len(keep) == p:
        return names, None
    kept = set(keep.tolist())
    k = p - len(keep)
    dropped = [names[i] for i in range(p) if i not in kept]
    warnings.warn(
        f"fixed-effect model matrix is rank deficient so dropping {k} "
        f"column{'s' if k > 1 else ''} / coefficient{'s' if k > 1 else ''}: {dropped}",
        RankDeficiencyWarning,
        stacklevel=3,
    )
    return [names[i] for i in keep], keep


def fit_theta(
    terms: list[ReMat],
    blocks: LmmBlocks,
    reml: bool,
    *,
    optimizer: str | None = None,
    start: np.ndarray | None = None,
    calc_derivs: bool | None = None,
) -> tuple[LmmObjective, OptResult, ConvergenceInfo, bool]:
    """Optimize θ from the blocks of A alone, as lme4's ``lmer`` does.

    The optimizer (Newton / L-BFGS-B with the analytic gradient for scalar terms
    of large models, BOBYQA otherwise), lme4's convergence checks at its result,
    and one Newton polish step kept only when it lowers the criterion. Used by
    :func:`lmer` and by the Dask backend, which builds the blocks from partition
    sums. Warnings about singular fits and convergence are emitted here.

    Returns
    -------
    objective, optimum, convergence information, whether the gradient path was used
    """
    lower = np.concatenate([t.theta_lower() for t in terms])
    if calc_derivs is None:
        calc_derivs = blocks.n < 10_000
    with blas_threads(_fit_threads(blocks)):
        obj = LmmObjective(blocks, reml)
        use_grad = _use_gradient(optimizer, obj)
        x0 = _start_theta(terms, blocks, use_grad) if start is None else np.asarray(start)
        fg = obj.value_and_gradient if use_grad else None
        dv = obj.derivatives if use_grad else None
        opt = optimize_theta(obj, x0, lower, fun_grad=fg, derivs=dv)
        # lme4's convergence checks at the optimizer's result (its derivatives are
        # lme4's deriv12, computed when n < 10 000)
        conv = check_convergence(
            obj, opt.x, opt.fun, lower, calc_derivs=calc_derivs, batch=obj.values
        )
        # then one Newton step with those derivatives, kept only if it lowers the
        # criterion: BOBYQA's ftol_abs stop can leave a flat component ~1e-4 off
        # the optimum (also for large fits with few parameters, if BOBYQA was used)
        polish = calc_derivs or (len(x0) <= 4 and not use_grad)
        if polish and not conv.singular:
            with np.errstate(divide="ignore", invalid="ignore"):
                x, fx, _, _, extra = newton_polish(
                    obj,
                    opt.x,
                    opt.fun,
                    lower,
                    max_iter=1,
                    final_derivs=False,
                    derivs=(conv.gradient, conv.hessian) if conv.gradient is not None else None,
                )
            conv.nevals += extra
            if fx < opt.fun:
                opt = OptResult(x, fx, opt.nevals, opt.status, opt.message)
    for msg in conv.messages:
        if msg.startswith("boundary (singular)"):
            warnings.warn(msg, SingularFitWarning, stacklevel=3)
        else:
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return obj, opt, conv, use_grad


__all__ = ["LinearMixedModel", "drop_aliased", "fit_theta", "lmer"]
