"""Bounded derivative-free optimization of the profiled objective, as lme4 does it.

lme4's default for ``lmer`` is ``nloptwrap``: nlopt's BOBYQA (Powell 2009) with
``xtol_abs = ftol_abs = 1e-8`` and ``maxeval = 1e5``, lower bounds 0 on the
diagonal of each ``λ_k``, started at ``λ_k = I``.  After the optimizer,
:func:`optimize_theta` applies lme4's two boundary polishes:

* ``restart_edge``: if a parameter ended exactly on its bound and the one-sided
  difference quotient there is negative, restart the optimizer from the optimum;
* ``check.boundary`` (``boundary.tol = 1e-5``): a parameter within ``1e-5`` of its
  bound is set to the bound if that lowers the objective.

For scalar terms, where the analytic gradient is available, :func:`newton_ai`
(Newton steps with an average-information Hessian) replaces BOBYQA, with
scipy's L-BFGS-B as the fallback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import nlopt
import numpy as np


@dataclass
class OptResult:
    """Result of :func:`optimize_theta`.

    Attributes
    ----------
    x : numpy.ndarray
        The optimum θ.
    fun : float
        Objective at ``x``.
    nevals : int
        Objective evaluations made by the optimizer(s) (lme4's ``feval`` counts
        only the first run).
    status : int
        nlopt's return code of the last run (positive: success).
    message : str
    stop_x : numpy.ndarray or None
        Where L-BFGS-B stopped (``x`` is the best point evaluated).
    """

    x: np.ndarray
    fun: float
    nevals: int
    status: int
    message: str
    stop_x: np.ndarray | None = None


_STATUS = {
    1: "NLOPT_SUCCESS",
    2: "NLOPT_STOPVAL_REACHED",
    3: "NLOPT_FTOL_REACHED",
    4: "NLOPT_XTOL_REACHED",
    5: "NLOPT_MAXEVAL_REACHED",
    6: "NLOPT_MAXTIME_REACHED",
}


def bobyqa(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    *,
    xtol_abs: float = 1e-8,
    ftol_abs: float = 1e-8,
    maxeval: int = 100_000,
) -> OptResult:
    """Minimize ``fun`` with nlopt's ``LN_BOBYQA`` under lower bounds (lme4's nloptwrap)."""
    x0 = np.asarray(x0, dtype=float)
    n = x0.size
    count = [0]
    best = [math.inf, x0.copy()]

    def f(x: np.ndarray, grad: np.ndarray) -> float:
        count[0] += 1
        v = fun(x)
        if not math.isfinite(v):
            v = 1e300
        if v < best[0]:
            best[0] = v
            best[1] = x.copy()
        return v

    if n == 0:
        v = fun(x0)
        return OptResult(x0, v, 1, 1, "no parameters")
    # BOBYQA needs at least 2 parameters in nlopt; use it for n >= 2 and the
    # same algorithm family (COBYLA-free) for n == 1: nlopt handles n == 1 too.
    opt = nlopt.opt(nlopt.LN_BOBYQA, n)
    opt.set_min_objective(f)
    lb = np.where(np.isfinite(lower), lower, -np.inf)
    opt.set_lower_bounds(lb)
    opt.set_upper_bounds(np.full(n, np.inf))
    opt.set_xtol_abs(xtol_abs)
    opt.set_ftol_abs(ftol_abs)
    opt.set_maxeval(int(maxeval))
    x = np.maximum(x0, lb)
    try:
        x = opt.optimize(x)
        status = opt.last_optimize_result()
        fval = opt.last_optimum_value()
    except (nlopt.RoundoffLimited, RuntimeError, ValueError) as exc:  # keep the best point
        x, fval, status = best[1], best[0], -4
        return OptResult(np.asarray(x), float(fval), count[0], status, str(exc))
    if best[0] < fval:
        x, fval = best[1], best[0]
    return OptResult(np.asarray(x), float(fval), count[0], int(status), _STATUS.get(status, ""))


def lbfgsb(
    fun_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    lower: np.ndarray,
    *,
    ftol: float | None = None,
    gtol: float = 1e-5,
    maxiter: int = 1000,
) -> OptResult:
    """Bounded quasi-Newton (scipy's L-BFGS-B) with the analytic gradient.

    Used for models whose terms are all scalar when they are large: each
    evaluation with gradient costs about three objective evaluations, and
    L-BFGS-B needs 20–30 of them where BOBYQA needs ~110 (InstEval).
    ``ftol=None`` stops when an iteration lowers the criterion by less than
    ``1e-8`` (relative to its value at the start; lme4's ``ftol_abs``).
    """
    from scipy.optimize import minimize

    x0 = np.maximum(np.asarray(x0, dtype=float), lower)
    best = [math.inf, x0.copy()]
    count = [0]
    first = fun_grad(x0)
    count[0] += 1
    if ftol is None:
        f0 = abs(first[0]) if math.isfinite(first[0]) else 1.0
        ftol = min(1e-10, max(1e-15, 1e-8 / max(f0, 1.0)))

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        if first is not None and np.array_equal(x, x0):
            v, g = first
        else:
            count[0] += 1
            v, g = fun_grad(x)
        if not math.isfinite(v):
            return 1e300, np.zeros_like(x)
        if v < best[0]:
            best[0], best[1] = v, x.copy()
        return v, g

    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    res = minimize(
        fg,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": ftol, "gtol": gtol, "maxiter": maxiter},
    )
    x, fx = (res.x, float(res.fun)) if res.fun <= best[0] else (best[1], best[0])
    msg = str(res.message)
    return OptResult(np.asarray(x), fx, count[0], 1 if res.success else -1, msg, np.asarray(res.x))


def newton_ai(
    fun: Callable[[np.ndarray], float],
    derivs: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    x0: np.ndarray,
    lower: np.ndarray,
    *,
    maxiter: int = 30,
    dec_tol: float = 1e-6,
) -> tuple[OptResult, bool]:
    """Damped Newton iterations with an approximate Hessian (average information).

    ``derivs(x)`` returns the gradient and an approximate Hessian at ``x``, the
    point of the latest ``fun`` call (so an implementation may reuse the
    factorization made by ``fun``).  Each iteration takes the step
    ``−H^{-1}g`` (``H`` made positive definite by its eigenvalues' absolute
    values if needed) with Armijo backtracking.  It stops after a full step
    where the Newton decrement ``gᵀH^{-1}g`` is below ``dec_tol`` (twice the
    decrease the quadratic model predicts; after that step the criterion is
    within ``ρ² dec_tol / 2`` of its minimum, ``ρ`` the relative error of ``H``).

    Bounds are handled by projection: a step is cut at the bounds, and
    parameters on a bound whose gradient does not point inwards are held there
    (the caller checks such boundary points, see :func:`optimize_theta`).

    Returns ``(result, converged)``; ``converged`` is False when the line search
    fails or ``maxiter`` is reached (the caller then continues with another
    method from ``result.x``).  ``result`` always holds the best point evaluated.
    """
    x = np.maximum(np.asarray(x0, dtype=float), lower)
    count = 0

    def f_at(z: np.ndarray) -> float:
        nonlocal count
        count += 1
        v = fun(z)
        return v if math.isfinite(v) else math.inf

    f = f_at(x)
    if not math.isfinite(f):
        return OptResult(x, f, count, -1, "non-finite objective at the start"), False
    msg = "maximum number of iterations"
    converged = False
    bounded = np.isfinite(lower)
    for _ in range(maxiter):
        g, H = derivs(x)
        # parameters on their bound with the gradient pointing outwards stay there
        # (for the even criterion of a scalar θ_k at 0 the gradient is exactly 0)
        free = ~(bounded & (x <= lower) & ~(g < 0))
        g_f = g[free]
        H_f = H[np.ix_(free, free)]
        if not (np.all(np.isfinite(g_f)) and np.all(np.isfinite(H_f))):
            msg = "non-finite derivatives"
            break
        step = np.zeros_like(x)
        if g_f.size:
            try:
                np.linalg.cholesky(H_f)
                step[free] = -np.linalg.solve(H_f, g_f)
            except np.linalg.LinAlgError:
                ev, vec = np.linalg.eigh(H_f)
                big = float(np.max(np.abs(ev)))
                if not big > 0.0:
                    msg = "zero Hessian"
                    break
                ev = np.maximum(np.abs(ev), 1e-8 * big)
                step[free] = -(vec @ ((vec.T @ g_f) / ev))
        dec = float(-(g @ step))
        if not dec > 0.0:
            converged = dec == 0.0
            msg = "zero gradient" if converged else "no descent direction"
            break
        xn = np.maximum(x + step, lower)  # projected onto the bounds
        if dec < dec_tol:
            # within rounding noise of a quadratic model's minimum: one last full
            # step, kept if it is not worse, and stop
            fn = f_at(xn)
            if fn <= f:
                x, f = xn, fn
            else:
                fun(x)  # leave the objective's state at the returned point
                count += 1
            converged = True
            msg = "converged (Newton decrement)"
            break
        t = 1.0
        fn = f_at(xn)
        for _ls in range(12):
            # sufficient decrease along the projected path
            if fn <= f + 1e-4 * float(g @ (xn - x)):
                break
            slope = float(g @ (xn - x)) / t
            denom = 2.0 * (fn - f - t * slope)
            tq = -slope * t * t / denom if math.isfinite(fn) and denom > 0 else 0.1 * t
            t = min(max(tq, 0.1 * t), 0.5 * t)
            xn = np.maximum(x + t * step, lower)
            fn = f_at(xn)
        if not fn <= f + 1e-4 * float(g @ (xn - x)):
            msg = "line search failed"
            if fn < f:
                x, f = xn, fn
            else:
                fun(x)
                count += 1
            break
        x, f = xn, fn
    return OptResult(x, f, count, 1 if converged else -1, msg), converged


def _lbfgsb_even(
    fun_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, lower: np.ndarray
) -> OptResult:
    """L-BFGS-B without bounds for a criterion even in each bounded parameter; |θ|."""
    res = lbfgsb(fun_grad, x0, np.full_like(lower, -np.inf))
    res.x = np.where(np.isfinite(lower), np.maximum(np.abs(res.x), lower), res.x)
    return res


def optimize_theta(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    *,
    restart_edge: bool = True,
    boundary_tol: float = 1e-5,
    fun_grad: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None,
    derivs: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    **nlopt_options: float,
) -> OptResult:
    """lme4's ``optimizeLmer``: BOBYQA, then ``restart_edge`` and ``check.boundary``.

    With ``fun_grad`` (objective and gradient; only for criteria even in each
    parameter with lower bound 0, i.e. scalar terms), L-BFGS-B replaces BOBYQA; the
    boundary checks are the same (``boundary_tol`` at least 1e-4, isSingular's),
    and the edge restart is an unbounded L-BFGS-B run (see the code comment).
    With ``derivs`` too (gradient and approximate Hessian at the point of the
    latest ``fun`` call), Newton iterations (:func:`newton_ai`) come first; the
    L-BFGS-B path runs from their result only when they did not converge inside
    the bounds.
    """
    lower = np.asarray(lower, dtype=float)
    newton_done = False
    if fun_grad is not None and derivs is not None:
        resn, newton_done = newton_ai(fun, derivs, x0, lower)
        if newton_done:
            res = resn
            boundary_tol = max(boundary_tol, 1e-4)
        else:
            xb = resn.x if math.isfinite(resn.fun) else x0
            res = optimize_theta(
                fun, xb, lower, restart_edge=False, boundary_tol=0.0, fun_grad=fun_grad
            )
            res.nevals += resn.nevals
            if resn.fun < res.fun:
                res = OptResult(resn.x, resn.fun, res.nevals, res.status, res.message)
            newton_done = True
            boundary_tol = max(boundary_tol, 1e-4)
    if newton_done:
        pass
    elif fun_grad is not None:
        # The gradient path is used for scalar terms only, where the criterion is
        # even in each θ_k (flipping the sign of a term's λ flips signs of whole rows
        # and columns of the system), so its derivative vanishes at θ_k = 0: with the
        # bound θ_k ≥ 0 a quasi-Newton method that steps onto the bound stops there
        # ("projected gradient 0") even when the optimum is inside.  So when the
        # bounded run stops on a bound, optimize again without bounds (from the best
        # point, those components at 0.1) and take |θ|.
        res = lbfgsb(fun_grad, x0, lower)
        stop = res.stop_x if res.stop_x is not None else res.x
        trapped = np.isfinite(lower) & (stop <= lower)
        if trapped.any():
            xs = res.x.copy()
            xs[trapped] = np.maximum(xs[trapped], lower[trapped] + 0.1)
            res2 = _lbfgsb_even(fun_grad, xs, lower)
            res2.nevals += res.nevals
            res = (
                res2
                if res2.fun <= res.fun
                else OptResult(res.x, res.fun, res2.nevals, res.status, res.message)
            )
        boundary_tol = max(boundary_tol, 1e-4)
    else:
        res = bobyqa(fun, x0, lower, **nlopt_options)
    total = res.nevals
    if restart_edge:
        # lme4: parameters exactly on the bound.  With the gradient optimizer also
        # those within 1e-6 of it: the criterion is even in a scalar θ_k, so θ_k = 0
        # is always a stationary point and a gradient method can stop there.
        if fun_grad is None:
            on_edge = np.flatnonzero(res.x == lower)
        else:
            on_edge = np.flatnonzero(np.isfinite(lower) & (res.x - lower <= 1e-6))
        if on_edge.size:
            xb = res.x.copy()
            xb[on_edge] = lower[on_edge]
            d0 = fun(xb)
            total += 1
            btol = 1e-5
            grads = []
            for i in on_edge:
                th = xb.copy()
                th[i] = lower[i] + btol
                grads.append((fun(th) - d0) / btol)
                total += 1
            neg = [i for i, g in zip(on_edge, grads, strict=True) if g < 0]
            if neg:
                if fun_grad is None:  # lme4: restart BOBYQA from the boundary point
                    res2 = bobyqa(fun, res.x, lower, **nlopt_options)
                else:  # restart the (unbounded, even) gradient path from θ_k = 0.1
                    xs = xb.copy()
                    xs[neg] = lower[neg] + 0.1
                    res2 = _lbfgsb_even(fun_grad, xs, lower)
                total += res2.nevals
                if res2.fun <= res.fun:
                    res = res2
    if boundary_tol > 0:
        diff = res.x - lower
        edge = np.flatnonzero((diff > 0) & (diff < boundary_tol))
        if edge.size:
            x = res.x.copy()
            for i in edge:
                th = x.copy()
                th[i] = lower[i]
                v = fun(th)
                total += 1
                # lme4 keeps the bound only if strictly better; after the gradient
                # path (which ends at |θ_k| ~ 1e-9 rather than exactly 0) also if equal
                snap = fun_grad is not None and v <= res.fun + 1e-12 * abs(res.fun)
                if v < res.fun or snap:
                    x[i] = lower[i]
            fx = fun(x)
            total += 1
            if fx <= res.fun + (1e-12 * abs(res.fun) if fun_grad is not None else 0.0):
                res = OptResult(x, fx, res.nevals, res.status, res.message)
    res.nevals = total
    return res


def newton_polish(
    fun: Callable[[np.ndarray], float],
    x: np.ndarray,
    fx: float,
    lower: np.ndarray,
    *,
    max_iter: int = 3,
    final_derivs: bool = True,
    derivs: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, int]:
    """A few Newton steps with lme4's finite-difference derivatives (``deriv12``).

    BOBYQA stops when the objective changes by less than ``ftol_abs``; on flat
    optima the parameters can then be ~1e-4 (relative) away from the optimum.
    Each step ``x − H⁻¹g`` (kept inside the bounds) is accepted only if it lowers
    the objective, so the result is never worse than the optimizer's.  The
    derivatives returned are those at the returned point (for the convergence
    checks; with ``final_derivs=False`` they may be those of the previous point).
    ``derivs`` supplies the derivatives at ``x`` (e.g. from the convergence check).
    Returns ``(x, fx, gradient, hessian, nevals)``.
    """
    from pyglmm.mixed.convergence import deriv12

    lower = np.asarray(lower, dtype=float)
    total = 0
    if derivs is None:
        g, H, ne = deriv12(fun, x, fx, lower)
        total += ne
    else:
        g, H = derivs
    for it in range(max_iter):
        try:
            np.linalg.cholesky(H)
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        xn = np.maximum(x - step, lower)
        fn = fun(xn)
        total += 1
        if not fn < fx:
            break
        x, fx = xn, fn
        if it == max_iter - 1 and not final_derivs:
            break
        g, H, ne = deriv12(fun, x, fx, lower)
        total += ne
        if np.max(np.abs(g)) < 1e-6:
            break
    return x, fx, g, H, total
