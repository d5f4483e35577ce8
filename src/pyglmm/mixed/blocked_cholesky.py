"""Blocked Cholesky factor of ``Λᵀ[Z X y]ᵀW[Z X y]Λ + I_Z`` for one θ.

Writing the full matrix in the block order ``[Z₀ | Z_1 … Z_{K-1} X y]``, the lower
Cholesky factor is

.. math::

    L = \\begin{bmatrix} L_{00} & 0 \\\\ L_{r0} & L_{rr} \\end{bmatrix},\\quad
    L_{00} L_{00}ᵀ = Λ₀ᵀA_{00}Λ₀ + I,\\quad
    L_{rr}L_{rr}ᵀ = Λ_rᵀ(A_{rr} − R𝒲Rᵀ)Λ_r + I_Z ,

with ``L₀₀`` block diagonal (``ℓ₀`` lower-triangular ``q₀ × q₀`` blocks; a
vector when ``q₀ = 1``) and ``L_rr`` dense lower triangular of order ``m``
(see :mod:`pyglmm.mixed.blocks`).  ``L_{r0} = Λ_rᵀ R Λ₀ L₀₀^{-T}`` is never
formed.  The last diagonal entry of ``L_rr`` is ``r(θ)``, the root of the
penalized weighted residual sum of squares; the ``X`` part of ``L_rr`` is
``R_Xᵀ`` with ``R_XᵀR_X = XᵀV^{-1}X`` (scaled), so

.. math::

    \\log|L_Z|^2 = \\sum_l \\log|L_{00,l}|^2 + 2\\sum_{j<m_Z} \\log (L_{rr})_{jj},
    \\qquad \\log|R_X|^2 = 2\\sum_{m_Z \\le j < m-1} \\log (L_{rr})_{jj}.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import blas, lapack

from pyglmm.mixed.blocks import LmmBlocks


def trsolve(L: np.ndarray, B: np.ndarray, lower: bool = True, trans: bool = False) -> np.ndarray:
    """Triangular solve ``L x = B`` (``Lᵀ x = B`` with ``trans``) by LAPACK ``dtrtrs``.

    Only the ``lower`` (or upper) triangle of ``L`` is read.  Faster than
    :func:`scipy.linalg.solve_triangular` for the many small solves here.
    """
    if L.shape[0] == 0:
        return np.array(B, dtype=float, copy=True)
    x, info = lapack.dtrtrs(L, B, lower=int(lower), trans=int(trans))
    if info != 0:
        raise np.linalg.LinAlgError(f"singular triangular factor (dtrtrs info={info})")
    return x


def _closed_form_2x2(l11, l21, l22, a11, a12, a22):
    r"""The entries of :math:`T = \lambda^\top A \lambda + I`, of
    :math:`\mathcal{W} = \lambda T^{-1} \lambda^\top` and :math:`|T|` for a lower-triangular
    :math:`\lambda` and a symmetric :math:`A` (2 × 2); the arguments are floats or arrays
    of one value per block. Returns ``(t11, t12, t22, w11, w12, w22, det)``."""
    p11 = a11 * l11 + a12 * l21
    p21 = a12 * l11 + a22 * l21
    p12 = a12 * l22
    p22 = a22 * l22
    t11 = l11 * p11 + l21 * p21 + 1.0
    t12 = l11 * p12 + l21 * p22
    t22 = l22 * p22 + 1.0
    det = t11 * t22 - t12 * t12
    i11, i12, i22 = t22 / det, -t12 / det, t11 / det
    q11, q12 = l11 * i11, l11 * i12
    q21 = l21 * i11 + l22 * i12
    q22 = l21 * i12 + l22 * i22
    w12 = q11 * l21 + q12 * l22
    return t11, t12, t22, q11 * l11, w12, q21 * l21 + q22 * l22, det


def _blocks_2x2(lam: np.ndarray, A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``T = λᵀAλ + I``, ``𝒲 = λT^{-1}λᵀ`` and ``|T|`` for a stack of 2 × 2 blocks
    (closed forms; faster than batched LAPACK calls for the common ``(1 + x | g)``)."""
    if len(A) <= 2:  # few distinct blocks (e.g. a balanced design): Python floats
        return _blocks_2x2_scalar(lam, A)
    t11, t12, t22, w11, w12, w22, det = _closed_form_2x2(
        lam[0, 0], lam[1, 0], lam[1, 1], A[:, 0, 0], A[:, 0, 1], A[:, 1, 1]
    )
    n = len(det)
    T = np.empty((n, 2, 2))
    T[:, 0, 0], T[:, 0, 1], T[:, 1, 0], T[:, 1, 1] = t11, t12, t12, t22
    W = np.empty((n, 2, 2))
    W[:, 0, 0], W[:, 0, 1], W[:, 1, 0], W[:, 1, 1] = w11, w12, w12, w22
    return T, W, det


