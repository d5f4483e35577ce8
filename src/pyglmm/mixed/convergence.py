"""lme4's post-fit convergence checks (``checkConv``) and ``isSingular``.

The derivatives are lme4's ``deriv12``: central differences with step ``δ = 1e-4``
(one-sided at a bound) for the gradient ``g`` and Hessian ``H`` of the objective in θ.
Then, as ``lmerControl()``'s defaults:

* singular: any θ with lower bound 0 below ``1e-4`` -> message
  ``"boundary (singular) fit: see help('isSingular')"`` and no further checks;
* gradient: ``max_i min(|H^{-1/2}g|_i, |g_i|) > 0.002`` ->
  ``"Model failed to converge with max|grad| = … (tol = 0.002, component …)"``
  (``"unable to evaluate scaled gradient"`` if ``H`` is not positive definite);
* Hessian: negative eigenvalues below ``-1e-6`` -> ``"Model failed to converge:
  degenerate  Hessian with k negative eigenvalues"``; near-zero ones -> ``"Hessian is
  numerically singular…"``; ``max eig > 1e6`` or ratio ``< 1e-6`` -> ``"Model is nearly
  unidentifiable: …"``.

lme4 computes the derivatives only when ``n < 10 000`` (``calc.derivs``); so does
:func:`check_convergence` by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ConvergenceInfo:
    """Derivatives at the optimum and lme4's messages."""

    gradient: np.ndarray | None
    hessian: np.ndarray | None
    messages: list[str] = field(default_factory=list)
    singular: bool = False
    code: int = 0
    nevals: int = 0


