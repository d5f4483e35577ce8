"""Penalized iteratively reweighted least squares (PIRLS) and the Laplace deviance.

For a GLMM with linear predictor ``η = o + Xβ + ZΛ(θ)u`` and spherical random
effects ``u ~ N(0, I)`` the conditional modes ``ũ(θ, β)`` minimise the
penalized deviance

.. math::  p(u) = \\sum_i d_i(y_i, μ_i(u)) + \\lVert u\\rVert^2 .

Each PIRLS step (Bates et al. 2015, sec. 5.4; lme4's ``pwrssUpdate``) forms the
working weights ``W = w μ'(η)^2 / V(μ)`` and the working residuals
``r = (y − μ)/μ'(η)`` and solves the penalized weighted least-squares problem

.. math::

    (Λᵀ Zᵀ W Z Λ + I)\\, u^{new} = Λᵀ Zᵀ W (ZΛu + r)

(with ``β`` as an extra unpenalized block when it is estimated inside PIRLS,
lme4's ``nAGQ = 0``), halving the step while ``p`` increases.  At the modes the
Laplace approximation to ``−2 log L`` is lme4's

.. math::  −2\\ell_L(θ, β) = \\log|L_Z|^2 + \\lVert ũ\\rVert^2 + \\mathrm{aic}(y, n, μ̃, w),

``aic`` being the family's ``−2 Σ log p(y_i | μ̃_i)`` (R's ``family$aic``).
Warm starts: each call starts from the modes of the previous call, as lme4 does.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

from pyglmm.errors import ConvergenceWarning, PyglmmError
from pyglmm.families import Family
from pyglmm.mixed.glmm_blocks import BlockFactor, WeightedBlocks
from pyglmm.mixed.remat import ReMat


class PirlsError(PyglmmError):
    """PIRLS failed (no finite penalized deviance, step halving could not reduce it)."""


class GlmmResponse:
    r"""The response part of a GLMM: ``y``, prior weights, trials, offset, family.

    Parameters
    ----------
    family : Family
    y : (n,) array
        Response on the family's scale (proportions for binomial).
    weights : (n,) array
        Prior weights (for binomial including the number of trials).
    ntrials : (n,) array
        Binomial trials (ones otherwise), for ``family.aic``.
    offset : (n,) array

    Notes
    -----
    For the canonical binomial (logit) and Poisson (log) links the unit deviances are
    computed from ``η`` directly, ``d_i = 2w_i(\log(1 + e^{η_i}) − y_iη_i + c_i)`` and
    ``d_i = 2w_i(e^{η_i} − y_iη_i + c_i)`` with the ``μ``-free parts ``c_i`` precomputed:
    one transcendental function per observation instead of R's ``xlogy`` forms (same
    values to rounding; R's clamping of ``η`` only acts beyond ``|η| > 30``, where the
    general code is used).  For those families (and the negative binomial) ``aic`` differs
    from the deviance by a constant, computed once.
    """

    def __init__(
        self,
        family: Family,
        y: np.ndarray,
        weights: np.ndarray,
        ntrials: np.ndarray,
        offset: np.ndarray,
    ) -> None:
        self.family = family
        self.y = np.asarray(y, dtype=float)
        self.wt = np.asarray(weights, dtype=float)
        self.ntrials = np.asarray(ntrials, dtype=float)
        self.offset = np.asarray(offset, dtype=float)
        self.n = self.y.shape[0]
        key = (family.name, family.link.name)
        self._fast = key if key in (("binomial", "logit"), ("poisson", "log")) else None
        y, wt = self.y, self.wt
        if self._fast == ("binomial", "logit"):
            from scipy.special import xlogy

            self._c = xlogy(y, y) + xlogy(1 - y, 1 - y)
        elif self._fast == ("poisson", "log"):
            from scipy.special import xlogy

            self._c = xlogy(y, y) - y
        self._unit_wt = bool(np.all(self.wt == 1.0))
        self._aic_shift: float | None = None
        if family.name in ("binomial", "poisson", "negative.binomial"):
            # aic(μ) − Σd(μ) does not depend on μ: evaluate it once at a valid μ
            shift = self._saturated_shift(family, y, wt, self.ntrials)
            if np.isfinite(shift):
                self._aic_shift = float(shift)

    @staticmethod
    def _saturated_shift(family: Family, y, wt, ntrials) -> float:
        """``aic(μ) − Σd(μ)`` (the same for every μ): evaluated at μ = ½ (binomial) or 1.

        The terms are per observation, so with all trials equal to one (R's ``aic`` then
        uses the weights throughout) they are summed over the distinct ``(y, w)`` pairs.
        """
        mu_c = 0.5 if family.name == "binomial" else 1.0
        with np.errstate(all="ignore"):
            if len(y) > 5000 and np.all(ntrials == 1):
                if np.all(wt == wt[0]):
                    yu, counts = np.unique(y, return_counts=True)
                    pairs = np.column_stack([yu, np.full(len(yu), wt[0])])
                else:
                    pairs, counts = np.unique(np.column_stack([y, wt]), axis=0, return_counts=True)
                if len(pairs) <= 1000:
                    total = 0.0
                    for (yv, wv), c in zip(pairs, counts, strict=True):
                        ya, wa, mu = np.array([yv]), np.array([wv]), np.array([mu_c])
                        d = float(family.dev_resids(ya, mu, wa).sum())
                        total += c * (family.aic(ya, np.ones(1), mu, wa, d) - d)
                    return float(total)
            mu0 = np.full(len(y), mu_c)
            dev0 = float(family.dev_resids(y, mu0, wt).sum())
            return float(family.aic(y, ntrials, mu0, wt, dev0) - dev0)

    def mu(self, eta: np.ndarray) -> np.ndarray:
        return self.family.linkinv(eta)

    def dev_resids(self, mu: np.ndarray) -> np.ndarray:
        return self.family.dev_resids(self.y, mu, self.wt)

    def dev_from_eta(self, eta: np.ndarray) -> tuple[np.ndarray, float]:
        """``μ`` and the deviance ``Σ d_i`` at ``η`` (fast paths for canonical links)."""
        if self._fast is not None:
            a = np.abs(eta)
            if float(a.max(initial=0.0)) < 30.0:
                # in-place on two work arrays: the same operations (and rounding) as
                # d = max(η, 0) + log1p(e) − yη + c, without the temporaries
                if self._fast[0] == "binomial":
                    # one exponential: e = e^{-|η|}, μ = 1/(1+e) or e/(1+e),
                    # log(1 + e^η) = max(η, 0) + log1p(e)  (np.logaddexp is ~10x slower)
                    e = np.exp(np.negative(a, out=a), out=a)
                    inv = np.add(e, 1.0)
                    np.reciprocal(inv, out=inv)
                    mu = np.multiply(e, inv)
                    # μ = 1/(1+e) where η ≥ 0: select by arithmetic, one of the two products
                    # being exactly 0 (np.where's unpredictable branch costs 4x more)
                    pos = np.greater_equal(eta, 0.0).astype(float)
                    mu *= np.subtract(1.0, pos)
                    mu += np.multiply(pos, inv, out=pos)
                    d = np.maximum(eta, 0.0, out=inv)
                    d += np.log1p(e, out=e)
                    d -= np.multiply(self.y, eta, out=e)
                else:
                    mu = np.exp(eta)
                    d = np.multiply(self.y, eta, out=a)
                    np.subtract(mu, d, out=d)
                d += self._c
                return mu, 2.0 * float(self.wt @ d)
        mu = self.family.linkinv(eta)
        return mu, float(self.family.dev_resids(self.y, mu, self.wt).sum())

    def aic(self, mu: np.ndarray, dev: float) -> float:
        if self._aic_shift is not None:
            return dev + self._aic_shift
        return self.family.aic(self.y, self.ntrials, mu, self.wt, dev)

    def working(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Working weights ``W = w μ_η² / V(μ)`` and residuals ``(y − μ)/μ_η``."""
        if self._fast is not None and float(np.max(np.abs(eta))) < 30.0:
            v = mu * (1.0 - mu) if self._fast[0] == "binomial" else mu
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.subtract(self.y, mu)
                r /= v
                # unit prior weights: W = v (the same values as 1·v; a new array for binomial)
                binom_unit = self._unit_wt and self._fast[0] == "binomial"
                return (v if binom_unit else self.wt * v), r
        fam = self.family
        me = fam.mu_eta(eta)
        var = fam.variance(mu)
        with np.errstate(divide="ignore", invalid="ignore"):
            W = self.wt * me * me / var
            r = (self.y - mu) / me
        return W, r


