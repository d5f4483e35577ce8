"""Richardson-extrapolated numerical derivatives, as R's numDeriv package.

lmerTest computes the Hessian of the deviance with respect to the variance
parameters with ``numDeriv::hessian`` and the Jacobian of ``vcov(β̂)`` with
``numDeriv::jacobian``; these are the same algorithms (``genD`` and the
``"Richardson"`` Jacobian with their default settings) so that degrees of
freedom agree with lmerTest to many digits.

With step ``h₀ = |d·x| + ε·[|x| < zero.tol]`` and ``r`` successive halvings, the
central differences ``D_k = (f(x+h_k) − f(x−h_k)) / 2h_k`` are combined by
Richardson extrapolation ``D_k ← (4^m D_{k+1} − D_k) / (4^m − 1)``, ``m = 1..r−1``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_ZERO_TOL = float(np.sqrt(np.finfo(float).eps / 7e-7))


def _richardson(a: np.ndarray) -> np.ndarray:
    """Richardson extrapolation over the first axis (``r`` halvings)."""
    a = np.array(a, dtype=float)
    r = a.shape[0]
    for m in range(1, r):
        a = (a[1 : r + 1 - m] * 4.0**m - a[: r - m]) / (4.0**m - 1.0)
    return a[0]


def jacobian(
    func: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    *,
    eps: float = 1e-4,
    d: float = 1e-4,
    r: int = 4,
    v: float = 2.0,
) -> np.ndarray:
    """``numDeriv::jacobian(func, x)`` (method ``"Richardson"``): ``(len(f), len(x))``."""
    x = np.asarray(x, dtype=float)
    n = x.size
    f0 = np.atleast_1d(np.asarray(func(x), dtype=float)).ravel()
    h = np.abs(d * x) + eps * (np.abs(x) < _ZERO_TOL)
    a = np.empty((r, f0.size, n))
    for k in range(r):
        for i in range(n):
            e = np.zeros(n)
            e[i] = h[i]
            f1 = np.asarray(func(x + e), dtype=float).ravel()
            f2 = np.asarray(func(x - e), dtype=float).ravel()
            a[k, :, i] = (f1 - f2) / (2.0 * h[i])
        h = h / v
    return _richardson(a)


def hessian(
    func: Callable[[np.ndarray], float],
    x: np.ndarray,
    *,
    eps: float = 1e-4,
    d: float = 0.1,
    r: int = 4,
    v: float = 2.0,
) -> np.ndarray:
    """``numDeriv::hessian(func, x)`` (``genD`` with its defaults) of a scalar function."""
    x = np.asarray(x, dtype=float)
    n = x.size
    f0 = float(func(x))
    h0 = np.abs(d * x) + eps * (np.abs(x) < _ZERO_TOL)
    hdiag = np.empty(n)
    for i in range(n):
        h = h0.copy()
        ap = np.empty(r)
        for k in range(r):
            e = np.zeros(n)
            e[i] = h[i]
            f1 = float(func(x + e))
            f2 = float(func(x - e))
            ap[k] = (f1 - 2.0 * f0 + f2) / h[i] ** 2
            h = h / v
        hdiag[i] = _richardson(ap)
    H = np.diag(hdiag)
    for i in range(n):
        for j in range(i):
            h = h0.copy()
            ap = np.empty(r)
            for k in range(r):
                e = np.zeros(n)
                e[i] += h[i]
                e[j] += h[j]
                f1 = float(func(x + e))
                f2 = float(func(x - e))
                ap[k] = (f1 - 2.0 * f0 + f2 - hdiag[i] * h[i] ** 2 - hdiag[j] * h[j] ** 2) / (
                    2.0 * h[i] * h[j]
                )
                h = h / v
            H[i, j] = H[j, i] = _richardson(ap)
    return H
