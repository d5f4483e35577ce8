"""Likelihood profiles of linear mixed models and profile confidence intervals, as lme4's
``profile.merMod`` and ``confint.thpr``.

Profiles are of the ML deviance (a REML fit is refitted by ML first, as lme4's
``devfun2`` does).  The variance parameters are on the standard-deviation /
correlation scale: for term ``k``, ``Σ_k = σ²λ_kλ_kᵀ`` gives the standard
deviations (in the positions of the diagonal entries of ``θ_k``) and correlations
(positions below the diagonal), named ``.sig01, .sig02, ...``, then ``.sigma``.  At
fixed ``ϱ = (sd/cor, σ)`` the deviance is

.. math::  d(ϱ) = \\log|L_Z|^2 + r^2(θ)/σ^2 + n\\log(2πσ^2) − \\sum \\log w_i ,

with ``θ`` from ``λ_k = \\operatorname{chol}(Σ_k)/σ``.  For each parameter ``ψ`` the
others are re-optimized at a sequence of values of ``ψ`` (lme4's stepping: steps
of ``δ = \\sqrt{χ^2_{0.99}(n_{par})}/8`` in ``ζ``, from the estimate outwards until
``|ζ|`` exceeds that cutoff or a bound is hit), and

.. math::  ζ(ψ) = \\operatorname{sign}(ψ − \\hat ψ)\\sqrt{d_{\\min}(ψ) − d(\\hat ϱ)} .

A fixed effect ``β_j`` is profiled by refitting with ``x_j β_j`` moved to the offset.
The interval ends solve ``ζ(ψ) = ±z_{1−α/2}`` on R's interpolating spline of ``ζ``
against ``ψ`` and its inverse (:mod:`pyglmm.inference.splines`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.errors import PyglmmError
from pyglmm.inference.optim import minimize_bobyqa, refit_ml
from pyglmm.inference.splines import PolySpline, back_spline, interp_spline
from pyglmm.mixed.blocks import LmmBlocks
from pyglmm.mixed.lmm_objective import LmmObjective


def _tril(t) -> tuple[np.ndarray, np.ndarray]:
    cols, rows = np.triu_indices(t.q)
    return rows, cols


def safe_chol(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive semidefinite matrix (zero pivots allowed)."""
    q = S.shape[0]
    L = np.zeros_like(S)
    for j in range(q):
        d = S[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-14 * max(1.0, abs(S[j, j])):
            continue
        L[j, j] = math.sqrt(d)
        for i in range(j + 1, q):
            L[i, j] = (S[i, j] - L[i, :j] @ L[j, :j]) / L[j, j]
    return L


def theta_to_sdcor(terms, theta: np.ndarray, sigma: float) -> np.ndarray:
    """lme4's ``Cv_to_Sv``: θ (and σ) to standard deviations and correlations (σ appended)."""
    out = []
    pos = 0
    for t in terms:
        k = t.ntheta
        lam = t.lambda_(theta[pos : pos + k])
        S = sigma**2 * lam @ lam.T
        sd = np.sqrt(np.diag(S))
        rows, cols = _tril(t)
        for r, c in zip(rows, cols, strict=True):
            if r == c:
                out.append(sd[r])
            else:
                den = sd[r] * sd[c]
                out.append(S[r, c] / den if den > 0 else 0.0)
        pos += k
    out.append(sigma)
    return np.asarray(out)


def sdcor_to_theta(terms, sv: np.ndarray) -> np.ndarray:
    """lme4's ``Sv_to_Cv``: standard deviations, correlations and σ (last) to θ."""
    sigma = sv[-1]
    out = []
    pos = 0
    for t in terms:
        k = t.ntheta
        v = sv[pos : pos + k]
        rows, cols = _tril(t)
        sd = v[rows == cols]
        R = np.eye(t.q)
        for val, r, c in zip(v, rows, cols, strict=True):
            if r != c:
                R[r, c] = R[c, r] = val
        S = np.outer(sd, sd) * R / sigma**2
        L = safe_chol(S)
        out.append(L[rows, cols])
        pos += k
    return np.concatenate(out) if out else np.zeros(0)


@dataclass
class LmmProfile:
    """The result of :func:`profile`.

    Attributes
    ----------
    frame : pandas.DataFrame
        lme4's ``as.data.frame(profile(m))``: ``.zeta``, one column per parameter,
        ``.par`` (the parameter profiled in that row).
    forward, backward : dict
        Per parameter, the spline ``ζ(ψ)`` and its inverse ``ψ(ζ)`` (None if not monotone).
    names : list of str
    lower, upper : numpy.ndarray
        Bounds of the variance parameters (sd ≥ 0, −1 ≤ cor ≤ 1, σ ≥ 0).
    ml_model : LinearMixedModel
        The ML fit that was profiled.
    """

    frame: pd.DataFrame
    forward: dict = field(default_factory=dict)
    backward: dict = field(default_factory=dict)
    names: list = field(default_factory=list)
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    nvp: int = 0
    ml_model: object = None

    def confint(self, level: float = 0.95, parm=None) -> pd.DataFrame:
        """Profile intervals as lme4's ``confint(profile(m), level=)``."""
        return _confint_from_profile(self, level, parm)


def _profile_names(model) -> list[str]:
    nv = len(model.theta)
    return [f".sig{i + 1:02d}" for i in range(nv)] + [".sigma"] + list(model.fixef.index)


def profile(model, which=None, **kwargs) -> LmmProfile:
    """Profile the ML deviance of a linear mixed model (lme4's ``profile.merMod``).

    See :func:`profile_lmm` for the parameters; this wrapper runs it with one BLAS
    thread for small dense factors (the many small refits gain nothing from more).
    """
    from pyglmm.inference.satterthwaite import _blas_context

    with _blas_context(model):
        return profile_lmm(model, which, **kwargs)


def profile_lmm(
    model,
    which=None,
    *,
    alphamax: float = 0.01,
    maxpts: int = 100,
    delta: float | None = None,
    delta_cutoff: float = 1.0 / 8.0,
    maxmult: float = 10.0,
    devtol: float = 1e-9,
) -> LmmProfile:
    """Profile the ML deviance of a linear mixed model (lme4's ``profile.merMod``).

    Parameters
    ----------
    model : LinearMixedModel
    which : list of str or int, optional
        Parameters to profile (names as :func:`confint`'s rows, or 0-based indices;
        ``"theta_"`` for all variance parameters, ``"beta_"`` for all fixed effects);
        default all.
    alphamax, maxpts, delta, delta_cutoff, maxmult, devtol
        As lme4.
    """
    if model.weights is not None and np.any(model.weights <= 0):
        raise PyglmmError("profiling needs positive prior weights")
    ml = refit_ml(model) if model.reml else model
    terms = ml.terms
    n = ml.nobs
    theta_hat = np.asarray(ml.theta, dtype=float)
    sig_hat = float(ml.sigma)
    beta_hat = ml.fixef.to_numpy()
    p = len(beta_hat)
    vp_hat = theta_to_sdcor(terms, theta_hat, sig_hat)
    nvp = len(vp_hat)
    opt = np.concatenate([vp_hat, beta_hat])
    names = _profile_names(ml)
    nptot = len(opt)
    base = float(ml.objective)
    w = ml.weights
    ldW = 0.0 if w is None else float(np.log(w).sum())
    stderr = ml.se.to_numpy()
    yres = ml.y - ml.offset

    tl = np.asarray(ml.theta_lower)
    lower_vp = np.concatenate([np.maximum(tl, -1.0), [0.0]])
    upper_vp = np.concatenate([np.where(tl == 0, np.inf, 1.0), [np.inf]])

    sel = _which(which, names, nvp)
    cutoff = math.sqrt(stats.chi2.ppf(1.0 - alphamax, nptot))
    if delta is None:
        delta = cutoff * delta_cutoff
    obj_ml = ml.objective_function(reml=False)

    def dd(vp: np.ndarray) -> float:
        sigma = vp[-1]
        if not sigma > 0:
            return math.inf
        th = sdcor_to_theta(terms, vp)
        f = obj_ml.factor
        if not f.update(th):
            return math.inf
        s2 = sigma * sigma
        return f.logdet_LZ2() + f.pwrss() / s2 + n * math.log(2.0 * math.pi * s2) - ldW

    if abs(dd(vp_hat) - base) > 1e-5 * max(1.0, abs(base)):
        raise PyglmmError(
            "profiling over the residual variance is not numerically consistent with "
            "profiling over the fixed effects only"
        )

    def beta_at(th: np.ndarray) -> np.ndarray:
        f = obj_ml.factor
        f.update(th)
        return f.solve()[0] if p > 0 else np.zeros(0)

    def nextpar(mat, cc, r, lowcut, upcut, minstep=1e-6):
        pv = mat[[r - 1, r], cc]
        zt = mat[[r - 1, r], 0]
        num = pv[1] - pv[0]
        denom = zt[1] - zt[0]
        if not np.isfinite(denom) or denom == 0:
            step = minstep
        else:
            step = delta * num / denom
            if step < 0:
                step = minstep
            else:
                maxstep = abs(maxmult * num)
                if abs(step) > maxstep:
                    step = math.copysign(maxstep, step)
        return min(upcut, max(lowcut, pv[1] + math.copysign(1.0, num) * step))

    def fillmat(mat, lowcut, upcut, zetafun, cc):
        nr = mat.shape[0]
        i = 1
        while (
            i < nr - 1
            and lowcut < mat[i, cc] < upcut
            and (not np.isfinite(mat[i, 0]) or abs(mat[i, 0]) <= cutoff)
        ):
            npar = nextpar(mat, cc, i, lowcut, upcut)
            mat[i + 1] = zetafun(npar, mat[i, 1 : 1 + nvp])
            i += 1
        return mat

    res0 = np.tile(np.concatenate([[0.0], opt]), (maxpts, 1))
    rows_all, forward, backward = [], {}, {}

    for w_i in sel:
        if w_i < nvp:
            pw = opt[w_i]
            others = [k for k in range(nvp) if k != w_i]

            def zeta(xx, start, w_i=w_i, pw=pw, others=others):
                def inner(x):
                    v = np.empty(nvp)
                    v[w_i] = xx
                    v[others] = x
                    return dd(v)

                x, fval = minimize_bobyqa(
                    inner, np.asarray(start)[others], lower_vp[others], upper_vp[others]
                )
                devdiff = fval - base
                if not np.isfinite(devdiff):
                    row = np.full(1 + nptot, np.nan)
                    row[1 + w_i] = xx
                    return row
                if devdiff < -devtol:
                    raise PyglmmError(
                        f"profiling detected a new, lower deviance ({fval:.10g} < {base:.10g}): "
                        "the model was not fitted to its optimum"
                    )
                zz = math.copysign(1.0, xx - pw) * math.sqrt(max(0.0, devdiff)) if xx != pw else 0.0
                v = np.empty(nvp)
                v[w_i] = xx
                v[others] = x
                return np.concatenate([[zz], v, beta_at(sdcor_to_theta(terms, v))])

            lowcut, upcut = lower_vp[w_i], upper_vp[w_i]
            pres, nres = res0.copy(), res0.copy()
            shift = 0.001 if pw == 0 else pw * 1.01
            first = zeta(shift, opt[:nvp])
            nres[0] = pres[1] = first
            upperf = fillmat(pres, lowcut, upcut, zeta, 1 + w_i)
            lowerf = fillmat(nres, lowcut, upcut, zeta, 1 + w_i) if pw > lowcut else nres
        else:
            j = w_i - nvp
            est, std = beta_hat[j], stderr[j]
            xj = ml.X[:, j]
            Xdrop = np.delete(ml.X, j, axis=1)
            blocks0 = LmmBlocks(terms, Xdrop, yres, w)

            def fe_zeta(fw, start=None, j=j, est=est, xj=xj, Xdrop=Xdrop, blocks0=blocks0):
                bl = blocks0.with_response(yres - xj * fw)
                ob = LmmObjective(bl, reml=False)
                th, fv = minimize_bobyqa(ob, theta_hat, tl)
                ob(th)
                f = ob.factor
                sig = math.sqrt(f.pwrss() / n)
                bet = f.solve()[0] if blocks0.m > 1 else np.zeros(0)
                dev = max(0.0, fv - base)
                zz = math.copysign(1.0, fw - est) * math.sqrt(dev) if fw != est else 0.0
                beta_full = np.insert(bet, j, fw)
                return np.concatenate([[zz], theta_to_sdcor(terms, th, sig), beta_full])

            pres, nres = res0.copy(), res0.copy()
            first = fe_zeta(est + delta * std)
            nres[0] = pres[1] = first
            upperf = fillmat(pres, -np.inf, np.inf, fe_zeta, 1 + w_i)
            lowerf = fillmat(nres, -np.inf, np.inf, fe_zeta, 1 + w_i)
        both = np.vstack([upperf, lowerf])
        both = np.unique(both, axis=0)
        both = both[np.argsort(both[:, 1 + w_i], kind="stable")]
        nm = names[w_i]
        fr = pd.DataFrame(both, columns=[".zeta", *names])
        fr[".par"] = nm
        rows_all.append(fr)
        ok = np.isfinite(both[:, 0])
        try:
            fs = interp_spline(both[ok, 1 + w_i], both[ok, 0])
            forward[nm] = fs
            backward[nm] = back_spline(fs)
        except ValueError:
            warnings.warn(f"non-monotonic profile for {nm}", UserWarning, stacklevel=2)
            backward[nm] = None
    frame = pd.concat(rows_all, ignore_index=True) if rows_all else pd.DataFrame()
    return LmmProfile(
        frame=frame,
        forward=forward,
        backward=backward,
        names=[names[i] for i in sel],
        lower=lower_vp,
        upper=upper_vp,
        nvp=nvp,
        ml_model=ml,
    )


def _which(which, names: list[str], nvp: int) -> list[int]:
    if which is None:
        return list(range(len(names)))
    if isinstance(which, str):
        which = [which]
    out = []
    for w in which:
        if isinstance(w, (int, np.integer)):
            out.append(int(w))
        elif w == "theta_":
            out.extend(range(nvp))
        elif w == "beta_":
            out.extend(range(nvp, len(names)))
        elif w in names:
            out.append(names.index(w))
        else:
            raise PyglmmError(f"unknown parameter {w!r}; have {names}")
    return sorted(set(out))


def _pct_names(level: float) -> list[str]:
    a = (1.0 - level) / 2.0
    return [f"{100 * q:.3g} %" for q in (a, 1 - a)]


def _confint_from_profile(prof: LmmProfile, level: float, parm=None) -> pd.DataFrame:
    a = (1.0 - level) / 2.0
    zeta = stats.norm.ppf([a, 1 - a])
    parms = prof.names if parm is None else [p for p in prof.names if p in set(parm)]
    all_names = list(prof.frame.columns[1:-1]) if len(prof.frame) else []
    out = np.full((len(parms), 2), np.nan)
    for i, nm in enumerate(parms):
        b: PolySpline | None = prof.backward.get(nm)
        if b is not None:
            vals = b(zeta)
        else:
            sub = prof.frame[prof.frame[".par"] == nm]
            z = sub[".zeta"].to_numpy()
            v = sub[nm].to_numpy()
            ok = np.isfinite(z)
            if not ok.any() or np.min(np.diff(z[ok])) < -0.01:
                warnings.warn(f"bad or non-monotonic profile for {nm}", UserWarning, stacklevel=3)
                continue
            warnings.warn(
                f"bad spline fit for {nm}: falling back to linear interpolation",
                UserWarning,
                stacklevel=3,
            )
            vals = np.interp(zeta, z[ok], v[ok], left=np.nan, right=np.nan)
        k = all_names.index(nm)
        if k < prof.nvp:
            if np.isnan(vals[0]):
                vals[0] = prof.lower[k]
            if np.isnan(vals[1]):
                vals[1] = prof.upper[k]
        out[i] = vals
    return pd.DataFrame(out, index=pd.Index(parms), columns=_pct_names(level))
