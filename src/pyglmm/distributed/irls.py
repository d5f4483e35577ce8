r"""IRLS on a Dask DataFrame: one map-reduce pass per Fisher-scoring step.

The iterations are those of :func:`pyglmm.glm.irls.fit_irls` (R's ``glm.fit``), with
every sum over rows computed as a sum over partitions. At the current
:math:`\eta = X\beta + o` each partition forms, for its rows,

.. math::

    X_j^\top W_j X_j,\qquad X_j^\top W_j z_j,\qquad \sum_{i\in j} d_i(y_i,\mu_i),

the counts of informative rows and the validity of :math:`\mu` and :math:`\eta`; the
workers add them in a binary tree and the client solves the :math:`p\times p` system
:math:`(\sum_j X_j^\top W_j X_j)\beta = \sum_j X_j^\top W_j z_j` by Cholesky. The
deviance of the new :math:`\beta` is computed in the same pass as the next step's
cross products, so a fit of :math:`k` iterations reads the data :math:`k + 2` times
(one more pass for the summary statistics at the optimum, one IRLS per iteration of
the null model when there is an offset). When a Cholesky pivot is suspiciously small,
R's rank rule (``dqrdc2``) is applied to the triangular factor of :math:`W^{1/2}X`,
computed by a tall-skinny QR: each partition's :math:`R_j`, stacked and factored again
on the client.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from pyglmm.distributed.frame import DistributedFrame, PartitionEncoder
from pyglmm.distributed.mapreduce import map_reduce
from pyglmm.errors import ConvergenceWarning, PyglmmError, RankDeficiencyWarning
from pyglmm.families import Family
from pyglmm.glm.control import GLMControl
from pyglmm.glm.irls_steps import (
    aliased_message,
    check_start,
    deviance_converged,
    factor_crossproducts,
    halve_step,
    require_previous_coefficients,
    solve_step,
    stop_warnings,
)
from pyglmm.glm.weighted_ls import (
    aliased_columns,
    cholesky_upper,
    dqrdc2_rank,
    weighted_crossprod,
)

_TEN_EPS = 10 * np.finfo(float).eps


# ---------------------------------------------------------------------- worker side
@dataclass
class _Rows:
    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    n_trials: np.ndarray
    mustart: np.ndarray
    offset: np.ndarray


def _rows(part, encoder: PartitionEncoder, family: Family, intercept_only: bool) -> _Rows:
    e = encoder.encode(part)
    n = e.n
    w = np.ones(n) if e.weights is None else e.weights
    mustart, y, w, n_trials = family.initialize(e.y, w)
    X = np.ones((n, 1)) if intercept_only else e.X
    return _Rows(X, y, np.asarray(w, dtype=float), n_trials, mustart, e.offset)


def _eta(r: _Rows, family: Family, spec: tuple, encoder_X: np.ndarray | None = None):
    kind = spec[0]
    if kind == "mustart":
        with np.errstate(divide="ignore", invalid="ignore"):
            return family.linkfun(r.mustart)
    if kind == "beta":
        beta = spec[1]
        return (r.X @ beta if r.X.shape[1] else np.zeros(len(r.y))) + r.offset
    if kind == "mu_of_full":  # mustart = fitted means of the full model (null deviance fit)
        mu = family.linkinv(encoder_X @ spec[1] + r.offset)
        with np.errstate(divide="ignore", invalid="ignore"):
            return family.linkfun(mu)
    raise ValueError(kind)


def _working(family: Family, r: _Rows, eta: np.ndarray):
    mu = family.linkinv(eta)
    varmu = family.variance(mu)
    me = family.mu_eta(eta)
    pos = r.weights > 0
    good = pos & (me != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (eta - r.offset) + (r.y - mu) / me
        w2 = r.weights * me**2 / varmu
    z = np.where(good, z, 0.0)
    w2 = np.where(good, w2, 0.0)
    return mu, varmu, me, pos, good, z, w2


def _step_partition(
    part,
    encoder: PartitionEncoder,
    family: Family,
    intercept_only: bool,
    spec: tuple,
    check=None,
) -> dict:
    if check is not None:  # the response checks of the first pass (e.g. counts >= 0)
        e = encoder.encode(part)
        if e.n:
            check(family, e.y, e.weights)
    r = _rows(part, encoder, family, intercept_only)
    p = r.X.shape[1]
    full_X = None
    if spec[0] == "mu_of_full":
        full_X = encoder.encode(part).X
    eta = _eta(r, family, spec, full_X)
    mu, varmu, me, pos, good, z, w2 = _working(family, r, eta)
    out = {
        "dev": float(np.sum(family.dev_resids(r.y, mu, r.weights))) if len(r.y) else 0.0,
        "valid": bool(family.valid_eta(eta) and family.valid_mu(mu)) if len(r.y) else True,
        "nan_var": int(np.count_nonzero(np.isnan(varmu[pos]))),
        "zero_var": int(np.count_nonzero(varmu[pos] == 0)),
        "nan_mueta": int(np.count_nonzero(np.isnan(me[pos]))),
        "n_good": int(np.count_nonzero(good)),
        "nobs": len(r.y),
        "n_zero_w": int(np.count_nonzero(r.weights == 0)),
        "sum_w": float(np.sum(r.weights)),
        "sum_wy": float(np.sum(r.weights * r.y)),
        "sum_log_w": float(np.sum(np.log(r.weights[pos]))),
        "any_n_gt1": bool(np.any(r.n_trials > 1)),
        "any_offset": bool(np.any(r.offset != 0)),
    }
    if len(r.y):
        # (at an invalid step, later halved, the weights can be negative: unused then)
        with np.errstate(invalid="ignore"):
            sw = np.sqrt(w2)
        A, Xs = weighted_crossprod(np.ascontiguousarray(r.X), sw)
        out["A"] = np.triu(A) if p else np.zeros((0, 0))
        out["rhs"] = Xs.T @ (sw * z)
    else:
        out["A"] = np.zeros((p, p))
        out["rhs"] = np.zeros(p)
    return out


def _combine_sums(a: dict, b: dict) -> dict:
    out = {}
    for k, v in a.items():
        if k == "valid":
            out[k] = v and b[k]
        elif k.startswith("any_"):
            out[k] = v or b[k]
        else:
            out[k] = v + b[k]
    return out


def _dev_partition(part, encoder, family, intercept_only: bool, spec: tuple) -> dict:
    r = _rows(part, encoder, family, intercept_only)
    if not len(r.y):
        return {"dev": 0.0, "valid": True}
    eta = _eta(r, family, spec)
    mu = family.linkinv(eta)
    return {
        "dev": float(np.sum(family.dev_resids(r.y, mu, r.weights))),
        "valid": bool(family.valid_eta(eta) and family.valid_mu(mu)),
    }


def _tsqr_partition(part, encoder, family, intercept_only: bool, spec: tuple, full_X_needed):
    r = _rows(part, encoder, family, intercept_only)
    p = r.X.shape[1]
    if not len(r.y):
        return np.zeros((0, p))
    full_X = encoder.encode(part).X if full_X_needed else None
    eta = _eta(r, family, spec, full_X)
    *_, good, _z, w2 = _working(family, r, eta)
    Xs = (r.X * np.sqrt(w2)[:, None])[good]
    return np.linalg.qr(Xs, mode="r") if Xs.shape[0] > p else Xs


def _combine_tsqr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    S = np.vstack([a, b])
    return np.linalg.qr(S, mode="r") if S.shape[0] > S.shape[1] else S


# ---------------------------------------------------------------------- AIC pieces
def _aic_partition(family: Family, y, n, mu, wt, dev: float, sum_w: float, any_n_gt1: bool):
    """The row-additive part of R's ``family$aic`` for these rows (global terms apart)."""
    name = family.name
    if not family.has_likelihood or len(y) == 0:
        return 0.0
    if name == "gaussian":
        return 0.0
    if name == "binomial":
        m = n if any_n_gt1 else wt
        with np.errstate(divide="ignore", invalid="ignore"):
            coef = np.where(m > 0, wt / np.where(m > 0, m, 1), 0.0)
            logp = stats.binom.logpmf(np.round(m * y), np.round(m), mu)
        logp = np.where(coef > 0, logp, 0.0)
        return float(-2 * np.sum(coef * logp))
    if name == "Gamma":
        disp = dev / sum_w
        logp = stats.gamma.logpdf(y, a=1 / disp, scale=mu * disp)
        return float(-2 * np.sum(logp * wt))
    if name == "inverse.gaussian":
        return float(3 * np.sum(np.log(y) * wt))
    # Poisson, negative binomial: a sum over rows
    return float(family.aic(y, n, mu, wt, dev))


