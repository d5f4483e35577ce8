"""Satterthwaite degrees of freedom for linear mixed models, as lmerTest.

lmerTest (Kuznetsova, Brockhoff & Christensen 2017, JSS 82(13)) parametrizes the
variance parameters as ``ϱ = (θ, σ)`` and uses the (REML or ML) deviance at fixed
``ϱ`` (not profiled over σ)

.. math::

    d(ϱ) = \\log|L_Z|^2 + \\frac{r^2(θ)}{σ^2} + n \\log(2πσ^2)
           \\;[+\\, \\log|R_X|^2 − p \\log(2πσ^2)\\ \\text{for REML}],

whose Hessian ``H`` at the optimum gives the asymptotic covariance
``A = 2 H^{-1}`` of ``ϱ̂`` (inverse on the span of the positive eigenvalues).  For a
contrast ``l`` with ``v(ϱ) = l^T C(ϱ) l``, ``C(ϱ) = σ^2 R_X^{-1}R_X^{-T}`` the
covariance of ``β̂``, the Satterthwaite degrees of freedom are

.. math::  ν = \\frac{2 v(ϱ̂)^2}{∇v^T A ∇v},

with ``∇v`` from the Jacobian of ``C(ϱ)`` (numDeriv's Richardson extrapolation,
:mod:`pyglmm.inference.numderiv`).  A multi-row contrast ``L`` is decomposed
``L C Lᵀ = P D Pᵀ``; ``F = Σ_m t_m^2 / q`` with ``t_m = (PᵀLβ̂)_m / √d_m`` and the
denominator degrees of freedom ``2E/(E − q)``, ``E = Σ ν_m/(ν_m − 2)``
(lmerTest's ``contestMD``).
"""

from __future__ import annotations

import math
import warnings
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.errors import ConvergenceWarning, PyglmmError
from pyglmm.inference.numderiv import hessian, jacobian
from pyglmm.mixed.blocked_cholesky import trsolve

_LOG2PI = math.log(2.0 * math.pi)


def _factor(model, theta: np.ndarray, factor=None):
    if factor is None:
        return model.factor_at(theta)
    if not factor.update(np.asarray(theta, dtype=float)):
        raise PyglmmError("the Cholesky factor failed at a perturbed θ")
    return factor


def varpar_deviance(model, varpar: np.ndarray, reml: bool | None = None, factor=None) -> float:
    """lmerTest's ``devfun_vp``: the deviance at ``ϱ = (θ, σ)`` (σ not profiled out).

    The constant ``−Σ log wᵢ`` is left out, as lmerTest does (it does not change
    derivatives).  ``factor``: a reusable :class:`BlockedCholesky` workspace.
    """
    reml = model.reml if reml is None else reml
    varpar = np.asarray(varpar, dtype=float)
    theta, sigma = varpar[:-1], varpar[-1]
    s2 = sigma * sigma
    f = _factor(model, theta, factor)
    n = model.nobs
    dev = f.logdet_LZ2() + f.pwrss() / s2 + n * math.log(2.0 * math.pi * s2)
    if not reml:
        return dev
    p = model.p
    return dev + f.logdet_RX2() - p * math.log(2.0 * math.pi * s2)


def vcov_beta_at(model, varpar: np.ndarray, factor=None) -> np.ndarray:
    """lmerTest's ``get_covbeta``: ``σ² R_X^{-1} R_X^{-T}`` at ``ϱ = (θ, σ)``."""
    varpar = np.asarray(varpar, dtype=float)
    f = _factor(model, varpar[:-1], factor)
    RXi = trsolve(f.RX(), np.eye(model.p), lower=False)
    return varpar[-1] ** 2 * (RXi @ RXi.T)


def _blas_context(model):
    """One BLAS thread for small dense factors (as the fit does), the default above."""
    try:
        from pyglmm.mixed.blas_threads import blas_threads
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    m = getattr(model.blocks, "m", 0)
    return blas_threads(1 if m <= 2500 else None)


