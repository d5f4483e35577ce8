"""PIRLS, Laplace deviance and its gradient for small GLMMs with dense matrices.

The general engine (:class:`~pyglmm.mixed.pirls.Pirls` with the blocked factor of
:mod:`pyglmm.mixed.glmm_blocks` and :func:`~pyglmm.mixed.glmm_gradient.laplace_and_gradient`)
is built for many levels and many rows; on a model such as cbpp (56 rows, 15 levels) its
cost is Python overhead: factor objects, generic products, error-state contexts, per
iteration.  For scalar random-effects terms with the canonical binomial (logit) or Poisson
(log) link and few random-effects columns this module does the same computations in a few
numpy calls per PIRLS iteration:

* one term: ``H = ΛᵀZᵀWZΛ + I`` is diagonal, every product is a ``bincount``;
* several terms: ``Z`` is a dense ``n × q`` matrix and ``H`` is factored by one Cholesky.

The quantities are those of the general engine (the module docstrings of
:mod:`pyglmm.mixed.pirls` and :mod:`pyglmm.mixed.glmm_gradient` give the formulas): for
``η = o + Xβ + ZΛu`` and a canonical link ``W = w V(μ)``, ``W∘r = w(y − μ)``; the modes
solve ``ũ = ΛᵀZᵀ(W∘r)`` (Newton steps ``H δ = ΛᵀZᵀ(W∘r) − u`` with lme4's step halving),
the Laplace deviance is ``log|H| + ‖ũ‖² + aic`` and its gradient in ``(θ, β)`` uses the
leverages ``h_i = z̃_iᵀH^{-1}z̃_i`` and ``W' = dW/dη``.  lme4's ``nAGQ = 0`` system (``β``
inside PIRLS) is solved through the Schur complement of the ``u`` block.

:class:`DenseLaplace` also runs the whole second stage of :func:`pyglmm.glmer` for such
models (:meth:`DenseLaplace.minimize`, :meth:`DenseLaplace.newton_polish`): one L-BFGS-B
run on ``(θ, β)`` with modes converged to ``|Δη| < 10⁻⁷`` at every evaluation (Newton's
method converges quadratically, so the modes are exact to rounding and the gradient is
smooth), the Hessian from central differences of the analytic gradient (needed anyway for
the convergence checks and lme4's Hessian-based standard errors) and one Newton step with
it as the final polish.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import lapack

from pyglmm.mixed.optimizer import OptResult
from pyglmm.mixed.pirls import Pirls, PirlsError, PirlsState

#: dense path limits: rows (lme4 computes the Hessian only below 10 000 rows), random-effects
#: columns, and ``n q²`` (the cost of ``ZᵀWZ`` and the leverages with several terms)
_MAX_N = 10_000
_MAX_Q_SINGLE = 5_000
_MAX_Q_MULTI = 120
_MAX_NQQ_MULTI = 4_000_000

#: modes are converged when a Newton step changes η by less than this (the next step would
#: be ~1e-14: the modes are exact to rounding)
ETA_TOL = 1e-7


def _slack(pdev: float) -> float:
    """Tolerance of the step-halving test ``pdev_new <= pdev + slack``: the penalized
    deviance carries rounding errors well above lme4's ``1e-15`` relative slack (the unit
    deviances ``μ − yη + c`` cancel for large Poisson means), and a Newton step must not be
    halved for them."""
    return 1e-11 * abs(pdev) + 1e-12


def _chol_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(LLᵀ)^{-1}b`` for a lower Cholesky factor ``L`` (LAPACK's ``dpotrs`` directly: for
    these small systems scipy's ``cho_solve`` checks cost more than the solve)."""
    x, info = lapack.dpotrs(L, b, lower=1)
    if info != 0:  # pragma: no cover - only for invalid arguments
        raise np.linalg.LinAlgError(f"dpotrs failed (info = {info})")
    return x


def _newton_step(H: np.ndarray, g: np.ndarray) -> tuple[np.ndarray | None, bool]:
    """``−H^{-1}g``, ``H`` made positive definite through its eigenvalues' absolute values
    (floored at ``10⁻⁸`` of the largest) where its Cholesky factorization fails (then the
    second value is True); ``None`` for a zero Hessian."""
    L, info = lapack.dpotrf(H, lower=1, clean=1)
    if info == 0:
        return -_chol_solve(L, g), False
    ev, vec = np.linalg.eigh(H)
    big = float(np.max(np.abs(ev)))
    if not big > 0.0:
        return None, True
    return -(vec @ ((vec.T @ g) / np.maximum(np.abs(ev), 1e-8 * big))), True