def aic_total(family: Family, part_sum: float, dev: float, nobs: int, sum_w, sum_log_w) -> float:
    r"""R's ``family$aic`` of the whole data from the per-partition sums.

    ``part_sum`` is the sum over partitions of :func:`_aic_partition`; ``sum_w`` and
    ``sum_log_w`` are :math:`\sum_i w_i` and :math:`\sum_i \log w_i`; the
    Gaussian, Gamma and inverse Gaussian terms that need the whole deviance are added here.
    """
    name = family.name
    if not family.has_likelihood:
        return float("nan")
    if name == "gaussian":
        return float(nobs * (np.log(dev / nobs * 2 * np.pi) + 1) + 2 - sum_log_w)
    if name == "Gamma":
        return part_sum + 2
    if name == "inverse.gaussian":
        return float(sum_w * (1 + np.log(dev / sum_w * 2 * np.pi)) + part_sum + 2)
    return part_sum


def _final_partition(
    part,
    encoder: PartitionEncoder,
    family: Family,
    prev_spec: tuple,
    beta: np.ndarray,
    dev: float,
    sum_w: float,
    any_n_gt1: bool,
    null_mu: float | None,
    intercept: bool,
) -> dict:
    r = _rows(part, encoder, family, False)
    if not len(r.y):
        return {
            "pearson_disp": 0.0,
            "pearson_x2": 0.0,
            "sbar_sum": 0.0,
            "sbar_n": 0,
            "aic": 0.0,
            "null_dev": 0.0,
            "any_hi": False,
            "any_lo": False,
        }
    eta_prev = _eta(r, family, prev_spec)
    *_, w2_prev = _working(family, r, eta_prev)
    eta = r.X @ beta + r.offset
    mu = family.linkinv(eta)
    with np.errstate(divide="ignore", invalid="ignore"):
        wres = (r.y - mu) / family.mu_eta(eta)
        var = family.variance(mu)
        x2 = float(np.sum(r.weights * (r.y - mu) ** 2 / var))
        used = r.weights > 0
        sb = (family.variance_derivative(mu) * (r.y - mu) / var)[used]
    pos = w2_prev > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        aic = _aic_partition(family, r.y, r.n_trials, mu, r.weights, dev, sum_w, any_n_gt1)
    if null_mu is not None:
        nmu = null_mu if intercept else family.linkinv(r.offset)
        null_dev = float(np.sum(family.dev_resids(r.y, nmu, r.weights)))
    else:
        null_dev = 0.0
    return {
        "pearson_disp": float(np.sum((w2_prev * wres**2)[pos])),
        "pearson_x2": x2,
        "sbar_sum": float(np.sum(sb)),
        "sbar_n": int(sb.size),
        "aic": aic,
        "null_dev": null_dev,
        "any_hi": bool(np.any(mu > 1 - _TEN_EPS)),
        "any_lo": bool(np.any(mu < _TEN_EPS)),
    }


