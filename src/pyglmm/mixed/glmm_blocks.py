"""Re-weightable blocks of ``[ZΛ X]ᵀ W [ZΛ X] + I`` for PIRLS.

PIRLS solves a weighted penalized least-squares problem whose weights ``W``
change at every iteration, so the cross-products of the model matrices are
recomputed over and over while their *sparsity* never changes.  This module
does the symbolic work once (which pairs of levels of the first random-effects
term and of the other terms occur together) and then, for each weight vector,
only sums ``w_i z_{ia} z_{ib}`` into the fixed pattern with ``np.bincount``.

The linear algebra is the blocked Cholesky factor of
:mod:`pyglmm.mixed.blocked_cholesky` (the first term, with most levels, is
block diagonal and eliminated analytically; the other terms and optionally
``X`` form one dense Schur complement):

.. math::

    H = \\begin{bmatrix} Λ₀ᵀA₀₀Λ₀ + I & Λ₀ᵀRᵀ[Λ_r\\;I] \\\\ \\cdot &
        [Λ_r\\;I]ᵀA_{rr}[Λ_r\\;I] + I_Z \\end{bmatrix},\\qquad
    S = [Λ_r\\;I]ᵀ (A_{rr} − R𝒲Rᵀ)[Λ_r\\;I] + I_Z ,

with ``T_l = λ₀ᵀA_{00,l}λ₀ + I``, ``𝒲 = blockdiag_l λ₀T_l^{-1}λ₀ᵀ`` and
``R = [Z_{rest} X]ᵀ W Z₀``.  ``log|L_Z|² = Σ_l log|T_l| + log|S_{ZZ}|`` (lme4's
``ldL2``) and the ``X`` rows of the factor of ``S`` give ``R_X`` (``ldRX2``).

Unlike :class:`pyglmm.mixed.blocks.LmmBlocks` (which precomputes a map that
bakes the prior weights in, ideal for an LMM whose weights never change) these
blocks are cheap to re-weight; the two share :class:`~pyglmm.mixed.remat.ReMat`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_solve, lapack

from pyglmm.mixed.remat import ReMat

#: use a dense ``R`` (rest × first-term columns) below this many entries
_DENSE_R_MAX = 6_000_000


class WeightedBlocks:
    """Fixed sparsity of ``[Z X]ᵀW[Z X]`` with cheap re-weighting.

    Parameters
    ----------
    terms : list of ReMat
        In lme4's order (most levels first).
    X : numpy.ndarray
        ``(n, p)`` fixed-effects model matrix.
    with_x : bool
        Whether ``X`` is part of the penalized system (PIRLS over ``u`` and
        ``β`` jointly, lme4's ``nAGQ = 0`` stage) or not (``u`` only).
    """

    def __init__(
        self,
        terms: list[ReMat],
        X: np.ndarray,
        with_x: bool,
        template: WeightedBlocks | None = None,
    ) -> None:
        if template is not None:
            # the same terms: share the symbolic work (patterns), only X's role differs
            self.__dict__.update(template.__dict__)
            self.__dict__.pop("_gram_state", None)
            self.with_x = with_x
            self.p = self.X.shape[1] if with_x else 0
            self.m = self.mz + self.p
            self.w = None
            return
        self.terms = terms
        self.X = np.ascontiguousarray(X, dtype=float)
        self.n, p = self.X.shape
        self.with_x = with_x
        self.p = p if with_x else 0
        t0 = terms[0]
        self.q0, self.n0 = t0.q, t0.nlevels
        self.refs0 = t0.refs
        self.z0 = t0.z
        rest = terms[1:]
        sizes = [t.ncols for t in rest]
        self.mz = int(sum(sizes))
        offs = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.rest_slices = [slice(int(offs[i]), int(offs[i + 1])) for i in range(len(rest))]
        self.m = self.mz + self.p
        self.nq0 = self.n0 * self.q0
        self._scalar0 = self.q0 == 1
        self._all_scalar = all(t.q == 1 for t in terms)

        # pattern of R_Z = Z_restᵀ W Z₀ : one entry per (rest column, first-term column)
        rows_l, cols_l, self._rz_parts = [], [], []
        for k, t in enumerate(rest):
            key = t.refs.astype(np.int64) * self.n0 + t0.refs
            uk, inv = np.unique(key, return_inverse=True)
            lev_k, lev_0 = uk // self.n0, uk % self.n0
            for a in range(t.q):
                for b in range(self.q0):
                    rows_l.append(offs[k] + lev_k * t.q + a)
                    cols_l.append(lev_0 * self.q0 + b)
                    self._rz_parts.append((inv, len(uk), t.z[:, a] * t0.z[:, b]))
        total_cells = sum(p[1] for p in self._rz_parts)
        dense_cells = self.mz * self.nq0
        # dense products pay for every zero; sparse ones only for the level pairs present, but
        # the dense Gram R𝒲Rᵀ is one BLAS product, ~2x faster than the sparse kernel at 18% fill
        self._dense_r = dense_cells <= _DENSE_R_MAX and total_cells > 0.1 * dense_cells
        if self.mz:
            rows = np.concatenate(rows_l)
            cols = np.concatenate(cols_l)
            if self._dense_r:
                self._rz_flat = rows * self.nq0 + cols
            else:
                order = np.arange(1, len(rows) + 1, dtype=float)
                pat = sp.csr_matrix((order, (rows, cols)), shape=(self.mz, self.nq0))
                pat.sort_indices()
                self._rz_perm = pat.data.astype(np.int64) - 1
                self._rz_pat = pat
        # pattern of the dense Z_restᵀ W Z_rest
        self._zz_parts = []
        for k, tk in enumerate(rest):
            for j in range(k + 1):
                tj = rest[j]
                if j == k:
                    key = tk.refs.astype(np.int64)
                    uk, inv = np.unique(key, return_inverse=True)
                    for a in range(tk.q):
                        for b in range(tk.q):
                            r = offs[k] + uk * tk.q + a
                            c = offs[k] + uk * tk.q + b
                            self._zz_parts.append((inv, len(uk), tk.z[:, a] * tk.z[:, b], r, c))
                else:
                    key = tk.refs.astype(np.int64) * tj.nlevels + tj.refs
                    uk, inv = np.unique(key, return_inverse=True)
                    lk, lj = uk // tj.nlevels, uk % tj.nlevels
                    for a in range(tk.q):
                        for b in range(tj.q):
                            r = offs[k] + lk * tk.q + a
                            c = offs[j] + lj * tj.q + b
                            self._zz_parts.append((inv, len(uk), tk.z[:, a] * tj.z[:, b], r, c))
        if not self._scalar0:
            idx = np.arange(self.nq0).reshape(self.n0, self.q0)
            r = np.repeat(idx, self.q0, axis=1).ravel()
            c = np.tile(idx, (1, self.q0)).ravel()
            order = np.arange(1, len(r) + 1, dtype=float)
            pat = sp.csr_matrix((order, (r, c)), shape=(self.nq0, self.nq0))
            self._wbd_perm = pat.data.astype(np.int64) - 1
            self._wbd_pat = pat
        # products that are all ones (intercept columns) need no multiplication
        self._rz_parts = [(i, nc, _none_if_ones(zz)) for i, nc, zz in self._rz_parts]
        self._zz_parts = [(i, nc, _none_if_ones(zz), r, c) for i, nc, zz, r, c in self._zz_parts]
        self._z0_ones = [
            [_none_if_ones(self.z0[:, a] * self.z0[:, b]) for b in range(self.q0)]
            for a in range(self.q0)
        ]
        self._z0_cols = [_none_if_ones(self.z0[:, b]) for b in range(self.q0)]
        self._rest_z = [[_none_if_ones(t.z[:, a]) for a in range(t.q)] for t in rest]
        self._XF = np.asfortranarray(self.X)
        self.w: np.ndarray | None = None

    # ------------------------------------------------------------------------
    def reweight(self, w: np.ndarray) -> None:
        """Recompute every cross-product for the weights ``w`` (length ``n``)."""
        w = np.asarray(w, dtype=float)
        self.w = w
        n0, q0 = self.n0, self.q0
        A00 = np.empty((n0, q0, q0))
        for a in range(q0):
            for b in range(a + 1):
                zz = self._z0_ones[a][b]
                v = np.bincount(self.refs0, weights=w if zz is None else w * zz, minlength=n0)
                A00[:, a, b] = v
                A00[:, b, a] = v
        self.A00 = A00
        mz, p = self.mz, self.p
        if mz:
            vals = [
                np.bincount(inv, weights=w if zz is None else w * zz, minlength=nc)
                for inv, nc, zz in self._rz_parts
            ]
            v = np.concatenate(vals)
            if self._dense_r:
                Rz = np.zeros(mz * self.nq0)
                Rz[self._rz_flat] = v
                self.Rz = Rz.reshape(mz, self.nq0)
            else:
                pat = self._rz_pat
                # share the index arrays: the cached product structure (gram) stays valid
                Rz = sp.csr_matrix((v[self._rz_perm], pat.indices, pat.indptr), shape=pat.shape)
                Rz.has_sorted_indices = True
                self.Rz = Rz
            Azz = np.zeros((mz, mz))
            for inv, nc, zz, r, c in self._zz_parts:
                vv = np.bincount(inv, weights=w if zz is None else w * zz, minlength=nc)
                Azz[r, c] = vv
                Azz[c, r] = vv
            self.Azz = Azz
        if p:
            X = self._XF
            Xw = X * w[:, None]  # Fortran order: contiguous columns for bincount
            self.XtX = X.T @ Xw
            # Z₀ᵀ W X : (n0 q0, p)
            RX0 = np.empty((n0, q0, p))
            for b in range(q0):
                zb = self._z0_cols[b]
                for j in range(p):
                    wts = Xw[:, j] if zb is None else zb * Xw[:, j]
                    RX0[:, b, j] = np.bincount(self.refs0, weights=wts, minlength=n0)
            self.Rx = RX0.reshape(self.nq0, p).T.copy()  # (p, n0 q0)
            if mz:
                ZX = np.empty((mz, p))
                for k, (t, sl) in enumerate(zip(self.terms[1:], self.rest_slices, strict=True)):
                    for a in range(t.q):
                        za = self._rest_z[k][a]
                        for j in range(p):
                            wts = Xw[:, j] if za is None else za * Xw[:, j]
                            ZX[sl][a :: t.q, j] = np.bincount(
                                t.refs, weights=wts, minlength=t.nlevels
                            )
                self.ZX = ZX

    def gram(self, R: sp.csr_matrix, s: np.ndarray) -> np.ndarray | None:
        """Dense ``(R D)(R D)ᵀ`` with ``D = diag(s)`` for the fixed pattern of ``R``.

        The pattern of the product never changes, so it is found once and each call only
        runs scipy's numeric sparse product kernel (``csr_matmat``) on the scaled values;
        ``None`` if that kernel is not usable (then the caller uses the public product).
        """
        try:
            from scipy.sparse import _sparsetools
        except ImportError:  # pragma: no cover
            return None
        st = getattr(self, "_gram_state", None)
        # the pattern of R is fixed for this object (only its values change)
        if st is None or st[0] != R.shape or st[1] != R.nnz:
            if not (R.has_sorted_indices and R.indices.dtype == R.indptr.dtype):
                return None
            Rt = R.T.tocsr()  # pattern of the transpose; values via a permutation
            order = np.arange(1, R.nnz + 1, dtype=float)
            Rp = sp.csr_matrix((order, R.indices, R.indptr), shape=R.shape)
            perm = Rp.T.tocsr().data.astype(np.int64) - 1
            P = (Rp @ Rt).tocsr()
            P.sort_indices()
            nnz = P.nnz
            idx_dtype = R.indptr.dtype
            Cp = np.empty(R.shape[0] + 1, dtype=idx_dtype)
            Cj = np.empty(nnz, dtype=idx_dtype)
            Cx = np.empty(nnz)
            try:
                _sparsetools.csr_matmat(
                    R.shape[0],
                    R.shape[0],
                    R.indptr,
                    R.indices,
                    R.data,
                    Rt.indptr.astype(idx_dtype),
                    Rt.indices.astype(idx_dtype),
                    Rt.data,
                    Cp,
                    Cj,
                    Cx,
                )
            except Exception:  # noqa: BLE001 - private kernel: fall back when it changes
                self._gram_state = (R.shape, R.nnz, None)
                return None
            rows = np.repeat(np.arange(R.shape[0]), np.diff(Cp))
            flat = rows * R.shape[0] + Cj
            st = (
                R.shape,
                R.nnz,
                (Rt.indptr.astype(idx_dtype), Rt.indices.astype(idx_dtype), perm, Cp, Cj, Cx, flat),
            )
            self._gram_state = st
        if st[2] is None:
            return None
        tp, tj, perm, Cp, Cj, Cx, flat = st[2]
        Gx = R.data * s[R.indices]
        _sparsetools.csr_matmat(
            R.shape[0], R.shape[0], R.indptr, R.indices, Gx, tp, tj, Gx[perm], Cp, Cj, Cx
        )
        m = R.shape[0]
        out = np.zeros(m * m)
        out[flat] = Cx
        return out.reshape(m, m)

    # ------------------------------------------------------------------------
    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        out, i = [], 0
        for t in self.terms:
            out.append(t.lambda_(theta[i : i + t.ntheta]))
            i += t.ntheta
        return out

    def factor(self, theta: np.ndarray) -> BlockFactor:
        """Blocked Cholesky factor of ``H(θ)`` at the current weights."""
        return BlockFactor(self, np.asarray(theta, dtype=float))


def _none_if_ones(v: np.ndarray) -> np.ndarray | None:
    return None if np.all(v == 1.0) else v


class BlockFactor:
    """Cholesky factor of ``H = [ZΛ X]ᵀW[ZΛ X] + I_Z`` at one (θ, W).

    Attributes
    ----------
    T : (ℓ₀, q₀, q₀) array
        ``λ₀ᵀA_{00,l}λ₀ + I``.
    L : (m, m) array
        Lower Cholesky factor of the Schur complement ``S``.
    ldL2, ldRX2 : float
        ``log|L_Z|²`` and ``log|R_X|²`` (the latter only when ``X`` is in the system).
    """

    def __init__(self, blocks: WeightedBlocks, theta: np.ndarray) -> None:
        b = blocks
        self.blocks = b
        self.theta = theta
        # the cross-products at these weights (the blocks are re-summed into new arrays at
        # the next weights; a factor kept for quasi-Newton steps keeps its own)
        self.Rz = getattr(b, "Rz", None)
        self.Rx = getattr(b, "Rx", None)
        lams = b.lambdas(theta)
        self.lambdas = lams
        lam0 = lams[0]
        q0 = b.q0
        if q0 == 1:
            l2 = lam0[0, 0] ** 2
            d = l2 * b.A00[:, 0, 0] + 1.0
            self.T = d.reshape(-1, 1, 1)
            self.Tinv = (1.0 / d).reshape(-1, 1, 1)
            ld0 = float(np.log(d).sum())
            Wd = l2 / d
        else:
            T = np.einsum("ba,lbc,cd->lad", lam0, b.A00, lam0)
            T[:, np.arange(q0), np.arange(q0)] += 1.0
            self.T = T
            L0 = np.linalg.cholesky(T)
            ld0 = float(2.0 * np.log(np.diagonal(L0, axis1=1, axis2=2)).sum())
            self.Tinv = np.linalg.inv(T)
            Wm = lam0 @ self.Tinv @ lam0.T
            Wd = 0.5 * (Wm + np.swapaxes(Wm, 1, 2))
        self._W = Wd
        mz, p, m = b.mz, b.p, b.m
        self.ok = True
        if m == 0:
            self.L = np.zeros((0, 0))
            self.ldL2 = ld0
            self.ldRX2 = 0.0
            return
        S = np.zeros((m, m), order="F")
        if mz:
            lam_r = self._rest_scale_vectors(lams)
            S[:mz, :mz] = b.Azz - self._quad(b.Rz, b.Rz)
        if p:
            S[mz:, mz:] = b.XtX - self._quad_dense(b.Rx, b.Rx)
            if mz:
                ZX = b.ZX - self._quad(b.Rz, b.Rx)
                S[:mz, mz:] = ZX
                S[mz:, :mz] = ZX.T
        if mz:
            self._scale_rest(S, lams, lam_r)
            S[np.arange(mz), np.arange(mz)] += 1.0
        L, info = lapack.dpotrf(S, lower=1, overwrite_a=1, clean=1)
        if info != 0:
            self.ok = False
            self.ldL2 = np.inf
            self.ldRX2 = np.inf
            self.L = L
            return
        self.L = L
        dg = np.log(np.diagonal(L))
        self.ldL2 = ld0 + 2.0 * float(dg[:mz].sum())
        self.ldRX2 = 2.0 * float(dg[mz:].sum())

    # -- helpers --------------------------------------------------------------
    def _rest_scale_vectors(self, lams):
        b = self.blocks
        if all(t.q == 1 for t in b.terms[1:]):
            s = np.empty(b.mz)
            for sl, lam in zip(b.rest_slices, lams[1:], strict=True):
                s[sl] = lam[0, 0]
            return s
        return None

    def _apply_w(self, M):
        """``M 𝒲`` for ``M`` with ``n₀q₀`` columns (dense or sparse)."""
        b = self.blocks
        if b.q0 == 1:
            if sp.issparse(M):
                return M.multiply(self._W[None, :]).tocsr()
            return M * self._W[None, :]
        if sp.issparse(M):
            Wsp = b._wbd_pat.copy()
            Wsp.data = self._W.ravel()[b._wbd_perm]
            return M @ Wsp
        k = M.shape[0]
        return np.einsum("rla,lab->rlb", M.reshape(k, b.n0, b.q0), self._W).reshape(k, -1)

    def _quad(self, A, B):
        """``A 𝒲 Bᵀ`` as a dense array."""
        b = self.blocks
        if b.q0 == 1 and A is not B and not sp.issparse(B):
            # sparse A times a dense, column-scaled B: no sparse elementwise product
            return np.asarray(A @ (B * self._W[None, :]).T)
        if b.q0 == 1 and A is B:
            if sp.issparse(A):
                fast = b.gram(A, np.sqrt(self._W))
                if fast is not None:
                    return fast
                G = A.multiply(np.sqrt(self._W)[None, :]).tocsr()
                return (G @ G.T).toarray()
            G = A * np.sqrt(self._W)[None, :]
            return G @ G.T
        AW = self._apply_w(A)
        out = AW @ (B.T if not sp.issparse(B) else B.T)
        if sp.issparse(out):
            out = out.toarray()
        return np.asarray(out)

    def _quad_dense(self, A, B):
        return np.asarray(self._apply_w(A) @ B.T)

    def _scale_rest(self, S, lams, lam_r):
        """``S ← diag(Λ_r, I) ᵀ S diag(Λ_r, I)``."""
        b = self.blocks
        mz = b.mz
        if lam_r is not None:
            S[:mz, :] *= lam_r[:, None]
            S[:, :mz] *= lam_r[None, :]
            return
        m = b.m
        for t, sl, lam in zip(b.terms[1:], b.rest_slices, lams[1:], strict=True):
            q, nl = t.q, t.nlevels
            cols = S[:, sl].reshape(m, nl, q)
            S[:, sl] = (cols @ lam).reshape(m, nl * q)
            rows = S[sl, :].reshape(nl, q, m)
            S[sl, :] = np.einsum("ba,lbj->laj", lam, rows).reshape(nl * q, m)

    def _lam_rest_T(self, v):
        """``Λ_rᵀ v`` for ``v`` of length ``m_Z``."""
        b = self.blocks
        out = np.empty_like(v)
        for t, sl, lam in zip(b.terms[1:], b.rest_slices, self.lambdas[1:], strict=True):
            out[sl] = (v[sl].reshape(t.nlevels, t.q) @ lam).ravel()
        return out

    def _lam_rest(self, v):
        """``Λ_r v``."""
        b = self.blocks
        out = np.empty_like(v)
        for t, sl, lam in zip(b.terms[1:], b.rest_slices, self.lambdas[1:], strict=True):
            out[sl] = (v[sl].reshape(t.nlevels, t.q) @ lam.T).ravel()
        return out

    def _Tsolve(self, c0):
        q0 = self.blocks.q0
        if q0 == 1:
            return c0 / self.T[:, 0, 0]
        c = c0.reshape(-1, q0)
        return np.einsum("lab,lb->la", self.Tinv, c).ravel()

    def _R_times(self, v0):
        """``[Λ_rᵀ; I] R v0`` for ``v0`` in the first term's (unscaled) columns."""
        b = self.blocks
        out = np.empty(b.m)
        if b.mz:
            out[: b.mz] = self._lam_rest_T(np.asarray(self.Rz @ v0).ravel())
        if b.p:
            out[b.mz :] = self.Rx @ v0
        return out

    def _Rt_times(self, vr):
        """``Rᵀ [Λ_r; I] vr`` (first term's unscaled columns)."""
        b = self.blocks
        out = np.zeros(b.nq0)
        if b.mz:
            out += np.asarray(self.Rz.T @ self._lam_rest(vr[: b.mz])).ravel()
        if b.p:
            out += self.Rx.T @ vr[b.mz :]
        return out

    def _lam0(self, v0, transpose=False):
        q0 = self.blocks.q0
        lam0 = self.lambdas[0]
        V = v0.reshape(-1, q0)
        return (V @ lam0).ravel() if transpose else (V @ lam0.T).ravel()

    def solve(self, c0: np.ndarray, cr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solve ``H [x₀; x_r] = [c₀; c_r]`` (``c₀`` in the first term's spherical
        coordinates, ``c_r`` in the rest's, then ``β``)."""
        x0 = self._Tsolve(c0)
        if self.blocks.m == 0:
            return x0, np.zeros(0)
        rhs = cr - self._R_times(self._lam0(x0))
        xr = cho_solve((self.L, True), rhs, check_finite=False)
        x0 = self._Tsolve(c0 - self._lam0(self._Rt_times(xr), transpose=True))
        return x0, xr

    def RX(self) -> np.ndarray:
        """Upper-triangular ``R_X`` with ``R_XᵀR_X`` the Schur complement of ``X``."""
        mz = self.blocks.mz
        return np.tril(self.L[mz:, mz:]).T.copy()

    def cond_var_u(self) -> list[np.ndarray]:
        """Diagonal blocks of ``H_Z^{-1}`` per term, ``(ℓ_k, q_k, q_k)`` (``X`` not in ``H``)."""
        b = self.blocks
        mz, q0 = b.mz, b.q0
        if b.p:
            raise ValueError("conditional variances need the u-only factor")
        if mz == 0:
            return [self.Tinv.copy()]
        Lz = self.L[:mz, :mz]
        # off-diagonal block B = Λ_rᵀ R_Z Λ₀ ; H⁻¹₀₀ = T⁻¹ + T⁻¹Bᵀ S⁻¹ B T⁻¹
        Rz = self.Rz.toarray() if sp.issparse(self.Rz) else np.array(self.Rz)
        lam0 = self.lambdas[0]
        Rz = (Rz.reshape(mz, -1, q0) @ lam0).reshape(mz, -1)
        for t, sl, lam in zip(b.terms[1:], b.rest_slices, self.lambdas[1:], strict=True):
            blk = Rz[sl].reshape(t.nlevels, t.q, -1)
            Rz[sl] = np.einsum("ba,lbj->laj", lam, blk).reshape(t.ncols, -1)
        CT = np.einsum("rla,lab->rlb", Rz.reshape(mz, -1, q0), self.Tinv).reshape(mz, -1)
        from scipy.linalg import solve_triangular

        G = solve_triangular(Lz, CT, lower=True, check_finite=False)
        Gl = G.reshape(mz, -1, q0)
        out = [self.Tinv + np.einsum("rla,rlb->lab", Gl, Gl)]
        Linv = solve_triangular(Lz, np.eye(mz), lower=True, check_finite=False)
        for t, sl in zip(b.terms[1:], b.rest_slices, strict=True):
            blk = Linv[:, sl].reshape(mz, t.nlevels, t.q)
            out.append(np.einsum("rla,rlb->lab", blk, blk))
        return out