def dense_applicable(pirls: Pirls) -> bool:
    """Whether :class:`DenseLaplace` handles this model (scalar terms, canonical binomial or
    Poisson link, small).

    Parameters
    ----------
    pirls : Pirls
        The general engine of the model.

    Returns
    -------
    bool
    """
    if pirls.resp._fast is None or not all(t.q == 1 for t in pirls.terms):
        return False
    n = pirls.n
    q = sum(t.nlevels for t in pirls.terms)
    if n >= _MAX_N or q == 0:
        return False
    if len(pirls.terms) == 1:
        return q <= _MAX_Q_SINGLE
    return q <= _MAX_Q_MULTI and n * q * q <= _MAX_NQQ_MULTI


class DenseLaplace:
    """Laplace deviance and gradient of a small GLMM (see the module docstring).

    Parameters
    ----------
    pirls : Pirls
        The general engine of the model (its terms, ``X`` and response); the modes found
        here are written back to it by :meth:`to_pirls`.

    Attributes
    ----------
    u : (q,) array
        Spherical modes at the last evaluation (terms concatenated, as ``Pirls.state``).
    beta : (p,) array
        Fixed effects at the last evaluation.
    iterations : int
        PIRLS iterations (factorizations) so far.
    """

    def __init__(self, pirls: Pirls) -> None:
        self.pirls = pirls
        resp = pirls.resp
        self.resp = resp
        self.binomial = resp._fast[0] == "binomial"
        self.y = resp.y
        self.wt = resp.wt
        self.unit_wt = resp._unit_wt
        self.c = resp._c
        self.offset = resp.offset if pirls._has_offset else None
        self.X = pirls.X
        self.XT = np.ascontiguousarray(self.X.T)
        self.n, self.p = self.X.shape
        terms = pirls.terms
        self.k = len(terms)
        sizes = [t.nlevels for t in terms]
        self.q = int(sum(sizes))
        self.n0 = sizes[0]
        self.single = self.k == 1
        self.col_term = np.repeat(np.arange(self.k), sizes)
        if self.single:
            t = terms[0]
            self.refs = t.refs
            z = t.z[:, 0]
            self.z = None if np.all(z == 1.0) else np.ascontiguousarray(z)
            self.z2 = None if self.z is None else self.z * self.z
            # flat index for Z₀ᵀ(W∘X): row-major (level, column) pairs
            self._zx_index = (self.refs[:, None] * self.p + np.arange(self.p)).ravel()
        else:
            Z = np.zeros((self.n, self.q))
            off = 0
            rows = np.arange(self.n)
            for t, nl in zip(terms, sizes, strict=True):
                Z[rows, off + t.refs] = t.z[:, 0]
                off += nl
            self.Z = Z
            self.ZT = np.ascontiguousarray(Z.T)
        self.u = np.zeros(self.q)
        self.beta = np.zeros(self.p)
        self.theta_at: np.ndarray | None = None  # (θ, β) of the last modes() call
        self.value = math.nan
        self._order = None
        self.iterations = 0
        self.nevals = 0
        self._diag = np.arange(self.q)

    # -- pieces ------------------------------------------------------------------
    def _linear(self, beta: np.ndarray) -> np.ndarray:
        base = self.X @ beta
        if self.offset is not None:
            base += self.offset
        return base

    def _dev(self, eta: np.ndarray) -> tuple[np.ndarray, float]:
        """``μ`` and the deviance ``Σ d_i`` at ``η``: ``d_i = 2w_i(log(1 + e^{η_i}) − y_iη_i +
        c_i)`` (binomial) or ``2w_i(e^{η_i} − y_iη_i + c_i)`` (Poisson) as
        :meth:`GlmmResponse.dev_from_eta <pyglmm.mixed.pirls.GlmmResponse.dev_from_eta>`, in
        fewer operations; its general code (R's clamping of ``μ``) beyond ``|η| ≥ 30``."""
        if float(np.abs(eta).max()) >= 30.0:
            return self.resp.dev_from_eta(eta)
        e = np.exp(eta)
        if self.binomial:
            mu = e / (e + 1.0)
            d = np.log1p(e)
        else:
            mu = e
            d = e.copy()
        d -= self.y * eta
        d += self.c
        return mu, 2.0 * (float(d.sum()) if self.unit_wt else float(self.wt @ d))

    def _zlu(self, lam: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``ZΛu``."""
        if self.single:
            g = (lam[0] * u).take(self.refs)
            if self.z is not None:
                g *= self.z
            return g
        return self.Z @ (lam * u)

    def _working(self, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``W = w V(μ)`` and ``W∘r = w(y − μ)`` (canonical link)."""
        v = mu * (1.0 - mu) if self.binomial else mu
        s = self.y - mu
        if self.unit_wt:
            return (v if self.binomial else v.copy()), s
        s *= self.wt
        return self.wt * v, s

    def _zt(self, v: np.ndarray) -> np.ndarray:
        """``Zᵀv`` (unscaled columns)."""
        if self.single:
            return np.bincount(
                self.refs, weights=v if self.z is None else v * self.z, minlength=self.q
            )
        return self.ZT @ v

    def _factor_u(self, lam: np.ndarray, W: np.ndarray):
        """``H = ΛᵀZᵀWZΛ + I``: ``(diag H, ZᵀWZ diagonal)`` for one term, else
        ``(lower Cholesky factor, ZᵀWZ)``."""
        if self.single:
            A00 = np.bincount(
                self.refs, weights=W if self.z2 is None else W * self.z2, minlength=self.q
            )
            hd = A00 * (lam[0] * lam[0])
            hd += 1.0
            return hd, A00
        M = self.ZT @ (self.Z * W[:, None])
        H = M * lam[:, None]
        H *= lam[None, :]
        H[self._diag, self._diag] += 1.0
        L, info = lapack.dpotrf(H, lower=1, clean=1, overwrite_a=1)
        if info != 0:
            raise PirlsError("PIRLS: the penalized weighted cross-product is not positive definite")
        return L, M

    def _hsolve(self, fac, c: np.ndarray) -> np.ndarray:
        """``H^{-1}c`` (``c`` a vector or a ``q × m`` matrix)."""
        if self.single:
            return c / fac if c.ndim == 1 else c / fac[:, None]
        return _chol_solve(fac, c)

    def _logdet(self, fac) -> float:
        if self.single:
            return float(np.log(fac).sum())
        return 2.0 * float(np.log(np.diagonal(fac)).sum())

    # -- PIRLS -------------------------------------------------------------------
    def modes(
        self, theta: np.ndarray, beta: np.ndarray, u_start: np.ndarray | None = None
    ) -> float:
        """Conditional modes at ``(θ, β)`` (from ``u_start`` or the last modes); returns the
        Laplace deviance and keeps what :meth:`gradient` needs."""
        self.nevals += 1
        lam = theta[self.col_term] if not self.single else np.asarray(theta, dtype=float)
        base = self._linear(beta)
        u = (self.u if u_start is None else u_start).copy()
        eta = base + self._zlu(lam, u)
        dev_from_eta = self._dev
        mu, dev = dev_from_eta(eta)
        pdev = dev + float(u @ u)
        if not math.isfinite(pdev):
            u = np.zeros(self.q)
            eta = base.copy()
            mu, dev = dev_from_eta(eta)
            pdev = dev
        converged = False
        maxit = self.pirls.maxit
        for _it in range(maxit):
            # μ is finite (the penalized deviance is), so are the working weights
            W, s = self._working(mu)
            self.iterations += 1
            fac, M = self._factor_u(lam, W)
            zs = self._zt(s)
            if converged:
                break
            delta = self._hsolve(fac, lam * zs - u)
            step = 1.0
            for _half in range(30):
                cand = u + step * delta if step != 1.0 else u + delta
                eta_c = base + self._zlu(lam, cand)
                mu_c, dev_c = dev_from_eta(eta_c)
                pdev_c = dev_c + float(cand @ cand)
                if step == 1.0:
                    deta = float(np.abs(eta_c - eta).max())
                    if deta < ETA_TOL and math.isfinite(pdev_c):
                        # a full Newton step this small lands on the modes (quadratic
                        # convergence): taken whatever the rounding errors of the penalized
                        # deviance (~1e-7 absolute with Poisson means ~1e7) say
                        converged = True
                        break
                if pdev_c <= pdev + _slack(pdev):  # False for NaN
                    break
                step *= 0.5
            else:
                raise PirlsError(
                    "PIRLS step-halvings failed to reduce the penalized deviance "
                    f"(at theta = {np.array2string(np.asarray(theta), precision=4)})"
                )
            # (a step halved because rounding errors hid its decrease is never taken for
            # convergence: it says nothing about the distance to the modes)
            u, eta, mu, dev, pdev = cand, eta_c, mu_c, dev_c, pdev_c
        else:
            raise PirlsError(f"PIRLS did not converge in {maxit} iterations")
        self.u, self.beta = u, np.array(beta, dtype=float)
        self.theta_at = np.array(theta, dtype=float)
        self.eta, self.mu, self.dev = eta, mu, dev
        self._at = (lam, W, s, fac, M, zs)
        self.ldL2 = self._logdet(fac)
        self.value = self.ldL2 + float(u @ u) + self.resp.aic(mu, dev)
        return self.value

    def joint_modes(
        self, theta: np.ndarray, eta_start: np.ndarray, eta_tol: float = ETA_TOL
    ) -> float:
        """lme4's ``nAGQ = 0`` PIRLS (``β`` estimated with the modes) from the linear
        predictor ``eta_start``; returns its Laplace deviance (``log|H|`` of the ``u`` part).
        ``eta_tol``: convergence when a step changes ``η`` by less (``10⁻⁴``, the general
        engine's tolerance for the canonical links, leaves errors ~``10⁻⁸``: enough for
        start values)."""
        self.nevals += 1
        theta = np.asarray(theta, dtype=float)
        lam = theta[self.col_term] if not self.single else theta
        q, p = self.q, self.p
        dev_from_eta = self._dev
        eta = np.asarray(eta_start, dtype=float)
        mu, dev = dev_from_eta(eta)
        base_lin = eta - self.offset if self.offset is not None else eta
        u, beta = np.zeros(q), np.zeros(p)
        pdev = math.inf  # the first step from a start η is taken whole (lme4's oldpdev)
        first = True
        converged = False
        maxit = self.pirls.maxit
        for _it in range(maxit):
            W, s = self._working(mu)
            # (after the first step μ is finite: the penalized deviance is)
            if first and not (math.isfinite(float(W.sum())) and math.isfinite(float(s.sum()))):
                raise PirlsError(
                    "PIRLS: non-finite working weights (fitted values at the boundary of the "
                    "family's support)"
                )
            self.iterations += 1
            fac, _ = self._factor_u(lam, W)
            if converged:
                break
            # B = ΛᵀZᵀWX (q × p), Schur complement S = XᵀWX − BᵀH^{-1}B
            WX = self.X * W[:, None]
            if self.single:
                v = WX if self.z is None else WX * self.z[:, None]
                B = np.bincount(self._zx_index, weights=v.ravel(), minlength=q * p)
                B = B.reshape(q, p) * lam[0]
            else:
                B = (self.ZT @ WX) * lam[:, None]
            HB = self._hsolve(fac, B)
            S = self.XT @ WX - B.T @ HB
            LS, info = lapack.dpotrf(S, lower=1, clean=1, overwrite_a=1)
            if info != 0:
                raise PirlsError("PIRLS: the fixed-effects cross-product is not positive definite")
            if first:
                wz = W * base_lin
                wz += s  # W(η − o + r)
                cu, cb = lam * self._zt(wz), self.X.T @ wz
            else:
                cu, cb = lam * self._zt(s) - u, self.X.T @ s
            Hc = self._hsolve(fac, cu)
            xb = _chol_solve(LS, cb - B.T @ Hc)
            xu = Hc - HB @ xb
            if first:
                du, db = xu - u, xb - beta
            else:
                du, db = xu, xb
            step = 1.0
            for _half in range(30):
                cu_ = u + du if step == 1.0 else u + step * du
                cb_ = beta + db if step == 1.0 else beta + step * db
                eta_c = self._linear(cb_) + self._zlu(lam, cu_)
                mu_c, dev_c = dev_from_eta(eta_c)
                pdev_c = dev_c + float(cu_ @ cu_)
                if step == 1.0 and not first:
                    deta = float(np.abs(eta_c - eta).max())
                    if deta < eta_tol and math.isfinite(pdev_c):
                        converged = True  # as in modes(): a tiny full Newton step
                        break
                if math.isfinite(pdev_c) and pdev_c <= pdev + _slack(pdev):
                    break
                step *= 0.5
            else:
                raise PirlsError(
                    "PIRLS step-halvings failed to reduce the penalized deviance "
                    f"(at theta = {np.array2string(theta, precision=4)})"
                )
            first = False
            u, beta, eta, mu, dev, pdev = cu_, cb_, eta_c, mu_c, dev_c, pdev_c
        else:
            hint = ""
            if self.binomial and np.mean((mu < 1e-8) | (mu > 1 - 1e-8)) > 0.05:
                hint = (
                    ": fitted probabilities approach 0 or 1 (probable complete separation by "
                    "the fixed effects)"
                )
            raise PirlsError(f"PIRLS did not converge in {maxit} iterations{hint}")
        self.u, self.beta = u, beta
        self.theta_at = None
        self.eta, self.mu, self.dev = eta, mu, dev
        self._at = None
        self.joint_factor = fac
        self.ldL2 = self._logdet(fac)
        return self.ldL2 + float(u @ u) + self.resp.aic(mu, dev)

    # -- gradient ----------------------------------------------------------------
    def gradient(self) -> np.ndarray:
        """Gradient of the Laplace deviance in ``(θ, β)`` at the last :meth:`modes` call
        (the formulas of :mod:`pyglmm.mixed.glmm_gradient`)."""
        lam, W, s, fac, M, zs = self._at
        mu, u = self.mu, self.u
        Wp = W * (1.0 - 2.0 * mu) if self.binomial else W  # dW/dη
        if self.single:
            th = lam[0]
            hinv = 1.0 / fac
            h = hinv.take(self.refs)
            if self.z2 is not None:
                h *= self.z2
            h *= th * th  # leverages
            v = h * Wp
            a = (th * self._zt(v)) * hinv  # H^{-1}ΛᵀZᵀv
            za = self._zlu(lam, a)
            # tr(H^{-1}∂H/∂θ) at fixed W: 2Σ(1 − 1/H_cc)/θ = 2θ Σ A_cc/H_cc (also at θ = 0)
            trace = 2.0 * th * float(M @ hinv)
        else:
            Hinv = _chol_solve(fac, np.eye(self.q))
            A = self.Z * lam[None, :]
            h = np.einsum("ij,ij->i", A @ Hinv, A)
            v = h * Wp
            a = Hinv @ (lam * (self.ZT @ v))
            za = A @ a
            # 2 Σ_{c∈k} (1 − H^{-1}_cc)/θ_k = 2 Σ_{c∈k} (ZᵀWZ Λ H^{-1})_cc
            trace_cols = 2.0 * np.einsum("ij,ij->i", M * lam[None, :], Hinv)
        t = v - W * za
        g_beta = self.XT @ (t - 2.0 * s)
        zt = self._zt(t)
        cols = (zt - 2.0 * zs) * u + zs * a
        if self.single:
            g_theta = np.array([float(cols.sum()) + trace])
        else:
            g_theta = np.bincount(self.col_term, weights=cols + trace_cols, minlength=self.k)
        return np.concatenate([g_theta, g_beta])

    def sensitivity(self) -> np.ndarray:
        """``∂ũ/∂(θ, β)`` at the last :meth:`modes` call, ``(q, k + p)``: from the identity
        ``ũ = ΛᵀZᵀ(W∘r)``, ``H dũ = dΛᵀZᵀ(W∘r) − ΛᵀZᵀW(X dβ + Z dΛ ũ)``.  The modes at a
        nearby point are predicted as ``ũ + J Δx`` (a PIRLS start within ``O(|Δx|²)``)."""
        lam, W, s, fac, M, zs = self._at
        u = self.u
        WX = self.X * W[:, None]
        if self.single:
            th = lam[0]
            v = WX if self.z is None else WX * self.z[:, None]
            ZWX = np.bincount(self._zx_index, weights=v.ravel(), minlength=self.q * self.p)
            rhs = np.empty((self.q, 1 + self.p))
            rhs[:, 0] = zs - th * M * u
            rhs[:, 1:] = ZWX.reshape(self.q, self.p) * -th
            return rhs / fac[:, None]
        k = self.k
        rhs = np.empty((self.q, k + self.p))
        for j in range(k):
            cols = self.col_term == j
            rhs[:, j] = np.where(cols, zs, 0.0) - lam * (M[:, cols] @ u[cols])
        rhs[:, k:] = (self.ZT @ WX) * -lam[:, None]
        return _chol_solve(fac, rhs)

    def _level_sums(self, A: np.ndarray) -> np.ndarray:
        """``Σ_{i ∈ l} A_i`` per level ``l`` of the single term, for the rows of ``A``."""
        order = self._order
        if order is None:
            refs = self.refs
            order = np.argsort(refs, kind="stable")
            sorted_refs = refs[order]
            starts = np.flatnonzero(np.r_[True, sorted_refs[1:] != sorted_refs[:-1]])
            if np.array_equal(order, np.arange(self.n)):
                order = slice(None)
            self._order = order = (order, starts)
        idx, starts = order
        return np.add.reduceat(A[idx], starts, axis=0)

    def hessian_single(self, J: np.ndarray | None = None) -> np.ndarray:
        """Exact Hessian of the Laplace deviance in ``(θ, β)`` at the last :meth:`modes`
        call, one scalar term.

        With ``G = ∂η̃/∂(θ, β)`` (rows ``G_i = (z_iũ_l, x_i) + θz_iJ_l``, ``J = ∂ũ/∂(θ, β)``
        of :meth:`sensitivity`), ``H_l = 1 + θ²a_l``, ``a_l = Σ_{i∈l} W_iz_i²`` and
        ``W', W''`` the derivatives of ``W`` in ``η``, the deviance is ``F(ũ) + Σ_l log H_l``:

        * ``∇²F = 2gᵀWG − 2e_θ(Jᵀ Zᵀs)ᵀ`` (``g`` the rows ``(z_iũ_l, x_i)``);
        * ``∇²Σ log H_l = Σ_l ∇²H_l/H_l − ∇H_l∇H_lᵀ/H_l²`` with ``∇H_l = 2θa_le_θ + θ²∇a_l``,
          ``∇a_l = Σ_{i∈l} W'_iz_i²G_i`` and ``∇²a_l`` from ``W''``, ``∇²η̃_i =
          z_i(e_θJ_lᵀ + J_le_θᵀ + θK_l)`` and the second derivatives of the modes,
          ``H_lK_l = −e_θm_lᵀ − m_le_θᵀ − θΣ_{i∈l} z_iW'_iG_iG_iᵀ``,
          ``m_l = Σ_{i∈l} z_iW_iG_i + θa_lJ_l``.
        """
        lam, W, s, hd, a, zs = self._at
        th = float(lam[0])
        th2 = th * th
        u, mu, refs, z = self.u, self.mu, self.refs, self.z
        if J is None:
            J = self.sensitivity()
        n, m = self.n, 1 + self.p
        if self.binomial:
            t = 1.0 - 2.0 * mu
            v = W if self.unit_wt else mu * (1.0 - mu)
            W1 = W * t  # dW/dη = W(1 − 2μ)
            t *= t
            t -= 2.0 * v
            W2 = W * t  # d²W/dη² = W((1 − 2μ)² − 2μ(1 − μ))
        else:
            W1 = W2 = W
        hinv = 1.0 / hd
        # g = ∂η/∂(θ, β) at fixed u; G = dη̃/d(θ, β) = g + θ z J
        g = np.empty((n, m))
        g[:, 0] = u.take(refs)
        g[:, 1:] = self.X
        G = J.take(refs, axis=0)
        if z is None:
            G *= th
            w1z2, wz1, w1z3 = W1, W, W1
        else:
            g[:, 0] *= z
            G *= (th * z)[:, None]
            w1z2, wz1 = W1 * self.z2, W * z
            w1z3 = w1z2 * z
        G += g
        # per-level sums of W'z²G (∇a_l), zWG and W'z³ in one pass
        B = np.empty((n, 2 * m + 1))
        np.multiply(G, w1z2[:, None], out=B[:, :m])
        np.multiply(G, wz1[:, None], out=B[:, m : 2 * m])
        B[:, 2 * m] = w1z3
        S = self._level_sums(B)
        da, c, b = S[:, :m], S[:, m : 2 * m], S[:, 2 * m]
        # ∇²F = 2gᵀWG − 2e_θ(JᵀZᵀs)ᵀ
        Hs = (g.T * (2.0 * W)) @ G
        Hs[0, :] -= 2.0 * (zs @ J)
        # −Σ_l ∇H_l∇H_lᵀ/H_l², ∇H_l = 2θa_le_θ + θ²∇a_l
        dH = da * th2
        dH[:, 0] += 2.0 * th * a
        Hs -= (dH.T * (hinv * hinv)) @ dH
        # Σ_l ∇²H_l/H_l: 2a_l e_θe_θᵀ, 2θ(e_θ∇a_lᵀ + ∇a_le_θᵀ), θ²∇²a_l with the W'' part
        # (leverage-weighted), the W'z³(e_θJ_lᵀ + J_le_θᵀ) part and θ Σ_l β_l K_l
        b *= th2 * hinv  # β_l = θ²Σ_{i∈l} W'_iz_i³/H_l
        w_l = b * hinv
        r = (2.0 * th) * (hinv @ da) + b @ J - th * (w_l @ c) - th2 * ((w_l * a) @ J)
        hr = hinv.take(refs)
        if z is not None:
            hr *= self.z2
        wG = hr * W2
        wG -= w_l.take(refs) * (W1 if z is None else W1 * z)
        wG *= th2
        Hs += (G.T * wG) @ G
        Hs[0, :] += r
        Hs[:, 0] += r
        Hs[0, 0] += 2.0 * float(a @ hinv)
        return 0.5 * (Hs + Hs.T)

    def value_and_gradient(
        self, x: np.ndarray, u_start: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """Laplace deviance and gradient at ``x = (θ, β)``."""
        k = self.k
        v = self.modes(x[:k], x[k:], u_start)
        return v, self.gradient()

    # -- the second stage ----------------------------------------------------------
    def minimize(self, x0: np.ndarray, lower: np.ndarray) -> tuple[OptResult, np.ndarray | None]:
        """One L-BFGS-B run on the Laplace deviance of ``x = (θ, β)`` from ``x0``.

        Returns the best point found and the gradient there (``None`` if no evaluation
        succeeded); the modes are left at that point.
        """
        from scipy.optimize import minimize

        best: list = [math.inf, np.asarray(x0, dtype=float).copy(), None]
        count = [0]

        last: list = [None]  # (x, ũ, ∂ũ/∂x) of the last successful evaluation

        def fg(x):
            count[0] += 1
            saved = self.u
            u_start = None
            if last[0] is not None:
                x_l, u_l, J_l = last[0]
                du = J_l @ (x - x_l)
                # the linear prediction of the modes, for steps small on the modes' scale
                if float(np.abs(du).max()) <= 0.5:
                    u_start = u_l + du
            try:
                try:
                    v, g = self.value_and_gradient(x, u_start)
                except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
                    if u_start is None:
                        raise
                    self.u = saved
                    v, g = self.value_and_gradient(x)
            except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
                self.u = saved
                return 1e300, np.zeros_like(x)
            if not math.isfinite(v):
                self.u = saved
                return 1e300, np.zeros_like(x)
            J = self.sensitivity()
            last[0] = (x.copy(), self.u, J)
            if v < best[0]:
                best[0], best[1], best[2] = v, x.copy(), (g, self.u, J)
            return v, g

        finite = np.isfinite(lower)
        bounds = [(lo if f else None, None) for lo, f in zip(lower, finite, strict=True)]
        res = minimize(
            fg,
            np.maximum(x0, np.where(finite, lower, -np.inf)),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 1000, "maxcor": 20},
        )
        status = 1 if res.success else -1
        x, f = best[1].copy(), float(best[0])
        opt = OptResult(x, f, count[0], status, str(res.message))
        if best[2] is None:
            return opt, None
        g, u_opt, J = best[2]
        self.u = u_opt
        self._u_opt = (u_opt, J)
        return opt, g

    def em_theta(self, theta: np.ndarray) -> float:
        """One EM step for the scale of the single term after :meth:`joint_modes` at
        ``θ``: ``θ'² = θ² mean_l(ũ_l² + 1/H_l)`` (``b = θũ``, ``Var(b_l | y) ≈ θ²/H_l``), a
        start for :meth:`newton_single` closer to the optimum than ``θ``."""
        hinv = 1.0 / self.joint_factor
        return float(theta[0]) * math.sqrt(float(self.u @ self.u + hinv.sum()) / self.q)

    def newton_single(
        self, x0: np.ndarray, *, maxit: int = 50, dec_tol: float = 1e-8
    ) -> tuple[OptResult, np.ndarray, np.ndarray, bool]:
        """Newton's method with the exact Hessian (:meth:`hessian_single`) for one scalar
        term, from ``x0`` and the current modes.

        The deviance is even in ``θ`` (``Λ = θI`` enters through ``θ²`` and ``θũ``), so ``θ``
        is left unbounded and ``|θ|`` returned: no bound can stop the iterations at the
        stationary point ``θ = 0``.  The direction is ``−H^{-1}g`` (``H`` made positive
        definite where it is not), with Armijo backtracking (step halving).  Once
        the Newton decrement ``gᵀH^{-1}g`` is below ``dec_tol`` (or ``10⁻¹¹|D|``, the rounding
        level of the deviance ``D``, which the line search cannot resolve) the full step is the
        last one
        (Newton's method converges quadratically: the decrement after it is ~``dec_tol²``);
        the modes, gradient and Hessian are then evaluated at the new point, which is kept
        if it does not raise the deviance.

        Returns
        -------
        (OptResult, gradient, Hessian, converged)
            The gradient and Hessian are those at the returned point, where the modes are.
        """
        x = np.asarray(x0, dtype=float).copy()
        count = 1
        v, g = self.value_and_gradient(x)
        if not math.isfinite(v):
            return (
                OptResult(x, math.inf, count, -1, "non-finite deviance at the start"),
                g,
                g,
                False,
            )
        J = self.sensitivity()
        H = self.hessian_single(J)
        converged = False
        msg = "maximum number of iterations"
        for _it in range(maxit):
            if not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
                msg = "non-finite derivatives"
                break
            step, modified = _newton_step(H, g)
            if step is None:
                msg = "zero Hessian"
                break
            dec = float(-(g @ step))
            if not dec > 0.0:
                converged = dec == 0.0
                msg = "zero gradient" if converged else "no descent direction"
                break
            if modified and x[0] * (x[0] + step[0]) < 0.0:
                # the deviance is not convex here and the modified step goes through θ = 0,
                # where the even deviance is stationary in θ: go 90% of the way to 0 instead
                t0 = 0.9 * abs(x[0] / step[0])
                step = step * t0
                dec *= t0
            u_at = self.u
            # the deviance carries rounding errors of ~1e-12 relative (sums over many rows);
            # a decrement near them cannot be resolved by the line search
            if dec < max(dec_tol, 1e-12 * abs(v)):
                converged = True
                msg = "converged (Newton decrement)"
                xn = x + step
                count += 1
                try:
                    vn = self.modes(xn[:1], xn[1:], u_at + J @ step)
                except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
                    vn = math.inf
                if vn <= v:
                    x, v = xn, vn
                    g = self.gradient()
                    H = self.hessian_single()
                else:  # rounding: stay (the modes back at x)
                    self.modes(x[:1], x[1:], u_at)
                break
            t = 1.0
            accepted = False
            for _ls in range(40):
                xn = x + t * step
                du = J @ (t * step)
                u_start = u_at + du if float(np.abs(du).max()) <= 0.5 else u_at
                count += 1
                try:
                    vn, gn = self.value_and_gradient(xn, u_start)
                except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
                    vn = math.inf
                if vn <= v - 1e-4 * t * dec:
                    accepted = True
                    break
                t *= 0.5
            if not accepted:
                self.u = u_at
                msg = "line search failed"
                break
            x, v, g = xn, vn, gn
            J = self.sensitivity()
            H = self.hessian_single(J)
        if x[0] < 0.0:
            # the mirror image: θ → −θ flips the signs of ũ, ∂D/∂θ and the θ-β cross terms
            x[0] = -x[0]
            g = g.copy()
            g[0] = -g[0]
            H = H.copy()
            H[0, 1:] *= -1.0
            H[1:, 0] *= -1.0
            self.u = -self.u
        return OptResult(x, float(v), count, 1 if converged else -1, msg), g, H, converged

    def newton_polish(
        self, opt: OptResult, g: np.ndarray, lower: np.ndarray
    ) -> tuple[OptResult, np.ndarray, np.ndarray]:
        """The Hessian at the optimum of :meth:`minimize` (:meth:`hessian`) and one Newton
        step with it, kept only if it lowers the deviance.

        Returns the (possibly improved) optimum, the gradient there and the Hessian; the
        modes are left at the returned point.
        """
        x, f = opt.x, opt.fun
        u_opt, J = self._u_opt
        H = self.hessian(x, g, lower, u_opt, J)
        nevals = opt.nevals + 2 * x.size
        L, info = lapack.dpotrf(H, lower=1, clean=1)
        step = _chol_solve(L, g) if info == 0 else None
        if step is not None and np.all(np.isfinite(step)):
            xn = np.maximum(x - step, np.where(np.isfinite(lower), lower, -np.inf))
            nevals += 1
            try:
                vn, gn = self.value_and_gradient(xn, u_opt + J @ (xn - x))
            except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
                vn = math.inf
            if math.isfinite(vn) and vn < f:
                x, f, g, u_opt = xn, vn, gn, self.u
        self.u = u_opt
        return OptResult(x, f, nevals, opt.status, opt.message), g, H

    def hessian(
        self,
        x: np.ndarray,
        g0: np.ndarray,
        lower: np.ndarray,
        u_at: np.ndarray,
        J: np.ndarray,
        delta: float = 1e-4,
    ) -> np.ndarray:
        """Hessian at ``x`` from central differences of the gradient (forward differences
        next to a bound); every PIRLS starts from the modes ``u_at`` at ``x`` moved by the
        sensitivities ``J`` (:meth:`sensitivity`), so the differences are smooth."""
        k = x.size
        H = np.empty((k, k))
        for j in range(k):
            e = np.zeros(k)
            e[j] = delta
            du = J[:, j] * delta
            gp = self.value_and_gradient(x + e, u_at + du)[1]
            if np.isfinite(lower[j]) and x[j] - delta < lower[j]:
                H[:, j] = (gp - g0) / delta
            else:
                gm = self.value_and_gradient(x - e, u_at - du)[1]
                H[:, j] = (gp - gm) / (2 * delta)
        return 0.5 * (H + H.T)

    def to_pirls(self, theta: np.ndarray, beta: np.ndarray) -> None:
        """Write the last :meth:`modes` solution (at ``(θ, β)``) into the general engine: its
        modes, ``η``, ``μ`` and deviance (its factor is not formed)."""
        pl = self.pirls
        beta = np.array(beta, dtype=float)
        pl.state = PirlsState(self.u[: self.n0].copy(), self.u[self.n0 :].copy(), beta)
        pl.eta, pl.mu, pl.dev = self.eta, self.mu, self.dev
        pl._devres = None
        pl._working_at = None
        pl.factor = None
        pl.theta = np.array(theta, dtype=float)
        pl.lams = pl.lambdas(pl.theta)
        pl.pirls_iterations += self.iterations
        pl.nevals += self.nevals
        self.iterations = self.nevals = 0