# ---------------------------------------------------------------------- client side
@dataclass
class DistributedIRLSFit:
    """What :func:`fit_irls_distributed` returns: the reduced analogue of ``IRLSFit``."""

    coef: np.ndarray
    aliased: np.ndarray
    deviance: float
    iterations: int
    converged: bool
    boundary: bool
    chol: np.ndarray
    rank: int
    nobs: int
    n_zero_weights: int
    sum_weights: float
    sum_log_weights: float
    any_trials_gt1: bool
    sum_weighted_y: float
    any_offset: bool
    prev_spec: tuple
    passes: int
    history: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


class _Passes:
    """The passes of one IRLS fit over one frame (counts them)."""

    def __init__(self, frame: DistributedFrame, family: Family, intercept_only: bool) -> None:
        self.frame = frame
        self.family = family
        self.intercept_only = intercept_only
        self.count = 0

    def step(self, spec: tuple, label: str, check=None) -> dict:
        self.count += 1
        return map_reduce(
            self.frame.partitions,
            _step_partition,
            _combine_sums,
            self.frame.encoder,
            self.family,
            self.intercept_only,
            spec,
            check,
            stage=label,
            capture_warnings=check is not None,
        )

    def dev(self, spec: tuple, label: str) -> dict:
        self.count += 1
        return map_reduce(
            self.frame.partitions,
            _dev_partition,
            _combine_sums,
            self.frame.encoder,
            self.family,
            self.intercept_only,
            spec,
            stage=label,
        )

    def tsqr(self, spec: tuple, label: str) -> np.ndarray:
        self.count += 1
        return map_reduce(
            self.frame.partitions,
            _tsqr_partition,
            _combine_tsqr,
            self.frame.encoder,
            self.family,
            self.intercept_only,
            spec,
            spec[0] == "mu_of_full",
            stage=label,
        )


