"""The profiled objective of a linear mixed model as a function of θ.

With ``r²(θ)`` the penalized weighted residual sum of squares, ``L_Z`` the
random-effects part of the blocked Cholesky factor and ``R_X`` the fixed-effects
part (Bates et al. 2015, eqs. 34 and 42), the profiled deviance and REML
criterion are

.. math::

    d(θ) = \\log|L_Z|^2 + n\\Bigl[1 + \\log\\frac{2π r^2(θ)}{n}\\Bigr] − \\sum_i \\log w_i ,

    d_R(θ) = \\log|L_Z|^2 + \\log|R_X|^2 + (n-p)\\Bigl[1 + \\log\\frac{2π r^2(θ)}{n-p}\\Bigr]
             − \\sum_i \\log w_i ,

``σ̂² = r²/n`` (ML) or ``r²/(n−p)`` (REML).  With β held fixed (for profiling),
``r²(θ, β) = r²(θ) + ‖R_X(β − β̂)‖²`` and the ML deviance uses that in place of
``r²(θ)``.
"""

from __future__ import annotations

import math

import numpy as np

from pyglmm.mixed.blocked_cholesky import BlockedCholesky
from pyglmm.mixed.blocks import LmmBlocks

_LOG2PI = math.log(2.0 * math.pi)


class LmmObjective:
    """Callable ``θ ↦`` REML criterion or ML deviance; counts its evaluations.

    Parameters
    ----------
    blocks : LmmBlocks
    reml : bool
    """

    def __init__(self, blocks: LmmBlocks, reml: bool = True) -> None:
        self.blocks = blocks
        self.reml = bool(reml)
        self.factor = BlockedCholesky(blocks)
        self.nevals = 0
        w = blocks.weights
        self.ldW = 0.0 if w is None else float(np.log(w[w > 0]).sum())
        self.n = blocks.n
        self.p = blocks.p

    def __call__(self, theta: np.ndarray) -> float:
        self.nevals += 1
        f = self.factor
        if not f.update(theta):
            return math.inf
        return self.value()

    def value(self) -> float:
        """The objective at the θ of the current factor."""
        f = self.factor
        b = self.blocks
        m1 = b.m - 1
        if m1 <= 16:  # small rest: Python floats (fewer numpy calls per evaluation)
            d = f.Lrr.diagonal().tolist()
            r2 = d[m1] * d[m1]
            if not r2 > 0.0:
                return math.inf
            mz = b.mz
            try:
                ldz = f.logdet_L00 + 2.0 * sum(map(math.log, d[:mz]))
                if self.reml:
                    nmp = self.n - self.p
                    ldx = 2.0 * sum(map(math.log, d[mz:m1]))
                    return ldz + ldx + nmp * (1.0 + _LOG2PI + math.log(r2 / nmp)) - self.ldW
                n = self.n
                return ldz + n * (1.0 + _LOG2PI + math.log(r2 / n)) - self.ldW
            except ValueError:  # a non-positive diagonal (not from a successful factor)
                return math.nan
        r2 = f.pwrss()
        if not r2 > 0.0:
            return math.inf
        if self.reml:
            nmp = self.n - self.p
            return (
                f.logdet_LZ2()
                + f.logdet_RX2()
                + nmp * (1.0 + _LOG2PI + math.log(r2 / nmp))
                - self.ldW
            )
        n = self.n
        return f.logdet_LZ2() + n * (1.0 + _LOG2PI + math.log(r2 / n)) - self.ldW

    def values(self, thetas: np.ndarray) -> np.ndarray | None:
        """The objective at many θ (rows of ``thetas``) in batched numpy calls, for
        models with one random-effects factor (see
        :meth:`BlockedCholesky.batch_factors`); None when not available.  Used for
        the finite-difference derivatives of the convergence checks."""
        out = self.factor.batch_factors(thetas)
        if out is None:
            return None
        logdet_L00, d = out
        b = self.blocks
        m1, mz = b.m - 1, b.mz
        self.nevals += len(d)
        r2 = d[:, m1] ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            logd = np.log(d[:, :m1])
            ldz = logdet_L00 + 2.0 * logd[:, :mz].sum(axis=1)
            if self.reml:
                nmp = self.n - self.p
                ldx = 2.0 * logd[:, mz:].sum(axis=1)
                v = ldz + ldx + nmp * (1.0 + _LOG2PI + np.log(r2 / nmp)) - self.ldW
            else:
                n = self.n
                v = ldz + n * (1.0 + _LOG2PI + np.log(r2 / n)) - self.ldW
        return np.where(r2 > 0.0, v, np.inf)

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Objective and its analytic gradient (all terms scalar; see
        :meth:`BlockedCholesky.gradient`)."""
        self.nevals += 1
        f = self.factor
        if not f.update(theta):
            return math.inf, np.zeros(len(theta))
        v = self.value()
        if not math.isfinite(v):
            return v, np.zeros(len(theta))
        return v, f.gradient(self.reml)

    def derivatives(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and average-information Hessian at ``θ`` (scalar terms; see
        :meth:`BlockedCholesky.gradient` and :meth:`BlockedCholesky.hessian_ai`).

        Reuses the factorization of the latest call when it was made at ``θ``.
        """
        f = self.factor
        theta = np.asarray(theta, dtype=float)
        if not (f.ok and f.theta is not None and np.array_equal(f.theta, theta)):
            self.nevals += 1
            if not f.update(theta):
                nan = np.full(len(theta), np.nan)
                return nan, np.full((len(theta), len(theta)), np.nan)
        g = f.gradient(self.reml)
        return g, f.hessian_ai(self.reml, g)

    def deviance_fixed_beta(self, theta: np.ndarray, beta: np.ndarray) -> float:
        """ML deviance at ``(θ, β)`` profiled over σ only (for profiling β)."""
        f = self.factor
        if not f.update(theta):
            return math.inf
        bhat = f.solve()[0]
        diff = f.RX() @ (np.asarray(beta, dtype=float) - bhat)
        r2 = f.pwrss() + float(diff @ diff)
        n = self.n
        return f.logdet_LZ2() + n * (1.0 + _LOG2PI + math.log(r2 / n)) - self.ldW