class PirlsState:
    """Conditional modes and linear predictor at the last PIRLS solution."""

    def __init__(self, u0: np.ndarray, ur: np.ndarray, beta: np.ndarray) -> None:
        self.u0 = u0
        self.ur = ur
        self.beta = beta

    def copy(self) -> PirlsState:
        return PirlsState(self.u0.copy(), self.ur.copy(), self.beta.copy())


class Pirls:
    """PIRLS for one GLMM: Laplace deviance of ``(θ, β)`` or, with ``β`` inside, of ``θ``.

    Parameters
    ----------
    terms : list of ReMat
    X : (n, p) array
    response : GlmmResponse
    tol : float
        Convergence: relative change of the penalized deviance below ``tol``.
    maxit : int
        Maximum PIRLS iterations per call.
    """

    def __init__(
        self,
        terms: list[ReMat],
        X: np.ndarray,
        response: GlmmResponse,
        *,
        tol: float = 1e-12,
        maxit: int = 100,
    ) -> None:
        self.terms = terms
        self.X = np.ascontiguousarray(X, dtype=float)
        self.resp = response
        self.n, self.p = self.X.shape
        self.tol = tol
        #: and the largest change of η in the last step below this: with the canonical link
        #: Fisher scoring is Newton's method (quadratic convergence, the error after a step
        #: of 1e-5 is ~1e-10); otherwise it converges linearly and the step must be tiny
        canonical = {"binomial": "logit", "poisson": "log"}
        fam = response.family
        self.canonical = canonical.get(fam.name) == fam.link.name
        self.eta_tol = 1e-4 if self.canonical else 1e-9
        self.maxit = maxit
        #: the re-weightable blocks are built on first use (the dense small-model engine,
        #: :mod:`pyglmm.mixed.glmm_dense`, does not need them)
        self._blocks_u: WeightedBlocks | None = None
        self._blocks_ux: WeightedBlocks | None = None
        self.n0q0 = terms[0].ncols
        sizes = [t.ncols for t in terms[1:]]
        offs = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        #: columns of the terms after the first in the ``ur`` part of the modes
        self.rest_slices = [slice(int(offs[i]), int(offs[i + 1])) for i in range(len(sizes))]
        #: columns of each term's ``z`` (None where all ones: no multiplication needed)
        self._zcols = [
            [None if np.all(t.z[:, a] == 1.0) else t.z[:, a] for a in range(t.q)] for t in terms
        ]
        self._has_offset = bool(np.any(response.offset != 0.0))
        self._fixed_part: tuple[np.ndarray, np.ndarray] | None = None
        #: (η, W, r) of the last working weights formed (reused at the modes)
        self._working_at: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.mz = int(offs[-1])
        self.state = PirlsState(np.zeros(self.n0q0), np.zeros(self.mz), np.zeros(self.p))
        self.factor: BlockFactor | None = None
        self.mu: np.ndarray | None = None
        self.eta: np.ndarray | None = None
        self._devres: np.ndarray | None = None
        self.dev = math.nan
        self.nevals = 0
        self.pirls_iterations = 0
        self._eta_start: np.ndarray | None = None
        #: when set, every call starts from this state (smooth in the parameters, for
        #: finite-difference derivatives) instead of the previous call's modes
        self.fixed_start: PirlsState | None = None
        #: quasi-Newton steps with the previous call's factor (see :meth:`run`)
        self.reuse_factor = True
        self.stale_rate_max = 0.3
        self.stale_tol = 1e-9
        self.precise_mode = False
        self.quasi_iterations = 0
        self._last_factor: dict[bool, BlockFactor] = {}

    # -- Z products ------------------------------------------------------------
    @property
    def blocks_u(self) -> WeightedBlocks:
        """Blocks of the ``u``-only system (``β`` fixed)."""
        if self._blocks_u is None:
            self._blocks_u = WeightedBlocks(self.terms, self.X, with_x=False)
        return self._blocks_u

    @property
    def blocks_ux(self) -> WeightedBlocks:
        if self._blocks_ux is None:
            self._blocks_ux = WeightedBlocks(
                self.terms, self.X, with_x=True, template=self.blocks_u
            )
        return self._blocks_ux

    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        """``λ_k`` per term from ``θ``."""
        out, i = [], 0
        for t in self.terms:
            out.append(t.lambda_(theta[i : i + t.ntheta]))
            i += t.ntheta
        return out

    def b_of(self, state: PirlsState, lams: list[np.ndarray]) -> list[np.ndarray]:
        """``b_k = Λ_k u_k`` as ``(ℓ_k, q_k)`` arrays."""
        t0 = self.terms[0]
        out = [state.u0.reshape(t0.nlevels, t0.q) @ lams[0].T]
        for t, sl, lam in zip(self.terms[1:], self.rest_slices, lams[1:], strict=True):
            out.append(state.ur[sl].reshape(t.nlevels, t.q) @ lam.T)
        return out

    def zb(self, state: PirlsState, lams: list[np.ndarray]) -> np.ndarray:
        """``ZΛu``."""
        out = None
        for t, zc, bk in zip(self.terms, self._zcols, self.b_of(state, lams), strict=True):
            if t.q == 1:
                g = bk[:, 0].take(t.refs)
                if zc[0] is not None:
                    g *= zc[0]
            else:
                g = np.einsum("ij,ij->i", t.z, bk[t.refs])
            if out is None:
                out = g
            else:
                out += g
        return np.zeros(self.n) if out is None else out

    def zt(self, v: np.ndarray, lams: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``ΛᵀZᵀv`` split as (first term, rest)."""
        t0 = self.terms[0]
        c0 = np.empty((t0.nlevels, t0.q))
        zcols = self._zcols
        for a in range(t0.q):
            za = zcols[0][a]
            c0[:, a] = np.bincount(
                t0.refs, weights=v if za is None else v * za, minlength=t0.nlevels
            )
        c0 = (c0 @ lams[0]).ravel()
        cr = np.empty(self.mz)
        for k, (t, sl, lam) in enumerate(
            zip(self.terms[1:], self.rest_slices, lams[1:], strict=True)
        ):
            ck = np.empty((t.nlevels, t.q))
            for a in range(t.q):
                za = zcols[k + 1][a]
                ck[:, a] = np.bincount(
                    t.refs, weights=v if za is None else v * za, minlength=t.nlevels
                )
            cr[sl] = (ck @ lam).ravel()
        return c0, cr

    # -- PIRLS -------------------------------------------------------------------
    def _eta(self, state: PirlsState, lams, beta_fixed: np.ndarray | None) -> np.ndarray:
        if beta_fixed is not None:
            # β fixed during the whole PIRLS call: o + Xβ once per call
            cached = self._fixed_part
            if cached is None or not np.array_equal(cached[0], beta_fixed):
                beta_fixed = np.array(beta_fixed, dtype=float)
                cached = (beta_fixed, self._offset_plus_xbeta(beta_fixed))
                self._fixed_part = cached
            return cached[1] + self.zb(state, lams)
        eta = self._offset_plus_xbeta(state.beta)
        eta += self.zb(state, lams)
        return eta

    def _offset_plus_xbeta(self, beta: np.ndarray) -> np.ndarray:
        eta = self.X @ beta
        if self._has_offset:
            eta += self.resp.offset
        return eta

    def set_start(self, eta: np.ndarray) -> None:
        """Start the next joint PIRLS from this linear predictor (lme4's ``mustart``)."""
        self._eta_start = np.asarray(eta, dtype=float)

    def run(self, theta: np.ndarray, beta: np.ndarray | None = None) -> float:
        """PIRLS at ``θ`` (and fixed ``β``; ``β=None``: ``β`` estimated jointly).

        Returns the penalized deviance ``Σ d_i + ‖u‖²`` at the modes; leaves the
        modes in :attr:`state`, ``μ``, the deviance residuals and the factor at the
        final working weights in :attr:`factor`.
        """
        theta = np.asarray(theta, dtype=float)
        joint = beta is None
        blocks = self.blocks_ux if joint else self.blocks_u
        lams = self.lambdas(theta)
        resp = self.resp
        st = self.state if self.fixed_start is None else self.fixed_start.copy()
        if joint and self._eta_start is not None:
            eta = self._eta_start
            self._eta_start = None
            # first step from an arbitrary η: u = 0, β = 0 and the working response η + r
            st = PirlsState(np.zeros(self.n0q0), np.zeros(self.mz), np.zeros(self.p))
            base_lin = eta - resp.offset
            first_free = True
        else:
            first_free = False
            eta = self._eta(st, lams, beta)
            base_lin = None
        with np.errstate(all="ignore"):
            mu, dev = resp.dev_from_eta(eta)
        pdev = dev + float(st.u0 @ st.u0 + st.ur @ st.ur)
        if not math.isfinite(pdev):
            # restart from the population-level predictor
            st = PirlsState(np.zeros(self.n0q0), np.zeros(self.mz), st.beta.copy())
            eta = self._eta(st, lams, beta)
            mu, dev = resp.dev_from_eta(eta)
            pdev = dev
        if first_free:
            pdev = math.inf  # the first step from a start η is taken whole (lme4's oldpdev)
        converged = False
        # quasi-Newton steps with the factor of the previous call (a stale H): each costs no
        # re-summing of the cross-products and no Schur complement; the factor is refreshed
        # when they converge slowly, and always at the modes (for log|L|²)
        stale = None
        if self.reuse_factor and not self.precise_mode and not first_free:
            stale = self._last_factor.get(joint)
        factor = None
        fresh = False  # whether `factor` is at the current state's weights
        prev_deta = math.inf
        noise_floor = False  # a tiny full Newton step did not lower pdev (rounding level)
        for _it in range(self.maxit):
            W, r = resp.working(eta, mu)
            self._working_at = (eta, W, r)
            if not np.all(np.isfinite(W)) or not np.all(np.isfinite(r)):
                raise PirlsError(
                    "PIRLS: non-finite working weights (fitted values at the boundary of the "
                    "family's support)"
                )
            if stale is None or converged:
                self.pirls_iterations += 1
                blocks.reweight(W)
                factor = blocks.factor(theta)
                fresh = True
                if not factor.ok:
                    raise PirlsError(
                        "PIRLS: the penalized weighted cross-product is not positive definite"
                    )
            else:
                self.quasi_iterations += 1
                factor = stale
                fresh = False
            if converged:
                break
            Wr = W * r
            if base_lin is not None:
                # first step from a start η: the working response η − o + r, u = β = 0
                Wz = W * (base_lin + r)
                c0, cr = self.zt(Wz, lams)
                cr = np.concatenate([cr, self.X.T @ Wz])
                x0, xr = factor.solve(c0, cr)
                new = PirlsState(x0, xr[: self.mz], xr[self.mz :])
                base_lin = None
            else:
                # Newton (Fisher scoring) step: H δ = ΛᵀZᵀ(W∘r) − u  (and Xᵀ(W∘r) for β)
                c0, cr = self.zt(Wr, lams)
                c0 = c0 - st.u0
                cr = cr - st.ur
                if joint:
                    cr = np.concatenate([cr, self.X.T @ Wr])
                d0, dr = factor.solve(c0, cr)
                new = PirlsState(
                    st.u0 + d0,
                    st.ur + dr[: self.mz],
                    st.beta + dr[self.mz :] if joint else st.beta,
                )
            old = st
            step = 1.0
            for _half in range(30):
                if step == 1.0:
                    cand = new
                else:
                    cand = PirlsState(
                        old.u0 + step * (new.u0 - old.u0),
                        old.ur + step * (new.ur - old.ur),
                        old.beta + step * (new.beta - old.beta),
                    )
                eta_c = self._eta(cand, lams, beta)
                with np.errstate(all="ignore"):
                    mu_c, dev_c = resp.dev_from_eta(eta_c)
                    pdev_c = dev_c + float(cand.u0 @ cand.u0 + cand.ur @ cand.ur)
                if (
                    step == 1.0
                    and fresh
                    and self.canonical
                    and math.isfinite(pdev)
                    and math.isfinite(pdev_c)
                    and float(np.max(np.abs(eta_c - eta))) < max(self.eta_tol, 1e-6)
                ):
                    # a full Newton step this small lands on the modes (to ~1e-12): taken
                    # whatever the rounding errors of the penalized deviance say (the unit
                    # deviances μ − yη + c cancel for large Poisson means: ~1e-7 absolute
                    # at μ ~ 1e7); if it did not lower pdev, PIRLS is at its rounding level
                    noise_floor = not pdev_c < pdev
                    break
                if math.isfinite(pdev_c) and pdev_c <= pdev * (1 + 1e-15) + 1e-12:
                    break
                if not fresh:
                    break  # a stale factor: refresh instead of halving
                step /= 2.0
            else:
                raise PirlsError(
                    "PIRLS step-halvings failed to reduce the penalized deviance "
                    f"(at theta = {np.array2string(theta, precision=4)})"
                )
            if not fresh and not (math.isfinite(pdev_c) and pdev_c <= pdev * (1 + 1e-15) + 1e-12):
                stale = None  # the stale step did not descend: take fresh Newton steps
                continue
            deta = float(np.max(np.abs(eta_c - eta))) if math.isfinite(pdev) else math.inf
            st, eta, mu, dev = cand, eta_c, mu_c, dev_c
            change = abs(pdev - pdev_c) / max(abs(pdev_c), 1e-300)
            pdev = pdev_c
            if fresh:
                # canonical link: after a Newton step of 1e-4 the modes are within ~1e-8;
                # otherwise Fisher scoring converges linearly: the step and the change of the
                # penalized deviance must both be negligible
                # (for the canonical links only after a full step: a step halved because
                # rounding errors hid its decrease says nothing about the distance to the modes)
                full = step == 1.0 or not self.canonical
                if deta < self.eta_tol and full and (self.canonical or change < self.tol):
                    converged = True
                elif noise_floor and step == 1.0:
                    converged = True
            else:
                # linear convergence at rate ρ = deta/prev: error ≈ ρ/(1−ρ)·deta
                if deta == 0.0:
                    converged = True
                elif math.isfinite(prev_deta):
                    rate = deta / max(prev_deta, 1e-300)
                    if rate > self.stale_rate_max:
                        stale = None  # too slow: fresh Newton steps from here
                    elif deta * max(rate, 1e-3) / (1 - rate) < self.stale_tol and change < 1e-10:
                        converged = True
            prev_deta = deta
        else:
            if not converged:
                hint = ""
                if self.resp.family.name == "binomial":
                    eps = 1e-8
                    if np.mean((mu < eps) | (mu > 1 - eps)) > 0.05:
                        hint = (
                            ": fitted probabilities approach 0 or 1 (probable complete "
                            "separation by the fixed effects)"
                        )
                raise PirlsError(f"PIRLS did not converge in {self.maxit} iterations{hint}")
        self.state = st
        self.factor = factor
        self._last_factor[joint] = factor
        self.eta, self.mu, self.dev = eta, mu, dev
        self._devres = None
        self.theta = theta
        self.lams = lams
        return pdev

    @contextlib.contextmanager
    def precise(self):
        """Tighter PIRLS convergence (finite-difference derivatives, final polish)."""
        saved = (self.tol, self.eta_tol, self.precise_mode)
        self.tol, self.eta_tol, self.precise_mode = 1e-14, 1e-10, True
        try:
            yield self
        finally:
            self.tol, self.eta_tol, self.precise_mode = saved

    # -- objectives --------------------------------------------------------------
    def laplace(self, theta: np.ndarray, beta: np.ndarray | None = None) -> float:
        """lme4's Laplace deviance ``log|L_Z|² + ‖ũ‖² + aic`` (``β=None``: lme4's nAGQ=0)."""
        self.nevals += 1
        pdev = self.run(theta, beta)
        f = self.factor
        u2 = float(self.state.u0 @ self.state.u0 + self.state.ur @ self.state.ur)
        del pdev
        return f.ldL2 + u2 + self.resp.aic(self.mu, self.dev)

    @property
    def devres(self) -> np.ndarray:
        """Unit deviances at the last solution (R's ``dev.resids``)."""
        if self._devres is None:
            self._devres = self.resp.dev_resids(self.mu)
        return self._devres

    def safe(self, fun):
        """Wrap an objective so that a PIRLS failure gives ``inf`` (for the optimizer)."""

        def wrapped(x: np.ndarray) -> float:
            saved = self.state.copy()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    v = fun(x)
            except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
                self.state = saved
                return math.inf
            if not math.isfinite(v):
                self.state = saved
                return math.inf
            return v

        return wrapped


def warn_convergence(message: str) -> None:
    warnings.warn(message, ConvergenceWarning, stacklevel=3)