def fit_irls_distributed(
    frame: DistributedFrame,
    family: Family,
    *,
    start: np.ndarray | None = None,
    init_spec: tuple | None = None,
    control: GLMControl | None = None,
    column_names: list[str] | None = None,
    intercept_only: bool = False,
    warn: bool = True,
    check=None,
) -> DistributedIRLSFit:
    """Fit a GLM to a Dask DataFrame by IRLS, step for step as :func:`~pyglmm.glm.irls.fit_irls`.

    Parameters
    ----------
    frame : DistributedFrame
    family : Family
    start : array, optional
        Starting coefficients (otherwise ``family.initialize``'s ``mustart``).
    init_spec : tuple, optional
        Internal: how the first linear predictor is formed (``("mu_of_full", beta)``
        for the null model with an offset).
    control : GLMControl
    intercept_only : bool
        Fit the intercept-only model (for the null deviance).
    check : callable, optional
        ``check(family, y, weights)`` run on every partition in the first pass (the
        response checks of :func:`pyglmm.glm`); its warnings are re-emitted here.
    """
    control = control or GLMControl()
    passes = _Passes(frame, family, intercept_only)
    nvars = 1 if intercept_only else frame.encoder.p
    fit_warnings: list[str] = []

    def emit(msg: str, category=ConvergenceWarning) -> None:
        fit_warnings.append(msg)
        if warn:
            warnings.warn(msg, category, stacklevel=4)

    def deviance_at(beta: np.ndarray, iteration: int) -> tuple[float, bool]:
        D = passes.dev(("beta", beta), f"step halving at IRLS iteration {iteration}")
        return D["dev"], D["valid"]

    if nvars == 0:
        raise PyglmmError("a model without coefficients is not supported on a Dask DataFrame")
    coefold = None
    if start is not None:
        start = check_start(start, nvars, column_names)
        coefold = start.copy()
        spec: tuple = ("beta", start)
    else:
        spec = init_spec or ("mustart",)
    S = passes.step(spec, "IRLS start", check=check)
    if not S["valid"]:
        raise PyglmmError("cannot find valid starting values: please specify some")
    totals = {k: S[k] for k in ("nobs", "n_zero_w", "sum_w", "sum_wy", "sum_log_w", "any_n_gt1")}
    totals["any_offset"] = S["any_offset"]
    devold = S["dev"]
    boundary = conv = False
    tol = control.rank_tolerance
    keep: np.ndarray | None = None
    coef = np.zeros(nvars) if start is None else start.copy()
    beta = coef.copy()
    U = np.zeros((0, 0))
    prev_spec = spec
    history: list = []
    iteration = 0
    dev = devold
    nobs = S["nobs"]
    for iteration in range(1, control.maxit + 1):
        if S["nan_var"]:
            raise PyglmmError("NAs in V(mu)")
        if S["zero_var"]:
            raise PyglmmError("0s in V(mu)")
        if S["nan_mueta"]:
            raise PyglmmError("NAs in d(mu)/d(eta)")
        if S["n_good"] == 0:
            conv = False
            emit(f"no observations informative at iteration {iteration}")
            break
        A, rhs = S["A"], S["rhs"]
        prev_spec = spec
        U, suspicious = factor_crossproducts(A, keep)
        if keep is None or suspicious:
            if suspicious:
                R = passes.tsqr(spec, f"rank check at IRLS iteration {iteration}")
                keep = ~_aliased_from_r(R, nvars, tol)
            else:
                keep = np.ones(nvars, dtype=bool)
            sub = np.flatnonzero(keep)
            U, _ = cholesky_upper(A[np.ix_(sub, sub)])
            if U is None:
                raise PyglmmError(
                    "the weighted cross-product matrix is not positive definite after "
                    "removing aliased columns (numerically singular design)"
                )
        beta_new = solve_step(U, rhs, keep, nvars, nobs)
        if not np.all(np.isfinite(beta_new)):
            conv = False
            emit(f"non-finite coefficients at iteration {iteration}")
            break
        beta = beta_new
        spec = ("beta", beta)
        S = passes.step(spec, f"IRLS iteration {iteration}")
        dev, is_valid = S["dev"], S["valid"]
        if control.trace:
            print(f"Deviance = {dev} Iterations - {iteration}")
        boundary = False
        halved = False
        if not np.isfinite(dev):
            require_previous_coefficients(coefold)
            emit("step size truncated due to divergence")
            beta, (dev, is_valid) = halve_step(
                beta,
                coefold,
                (dev, is_valid),
                lambda b, it=iteration: deviance_at(b, it),
                lambda state: np.isfinite(state[0]),
                maxit=control.maxit,
                inner_loop=1,
            )
            boundary = halved = True
        if not is_valid:
            require_previous_coefficients(coefold)
            emit("step size truncated: out of bounds")
            beta, (dev, is_valid) = halve_step(
                beta,
                coefold,
                (dev, is_valid),
                lambda b, it=iteration: deviance_at(b, it),
                lambda state: state[1],
                maxit=control.maxit,
                inner_loop=2,
            )
            boundary = halved = True
        if control.halve_on_increase and coefold is not None:
            ii = 1
            while dev > devold + 1e-7 * abs(devold) and ii <= control.maxit:
                ii += 1
                beta = (beta + coefold) / 2
                D = passes.dev(("beta", beta), f"step halving at IRLS iteration {iteration}")
                dev = D["dev"]
                halved = True
        history.append((iteration, dev, np.where(keep, beta, np.nan)))
        if deviance_converged(dev, devold, control.epsilon):
            conv = True
            coef = beta
            break
        devold = dev
        coef = coefold = beta.copy()
        spec = ("beta", beta)
        if halved:
            S = passes.step(spec, f"IRLS iteration {iteration + 1}")
    for message in stop_warnings(conv, boundary):
        emit(message)
    aliased = ~keep if keep is not None else np.zeros(nvars, dtype=bool)
    if np.any(aliased) and warn:
        warnings.warn(aliased_message(aliased, column_names), RankDeficiencyWarning, stacklevel=3)
    coef = np.where(aliased, np.nan, coef)
    return DistributedIRLSFit(
        coef=coef,
        aliased=aliased,
        deviance=dev if iteration else devold,
        iterations=iteration,
        converged=conv,
        boundary=boundary,
        chol=U,
        rank=int(np.count_nonzero(~aliased)),
        nobs=int(totals["nobs"]),
        n_zero_weights=int(totals["n_zero_w"]),
        sum_weights=float(totals["sum_w"]),
        sum_log_weights=float(totals["sum_log_w"]),
        any_trials_gt1=bool(totals["any_n_gt1"]),
        sum_weighted_y=float(totals["sum_wy"]),
        any_offset=bool(totals["any_offset"]),
        prev_spec=prev_spec,
        passes=passes.count,
        history=history,
        warnings=fit_warnings,
    )