def deriv12(
    fun: Callable[[np.ndarray], float],
    x: np.ndarray,
    fx: float,
    lower: np.ndarray,
    delta: float = 1e-4,
    batch: Callable[[np.ndarray], np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Finite-difference gradient and Hessian as lme4's ``deriv12`` (lower bounds only).

    ``batch`` (optional) evaluates the objective at the rows of a matrix at once
    (None when it cannot); then all points, ``x`` included (so that every value
    of the differences comes from the same computation), are evaluated in one call.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    xadd = x + delta
    xsub = x - delta
    ldelta = np.full(n, delta)
    active = np.isfinite(lower) & (xsub < lower)
    ldelta[active] = (x - lower)[active]
    xsub[active] = lower[active]
    # the points, in lme4's order: per j, x ± e_j, then the four corners for i < j
    points: list[np.ndarray] = []

    def point(pos: list[int], vals: list[np.ndarray]) -> int:
        t = x.copy()
        for p, v in zip(pos, vals, strict=True):
            t[p] = v[p]
        points.append(t)
        return len(points) - 1

    layout = []
    for j in range(n):
        add, sub = point([j], [xadd]), point([j], [xsub])
        corners = [
            (
                point([i, j], [xadd, xadd]),
                point([i, j], [xadd, xsub]),
                point([i, j], [xsub, xadd]),
                point([i, j], [xsub, xsub]),
            )
            for i in range(j)
        ]
        layout.append((add, sub, corners))
    f = None
    if batch is not None and points:
        vals = batch(np.vstack([x[None, :], *points]))
        if vals is not None and np.isfinite(vals[0]):
            fx = float(vals[0])
            f = np.asarray(vals[1:], dtype=float)
    if f is None:
        f = np.array([fun(t) for t in points])
    H = np.empty((n, n))
    g = np.empty(n)
    for j, (add, sub, corners) in enumerate(layout):
        fadd, fsub = f[add], f[sub]
        ud, ld = delta, ldelta[j]
        H[j, j] = fadd / ud**2 - 2 * fx / (ud * ld) + fsub / ld**2
        g[j] = (fadd - fsub) / (ud + ld)
        for i, (pp, pm, mp, mm) in enumerate(corners):
            ldi = ldelta[i]
            H[i, j] = H[j, i] = (
                f[pp] / (delta + ud) ** 2
                - f[pm] / (delta + ld) ** 2
                - f[mp] / (ldi + ud) ** 2
                + f[mm] / (ldi + ld) ** 2
            )
    return g, H, len(points)


def is_singular(theta: np.ndarray, lower: np.ndarray, tol: float = 1e-4) -> bool:
    """lme4's ``isSingular``: any θ with lower bound 0 below ``tol``."""
    theta = np.asarray(theta)
    return bool(np.any(theta[np.asarray(lower) == 0] < tol))


def _check_hessian(H: np.ndarray, tol: float) -> tuple[int, list[str]]:
    try:
        ev = np.linalg.eigvalsh(H)
    except np.linalg.LinAlgError:
        return -6, ["Problem with Hessian check (infinite or missing values?)"]
    if not np.all(np.isfinite(ev)):
        return -6, ["Problem with Hessian check (infinite or missing values?)"]
    neg = int(np.sum(ev < -tol))
    if neg:
        return -3, [
            f"Model failed to converge: degenerate  Hessian with {neg} negative eigenvalues"
        ]
    try:
        np.linalg.cholesky(H)
        chol_ok = True
    except np.linalg.LinAlgError:
        chol_ok = False
    if np.any(np.abs(ev) < tol) or not chol_ok:
        return -4, [" Hessian is numerically singular: parameters are not uniquely determined"]
    msgs = []
    code = 0
    if ev.max() * tol > 1:
        code = 2
        msgs.append("Model is nearly unidentifiable: very large eigenvalue\n - Rescale variables?")
    if ev.min() / ev.max() < tol:
        code = 3
        msgs.append("Model is nearly unidentifiable: large eigenvalue ratio\n - Rescale variables?")
    return code, msgs


def check_convergence(
    fun: Callable[[np.ndarray], float],
    theta: np.ndarray,
    fval: float,
    lower: np.ndarray,
    *,
    calc_derivs: bool = True,
    grad_tol: float = 0.002,
    hess_tol: float = 1e-6,
    singular_tol: float = 1e-4,
    derivs: tuple[np.ndarray, np.ndarray] | None = None,
    batch: Callable[[np.ndarray], np.ndarray | None] | None = None,
) -> ConvergenceInfo:
    """lme4's ``checkConv`` at the optimum (see the module docstring).

    ``derivs=(gradient, hessian)`` supplies derivatives already computed at ``theta``;
    ``batch`` evaluates the objective at many points at once (see :func:`deriv12`).
    """
    lower = np.asarray(lower, dtype=float)
    theta = np.asarray(theta, dtype=float)
    info = ConvergenceInfo(None, None)
    if derivs is not None:
        info.gradient, info.hessian = derivs
    elif calc_derivs and theta.size:
        with np.errstate(divide="ignore", invalid="ignore"):
            g, H, ne = deriv12(fun, theta, fval, lower, batch=batch)
        info.gradient, info.hessian, info.nevals = g, H, ne
    if is_singular(theta, lower, singular_tol):
        info.singular = True
        info.messages.append("boundary (singular) fit: see help('isSingular')")
        return info
    if info.gradient is None:
        return info
    g, H = info.gradient, info.hessian
    if np.any(np.isnan(g)):
        info.code = -5
        info.messages.append("Gradient contains NAs")
        return info
    try:
        U = np.linalg.cholesky(H).T  # R's chol: upper U with UᵀU = H
        scgrad = np.linalg.solve(U, g)
        ok = np.all(np.isfinite(scgrad))
    except np.linalg.LinAlgError:
        ok = False
    if not ok:
        info.code = -1
        info.messages.append("unable to evaluate scaled gradient")
    else:
        mingrad = np.minimum(np.abs(scgrad), np.abs(g))
        mx = float(mingrad.max())
        if mx > grad_tol:
            info.code = -1
            info.messages.append(
                f"Model failed to converge with max|grad| = {mx:.6g} (tol = {grad_tol:g}, "
                f"component 1)"
            )
    code, msgs = _check_hessian(H, hess_tol)
    if code:
        info.code = code
    info.messages.extend(msgs)
    return info