@dataclass
class SatterthwaiteInfo:
    """Pieces of lmerTest's ``lmerModLmerTest`` object.

    Attributes
    ----------
    varpar : numpy.ndarray
        ``(θ̂, σ̂)``.
    hessian : numpy.ndarray
        Hessian of :func:`varpar_deviance` at ``varpar``.
    vcov_varpar : numpy.ndarray
        ``2 H^{-1}`` (on the positive-eigenvalue subspace).
    jac : numpy.ndarray
        ``(k, p, p)``: ``∂C/∂ϱ_k``.
    vcov_beta : numpy.ndarray
    beta : numpy.ndarray
    """

    varpar: np.ndarray
    hessian: np.ndarray
    vcov_varpar: np.ndarray
    jac: np.ndarray
    vcov_beta: np.ndarray
    beta: np.ndarray
    sigma: float


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def satterthwaite_info(model, tol: float = 1e-8) -> SatterthwaiteInfo:
    """Compute (once per model) the Hessian and Jacobians lmerTest's ``as_lmerModLT`` makes."""
    try:
        return _CACHE[model]
    except (KeyError, TypeError):
        pass
    varpar = np.concatenate([np.asarray(model.theta, dtype=float), [model.sigma]])
    f = model.objective_function().factor  # one workspace for all evaluations
    with _blas_context(model):
        H = hessian(lambda v: varpar_deviance(model, v, factor=f), varpar)
        p = model.p
        J = jacobian(lambda v: vcov_beta_at(model, v, factor=f).ravel(order="F"), varpar)
    evals, evecs = np.linalg.eigh(H)
    neg = evals < -tol
    zero = (evals > -tol) & (evals < tol)
    if neg.any():
        warnings.warn(
            f"Model failed to converge with {int(neg.sum())} negative eigenvalue(s) of the "
            f"deviance Hessian: {', '.join(f'{e:.1e}' for e in evals[neg])}",
            ConvergenceWarning,
            stacklevel=3,
        )
    if zero.any():
        warnings.warn(
            f"Model may not have converged with {int(zero.sum())} eigenvalue(s) of the "
            f"deviance Hessian close to zero: {', '.join(f'{e:.1e}' for e in evals[zero])}",
            ConvergenceWarning,
            stacklevel=3,
        )
    pos = evals > tol
    Hinv = (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    jac = np.stack([J[:, k].reshape(p, p, order="F") for k in range(J.shape[1])])
    info = SatterthwaiteInfo(
        varpar=varpar,
        hessian=H,
        vcov_varpar=2.0 * Hinv,
        jac=jac,
        vcov_beta=np.asarray(model.vcov, dtype=float),
        beta=np.asarray(model.fixef, dtype=float),
        sigma=float(model.sigma),
    )
    try:
        _CACHE[model] = info
    except TypeError:
        pass
    return info


def _as_contrast(model, L) -> np.ndarray:
    names = list(model.fixef.index)
    if isinstance(L, str):
        if L not in names:
            raise PyglmmError(f"{L!r} is not a fixed-effect coefficient; have {names}")
        out = np.zeros(len(names))
        out[names.index(L)] = 1.0
        return out
    if isinstance(L, (pd.Series, dict)):
        s = pd.Series(L, dtype=float)
        unknown = [k for k in s.index if k not in names]
        if unknown:
            raise PyglmmError(f"unknown coefficient(s) {unknown} in the contrast")
        return s.reindex(names, fill_value=0.0).to_numpy()
    L = np.asarray(L, dtype=float)
    if L.shape[-1] != len(names):
        raise PyglmmError(
            f"contrast has {L.shape[-1]} columns but the model has {len(names)} fixed effects"
        )
    return L


def contest1d(model, L, rhs: float = 0.0) -> dict[str, float]:
    """A t-test of ``lᵀβ = rhs`` with Satterthwaite df (lmerTest's ``contest1D``).

    Returns a dict with ``Estimate, Std. Error, df, t value, Pr(>|t|)``.
    """
    info = satterthwaite_info(model)
    lv = np.asarray(_as_contrast(model, L), dtype=float).reshape(-1)
    est = float(lv @ info.beta)
    var_con = float(lv @ info.vcov_beta @ lv)
    grad = np.array([lv @ Jk @ lv for Jk in info.jac])
    denom = float(grad @ info.vcov_varpar @ grad)
    df = 2.0 * var_con**2 / denom
    se = math.sqrt(var_con)
    t = (est - rhs) / se
    return {
        "Estimate": est,
        "Std. Error": se,
        "df": df,
        "t value": t,
        "Pr(>|t|)": float(2.0 * stats.t.sf(abs(t), df)),
    }


def fstat_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """lmerTest's ``get_Fstat_ddf``: denominator df of an F built from ``q`` t-statistics."""
    nu = np.asarray(nu, dtype=float)
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * E / (E - nu.size)


def _ftable_row(F: float, ndf: float, ddf: float, sigma: float, fscale: float = 1.0) -> dict:
    ms = F * sigma**2
    Fv = F * fscale
    return {
        "Sum Sq": ms * ndf,
        "Mean Sq": ms,
        "NumDF": ndf,
        "DenDF": ddf,
        "F value": Fv,
        "Pr(>F)": float(stats.f.sf(Fv, ndf, ddf)),
    }


def contest_md(model, L, rhs=0.0, eps: float = math.sqrt(np.finfo(float).eps)) -> dict:
    """An F test of ``Lβ = rhs`` with Satterthwaite df (lmerTest's ``contestMD``).

    Returns a dict with ``Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F)``
    (``Sum Sq = F q σ̂²`` as lmerTest).
    """
    info = satterthwaite_info(model)
    L = np.atleast_2d(_as_contrast(model, L))
    rhs = np.broadcast_to(np.asarray(rhs, dtype=float), (L.shape[0],))
    if L.shape[0] == 0:
        return _ftable_row(np.nan, 0, np.nan, info.sigma)
    beta = info.beta
    if np.any(rhs != 0):
        beta = beta - np.linalg.pinv(L) @ rhs
    if L.shape[0] == 1:
        r = contest1d(model, L[0], rhs=float(rhs[0]))
        return _ftable_row(r["t value"] ** 2, 1, r["df"], info.sigma)
    VL = L @ info.vcov_beta @ L.T
    d, P = np.linalg.eigh(VL)
    order = np.argsort(d)[::-1]
    d, P = d[order], P[:, order]
    tol = max(eps * d[0], 0.0)
    q = int(np.sum(d > tol))
    if q <= 0:
        return _ftable_row(np.nan, 0, np.nan, info.sigma)
    PtL = (P.T @ L)[:q]
    if q == 1:
        r = contest1d(model, PtL[0], rhs=float(rhs[0]))
        return _ftable_row(r["t value"] ** 2, 1, r["df"], info.sigma)
    t2 = (PtL @ beta) ** 2 / d[:q]
    F = float(t2.sum() / q)
    nu = np.empty(q)
    for m in range(q):
        g = np.array([PtL[m] @ Jk @ PtL[m] for Jk in info.jac])
        nu[m] = 2.0 * d[m] ** 2 / float(g @ info.vcov_varpar @ g)
    return _ftable_row(F, q, fstat_ddf(nu), info.sigma)


def satterthwaite(model, L, rhs=0.0) -> pd.DataFrame:
    """Test linear hypotheses ``Lβ = rhs`` with Satterthwaite degrees of freedom.

    Parameters
    ----------
    model : LinearMixedModel
    L : array-like, str or dict
        A vector (one t-test), a matrix (one F test), a coefficient name or a
        ``{name: weight}`` mapping.
    rhs : float or array

    Returns
    -------
    pandas.DataFrame
        One row: ``Estimate, Std. Error, df, t value, Pr(>|t|)`` for a vector ``L``
        (lmerTest's ``contest1D``), or ``Sum Sq, Mean Sq, NumDF, DenDF, F value,
        Pr(>F)`` for a matrix (``contestMD``).
    """
    Lc = _as_contrast(model, L)
    if np.ndim(Lc) == 1:
        return pd.DataFrame([contest1d(model, Lc, rhs=float(np.asarray(rhs).ravel()[0]))])
    return pd.DataFrame([contest_md(model, Lc, rhs=rhs)])