def _blocks_2x2_scalar(
    lam: np.ndarray, A: np.ndarray, entries: list | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_blocks_2x2` block by block with Python floats (less overhead than
    numpy's for one or two blocks); ``entries``: ``A[:, [0, 0, 1], [0, 1, 1]]`` as a list."""
    (l11, _), (l21, l22) = lam.tolist()
    if entries is None:
        entries = A[:, [0, 0, 1], [0, 1, 1]].tolist()
    T, W, det = [], [], []
    for a11, a12, a22 in entries:
        t11, t12, t22, w11, w12, w22, dt = _closed_form_2x2(l11, l21, l22, a11, a12, a22)
        T.append((t11, t12, t12, t22))
        W.append((w11, w12, w12, w22))
        det.append(dt)
    n = len(det)
    return np.array(T).reshape(n, 2, 2), np.array(W).reshape(n, 2, 2), np.array(det)


class BlockedCholesky:
    """Workspace and result of the blocked Cholesky factorization at a given θ.

    Create once per model; :meth:`update` refactors in place for a new θ (no
    allocation of ``m × m`` arrays per evaluation).

    Attributes (after :meth:`update`)
    ---------------------------------
    theta : numpy.ndarray
    lambdas : list of numpy.ndarray
        ``λ_k`` per term.
    L00 : numpy.ndarray
        ``(ℓ₀, q₀, q₀)`` lower Cholesky factors of the block-0 diagonal blocks.
    T00 : numpy.ndarray
        ``(ℓ₀, q₀, q₀)`` the blocks ``λ₀ᵀA_{00,l}λ₀ + I``.
    W : numpy.ndarray
        ``(ℓ₀, q₀, q₀)``: ``λ₀ T_{00,l}^{-1} λ₀ᵀ``.
    Lrr : numpy.ndarray
        ``m × m`` Fortran array; its lower triangle is ``L_rr`` (upper: garbage).
    logdet_L00 : float
        ``Σ_l log|L_{00,l}|²``.
    """

    def __init__(self, blocks: LmmBlocks, gram: bool = True) -> None:
        self.blocks = blocks
        self.terms = blocks.eterms  # engine terms (same-factor terms merged)
        self.user_terms = blocks.terms
        self._emap = blocks.emap
        self._merged = any(len(mem) > 1 for mem in blocks.emap)
        self.Lrr = np.empty((blocks.m, blocks.m), order="F")
        self._flat = self.Lrr.reshape(-1, order="F")
        offs = np.cumsum([0] + [t.ntheta for t in self.user_terms])
        self._theta_slices = [slice(int(offs[i]), int(offs[i + 1])) for i in range(len(offs) - 1)]
        self.ntheta = int(offs[-1])
        rest = self.terms[1:]
        self._rest_scalar = all(t.q == 1 for t in rest)
        if self._rest_scalar and rest:
            self._rest_scale = np.empty(blocks.mz)
            self._rest_scale_full = np.ones(blocks.m)
            self._rest_idx = [blocks.rest_slices[i] for i in range(len(rest))]
        self._zdiag = np.arange(blocks.mz) * (blocks.m + 1)
        self._d0 = np.arange(blocks.q0)
        self._gmap: np.ndarray | None = None
        self._dense = blocks.schur_mode == "dense"
        # small models with scalar rest terms: the whole update is one mat-vec with
        # the Gram tensor of [R; Ryᵀ] (LmmBlocks.gram_tensor), a scaling and a dpotrf
        use_gram = gram and not self._dense and blocks.gram_fits()
        self._gram = blocks.gram_tensor() if use_gram else None
        if self._gram is not None:
            self._arr_flat = blocks.Arr.reshape(-1, order="F").copy()
        # small maps as dense arrays: numpy's mat-vec has less overhead than scipy's
        if self._dense or self._gram is not None:
            self._M_op = None
        else:
            blocks.ensure_map()
            Mmap = blocks.Mg if blocks.Mg is not None else blocks.M
            small = Mmap.shape[0] * Mmap.shape[1] <= 40_000
            self._M_op = Mmap.toarray() if small and sp.issparse(Mmap) else Mmap
        # R (and Rᵀ) dense when small: numpy's mat-vecs have less overhead than scipy's
        if blocks.Rd_T is not None:
            self._RT_op = blocks.Rd_T
            self._R_op = blocks.Rd_T.T
        elif blocks.R.shape[0] * blocks.R.shape[1] <= 250_000:
            self._R_op = blocks.R.toarray()
            self._RT_op = self._R_op.T
        else:
            self._R_op = blocks.R
            self._RT_op = blocks._RT
        self._A2x2: tuple[np.ndarray, list] | None = None
        self.theta: np.ndarray | None = None
        self.ok = False

    def batch_factors(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``Σ_l log|L_{00,l}|²`` and the diagonal of ``L_rr`` at many θ at once.

        Only for models with one engine term factored from the Gram tensor
        (:meth:`LmmBlocks.gram_tensor`): the blocks ``T_g``, ``𝒲_g`` of all points come from
        batched numpy calls, every ``C = A_rr − vec(𝒲)ᵀG`` from one matrix product,
        and their Cholesky factors from one batched call.  The factor's own state
        is not changed.  Returns None when not applicable or when some ``C`` is not
        positive definite (the caller then evaluates point by point).

        Returns
        -------
        logdet_L00 : (B,) array
        diag : (B, m) array
        """
        if self._gram is None or len(self.terms) > 1:
            return None
        b = self.blocks
        thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
        nb = thetas.shape[0]
        et = self.terms[0]
        q0 = et.q
        lam = np.zeros((nb, q0, q0))
        for k, off, _q in self._emap[0]:
            t = self.user_terms[k]
            rows, cols = t._tril
            lam[:, off + rows, off + cols] = thetas[:, self._theta_slices[k]]
        grouped = b.Mg is not None
        A0 = b.A00_groups if grouped else b.A00  # (ng, q0, q0)
        T = np.swapaxes(lam, 1, 2)[:, None] @ A0[None] @ lam[:, None]  # (B, ng, q0, q0)
        T[..., self._d0, self._d0] += 1.0
        sign, logd = np.linalg.slogdet(T)
        if not np.all(sign > 0):
            return None
        W = lam[:, None] @ np.linalg.inv(T) @ np.swapaxes(lam, 1, 2)[:, None]
        counts = b.group_counts if grouped else np.ones(len(A0))
        logdet_L00 = logd @ counts
        m = b.m
        C = (self._arr_flat[None, :] - W.reshape(nb, -1) @ self._gram).reshape(nb, m, m)
        try:
            L = np.linalg.cholesky(C)
        except np.linalg.LinAlgError:
            return None
        return logdet_L00, np.diagonal(L, axis1=1, axis2=2)

    # ------------------------------------------------------------------------
    def lambdas_of(self, theta: np.ndarray) -> list[np.ndarray]:
        """``λ_k(θ_k)`` for every (user) term."""
        return [
            t.lambda_(theta[s]) for t, s in zip(self.user_terms, self._theta_slices, strict=True)
        ]

    def _engine_lambdas(self, ulams: list[np.ndarray]) -> list[np.ndarray]:
        """Block-diagonal ``λ`` of each engine term from the user terms' ``λ_k``."""
        if not self._merged:
            return ulams
        out = []
        for et, members in zip(self.terms, self._emap, strict=True):
            if len(members) == 1:
                out.append(ulams[members[0][0]])
                continue
            lam = np.zeros((et.q, et.q))
            for k, off, q in members:
                lam[off : off + q, off : off + q] = ulams[k]
            out.append(lam)
        return out

    def _split(self, per_engine: list[np.ndarray], diag_blocks: bool = False) -> list[np.ndarray]:
        """Engine-term arrays ``(ℓ, q_e[, q_e])`` to the user terms' columns."""
        if not self._merged:
            return per_engine
        out: list[np.ndarray] = [None] * len(self.user_terms)  # type: ignore[list-item]
        for arr, members in zip(per_engine, self._emap, strict=True):
            for k, off, q in members:
                sl = slice(off, off + q)
                out[k] = arr[:, sl, sl].copy() if diag_blocks else arr[:, sl].copy()
        return out

    def update(self, theta: np.ndarray) -> bool:
        """Factor at ``θ``. Returns False if the dense factorization failed."""
        b = self.blocks
        theta = np.asarray(theta, dtype=float)
        self.theta = theta.copy()
        self.user_lambdas = self.lambdas_of(theta)
        lams = self._engine_lambdas(self.user_lambdas)
        self.lambdas = lams  # engine terms
        q0 = b.q0
        lam0 = lams[0]
        grouped = b.Mg is not None
        A0 = b.A00_groups if grouped else b.A00
        gmap = b.group_of_level if grouped else None
        self._gmap = gmap
        if q0 == 1:
            l2 = lam0[0, 0] ** 2
            d = l2 * A0[:, 0, 0] + 1.0
            Wg = l2 / d
            logd = np.log(d)
            self.logdet_L00 = float(logd @ b.group_counts if grouped else logd.sum())
            self._Tg = d.reshape(-1, 1, 1)
            self._Wg = Wg.reshape(-1, 1, 1)
            wvec = Wg
        else:
            if q0 == 2:
                T, Wg, det = self._blocks_2x2(lam0, A0)
                logd = np.log(det)
                if len(det) == 1:  # one group: a Python float product
                    logd = float(logd[0]) * float(b.group_counts[0]) if grouped else logd
            else:
                T = lam0.T @ A0 @ lam0
                T[:, self._d0, self._d0] += 1.0
                Wg = lam0 @ np.linalg.inv(T) @ lam0.T
                logd = np.linalg.slogdet(T)[1]
            if isinstance(logd, float):
                self.logdet_L00 = logd
            else:
                self.logdet_L00 = float(logd @ b.group_counts if grouped else logd.sum())
            self._Tg = T
            self._Wg = Wg
            wvec = Wg.reshape(-1)

        C = self.Lrr
        if self._gram is not None:
            np.subtract(self._arr_flat, wvec @ self._gram, out=self._flat)
            if len(lams) > 1:  # C = diag(s)(A_rr − R̄𝒲R̄ᵀ)diag(s) + I_Z
                sv = self._rest_scale_full
                for sl, lam in zip(self._rest_idx, lams[1:], strict=True):
                    sv[sl] = lam[0, 0]
                C *= sv[:, None]
                C *= sv[None, :]
                self._flat[self._zdiag] += 1.0
            _, info = lapack.dpotrf(C, lower=1, overwrite_a=1, clean=0)
            self.ok = info == 0
            return self.ok
        if q0 == 1:
            Wy = (Wg[gmap] if grouped else Wg) * b.Ry
        else:
            W = Wg[gmap] if grouped else Wg
            Wy = (W @ b.Ry.reshape(-1, q0, 1)).reshape(-1)
        m1 = b.m - 1
        yrow = self._R_op @ Wy
        yy = b.Ry @ Wy
        if self._dense:
            # C = Λ_rᵀ(A_rr − R_F R_Fᵀ)Λ_r, R_F = R blockdiag(F_l), F_l F_lᵀ = 𝒲_l
            S = self._dense_schur(lam0)
            np.copyto(C, b.Arr)
            C[:m1, :m1] -= S
            C[m1, :m1] -= yrow
            C[:m1, m1] -= yrow
            C[m1, m1] -= yy
            self._scale_rest(C, lams)
        elif self._rest_scalar and len(self.terms) > 1:
            # fused C = Λᵀ(A_rr − R𝒲Rᵀ)Λ for diagonal Λ_r: one pass over A_rr
            s = self._rest_scale_full
            for sl, lam in zip(self._rest_idx, lams[1:], strict=True):
                s[sl] = lam[0, 0]
            np.multiply(b.Arr, s[:, None], out=C)
            C *= s[None, :]
            vals = self._M_op @ wvec
            self._flat[b.idx] -= vals * (s[b.idx_row] * s[b.idx_col])
            C[m1, :m1] -= yrow * s[:m1]
            C[m1, m1] -= yy
        else:
            # vector-valued terms in the rest mix columns within a level's block, so
            # the update must be made on both triangles before scaling
            np.copyto(C, b.Arr)
            vals = self._M_op @ wvec
            self._flat[b.idx] -= vals
            self._flat[b.idx_upper] -= vals[b.offdiag]
            C[m1, :m1] -= yrow
            C[:m1, m1] -= yrow
            C[m1, m1] -= yy
            self._scale_rest(C, lams)
        mz = b.mz
        if mz:
            self._flat[self._zdiag] += 1.0
        _, info = lapack.dpotrf(C, lower=1, overwrite_a=1, clean=0)
        self.ok = info == 0
        return self.ok

    def _blocks_2x2(self, lam: np.ndarray, A: np.ndarray) -> tuple:
        """:func:`_blocks_2x2` with the entries of one or two blocks ``A`` read once
        (as Python floats) and kept for the following evaluations."""
        if len(A) > 2:
            return _blocks_2x2(lam, A)
        cache = self._A2x2
        if cache is None or cache[0] is not A:
            cache = (A, A[:, [0, 0, 1], [0, 1, 1]].tolist())
            self._A2x2 = cache
        return _blocks_2x2_scalar(lam, A, cache[1])

    def _dense_schur(self, lam0: np.ndarray) -> np.ndarray:
        """``R 𝒲 Rᵀ`` (symmetric, ``(m−1) × (m−1)``) by one ``syrk`` (dense mode)."""
        b = self.blocks
        m1, q0 = b.m - 1, b.q0
        if q0 == 1:
            RF = b.Rd * np.sqrt(self._Wg[:, 0, 0])[None, :]
        else:
            L = np.linalg.cholesky(self._Tg)
            # F_l = λ₀ L_l^{-T}:  F_lᵀ = L_l^{-1} λ₀ᵀ
            Ft = np.linalg.solve(L, np.broadcast_to(lam0.T, L.shape))
            RF = np.einsum("ila,lba->ilb", b.Rd.reshape(m1, -1, q0), Ft).reshape(m1, -1)
        S = blas.dsyrk(1.0, np.asfortranarray(RF), lower=1)
        S = np.tril(S)
        S += np.tril(S, -1).T
        return S

    def _scale_rest(self, C: np.ndarray, lams: list[np.ndarray]) -> None:
        """``C ← Λ_rᵀ C Λ_r`` (only the lower triangle is needed afterwards)."""
        b = self.blocks
        if len(self.terms) == 1:
            return
        mz = b.mz
        if self._rest_scalar:
            s = self._rest_scale
            for sl, lam in zip(self._rest_idx, lams[1:], strict=True):
                s[sl] = lam[0, 0]
            C[:mz, :] *= s[:, None]
            C[:, :mz] *= s[None, :]
            return
        m = b.m
        for t, sl, lam in zip(self.terms[1:], b.rest_slices, lams[1:], strict=True):
            q, nl = t.q, t.nlevels
            if q == 1:
                C[sl, :] *= lam[0, 0]
                C[:, sl] *= lam[0, 0]
                continue
            cols = C[:, sl].reshape(m, nl, q)
            C[:, sl] = (cols @ lam).reshape(m, nl * q)
            rows = C[sl, :].reshape(nl, q, m)
            C[sl, :] = np.einsum("ba,lbj->laj", lam, rows).reshape(nl * q, m)

    # -- block 0 at level resolution (computed on demand) ------------------------
    @property
    def T00(self) -> np.ndarray:
        """``(ℓ₀, q₀, q₀)``: ``λ₀ᵀA_{00,l}λ₀ + I`` per level."""
        return self._Tg[self._gmap] if self._gmap is not None else self._Tg

    @property
    def W(self) -> np.ndarray:
        """``(ℓ₀, q₀, q₀)``: ``𝒲_l = λ₀ T_l^{-1} λ₀ᵀ`` per level."""
        return self._Wg[self._gmap] if self._gmap is not None else self._Wg

    @property
    def L00(self) -> np.ndarray:
        """``(ℓ₀, q₀, q₀)`` lower Cholesky factors of :attr:`T00`."""
        return np.linalg.cholesky(self.T00)

    # -- pieces of the objective -------------------------------------------------
    @property
    def diag_rr(self) -> np.ndarray:
        """Diagonal of ``L_rr``."""
        return np.diagonal(self.Lrr)

    def logdet_LZ2(self) -> float:
        """``log|L_Z|²`` (lme4's ``ldL2``)."""
        mz = self.blocks.mz
        return self.logdet_L00 + 2.0 * float(np.log(self.diag_rr[:mz]).sum())

    def logdet_RX2(self) -> float:
        """``log|R_X|²`` (lme4's ``ldRX2``)."""
        b = self.blocks
        return 2.0 * float(np.log(self.diag_rr[b.mz : b.m - 1]).sum())

    def pwrss(self) -> float:
        """Penalized weighted residual sum of squares ``r²(θ)``."""
        return float(self.Lrr[-1, -1] ** 2)

    def RX(self) -> np.ndarray:
        """Upper-triangular ``R_X`` (``p × p``) with ``R_XᵀR_X = XᵀV^{-1}X / σ²``."""
        b = self.blocks
        return np.tril(self.Lrr[b.mz : b.m - 1, b.mz : b.m - 1]).T.copy()

    # -- solutions ---------------------------------------------------------------
    def solve(self) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """β̂, spherical modes ``u_k`` and conditional modes ``b_k = Λ_k u_k``.

        Returns
        -------
        beta : (p,) array
        u : list of ``(ℓ_k, q_k)`` arrays
        b : list of ``(ℓ_k, q_k)`` arrays
        """
        bl = self.blocks
        m1, mz = bl.m - 1, bl.mz
        Lu = self.Lrr[:m1, :m1]
        c = self.Lrr[m1, :m1]
        x = trsolve(Lu, c, lower=True, trans=True)
        beta = x[mz:].copy()
        us, bs = [None], [None]
        v = np.empty(m1)
        v[mz:] = beta
        for t, sl, lam in zip(self.terms[1:], bl.rest_slices, self.lambdas[1:], strict=True):
            uk = x[sl].reshape(t.nlevels, t.q)
            bk = uk @ lam.T
            us.append(uk.copy())
            bs.append(bk)
            v[sl] = bk.ravel()
        q0 = bl.q0
        rhs = (bl.Ry - self._RT_op @ v).reshape(-1, q0)
        lam0 = self.lambdas[0]
        if q0 == 1:
            l0 = lam0[0, 0]
            u0 = (rhs[:, 0] * l0 / self.T00[:, 0, 0])[:, None]
            bs[0] = u0 * l0
        else:
            rhs = rhs @ lam0  # rows: λ₀ᵀ r_l
            u0 = np.linalg.solve(self.T00, rhs[:, :, None])[:, :, 0]
            bs[0] = u0 @ lam0.T
        us[0] = u0
        return beta, self._split(us), self._split(bs)

    def _solution(self) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """:meth:`solve` at the current θ, computed once per factorization."""
        sol = getattr(self, "_sol", None)
        if sol is None or sol[0] is not self.theta:
            sol = (self.theta, self.solve())
            self._sol = sol
        return sol[1]

    def cond_var_u(self) -> list[np.ndarray]:
        """Diagonal blocks of ``(Λᵀ Zᵀ W Z Λ + I)^{-1}`` per term, ``(ℓ_k, q_k, q_k)``.

        Multiply by ``σ²`` and ``λ_k · λ_kᵀ`` for the conditional covariance of ``b``.
        """
        bl = self.blocks
        mz = bl.mz
        q0 = bl.q0
        Tinv = np.linalg.inv(self.T00)
        out = []
        if mz == 0:
            return self._split([Tinv], diag_blocks=True)
        Lz = np.tril(self.Lrr[:mz, :mz])
        # C = Λ_zᵀ R_z Λ₀ ; G = L_z^{-1} C T^{-1}
        Rz = bl.R[:mz, :].toarray()
        lam0 = self.lambdas[0]
        Rz = (Rz.reshape(mz, -1, q0) @ lam0).reshape(mz, -1)
        Rz = self._scale_rows_rest(Rz)
        CT = np.einsum("rla,lab->rlb", Rz.reshape(mz, -1, q0), Tinv).reshape(mz, -1)
        G = trsolve(Lz, CT, lower=True)
        Gl = G.reshape(mz, -1, q0)
        V0 = Tinv + np.einsum("rla,rlb->lab", Gl, Gl)
        out.append(V0)
        Linv = trsolve(Lz, np.eye(mz), lower=True)
        for t, sl in zip(self.terms[1:], bl.rest_slices, strict=True):
            blk = Linv[:, sl].reshape(mz, t.nlevels, t.q)
            out.append(np.einsum("rla,rlb->lab", blk, blk))
        return self._split(out, diag_blocks=True)

    def _scale_rows_rest(self, A: np.ndarray) -> np.ndarray:
        """``Λ_zᵀ A`` for an array with ``m_Z`` rows."""
        out = A.copy()
        for t, sl, lam in zip(
            self.terms[1:], self.blocks.rest_slices, self.lambdas[1:], strict=True
        ):
            blk = out[sl].reshape(t.nlevels, t.q, -1)
            out[sl] = np.einsum("ba,lbj->laj", lam, blk).reshape(t.ncols, -1)
        return out

    # -- analytic gradient (scalar terms) -----------------------------------------
    def supports_gradient(self) -> bool:
        """True when every (engine) term is scalar (``q_k = 1``, no two terms on one
        factor): :meth:`gradient` applies."""
        return all(t.q == 1 for t in self.terms)

    def _gradient_pattern(self, ns: int) -> tuple:
        """θ-independent index arrays of the Schur-map pattern inside ``S`` of order ns."""
        cache = getattr(self, "_gpat", None)
        if cache is None or cache[0] != ns:
            b = self.blocks
            keep = (b.idx_row < ns) & (b.idx_col < ns)
            ir, ic = b.idx_row[keep], b.idx_col[keep]
            flat_s = ir + ic * ns
            mult = np.where(ir == ic, 1.0, 2.0)
            cache = (ns, (keep, flat_s, ir, ic, mult))
            self._gpat = cache
        return cache[1]

    def gradient(self, reml: bool) -> np.ndarray:
        """Gradient of the profiled objective at the current θ (scalar terms only).

        With ``Ω`` the matrix whose log-determinant the criterion takes
        (``Λᵀ[Z X]ᵀW[Z X]Λ + I_Z`` for REML, its ``Z`` block for ML), ``ν = n − p``
        (REML) or ``n`` (ML), ``ℓ_k`` levels and ``u_k`` the spherical modes of term k,

        .. math::

            \frac{∂f}{∂θ_k} = \frac{2}{θ_k}\\Bigl(ℓ_k − \\operatorname{tr}_k Ω^{-1}
                               − ν\\,\frac{‖u_k‖²}{r²}\\Bigr),

        using ``Λᵀ A Λ = Ω − I_Z`` (so ``Ω^{-1}ΛᵀA_{·k} = (I − Ω^{-1})_{·k}/θ_k``) for
        the log-determinant and the penalized normal equations ``θ_k Z_kᵀW r = u_k``
        for ``∂r²/∂θ_k = −2‖u_k‖²/θ_k``.  ``tr_k`` sums the diagonal of ``Ω^{-1}`` over
        term k: for the first term ``Σ_l 1/T_l + θ₀²/T_l² · r_lᵀΛ_r S^{-1}Λ_r r_l``
        (``S`` the Schur complement of the rest, its entries on the pattern of ``R𝒲Rᵀ``
        from the precomputed map), for the others the diagonal of ``S^{-1}``.
        The criterion is even in each scalar θ_k, so the derivative is 0 at θ_k = 0.
        """
        if not self.supports_gradient():
            raise ValueError("the analytic gradient needs scalar terms on distinct factors")
        b = self.blocks
        theta = self.theta
        nterms = len(self.terms)
        ns = b.m - 1 if reml else b.mz  # order of S
        nu = (b.n - b.p) if reml else b.n
        beta, us, _ = self._solution()
        r2 = self.pwrss()
        g = np.zeros(nterms)
        # S^{-1} from the leading block of L_rr
        if ns > 0:
            Sinv, info = lapack.dpotri(self.Lrr[:ns, :ns], lower=1)
            if info != 0:
                raise np.linalg.LinAlgError(f"dpotri failed (info={info})")
            dS = np.diagonal(Sinv)
        # scale factors of the rest (Λ_r diagonal: θ_k on term k, 1 on X)
        s = np.ones(max(ns, 1))
        for sl, th in zip(b.rest_slices, theta[1:], strict=True):
            s[sl] = th
        # term 0
        th0 = theta[0]
        T = self.T00[:, 0, 0]
        tr0 = float(np.sum(1.0 / T))
        if ns > 0 and th0 != 0.0 and self._dense:
            D = th0 * th0 / (T * T)
            Sfull = np.tril(Sinv)
            Sfull += np.tril(Sfull, -1).T
            P = Sfull * np.outer(s[:ns], s[:ns])
            Rn = b.Rd[:ns]
            tr0 += float(np.sum(D * np.einsum("il,il->l", Rn, P @ Rn)))
        elif ns > 0 and th0 != 0.0 and self._gram is not None:
            # Σ_l 𝒦_l R_l R_lᵀ from the Gram tensor (full matrix), against S^{-1}
            grouped = b.Mg is not None
            A0 = b.A00_groups[:, 0, 0] if grouped else b.A00[:, 0, 0]
            Tg = th0 * th0 * A0 + 1.0
            K = ((th0 * th0 / (Tg * Tg)) @ self._gram).reshape(b.m, b.m)[:ns, :ns]
            Sfull = np.tril(Sinv)
            Sfull += np.tril(Sfull, -1).T
            tr0 += float(np.sum(Sfull * np.outer(s[:ns], s[:ns]) * K))
        elif ns > 0 and th0 != 0.0:
            grouped = b.Mg is not None
            A0 = b.A00_groups[:, 0, 0] if grouped else b.A00[:, 0, 0]
            Tg = th0 * th0 * A0 + 1.0
            kvals = self._M_op @ (th0 * th0 / (Tg * Tg))
            keep, flat_s, ir, ic, mult = self._gradient_pattern(ns)
            sinv = Sinv.reshape(-1, order="F")[flat_s]
            tr0 += float(np.sum(mult * sinv * (s[ir] * s[ic]) * kvals[keep]))
        if th0 != 0.0:
            u0 = us[0].ravel()
            g[0] = 2.0 / th0 * (b.n0 - tr0 - nu * float(u0 @ u0) / r2)
        for k in range(1, nterms):
            thk = theta[k]
            if thk == 0.0:
                continue
            sl = b.rest_slices[k - 1]
            trk = float(dS[sl].sum())
            uk = us[k].ravel()
            g[k] = 2.0 / thk * (self.terms[k].nlevels - trk - nu * float(uk @ uk) / r2)
        return g

    def hessian_ai(self, reml: bool, grad: np.ndarray) -> np.ndarray:
        r"""Average-information approximation of the Hessian of the profiled
        criterion at the current θ (scalar terms only).

        For the variance model ``V = σ²(Σ_k θ_k² Z_kZ_kᵀ + W^{-1})`` with ``P`` the
        REML projection (``σ²P y = r``, the weighted residual of the penalized
        least-squares solution), the average information (Gilmour, Thompson &
        Cullis 1995) of ``−ℓ`` in ``(θ, σ²)`` is ``½ yᵀP V_a P V_b P y`` with
        ``V_{θ_k} = 2σ²θ_k Z_kZ_kᵀ`` and ``V_{σ²} = V/σ²``.  Profiling σ² out (a
        Schur complement) and adding the exact term of ``∂²V/∂θ_k² = V_{θ_k}/θ_k``,
        which equals ``g_k/θ_k`` with ``g`` the gradient of the criterion, gives

        .. math::

            H_{jk} ≈ \frac{4νθ_jθ_k}{r²}\Bigl(v_jᵀMv_k − \frac{‖c_j‖²‖c_k‖²}{r²}\Bigr)
                    + δ_{jk}\frac{g_k}{θ_k},

        ``c_k = Z_kᵀW^{1/2}r``, ``v_k = Z_k c_k``, ``M = σ²P``.  Everything comes
        from the blocks of ``A`` (no pass over the rows):
        ``v_jᵀMv_k = v_jᵀv_k − w_jᵀw_k`` with ``w = L^{-1}[ZΛ\;X]ᵀv`` by one forward
        substitution through the blocked factor.  Used as the Hessian of Newton
        steps; exact terms ``tr(PV_jPV_k)`` are replaced by their data estimates, so
        it is exact at the optimum only in expectation.  Entries of terms with
        ``θ_k = 0`` are NaN on the diagonal.
        """
        if not self.supports_gradient():
            raise ValueError("the average information needs scalar terms on distinct factors")
        b = self.blocks
        theta = self.theta
        K = len(self.terms)
        m1, mz = b.m - 1, b.mz
        nu = (b.n - b.p) if reml else b.n
        beta, _, bs = self._solution()
        r2 = self.pwrss()
        b0 = bs[0].ravel()
        xr = np.empty(m1)
        for sl, bk in zip(b.rest_slices, bs[1:], strict=True):
            xr[sl] = bk.ravel()
        xr[mz:] = beta
        a00 = b.A00[:, 0, 0]
        R = self._R_op
        Arr = b.Arr
        # c = Zᵀr (weighted residual r = y − Xβ − Zb), from A's blocks
        Rb0 = R @ b0
        c0 = b.Ry - a00 * b0 - self._RT_op @ xr
        xp = np.zeros(b.m)  # padded with the y column: whole-array products, no copies
        xp[:m1] = xr
        crest = Arr[:mz, m1] - (Arr @ xp)[:mz] - Rb0[:mz]
        # U[:, k] = [Z X]ᵀ Z_k c_k: top rows Z0ᵀ (kept transposed, K × ℓ₀: long
        # contiguous rows), then [Z_rest X]ᵀ
        n0 = b.n0
        topT = np.empty((K, n0))
        rest = np.empty((m1, K))
        topT[0] = a00 * c0
        rest[:, 0] = R @ c0
        if K > 1:
            E = np.zeros((b.m, K - 1))
            for j, sl in enumerate(b.rest_slices):
                E[sl, j] = crest[sl]
            topT[1:] = (self._RT_op @ E[:m1]).T
            rest[:, 1:] = (Arr @ E)[:m1]
        # v_jᵀ v_k = c_jᵀ (Z_jᵀ Z_k c_k)
        vv = np.empty((K, K))
        vv[0] = topT @ c0
        cc = np.empty(K)
        cc[0] = c0 @ c0
        for j, sl in enumerate(b.rest_slices, start=1):
            vv[j] = crest[sl] @ rest[sl]
            cc[j] = crest[sl] @ crest[sl]
        vv = 0.5 * (vv + vv.T)
        # forward substitution w = L^{-1}[ZΛ X]ᵀ v
        th0 = theta[0]
        T = self.T00[:, 0, 0]
        Wl = self.W[:, 0, 0]
        a0T = th0 * topT
        ww = (a0T / T) @ a0T.T
        s = np.ones(m1)
        for sl, th in zip(b.rest_slices, theta[1:], strict=True):
            s[sl] = th
        rhs = np.zeros((b.m, K))  # a zero last row: L_rr whole, rows :m1 unaffected
        rhs[:m1] = (rest - R @ (Wl * topT).T) * s[:, None]
        wr = trsolve(self.Lrr, rhs, lower=True)[:m1]
        ww += wr.T @ wr
        vmv = vv - ww
        H = (4.0 * nu / r2) * np.outer(theta, theta) * (vmv - np.outer(cc, cc) / r2)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(theta != 0.0, np.asarray(grad, dtype=float) / theta, np.nan)
        H[np.diag_indices(K)] += d
        return 0.5 * (H + H.T)
