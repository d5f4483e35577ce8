"""The blocks of ``A = [Z X y]ᵀ W [Z X y]``, computed once per model.

The random-effects terms are ordered as lme4 orders them (by number of levels,
largest first).  The first term (block 0) is eliminated analytically, because
``Λ₀ᵀA₀₀Λ₀ + I`` is block diagonal (``ℓ₀`` blocks of ``q₀ × q₀``).  Everything
else — the columns of the other terms, of ``X`` and of ``y`` ("the rest",
``m = Σ_{k≥1} ℓ_k q_k + p + 1`` columns) — is kept as one dense symmetric matrix,
the Schur complement in which crossed factors fill in anyway.

With ``R = A_{r0}`` (rest rows × block-0 columns, sparse) the Schur complement of
block 0 for a given θ is

.. math::

    Λ_rᵀ (A_{rr} − R\\, 𝒲(θ₀)\\, Rᵀ) Λ_r + I_Z ,\\qquad
    𝒲 = \\operatorname{blockdiag}_l\\; λ₀ (λ₀ᵀ A_{00,l} λ₀ + I)^{-1} λ₀ᵀ .

Its lower triangle is linear in the ``ℓ₀ q₀²`` entries of ``𝒲``, so the map
``vec 𝒲 ↦ lower(R 𝒲 Rᵀ)`` is precomputed as a sparse matrix :attr:`LmmBlocks.M`
(built by sparse matrix products, see :meth:`LmmBlocks._build_schur_map`)
and each evaluation costs one sparse mat-vec plus one dense Cholesky of order ``m``.
Because ``𝒲_l`` depends on the level only through ``A_{00,l}``, levels with equal
blocks (for an intercept-only first term: equal counts) share one column of the
map (:attr:`LmmBlocks.Mg`; on InstEval 86 groups for 2 972 students, 1.1 M
instead of 2.0 M nonzeros).  The ``y`` row is kept out of that map (it is a
mat-vec per evaluation), so that a new response (parametric bootstrap,
:meth:`LmmBlocks.with_response`) only recomputes ``Zᵀy``, ``Xᵀy`` and ``yᵀy``.

Limitation: the rest is dense, so models whose second-largest terms have very
many levels (``Σ_{k≥1} ℓ_k q_k`` beyond ~10 000) need ``8 m²`` bytes.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from pyglmm.mixed.remat import ReMat


def _csr_summed(
    data: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """CSR matrix from COO triplets with duplicates summed.

    When the dense index space is moderate (≤ 3·10⁷ entries) the sums are made
    with one ``bincount`` over ``row · ncol + col`` (linear time, sorted output),
    which is several times faster than scipy's sort-based duplicate summing.
    """
    return _csr_from_keys(rows.astype(np.int64) * shape[1] + cols, data, shape)


def _csr_from_keys(key: np.ndarray, data: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """CSR matrix from flat keys ``row · ncol + col`` and values, duplicates summed
    (see :func:`_csr_summed`)."""
    nrow, ncol = shape
    if nrow * ncol <= 30_000_000:
        acc = np.bincount(key, weights=data, minlength=nrow * ncol)
        nz = np.flatnonzero(acc != 0.0)  # (a boolean mask first: several times faster)
        r = nz // ncol
        indptr = np.zeros(nrow + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=nrow), out=indptr[1:])
        return sp.csr_matrix((acc[nz], nz - r * ncol, indptr), shape=shape)
    rows, cols = np.divmod(key, ncol)
    out = sp.csr_matrix((data, (rows, cols)), shape=shape)
    out.sum_duplicates()
    out.eliminate_zeros()
    return out


def _csr_of_dense(A: np.ndarray) -> sp.csr_matrix:
    """CSR matrix of the nonzeros of a dense 2-d array (faster than scipy's
    constructor from a dense array)."""
    A = np.ascontiguousarray(A)
    nrow, ncol = A.shape
    mask = A != 0.0
    flat = np.flatnonzero(mask)
    indptr = np.zeros(nrow + 1, dtype=np.int64)
    np.cumsum(np.count_nonzero(mask, axis=1), out=indptr[1:])
    return sp.csr_matrix((A.reshape(-1)[flat], flat % ncol, indptr), shape=(nrow, ncol))


def _pair_keys(
    ri: np.ndarray, qi: int, rj: np.ndarray | None, qj: int, ncol: int, col0: int = 0
) -> np.ndarray:
    """Flat keys ``row · ncol + col`` with ``row = ri·qi + a``, ``col = col0 + rj·qj + b``
    for every observation and every ``(a, b)`` (``(a, b)``-major, then observations:
    long inner loops; ``rj=None``: a single level)."""
    base = ri.astype(np.int64, copy=False) * (qi * ncol)
    if col0:
        base += col0
    if rj is not None:
        base += rj if qj == 1 else rj * qj
    if qi == 1 and qj == 1:
        return base
    offs = (np.arange(qi)[:, None] * ncol + np.arange(qj)[None, :]).reshape(-1)
    return (offs[:, None] + base[None, :]).reshape(-1)


def _pair_values(zi: np.ndarray, zj: np.ndarray) -> np.ndarray:
    """``zi[:, a] · zj[:, b]`` in the order of :func:`_pair_keys`."""
    if zi.shape[1] == 1 and zj.shape[1] == 1:
        return zi[:, 0] * zj[:, 0]
    # columns as contiguous rows first: products over long contiguous inner loops
    zjT = np.ascontiguousarray(zj.T)
    if zi.shape[1] == 1:
        return (zjT * zi[:, 0]).reshape(-1)
    ziT = np.ascontiguousarray(zi.T)
    return (ziT[:, None, :] * zjT[None, :, :]).reshape(-1)


def _cross_dense(
    ri: np.ndarray,
    zi: np.ndarray,
    li: int,
    rj: np.ndarray | None,
    zj: np.ndarray,
    lj: int,
    *,
    same: bool = False,
) -> np.ndarray:
    """Dense ``Z_iᵀ Z_j`` (``ℓ_i q_i × ℓ_j q_j``) of two level-coded matrices by one
    ``bincount`` (linear in the rows).

    ``rj=None`` stands for one level (``Z_j = zj``, e.g. ``X`` or ``y``); with
    ``same=True`` only the level-diagonal blocks of ``Z_iᵀ Z_i`` are formed, as an
    ``(ℓ_i q_i, q_i)`` array (``rj``, ``lj`` ignored).
    """
    qi, qj = zi.shape[1], zj.shape[1]
    if same:
        rj = None
    ncol = lj * qj
    key = _pair_keys(ri, qi, rj, qj, ncol)
    acc = np.bincount(key, weights=_pair_values(zi, zj), minlength=li * qi * ncol)
    return acc.reshape(li * qi, ncol)


def merge_same_factor(terms: list[ReMat]) -> tuple[list[ReMat], list[list[tuple[int, int, int]]]]:
    """Engine terms: the user's terms with one grouping factor merged into one term.

    ``(x || g)`` gives lme4 the terms ``(1|g)`` and ``(0 + x|g)``; kept apart, the
    second would enter the dense rest with all its levels.  Merged (as
    MixedModels.jl amalgamates them) they form one term with ``q = q₁ + q₂`` and a
    block-diagonal ``λ = diag(λ₁, λ₂)``, eliminated level by level.

    Returns
    -------
    eterms : list of ReMat
        Engine terms, in the order of each factor's first term.
    emap : list of list of (user index, column offset, q)
        For each engine term, the user terms it holds and their columns.
    """
    eterms: list[ReMat] = []
    emap: list[list[tuple[int, int, int]]] = []
    where: dict[tuple, int] = {}
    for k, t in enumerate(terms):
        key = (t.group, tuple(t.factors), t.nlevels)
        e = where.get(key)
        if e is not None and np.array_equal(eterms[e].refs, t.refs):
            emap[e].append((k, sum(q for _, _, q in emap[e]), t.q))
            continue
        where[key] = len(eterms)
        eterms.append(t)
        emap.append([(k, 0, t.q)])
    for e, members in enumerate(emap):
        if len(members) > 1:
            ts = [terms[k] for k, _, _ in members]
            eterms[e] = ReMat(
                ts[0].group,
                ts[0].levels,
                ts[0].refs,
                np.hstack([t.z for t in ts]),
                [c for t in ts for c in t.cnames],
                None,
                ts[0].factors,
            )
    return eterms, emap


class LmmBlocks:
    """θ-independent pieces of the penalized least-squares problem.

    Parameters
    ----------
    terms : list of ReMat
        Random-effects terms, in lme4's order (the first is eliminated first).
    X : numpy.ndarray
        ``(n, p)`` full-rank fixed-effects model matrix.
    y : numpy.ndarray
        ``(n,)`` response minus offset.
    weights : numpy.ndarray or None
        Prior weights ``w`` (rows are scaled by ``√w``).
    schur_mode : {"map", "dense"}, optional
        How ``R𝒲Rᵀ`` is formed each evaluation (default: chosen by cost, see
        :meth:`_choose_schur_mode`).

    Attributes
    ----------
    n, p : int
    q0, n0 : int
        Size and number of levels of the first term.
    A00 : numpy.ndarray
        ``(ℓ₀, q₀, q₀)`` diagonal blocks of ``Z₀ᵀWZ₀``.
    R : scipy.sparse.csc_matrix
        ``(m-1) × ℓ₀q₀``: ``[Z_1 … Z_{K-1} X]ᵀ W Z₀``.
    Ry : numpy.ndarray
        ``(ℓ₀q₀,)``: ``Z₀ᵀ W y``.
    Arr : numpy.ndarray
        ``m × m`` dense ``[Z_rest X y]ᵀ W [Z_rest X y]`` (Fortran order).
    rest_slices : list of slice
        Column range of each term ``k ≥ 1`` inside the rest.
    """

    def __init__(
        self,
        terms: list[ReMat],
        X: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray | None = None,
        schur_mode: str | None = None,
    ) -> None:
        if not terms:
            raise ValueError("a linear mixed model needs at least one random-effects term")
        self.terms = terms
        self.eterms, self.emap = merge_same_factor(terms)
        terms = self.eterms
        X = np.asarray(X, dtype=float)
        self.n, self.p = X.shape
        self.weights = None if weights is None else np.asarray(weights, dtype=float)
        self.sqrtw = None if weights is None else np.sqrt(self.weights)
        self.X = X
        t0 = terms[0]
        self.q0, self.n0 = t0.q, t0.nlevels
        sw = self.sqrtw
        Xw = X if sw is None else X * sw[:, None]
        self._Xw = Xw

        # weighted z of every engine term (rows scaled by √w; no copy without weights)
        self._zw = [t.z if sw is None else t.z * sw[:, None] for t in terms]
        zw0 = self._zw[0]
        q0 = self.q0
        self.A00 = _cross_dense(t0.refs, zw0, self.n0, t0.refs, zw0, 1, same=True).reshape(
            self.n0, q0, q0
        )

        # the rest: terms 1.., X (and y separately)
        sizes = [t.ncols for t in terms[1:]]
        self.mz = int(sum(sizes))
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.rest_slices = [slice(int(starts[i]), int(starts[i + 1])) for i in range(len(sizes))]
        self.m = self.mz + self.p + 1
        m1 = self.m - 1

        # R = [Zrest X]ᵀ W Z0 (sparse, rows = rest columns without y), built as the
        # CSR matrix Rᵀ from (level-0 column, rest column) pairs of every row
        keys, vals = [], []
        ncol0 = self.n0 * q0
        for t, zw, sl in zip(terms[1:], self._zw[1:], self.rest_slices, strict=True):
            keys.append(_pair_keys(t0.refs, q0, t.refs, t.q, m1, sl.start))
            vals.append(_pair_values(zw0, zw))
        if self.p:
            keys.append(_pair_keys(t0.refs, q0, None, self.p, m1, self.mz))
            vals.append(_pair_values(zw0, Xw))
        if keys and ncol0 * m1 <= 250_000:
            # small: Rᵀ dense by one bincount; the sparse R only if asked for
            acc = np.bincount(
                np.concatenate(keys), weights=np.concatenate(vals), minlength=ncol0 * m1
            )
            self.Rd_T = acc.reshape(ncol0, m1)
        elif keys:
            RT = _csr_from_keys(np.concatenate(keys), np.concatenate(vals), (ncol0, m1))
            self._RT = RT
            self.R = sp.csc_matrix((RT.data, RT.indices, RT.indptr), shape=(m1, ncol0))
        else:
            self.R = sp.csc_matrix((m1, ncol0))

        # dense rest block without y
        Arr = np.zeros((self.m, self.m), order="F")
        mz = self.mz
        rest = list(zip(terms[1:], self._zw[1:], self.rest_slices, strict=True))
        for i, (ti, zi, si) in enumerate(rest):
            qi, li = ti.q, ti.nlevels
            D = _cross_dense(ti.refs, zi, li, ti.refs, zi, 1, same=True)  # (ℓ q, q)
            if qi == 1:
                d = np.arange(si.start, si.stop)
                Arr[d, d] = D[:, 0]
            else:
                base = si.start + np.arange(li)[:, None, None] * qi
                rows = base + np.arange(qi)[None, :, None]
                cols = base + np.arange(qi)[None, None, :]
                Arr[rows, cols] = D.reshape(li, qi, qi)
            for tj, zj, sj in rest[:i]:
                B = _cross_dense(ti.refs, zi, li, tj.refs, zj, tj.nlevels)
                Arr[si, sj] = B
                Arr[sj, si] = B.T
            if self.p:
                ZX = _cross_dense(ti.refs, zi, li, None, Xw, 1)
                Arr[si, mz:m1] = ZX
                Arr[mz:m1, si] = ZX.T
        Arr[mz:m1, mz:m1] = Xw.T @ Xw
        self.Arr = Arr
        self.schur_mode = self._choose_schur_mode() if schur_mode is None else schur_mode
        if self.schur_mode not in ("map", "dense"):
            raise ValueError("schur_mode must be 'map', 'dense' or None (automatic)")
        self.set_response(y)
        if self.schur_mode == "map":
            self._group_levels()
            # small models with scalar terms in the rest are factored from the Gram
            # tensor (gram_tensor); the map is then built only if asked for
            self._map_pending = self.gram_fits()
            if not self._map_pending:
                self._build_schur_map()
        else:
            self._build_dense_schur()

    def ensure_map(self) -> None:
        """Build the Schur-complement map (:meth:`_build_schur_map`) if it was deferred."""
        if getattr(self, "_map_pending", False):
            self._map_pending = False
            self._build_schur_map()

    def gram_fits(self) -> bool:
        """Whether the factor can use :meth:`gram_tensor`: map mode, ``R`` kept dense,
        the terms after the first scalar (``Λ_r`` diagonal), the tensor small
        (``nw · m² ≤ 2·10⁵``, ``nw`` the columns of the map) and cheap to build."""
        if self.schur_mode != "map" or self.Rd_T is None:
            return False
        if any(t.q != 1 for t in self.eterms[1:]):
            return False
        q0, m, n0 = self.q0, self.m, self.n0
        ng = len(self.A00_groups) if self.Mg is not None else n0
        if ng * q0 * q0 * m * m > 200_000:
            return False
        return n0 * q0 * q0 * m * m <= 1_000_000 or (ng <= 200 and m * m * n0 * q0 * q0 <= 5e7)

    def gram_tensor(self) -> np.ndarray:
        """``G`` (``nw × m²``) with ``vec(R̄ 𝒲 R̄ᵀ) = vec(𝒲)ᵀ G``, ``R̄ = [R; R_yᵀ]``.

        Row ``(g, a, b)`` is ``vec Σ_{l∈g} R̄_{·,la} R̄_{·,lb}ᵀ`` (both triangles; ``g``
        a group of levels with equal ``A_{00,l}``, or a level), so that with
        ``Λ_r = diag(s)`` (scalar rest terms) an evaluation is
        ``C = diag(s)(A_rr − vec(𝒲)ᵀG)diag(s) + I_Z`` and one ``dpotrf``: no
        scatter through the map's pattern, no separate ``y`` products.
        """
        q0, m, n0 = self.q0, self.m, self.n0
        grouped = self.Mg is not None
        ng = len(self.A00_groups) if grouped else n0
        nw = ng * q0 * q0
        Rbar = np.empty((m, n0 * q0))
        Rbar[: m - 1] = self.Rd_T.T
        Rbar[m - 1] = self.Ry
        Rl = Rbar.reshape(m, n0, q0).transpose(1, 2, 0)  # (l, a, i)
        if n0 * q0 * q0 * m * m <= 1_000_000:
            outer = Rl[:, :, None, :, None] * Rl[:, None, :, None, :]  # (l, a, b, i, j)
            if grouped:
                gl = self.group_of_level
                order = np.argsort(gl, kind="stable")
                starts = np.concatenate([[0], np.cumsum(np.bincount(gl, minlength=ng))[:-1]])
                outer = np.add.reduceat(outer[order], starts, axis=0)
            return np.ascontiguousarray(outer.reshape(nw, m * m))
        # many levels in few groups: one product per group
        gl = self.group_of_level if grouped else np.arange(n0)
        order = np.argsort(gl, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(gl, minlength=ng))])
        Rs = Rl[order]
        G = np.empty((ng, q0, q0, m, m))
        for g in range(ng):
            P = Rs[bounds[g] : bounds[g + 1]]  # (k, a, i)
            if q0 == 1:
                G[g, 0, 0] = P[:, 0, :].T @ P[:, 0, :]
            else:
                G[g] = np.tensordot(P, P, axes=([0], [0])).transpose(0, 2, 1, 3)
        return G.reshape(nw, m * m)

    #: dense ``Rᵀ`` (``ℓ₀q₀ × (m−1)``) when small (≤ 250 000 entries), else None
    Rd_T: np.ndarray | None = None
    _M: sp.spmatrix | np.ndarray | None = None
    _R_sparse: sp.csc_matrix | None = None
    _RT_sparse: sp.csr_matrix | None = None

    @property
    def R(self) -> sp.csc_matrix:
        """``[Z_rest X]ᵀ W Z₀`` as a sparse CSC matrix (from :attr:`Rd_T` on first use
        when that is kept dense)."""
        if self._R_sparse is None:
            RT = self._RT
            self._R_sparse = sp.csc_matrix(
                (RT.data, RT.indices, RT.indptr), shape=(RT.shape[1], RT.shape[0])
            )
        return self._R_sparse

    @R.setter
    def R(self, value: sp.csc_matrix) -> None:
        self._R_sparse = value
        self.Rd_T = None

    @property
    def _RT(self) -> sp.csr_matrix:
        """``Rᵀ`` as a sparse CSR matrix."""
        if self._RT_sparse is None:
            if self.Rd_T is not None:
                self._RT_sparse = _csr_of_dense(self.Rd_T)
            else:
                self._RT_sparse = self._R_sparse.T.tocsr()
        return self._RT_sparse

    @_RT.setter
    def _RT(self, value: sp.csr_matrix) -> None:
        self._RT_sparse = value

    def _R_column_nnz(self) -> np.ndarray:
        """Nonzeros in each column of ``R``."""
        if self.Rd_T is not None:
            return np.count_nonzero(self.Rd_T, axis=1)
        return np.diff(self.R.indptr)

    def _R_dense(self) -> np.ndarray:
        """``R`` as a dense ``(m−1) × ℓ₀q₀`` array."""
        return self.Rd_T.T if self.Rd_T is not None else self.R.toarray()

    # ------------------------------------------------------------------------
    def set_response(self, y: np.ndarray) -> None:
        """(Re)compute the ``y`` parts: ``Z₀ᵀWy``, ``[Z_rest X]ᵀWy``, ``yᵀWy``."""
        y = np.asarray(y, dtype=float).reshape(-1)
        if y.shape[0] != self.n:
            raise ValueError(f"response has length {y.shape[0]}, expected {self.n}")
        self.y = y
        yw = y if self.sqrtw is None else y * self.sqrtw
        self._yw = yw
        y1 = yw[:, None]
        t0 = self.eterms[0]
        self.Ry = _cross_dense(t0.refs, self._zw[0], self.n0, None, y1, 1).reshape(-1)
        m1 = self.m - 1
        row = np.empty(m1)
        for t, zw, sl in zip(self.eterms[1:], self._zw[1:], self.rest_slices, strict=True):
            row[sl] = _cross_dense(t.refs, zw, t.nlevels, None, y1, 1).reshape(-1)
        row[self.mz :] = self._Xw.T @ yw
        self.Arr[m1, :m1] = row
        self.Arr[:m1, m1] = row
        self.Arr[m1, m1] = yw @ yw

    def _choose_schur_mode(self) -> str:
        """``"map"`` (sparse map of the pairs of nonzeros of ``R``) or ``"dense"``.

        The map costs one multiply-add per pair of nonzeros of ``R`` in the same
        level of term 0 — quadratic in the nonzeros per level.  When a level of
        the first term meets many levels of the others (e.g. ``(1 + x | g)``
        with ~100 rows per level crossed with ``(1 | h)``), a dense
        ``R_F R_Fᵀ`` (BLAS ``syrk``, ``m² ℓ₀q₀`` flops) is cheaper and needs far
        less memory.
        """
        q0 = self.q0
        m1 = self.m - 1
        ncol0 = self.n0 * q0
        per_col = self._R_column_nnz().astype(np.float64)
        if q0 == 1:
            pairs = float(np.sum(per_col * (per_col + 1) / 2))
        else:
            per_group = np.add.reduceat(per_col, np.arange(0, len(per_col), q0))
            pairs = float(np.sum(per_group * per_group))
        self.schur_pairs = pairs
        dense_flops = float(m1) * m1 * ncol0
        dense_bytes = 8.0 * m1 * ncol0
        # small problems: the map (often a single group of levels) has the least
        # per-evaluation overhead
        if pairs < 2e5:
            return "map"
        if dense_bytes <= 4e8 and (dense_flops < 30.0 * pairs or pairs > 2e7):
            return "dense"
        return "map"

    def _build_dense_schur(self) -> None:
        """Dense mode: keep ``R`` as a dense ``(m−1) × ℓ₀q₀`` array (no pair map)."""
        self.Rd = np.asfortranarray(self._R_dense())
        self.idx = np.zeros(0, dtype=np.int64)
        self.idx_row = self.idx_col = self.idx_upper = self.idx
        self.offdiag = np.zeros(0, dtype=bool)
        n0 = self.n0
        self.group_of_level = np.arange(n0)
        self.A00_groups = self.A00
        self.group_counts = np.ones(n0)
        self.Mg = None
        self._M = None

    def _build_schur_map(self) -> None:
        """Precompute ``M`` with ``lower(R 𝒲 Rᵀ)[idx] = M @ vec(𝒲)``.

        Column ``(g, a, b)`` of the map (``g`` a level, or a group of levels with
        equal ``A_{00,l}``, see :meth:`_group_levels`) holds the lower triangle of
        ``Σ_{l∈g} R_{·,la} R_{·,lb}ᵀ``.  All of them come from one sparse product
        ``R̃ Rᵀ``, where ``R̃`` moves each nonzero ``R_{i,la}`` to row
        ``((g(l)q₀ + a)q₀ + b)·(m−1) + i`` of column ``lq₀ + b`` (for every ``b``):
        row ``(g, a, b, i)`` of the product is row ``i`` of that sum.  When that
        product would have too many rows, the pairs of nonzeros are enumerated
        instead (:meth:`_build_schur_map_pairs`).
        """
        self._group_levels()
        grouped = self.Mg is not None
        q0, m, m1 = self.q0, self.m, self.m - 1
        nw = (len(self.A00_groups) if grouped else self.n0) * q0 * q0
        if self._gram_map_fits(nw) and self._R_column_nnz().any():
            self._build_schur_map_gram(nw)
            return
        R = self.R
        if nw * m1 > 20_000_000 or R.nnz == 0 or m * m >= 2**31:
            self._build_schur_map_pairs()
            return
        gl = self.group_of_level if grouped else np.arange(self.n0)
        Rc = R.tocsc()
        ncol = Rc.shape[1]
        col_nnz = np.diff(Rc.indptr)
        col_of = np.repeat(np.arange(ncol), col_nnz)
        lev, a = np.divmod(col_of, q0)
        base = (gl[lev] * q0 + a) * q0  # map column (g, a, 0)
        rows_i = Rc.indices.astype(np.int64)
        if q0 == 1:
            wt, rt, ct, vt = base, base * m1 + rows_i, col_of, Rc.data
        else:
            bs = np.arange(q0)
            wt = (base[:, None] + bs[None, :]).ravel()
            rt = wt * m1 + np.repeat(rows_i, q0)
            ct = (lev[:, None] * q0 + bs[None, :]).ravel()
            vt = np.repeat(Rc.data, q0)
        Rt = sp.csr_matrix((vt, (rt, ct)), shape=(nw * m1, ncol))
        RT = Rc.T.tocsr()
        # products in chunks of whole map columns (~3·10⁵ multiply-adds each): small,
        # reused temporaries instead of one product with both triangles
        work = np.bincount(wt, weights=col_nnz[ct].astype(float), minlength=nw)
        bounds = [0]
        acc = 0.0
        for c in range(nw):
            acc += work[c]
            if acc > 3e5:
                bounds.append(c + 1)
                acc = 0.0
        if bounds[-1] != nw:
            bounds.append(nw)
        present = np.zeros(m * m, dtype=bool)
        keys, vals, counts = [], [], np.zeros(nw, dtype=np.int64)
        rows_of_block = np.arange(m1, dtype=np.int32)
        for c0, c1 in zip(bounds[:-1], bounds[1:], strict=True):
            C = Rt[c0 * m1 : c1 * m1] @ RT
            ptr = C.indptr
            i = np.repeat(np.tile(rows_of_block, c1 - c0), np.diff(ptr))
            j = C.indices
            keep = j <= i
            key = i[keep] + j[keep].astype(np.int32) * np.int32(m)  # < 2³¹ (checked)
            present[key] = True
            keys.append(key)
            vals.append(C.data[keep])
            # kept entries per map column: differences of the running count at the
            # boundaries of the row blocks
            ck = np.concatenate([[0], np.cumsum(keep)])
            counts[c0:c1] = np.diff(ck[ptr[::m1]])
        key = np.concatenate(keys)
        uniq = np.flatnonzero(present)
        lookup = np.empty(m * m, dtype=np.int32)
        lookup[uniq] = np.arange(len(uniq), dtype=np.int32)
        self._set_pattern(uniq)
        indptr = np.zeros(nw + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        # entries come ordered by map column: the map is assembled directly in CSC
        # form (its mat-vec, with few columns, is also faster than CSR's)
        M = sp.csc_matrix((np.concatenate(vals), lookup[key], indptr), shape=(len(uniq), nw))
        if grouped:
            self.Mg, self._M = M, None
        else:
            self._M = M

    def _gram_map_fits(self, nw: int) -> bool:
        """Whether the map is built from dense Gram matrices (:meth:`_build_schur_map_gram`):
        ``R`` small enough to be dense (``(m−1) · ℓ₀q₀ ≤ 4·10⁶``), the products cheap
        (``(m−1)² ℓ₀ q₀² ≤ 5·10⁷`` multiply-adds) and the dense map small
        (``(m−1)m/2 · nw ≤ 5·10⁵``)."""
        m1, q0 = self.m - 1, self.q0
        return (
            m1 * self.n0 * q0 <= 4_000_000
            and m1 * m1 * self.n0 * q0 * q0 <= 50_000_000
            and m1 * (m1 + 1) // 2 * nw <= 500_000
        )

    def _build_schur_map_gram(self, nw: int) -> None:
        """:meth:`_build_schur_map` for small rests, from dense Gram matrices.

        With ``R`` dense, the columns of each group ``g`` of levels (or each level)
        give ``G_{g,a,b} = Σ_{l∈g} R_{·,la} R_{·,lb}ᵀ`` by one BLAS product per group;
        the map's column ``(g, a, b)`` is the lower triangle of ``G_{g,a,b}`` on the
        entries that are nonzero in some column.  No sparse products or sorting:
        on a 1 000 × 50 crossed design with 20 000 rows ~0.3 ms instead of ~5 ms.
        """
        grouped = self.Mg is not None
        q0, m, m1 = self.q0, self.m, self.m - 1
        ng = nw // (q0 * q0)
        gl = self.group_of_level if grouped else np.arange(self.n0)
        Rd = self._R_dense().reshape(m1, self.n0, q0)
        order = np.argsort(gl, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(gl, minlength=ng))])
        Rs = Rd[:, order, :]
        G = np.empty((ng, q0, q0, m1, m1))
        for g in range(ng):
            P = Rs[:, bounds[g] : bounds[g + 1], :]
            if q0 == 1:
                P1 = P[:, :, 0]
                G[g, 0, 0] = P1 @ P1.T
            else:
                # [i, a, j, b] -> [a, b, i, j]
                G[g] = np.tensordot(P, P, axes=([1], [1])).transpose(1, 3, 0, 2)
        # lower triangle (i ≥ j) in the order of the flat Fortran index i + j·m
        jj, ii = np.triu_indices(m1)
        Gl = G.reshape(nw, m1, m1)[:, ii, jj]
        present = np.any(Gl != 0.0, axis=0)
        self._set_pattern(ii[present] + jj[present].astype(np.int64) * m)
        Gp = Gl[:, present]
        # small maps stay dense (their mat-vec is a dense one anyway)
        M = Gp.T.copy() if Gp.size <= 40_000 else _csr_of_dense(Gp).T  # pattern × nw
        if grouped:
            self.Mg, self._M = M, None
        else:
            self._M = M

    def _pattern(self, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sorted distinct flat indices and the position of each key among them."""
        mm = self.m * self.m
        if mm <= 50_000_000:
            present = np.zeros(mm, dtype=bool)
            present[key] = True
            uniq = np.flatnonzero(present)
            lookup = np.empty(mm, dtype=np.int64)
            lookup[uniq] = np.arange(len(uniq))
            return uniq, lookup[key]
        return np.unique(key, return_inverse=True)

    def _set_pattern(self, uniq: np.ndarray) -> None:
        self.idx = uniq
        self.idx_row = uniq % self.m
        self.idx_col = uniq // self.m
        self.offdiag = self.idx_row != self.idx_col
        self.idx_upper = (self.idx_col + self.idx_row * self.m)[self.offdiag]

    def _build_schur_map_pairs(self) -> None:
        """:meth:`_build_schur_map` by enumerating pairs of nonzeros.

        For each level ``l`` of term 0, every ordered pair of nonzeros ``(t, s)``
        of ``R``'s columns ``lq₀ … lq₀+q₀-1`` with row(t) ≥ row(s) contributes
        ``R_t R_s 𝒲_l[a_t, b_s]`` to entry (row(t), row(s)).
        """
        R = self.R
        q0 = self.q0
        indptr, rows, vals = R.indptr, R.indices, R.data
        nnz = len(vals)
        col_of = np.repeat(np.arange(R.shape[1]), np.diff(indptr))
        if q0 == 1:
            # rows are sorted within a column: pair nonzero t with s = start(col) .. t
            pos = np.arange(nnz) - indptr[col_of]
            counts = pos + 1
            total = int(counts.sum())
            T = np.repeat(np.arange(nnz), counts)
            first = np.repeat(np.cumsum(counts) - counts, counts)
            S = indptr[col_of[T]] + (np.arange(total) - first)
            rt, rs = rows[T], rows[S]
            wcol = col_of[T]
        else:
            gptr = indptr[::q0]  # start of each level's group of columns
            gsize = np.diff(gptr)
            grp_of = col_of // q0
            a_of = col_of % q0
            counts = gsize[grp_of]
            total = int(counts.sum())
            T = np.repeat(np.arange(nnz), counts)
            first = np.repeat(np.cumsum(counts) - counts, counts)
            S = gptr[grp_of[T]] + (np.arange(total) - first)
            rt, rs = rows[T], rows[S]
            keep = rt >= rs
            T, S, rt, rs = T[keep], S[keep], rt[keep], rs[keep]
            wcol = grp_of[T] * q0 * q0 + a_of[T] * q0 + a_of[S]
        data = vals[T] * vals[S]
        key = rt.astype(np.int64) + rs.astype(np.int64) * self.m  # Fortran flat index
        uniq, inv = self._pattern(key)
        self._set_pattern(uniq)
        if self.Mg is not None:
            # column (l, a, b) -> (g(l), a, b); duplicates summed
            lev, ab = np.divmod(wcol, q0 * q0)
            gcol = self.group_of_level[lev] * (q0 * q0) + ab
            ng = len(self.A00_groups)
            self.Mg = _csr_summed(data, inv, gcol, (len(uniq), ng * q0 * q0))
            self._M = None
        else:
            self._M = sp.csr_matrix((data, (inv, wcol)), shape=(len(uniq), self.n0 * q0 * q0))
            self._M.sum_duplicates()

    @property
    def M(self) -> sp.spmatrix | np.ndarray:
        """The ungrouped map ``vec 𝒲 ↦ lower(R𝒲Rᵀ)[idx]`` (built on demand when the
        grouped map :attr:`Mg` is used); a sparse matrix, or a dense array when it
        has at most 40 000 entries (the maps from :meth:`_build_schur_map_gram`)."""
        self.ensure_map()
        if self._M is None:
            Mg = self.Mg
            self._force_ungrouped = True
            try:
                self._build_schur_map()
                M = self._M
            finally:
                self._force_ungrouped = False
                self.Mg = Mg
            self._M = M
        return self._M
        self._group_levels()

    def _group_levels(self) -> None:
        """Merge the columns of ``M`` of levels with identical ``A_{00,l}``.

        ``𝒲_l`` depends on the level only through ``A_{00,l}`` (for an unweighted
        intercept-only first term, through the level's count), so ``M vec 𝒲 =
        M_g vec 𝒲_g`` with one column block per distinct ``A_{00,l}``; on InstEval
        this halves the nonzeros of the map (2.0 M -> 1.1 M).
        """
        q0, n0 = self.q0, self.n0
        flat = self.A00.reshape(n0, q0 * q0)
        if q0 == 1:  # 1-d unique: a plain sort instead of a lexicographic one
            uniq, inv = np.unique(flat[:, 0], return_inverse=True)
            uniq = uniq[:, None]
        else:
            uniq, inv = np.unique(flat, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        self.group_of_level = inv
        self.A00_groups = uniq.reshape(-1, q0, q0)
        self.group_counts = np.bincount(inv, minlength=len(uniq)).astype(float)
        ng = len(uniq)
        # Mg is built by _build_schur_map when the levels fall into fewer groups
        # (merging columns never adds nonzeros); a placeholder marks the decision
        self.Mg = True if ng < n0 and not getattr(self, "_force_ungrouped", False) else None

    def with_response(self, y: np.ndarray) -> LmmBlocks:
        """A shallow copy with a new response; the θ-independent structure is shared."""
        new = object.__new__(LmmBlocks)
        new.__dict__.update(self.__dict__)
        new.Arr = self.Arr.copy(order="F")
        new.set_response(y)
        return new