def _aliased_from_r(R: np.ndarray, p: int, tol: float) -> np.ndarray:
    """R's ``dqrdc2`` decision on the triangular factor of :math:`W^{1/2}X`."""
    if R.shape[0] == 0:
        return np.ones(p, dtype=bool)
    if R.shape[0] > p:
        return aliased_columns(R, tol)
    rank, pivot = dqrdc2_rank(R, tol)
    aliased = np.ones(p, dtype=bool)
    aliased[pivot[:rank]] = False
    return aliased


def final_statistics(
    frame: DistributedFrame,
    family: Family,
    fit: DistributedIRLSFit,
    *,
    intercept: bool,
    null_mu: float | None,
) -> dict:
    """One pass at the optimum: Pearson sums, Fletcher's :math:`\\bar s`, AIC, null deviance."""
    beta = np.where(fit.aliased, 0.0, fit.coef)
    return map_reduce(
        frame.partitions,
        _final_partition,
        _combine_sums,
        frame.encoder,
        family,
        fit.prev_spec,
        beta,
        float(fit.deviance),
        fit.sum_weights,
        fit.any_trials_gt1,
        null_mu,
        intercept,
        stage="summary statistics at the optimum",
    )


__all__ = ["DistributedIRLSFit", "final_statistics", "fit_irls_distributed"]
