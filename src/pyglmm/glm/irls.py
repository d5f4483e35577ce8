r"""Iteratively reweighted least squares (Fisher scoring), as R's ``glm.fit``.

At iteration :math:`k`, with :math:`\eta = X\beta^{[k]} + o` and :math:`\mu = g^{-1}(\eta)`,

.. math::

    z_i = \eta_i - o_i + \frac{y_i - \mu_i}{d\mu_i/d\eta_i}, \qquad
    W_{ii} = \frac{w_i\,(d\mu_i/d\eta_i)^2}{V(\mu_i)}, \qquad
    \beta^{[k+1]} = (X^\top W X)^{-1} X^\top W z,

which is Newton's method with the Hessian replaced by its expectation, the Fisher
information :math:`\phi^{-1}X^\top W X`. The iterations follow ``glm.fit`` step by
step (starting values from ``family.initialize``, the relative deviance criterion
:math:`|D - D_{\text{old}}|/(|D| + 0.1) < \epsilon`, step halving towards the
previous coefficients when the deviance is not finite or :math:`\mu`/:math:`\eta`
leave their domain, aliased coefficients set to zero inside the loop and NA at
the end, the working weights of the last iteration kept for inference), so that
iteration counts, standard errors and warnings agree with R's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg

from pyglmm.errors import (
    ConvergenceWarning,
    PyglmmError,
    RankDeficiencyWarning,
    SeparationWarning,
)
from pyglmm.families import Family
from pyglmm.glm.control import GLMControl
from pyglmm.glm.design import DenseDesign, FactorBlockDesign
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
from pyglmm.glm.warn import warn
from pyglmm.glm.weighted_ls import aliased_columns, cholesky_upper, crossprod_upper
from pyglmm.glm.working import FamilyRows, RowState, family_rows
from pyglmm.mixed.blas_threads import blas_threads

_TEN_EPS = 10 * np.finfo(float).eps


@dataclass
class IRLSFit:
    """What :func:`fit_irls` returns (R's ``glm.fit`` list).

    Attributes
    ----------
    coef : (p,) array, NaN for aliased columns
    aliased : (p,) bool
    eta, mu : (n,) linear predictor (with offset) and fitted means
    deviance : float
    iterations : int
    converged, boundary : bool
    working_weights : (n,) IRLS weights :math:`W` of the last iteration (0 where unused)
    working_residuals : (n,) :math:`(y - \\mu)/(d\\mu/d\\eta)` at the final fit
    chol : (r, r) upper Cholesky factor of :math:`X^\\top W X` over non-aliased columns
        (the matrix of the last solve, R's ``qr`` R factor up to signs)
    rank : int
    y, prior_weights, n_trials : response, prior weights and binomial trials after
        ``family.initialize``
    history : list of (iteration, deviance, coefficients)
    rows : FamilyRows
        The per-row computations of the fit (:mod:`pyglmm.glm.working`), reused for
        the null deviance.
    """

    coef: np.ndarray
    aliased: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    deviance: float
    iterations: int
    converged: bool
    boundary: bool
    working_weights: np.ndarray
    working_residuals: np.ndarray
    chol: np.ndarray
    rank: int
    y: np.ndarray
    prior_weights: np.ndarray
    n_trials: np.ndarray
    null_deviance: float = float("nan")
    history: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    rows: FamilyRows | None = field(default=None, repr=False)


def _warn(msg: str, category) -> None:
    warn(msg, category)


def fit_irls(
    X: np.ndarray | DenseDesign | FactorBlockDesign,
    y: np.ndarray,
    family: Family,
    *,
    weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    start: np.ndarray | None = None,
    etastart: np.ndarray | None = None,
    mustart: np.ndarray | None = None,
    control: GLMControl | None = None,
    intercept: bool = True,
    column_names: list[str] | None = None,
    warn: bool = True,
) -> IRLSFit:
    """Fit a GLM by IRLS, as R's ``glm.fit``.

    Parameters
    ----------
    X : (n, p) array or a design object (:mod:`pyglmm.glm.design`)
    y : (n,) or (n, 2) response (cbind for binomial)
    family : Family
    weights, offset : (n,) prior weights and offset
    start, etastart, mustart : optional starting coefficients, linear predictor or means
    control : GLMControl
    intercept : bool
        Whether the model has an intercept (for the null deviance).
    warn : bool
        Emit R's warnings (non-convergence, boundary, fitted probabilities 0 or 1).

    Returns
    -------
    IRLSFit

    Notes
    -----
    The per-row work (means, deviance, working weights) is done by
    :func:`~pyglmm.glm.working.family_rows` (fast exact formulas for the canonical
    logit and log links), the cross products by the design, its rows split between
    the cores (:mod:`pyglmm.row_threads`) with single-threaded BLAS.
    """
    with blas_threads(1):
        return _fit_irls(
            X,
            y,
            family,
            weights=weights,
            offset=offset,
            start=start,
            etastart=etastart,
            mustart=mustart,
            control=control,
            column_names=column_names,
            warn=warn,
        )


def _fit_irls(
    X,
    y,
    family: Family,
    *,
    weights,
    offset,
    start,
    etastart,
    mustart,
    control,
    column_names,
    warn: bool,
) -> IRLSFit:
    control = control or GLMControl()
    design = X if isinstance(X, DenseDesign | FactorBlockDesign) else DenseDesign(X)
    nobs, nvars = design.shape
    weights = np.ones(nobs) if weights is None else np.asarray(weights, dtype=float)
    offset = np.zeros(nobs) if offset is None else np.asarray(offset, dtype=float)
    mustart_init, y, weights, n_trials = family.initialize(y, weights)
    if mustart is None:
        mustart = mustart_init
    else:
        mustart = np.asarray(mustart, dtype=float)
    fit_warnings: list[str] = []

    def emit(msg: str, category=ConvergenceWarning) -> None:
        fit_warnings.append(msg)
        if warn:
            _warn(msg, category)

    rows = family_rows(family, y, weights, offset)
    zero_offset = rows.zero_offset

    def linear_predictor(beta: np.ndarray) -> np.ndarray:
        eta = design.matvec(beta)
        return eta if zero_offset else eta + offset

    def state_at(beta: np.ndarray) -> RowState:
        return rows.at(linear_predictor(beta))

    def state_deviance(beta: np.ndarray) -> tuple[RowState, float]:
        state = state_at(beta)
        return state, rows.deviance(state)

    history: list = []
    if nvars == 0:
        eta = offset.copy()
        if not family.valid_eta(eta):
            raise PyglmmError("invalid linear predictor values in empty model")
        mu = family.linkinv(eta)
        if not family.valid_mu(mu):
            raise PyglmmError("invalid fitted means in empty model")
        dev = float(np.sum(family.dev_resids(y, mu, weights)))
        me = family.mu_eta(eta)
        w2 = weights * me**2 / family.variance(mu)
        return IRLSFit(
            coef=np.zeros(0),
            aliased=np.zeros(0, dtype=bool),
            eta=eta,
            mu=mu,
            deviance=dev,
            iterations=0,
            converged=True,
            boundary=True,
            working_weights=w2,
            working_residuals=(y - mu) / me,
            chol=np.zeros((0, 0)),
            rank=0,
            y=y,
            prior_weights=weights,
            n_trials=n_trials,
            history=history,
            warnings=fit_warnings,
        )

    coefold = None
    if etastart is not None:
        eta = np.asarray(etastart, dtype=float).copy()
    elif start is not None:
        start = check_start(start, nvars, column_names)
        coefold = start.copy()
        eta = offset + design.matvec(start)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = family.linkfun(mustart)
    state = rows.at(eta)
    if not rows.valid(state):
        raise PyglmmError("cannot find valid starting values: please specify some")
    devold = rows.deviance(state)
    dev = devold
    boundary = conv = False
    tol = control.rank_tolerance
    keep: np.ndarray | None = None  # non-aliased columns (decided at the first step)
    coef = np.zeros(nvars) if start is None else start.copy()
    beta = coef.copy()
    U: np.ndarray | None = np.zeros((0, 0))
    w2 = wz2 = np.zeros(nobs)
    iteration = 0
    for iteration in range(1, control.maxit + 1):
        w_new, wz, n_good = rows.working(state, iteration)
        if n_good == 0:
            conv = False
            emit(f"no observations informative at iteration {iteration}")
            break
        w2, wz2 = w_new, wz
        beta_new = None
        if keep is None or np.all(keep):
            # a design's shortcut (a many-level factor's block elimination); the factor
            # of X'WX in R's order is then formed once, at the end
            beta_new = design.direct_step(w2, wz)
            if beta_new is not None:
                keep, U = np.ones(nvars, dtype=bool), None
        if beta_new is None:
            A, rhs = design.crossprod(w2, wz)
            U, suspicious = factor_crossproducts(A, keep)
            if keep is None and not suspicious:
                keep = np.ones(nvars, dtype=bool)
            if suspicious:
                keep, U, beta_new = suspicious_step(design, A, rhs, w2, wz, nobs, tol)
            else:
                beta_new = solve_step(U, rhs, keep, nvars, nobs)
        if not np.all(np.isfinite(beta_new)):
            conv = False
            emit(f"non-finite coefficients at iteration {iteration}")
            break
        beta = beta_new
        state, dev = state_deviance(beta)
        if control.trace:
            print(f"Deviance = {dev} Iterations - {iteration}")
        boundary = False
        if not np.isfinite(dev):
            require_previous_coefficients(coefold)
            emit("step size truncated due to divergence")
            beta, (state, dev) = halve_step(
                beta,
                coefold,
                (state, dev),
                state_deviance,
                lambda sd: np.isfinite(sd[1]),
                maxit=control.maxit,
                inner_loop=1,
            )
            boundary = True
        if not rows.valid(state):
            require_previous_coefficients(coefold)
            emit("step size truncated: out of bounds")
            beta, state = halve_step(
                beta,
                coefold,
                state,
                state_at,
                rows.valid,
                maxit=control.maxit,
                inner_loop=2,
            )
            boundary = True
            dev = rows.deviance(state)
        if control.halve_on_increase and coefold is not None and dev > devold:
            # glm2-style: halve towards the previous coefficients until the deviance does
            # not increase; if it never does, stay at the previous coefficients
            ii = 1
            while dev > devold and ii <= control.maxit:
                ii += 1
                beta = (beta + coefold) / 2
                state = state_at(beta)
                dev = rows.deviance(state) if rows.valid(state) else np.inf
            if dev > devold:
                beta = coefold.copy()
                state = state_at(beta)
                dev = devold
            boundary = False
        history.append((iteration, dev, np.where(keep, beta, np.nan)))
        if deviance_converged(dev, devold, control.epsilon):
            conv = True
            coef = beta
            break
        devold = dev
        coef = coefold = beta.copy()
    if U is None:  # the last step was a direct step: U of the last X'WX, as R's qr
        U, _ = factor_crossproducts(design.crossprod(w2, wz2)[0], keep)
    design.release()
    eta, mu = state.eta, state.mu
    for message in stop_warnings(conv, boundary):
        emit(message)
    if family.name == "binomial" and (np.max(mu) > 1 - _TEN_EPS or np.min(mu) < _TEN_EPS):
        emit("glm.fit: fitted probabilities numerically 0 or 1 occurred", SeparationWarning)
        extreme = (mu > 1 - _TEN_EPS) | (mu < _TEN_EPS)
        exact = np.abs(y[extreme] - np.round(mu[extreme])) < 1e-8
        if np.all(exact):
            emit(
                f"{int(extreme.sum())} observation(s) are fitted exactly with probability 0 or 1: "
                "the data are (quasi-)completely separated, the maximum likelihood estimates "
                "do not exist and the reported coefficients and standard errors are "
                "meaningless (they grow with the number of iterations)",
                SeparationWarning,
            )
    if family.name == "poisson" and np.min(mu) < _TEN_EPS:
        emit("glm.fit: fitted rates numerically 0 occurred", ConvergenceWarning)
    aliased = ~keep if keep is not None else np.zeros(nvars, dtype=bool)
    if np.any(aliased) and warn:
        _warn(aliased_message(aliased, column_names), RankDeficiencyWarning)
    coef = np.where(aliased, np.nan, coef)
    return IRLSFit(
        coef=coef,
        aliased=aliased,
        eta=eta,
        mu=mu,
        deviance=dev if iteration else devold,
        iterations=iteration,
        converged=conv,
        boundary=boundary,
        working_weights=w2,
        working_residuals=rows.working_residuals(state),
        chol=U,
        rank=int(np.count_nonzero(~aliased)),
        y=y,
        prior_weights=weights,
        n_trials=n_trials,
        history=history,
        warnings=fit_warnings,
        rows=rows,
    )


def suspicious_step(
    design: DenseDesign | FactorBlockDesign,
    A: np.ndarray,
    rhs: np.ndarray,
    w: np.ndarray,
    wz: np.ndarray,
    nobs: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""One IRLS step when a Cholesky pivot of :math:`X^\top W X` is suspiciously small.

    The columns of :math:`W^{1/2}X` that R's ``dqrdc2`` rule declares aliased are
    dropped (:func:`~pyglmm.glm.weighted_ls.aliased_columns`). If the cross product of
    the others still has a Cholesky factor, the step solves the normal equations with
    it; if not (ill-conditioned but of full rank by R's rule, which puts ``tol`` on the
    norms of :math:`W^{1/2}X`, not of :math:`X^\top W X`), :math:`\beta` minimises
    :math:`\|W^{1/2}(z - X\beta)\|` by a Householder QR of the rows with positive weight,
    backward stable like R's ``Cdqrls``. Aliased coefficients are zero.

    Returns
    -------
    keep : (p,) bool
        The non-aliased columns.
    U : (r, r) array
        Triangular factor with :math:`U^\top U = X^\top W X` over ``keep``.
    beta : (p,) array
    """
    good = w > 0
    sw = np.sqrt(w)
    with np.errstate(divide="ignore", invalid="ignore"):
        swz = np.where(good, wz / sw, 0.0)  # W^{1/2} z
    Xs = design.weighted_matrix(sw)
    Xs_good = Xs[good]
    keep = ~aliased_columns(Xs_good, tol)
    sub = np.flatnonzero(keep)
    # the cross products again, from W^{1/2}X itself (dsyrk: exactly symmetric, and the
    # rounding of R's and the Dask fit's sums of W^{1/2}x_i x_i^T W^{1/2})
    A = crossprod_upper(Xs)
    U, _ = cholesky_upper(A[np.ix_(sub, sub)])
    if U is not None:
        return keep, U, solve_step(U, Xs.T @ swz, keep, len(keep), nobs)
    rank = len(sub)
    if nobs < rank:
        raise PyglmmError(f"X matrix has rank {rank}, but only {nobs} observations")
    Q, U = np.linalg.qr(Xs_good[:, sub])
    beta = np.zeros(len(keep))
    beta[sub] = linalg.solve_triangular(U, Q.T @ swz[good])
    return keep, U, beta


def null_deviance(
    y: np.ndarray,
    family: Family,
    prior_weights: np.ndarray,
    offset: np.ndarray,
    mu: np.ndarray,
    intercept: bool,
    control: GLMControl,
    offset_given: bool,
    rows: FamilyRows | None = None,
) -> float:
    r"""Deviance of the null model, as R's ``glm``.

    Without an offset it is :math:`\sum_i d_i(y_i, \bar y_w)` with the weighted
    mean :math:`\bar y_w` (intercept) or :math:`g^{-1}(o)` (no intercept). With an
    offset and an intercept R fits the intercept-only model by IRLS, starting
    from the fitted means of the full model. ``rows`` (:attr:`IRLSFit.rows` of the
    fit) gives the fast deviance of the canonical links.
    """
    if intercept and offset_given and np.any(offset != 0):
        fit0 = fit_irls(
            np.ones((len(y), 1)),
            y,
            family,
            weights=prior_weights,
            offset=offset,
            mustart=mu,
            control=control,
            warn=False,
        )
        if not fit0.converged:
            _warn(
                "fitting to calculate the null deviance did not converge -- increase 'maxit'?",
                ConvergenceWarning,
            )
        return fit0.deviance
    if intercept:
        wtdmu = np.sum(prior_weights * y) / np.sum(prior_weights)
    else:
        wtdmu = family.linkinv(offset)
    if rows is not None:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            eta0 = family.linkfun(np.asarray(wtdmu, dtype=float))
        state = rows.at(np.broadcast_to(eta0, y.shape).astype(float))
        if state.fast:
            return rows.deviance(state)
    return float(np.sum(family.dev_resids(y, wtdmu, prior_weights)))
