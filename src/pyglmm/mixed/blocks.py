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
    nrow, ncol = shape
    if nrow * ncol <= 30_000_000:
        key = rows.astype(np.int64) * ncol + cols
        acc = np.bincount(key, weights=data, minlength=nrow * ncol)
        nz = np.flatnonzero(acc)
        r = nz // ncol
        indptr = np.zeros(nrow + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=nrow), out=indptr[1:])
        return sp.csr_matrix((acc[nz], nz - r * ncol, indptr), shape=shape)
    out = sp.csr_matrix((data, (rows, cols)), shape=shape)
    out.sum_duplicates()
    return out


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

        # block 0: diagonal blocks of Z0' W Z0
        zw = t0.z if sw is None else t0.z * sw[:, None]
        self._z0w = zw
        q0 = self.q0
        A00 = np.empty((self.n0, q0, q0))
        for a in range(q0):
            for b in range(a + 1):
                v = np.bincount(t0.refs, weights=zw[:, a] * zw[:, b], minlength=self.n0)
                A00[:, a, b] = v
                A00[:, b, a] = v
        self.A00 = A00

        # the rest: terms 1.., X (and y separately)
        Zrest = [t.sparse(sw) for t in terms[1:]]
        sizes = [t.ncols for t in terms[1:]]
        self.mz = int(sum(sizes))
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.rest_slices = [slice(int(starts[i]), int(starts[i + 1])) for i in range(len(sizes))]
        self.m = self.mz + self.p + 1
        Z0 = t0.sparse(sw)
        self._Z0 = Z0
        self._Zrest = sp.hstack(Zrest, format="csc") if Zrest else None

        # R = [Zrest X]' W Z0  (sparse, rows = rest columns without y)
        XtZ0 = sp.csc_matrix(np.asarray(Z0.T @ Xw).T)  # p x n0q0
        if self._Zrest is not None:
            R = sp.vstack([(self._Zrest.T @ Z0).tocsc(), XtZ0], format="csc")
        else:
            R = XtZ0
        R.sum_duplicates()
        R.eliminate_zeros()
        R.sort_indices()
        self.R = R
        self._RT = R.T.tocsr()

        # dense rest block without y
        m1 = self.m - 1
        Arr = np.zeros((self.m, self.m), order="F")
        if self._Zrest is not None:
            ZZ = (self._Zrest.T @ self._Zrest).toarray()
            ZX = np.asarray(self._Zrest.T @ Xw)
            Arr[: self.mz, : self.mz] = ZZ
            Arr[: self.mz, self.mz : m1] = ZX
            Arr[self.mz : m1, : self.mz] = ZX.T
        Arr[self.mz : m1, self.mz : m1] = Xw.T @ Xw
        self.Arr = Arr
        self.schur_mode = self._choose_schur_mode() if schur_mode is None else schur_mode
        if self.schur_mode not in ("map", "dense"):
            raise ValueError("schur_mode must be 'map', 'dense' or None (automatic)")
        if self.schur_mode == "map":
            self._build_schur_map()
        else:
            self._build_dense_schur()
        self.set_response(y)

    # ------------------------------------------------------------------------
    def set_response(self, y: np.ndarray) -> None:
        """(Re)compute the ``y`` parts: ``Z₀ᵀWy``, ``[Z_rest X]ᵀWy``, ``yᵀWy``."""
        y = np.asarray(y, dtype=float).reshape(-1)
        if y.shape[0] != self.n:
            raise ValueError(f"response has length {y.shape[0]}, expected {self.n}")
        self.y = y
        yw = y if self.sqrtw is None else y * self.sqrtw
        self._yw = yw
        self.Ry = np.asarray(self._Z0.T @ yw).reshape(-1)
        m1 = self.m - 1
        row = np.empty(m1)
        if self._Zrest is not None:
            row[: self.mz] = self._Zrest.T @ yw
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
        R = self.R
        q0 = self.q0
        m1 = self.m - 1
        per_col = np.diff(R.indptr).astype(np.float64)
        if q0 == 1:
            pairs = float(np.sum(per_col * (per_col + 1) / 2))
        else:
            per_group = np.add.reduceat(per_col, np.arange(0, len(per_col), q0))
            pairs = float(np.sum(per_group * per_group))
        self.schur_pairs = pairs
        dense_flops = float(m1) * m1 * R.shape[1]
        dense_bytes = 8.0 * m1 * R.shape[1]
        # small problems: the map (often a single group of levels) has the least
        # per-evaluation overhead
        if pairs < 2e5:
            return "map"
        if dense_bytes <= 4e8 and (dense_flops < 30.0 * pairs or pairs > 2e7):
            return "dense"
        return "map"

    def _build_dense_schur(self) -> None:
        """Dense mode: keep ``R`` as a dense ``(m−1) × ℓ₀q₀`` array (no pair map)."""
        self.Rd = np.asfortranarray(self.R.toarray())
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
        R = self.R
        q0, m, m1 = self.q0, self.m, self.m - 1
        nw = (len(self.A00_groups) if grouped else self.n0) * q0 * q0
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
    def M(self) -> sp.csr_matrix:
        """The ungrouped map ``vec 𝒲 ↦ lower(R𝒲Rᵀ)[idx]`` (built on demand when the
        grouped map :attr:`Mg` is used)."""
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
