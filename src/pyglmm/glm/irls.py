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
from pyglmm.glm.weighted_ls import aliased_columns, cholesky_upper

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


def deviance_function(family: Family, y: np.ndarray, weights: np.ndarray):
    r"""The total deviance :math:`D(\mu) = \sum_i d_i(y_i, \mu_i)` as a function of :math:`\mu`.

    For a 0/1 binomial response :math:`d_i = -2 w_i \log\{\mu_i^{y_i}(1-\mu_i)^{1-y_i}\}`,
    one logarithm per observation instead of R's general formula's two ``xlogy`` terms
    (the same numbers up to rounding, 3 times faster); other families use
    ``family.dev_resids``.
    """
    if family.name in ("binomial", "quasibinomial") and np.all((y == 0) | (y == 1)):
        success = y == 1

        def binary_deviance(mu: np.ndarray) -> float:
            with np.errstate(divide="ignore"):
                return float(-2 * np.sum(weights * np.log(np.where(success, mu, 1 - mu))))

        return binary_deviance

    def deviance(mu: np.ndarray) -> float:
        return float(np.sum(family.dev_resids(y, mu, weights)))

    return deviance


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
    """
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

    linkinv, dev_resids, mu_eta, variance = (
        family.linkinv,
        family.dev_resids,
        family.mu_eta,
        family.variance,
    )
    total_deviance = deviance_function(family, y, weights)

    def valid(eta: np.ndarray, mu: np.ndarray) -> bool:
        return family.valid_eta(eta) and family.valid_mu(mu)

    def eta_mu(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        eta = design.matvec(beta) + offset
        return eta, linkinv(eta)

    def eta_mu_deviance(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        eta, mu = eta_mu(beta)
        return eta, mu, total_deviance(mu)

    history: list = []
    if nvars == 0:
        eta = offset.copy()
        if not family.valid_eta(eta):
            raise PyglmmError("invalid linear predictor values in empty model")
        mu = linkinv(eta)
        if not family.valid_mu(mu):
            raise PyglmmError("invalid fitted means in empty model")
        dev = float(np.sum(dev_resids(y, mu, weights)))
        me = mu_eta(eta)
        w2 = weights * me**2 / variance(mu)
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
    mu = linkinv(eta)
    if not valid(eta, mu):
        raise PyglmmError("cannot find valid starting values: please specify some")
    devold = total_deviance(mu)
    boundary = conv = False
    tol = control.rank_tolerance
    keep: np.ndarray | None = None  # non-aliased columns (decided at the first step)
    coef = np.zeros(nvars) if start is None else start.copy()
    beta = coef.copy()
    U = np.zeros((0, 0))
    w2 = np.zeros(nobs)
    iteration = 0
    positive_weights = weights > 0
    for iteration in range(1, control.maxit + 1):
        varmu = variance(mu)
        if np.any(np.isnan(varmu[positive_weights])):
            raise PyglmmError("NAs in V(mu)")
        if np.any(varmu[positive_weights] == 0):
            raise PyglmmError("0s in V(mu)")
        me = mu_eta(eta)
        if np.any(np.isnan(me[positive_weights])):
            raise PyglmmError("NAs in d(mu)/d(eta)")
        good = positive_weights & (me != 0)
        n_good = int(np.count_nonzero(good))
        if n_good == 0:
            conv = False
            emit(f"no observations informative at iteration {iteration}")
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (eta - offset) + (y - mu) / me
            w2 = weights * me**2 / varmu
        if n_good < nobs:
            z = np.where(good, z, 0.0)
            w2 = np.where(good, w2, 0.0)
        sw = np.sqrt(w2)
        A, rhs = design.crossprod(sw, sw * z)
        U, suspicious = factor_crossproducts(A, keep)
        if keep is None and not suspicious:
            keep = np.ones(nvars, dtype=bool)
        elif suspicious:
            Xs_good = design.weighted_matrix(sw)[good]
            keep = ~aliased_columns(Xs_good, tol)
            sub = np.flatnonzero(keep)
            U, _ = cholesky_upper(A[np.ix_(sub, sub)])
            if U is None:
                # ill-conditioned but of full rank by R's rule (tol on the norms of
                # W^{1/2}X, not of X'WX): take the triangular factor from a QR instead
                U = np.linalg.qr(Xs_good[:, sub], mode="r")
        beta_new = solve_step(U, rhs, keep, nvars, nobs)
        if not np.all(np.isfinite(beta_new)):
            conv = False
            emit(f"non-finite coefficients at iteration {iteration}")
            break
        beta = beta_new
        eta = design.matvec(beta) + offset
        mu = linkinv(eta)
        dev = total_deviance(mu)
        if control.trace:
            print(f"Deviance = {dev} Iterations - {iteration}")
        boundary = False
        if not np.isfinite(dev):
            require_previous_coefficients(coefold)
            emit("step size truncated due to divergence")
            beta, (eta, mu, dev) = halve_step(
                beta,
                coefold,
                (eta, mu, dev),
                eta_mu_deviance,
                lambda state: np.isfinite(state[2]),
                maxit=control.maxit,
                inner_loop=1,
            )
            boundary = True
        if not valid(eta, mu):
            require_previous_coefficients(coefold)
            emit("step size truncated: out of bounds")
            beta, (eta, mu) = halve_step(
                beta,
                coefold,
                (eta, mu),
                eta_mu,
                lambda state: valid(*state),
                maxit=control.maxit,
                inner_loop=2,
            )
            boundary = True
            dev = total_deviance(mu)
        if control.halve_on_increase and coefold is not None and dev > devold:
            # glm2-style: halve towards the previous coefficients until the deviance does
            # not increase; if it never does, stay at the previous coefficients
            ii = 1
            while dev > devold and ii <= control.maxit:
                ii += 1
                beta = (beta + coefold) / 2
                eta = design.matvec(beta) + offset
                mu = linkinv(eta)
                dev = total_deviance(mu) if valid(eta, mu) else np.inf
            if dev > devold:
                beta = coefold.copy()
                eta = design.matvec(beta) + offset
                mu = linkinv(eta)
                dev = devold
            boundary = False
        history.append((iteration, dev, np.where(keep, beta, np.nan)))
        if deviance_converged(dev, devold, control.epsilon):
            conv = True
            coef = beta
            break
        devold = dev
        coef = coefold = beta.copy()
    design.release()
    for message in stop_warnings(conv, boundary):
        emit(message)
    if family.name == "binomial" and (np.any(mu > 1 - _TEN_EPS) or np.any(mu < _TEN_EPS)):
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
    if family.name == "poisson" and np.any(mu < _TEN_EPS):
        emit("glm.fit: fitted rates numerically 0 occurred", ConvergenceWarning)
    aliased = ~keep if keep is not None else np.zeros(nvars, dtype=bool)
    if np.any(aliased) and warn:
        _warn(aliased_message(aliased, column_names), RankDeficiencyWarning)
    coef = np.where(aliased, np.nan, coef)
    with np.errstate(divide="ignore", invalid="ignore"):
        working_residuals = (y - mu) / mu_eta(eta)
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
        working_residuals=working_residuals,
        chol=U,
        rank=int(np.count_nonzero(~aliased)),
        y=y,
        prior_weights=weights,
        n_trials=n_trials,
        history=history,
        warnings=fit_warnings,
    )


def null_deviance(
    y: np.ndarray,
    family: Family,
    prior_weights: np.ndarray,
    offset: np.ndarray,
    mu: np.ndarray,
    intercept: bool,
    control: GLMControl,
    offset_given: bool,
) -> float:
    r"""Deviance of the null model, as R's ``glm``.

    Without an offset it is :math:`\sum_i d_i(y_i, \bar y_w)` with the weighted
    mean :math:`\bar y_w` (intercept) or :math:`g^{-1}(o)` (no intercept). With an
    offset and an intercept R fits the intercept-only model by IRLS, starting
    from the fitted means of the full model.
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
    return float(np.sum(family.dev_resids(y, wtdmu, prior_weights)))
