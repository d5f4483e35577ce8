r"""Model matrices as the IRLS loop sees them: products with :math:`\beta` and :math:`W`.

The loop needs three things of :math:`X`: :math:`X\beta`, the weighted cross
product :math:`X^\top W X` with :math:`X^\top W z`, and (rarely, to decide rank)
the triangular factor of :math:`W^{1/2}X`. :class:`DenseDesign` does these with
BLAS on a dense array; :class:`FactorBlockDesign` exploits a block of indicator
columns of one factor (their cross product is diagonal and their products with
the other columns are group sums, done by ``bincount``) so that a 1,000-level
factor costs :math:`O(n)` per step instead of :math:`O(n p^2)`.
"""

from __future__ import annotations

import numpy as np

from pyglmm.glm.weighted_ls import (
    SUSPECT_PIVOT_RATIO,
    cholesky_solve,
    cholesky_upper,
    weighted_gram,
)
from pyglmm.row_threads import CHUNK_ROWS, map_row_chunks, row_threads


class DenseDesign:
    """A dense model matrix."""

    def __init__(self, X: np.ndarray) -> None:
        X = np.asarray(X, dtype=float)
        # row blocks of a Fortran-ordered X are strided views that BLAS and ufuncs read
        # well: only a matrix that is neither C- nor F-contiguous is copied
        if not (X.flags.c_contiguous or X.flags.f_contiguous):
            X = np.ascontiguousarray(X)
        self.X = X

    @property
    def shape(self) -> tuple[int, int]:
        return self.X.shape

    def matvec(self, beta: np.ndarray) -> np.ndarray:
        r""":math:`X\beta` (row chunks in threads, :mod:`pyglmm.row_threads`)."""
        n, p = self.X.shape
        if p == 0:
            return np.zeros(n)
        if n <= CHUNK_ROWS or row_threads() == 1:
            return self.X @ beta
        eta = np.empty(n)
        X = self.X
        map_row_chunks(lambda lo, hi: np.dot(X[lo:hi], beta, out=eta[lo:hi]), n)
        return eta

    def crossprod(self, w: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`X^\top W X` (at least its upper triangle) and :math:`X^\top v`.

        ``w`` are the working weights, ``v`` is :math:`Wz`
        (:func:`~pyglmm.glm.weighted_ls.weighted_gram`).
        """
        return weighted_gram(self.X, w, v)

    def weighted_matrix(self, sw: np.ndarray) -> np.ndarray:
        r""":math:`W^{1/2}X` as a dense array (for the exact rank decision)."""
        return self.X * sw[:, None]

    def direct_step(self, w: np.ndarray, v: np.ndarray) -> None:
        r"""No shortcut for a dense :math:`X`: the step factors :math:`X^\top W X` (see
        :meth:`FactorBlockDesign.direct_step`)."""
        return None

    def release(self) -> None:
        """Drop work memory (nothing is kept between steps)."""

    def dense(self) -> np.ndarray:
        return self.X


class FactorBlockDesign:
    r""":math:`X = [D \; F]` with :math:`F` the indicator columns of one factor.

    Parameters
    ----------
    dense : (n, k) array
        The other columns (intercept, covariates, small factors).
    codes : (n,) int array
        Level code of each row in ``0 .. m-1``; ``-1`` where the row has no
        indicator column (the reference level).
    n_levels : int
        Number of indicator columns ``m``.
    order : (k + m,) int array
        Position of each column of ``[D F]`` in the original column order.

    Notes
    -----
    With :math:`s = W^{1/2}` the cross product has blocks
    :math:`D^\top W D` (BLAS), :math:`F^\top W D` (one ``bincount`` per column of
    :math:`D`) and the diagonal :math:`F^\top W F = \operatorname{diag}(\sum_{i\in g} w_i)`.
    """

    def __init__(self, dense: np.ndarray, codes: np.ndarray, n_levels: int, order: np.ndarray):
        self.D = np.ascontiguousarray(dense, dtype=float)
        self.codes = np.asarray(codes, dtype=np.intp)
        self.m = int(n_levels)
        self.order = np.asarray(order, dtype=np.intp)
        self.inverse = np.argsort(self.order)
        #: [D F] is R's column order (the factor is the last term)
        self._in_order = bool(np.array_equal(self.order, np.arange(len(self.order))))
        self._in_level = self.codes >= 0
        self._codes_safe = np.where(self._in_level, self.codes, self.m)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.D.shape[0], self.D.shape[1] + self.m)

    def matvec(self, beta: np.ndarray) -> np.ndarray:
        b = beta[self.order]
        k = self.D.shape[1]
        eta = self.D @ b[:k] if k else np.zeros(self.D.shape[0])
        gb = np.append(b[k:], 0.0)
        return eta + gb[self._codes_safe]

    def _block_products(self, w: np.ndarray, v: np.ndarray):
        r"""The blocks of :math:`X^\top W X` and :math:`X^\top v` (class notes):
        :math:`D^\top W D` and :math:`D^\top v` (BLAS), the level weights :math:`d`,
        :math:`F^\top v` and :math:`C = F^\top W D` (``bincount``)."""
        k, m = self.D.shape[1], self.m
        cs = self._codes_safe
        A_dd, r_d = weighted_gram(self.D, w, v) if k else (np.zeros((0, 0)), np.zeros(0))
        d = np.bincount(cs, w, minlength=m + 1)[:m]
        r_f = np.bincount(cs, v, minlength=m + 1)[:m]
        C = np.empty((m, k))
        for j in range(k):
            C[:, j] = np.bincount(cs, w * self.D[:, j], minlength=m + 1)[:m]
        return A_dd, r_d, d, r_f, C

    def crossprod(self, w: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`X^\top W X` (upper triangle) and :math:`X^\top v`, by blocks (class notes)."""
        k, m = self.D.shape[1], self.m
        A_dd, r_d, d, r_f, C = self._block_products(w, v)
        A = np.zeros((k + m, k + m))
        A[:k, :k] = A_dd
        A[np.arange(k, k + m), np.arange(k, k + m)] = d
        A[:k, k:] = C.T
        rhs = np.concatenate([r_d, r_f])
        if self._in_order:  # the block is last in R's order too: A is already in place
            return A, rhs
        # back to the original column order (upper triangle of the permuted matrix)
        full = np.triu(A) + np.triu(A, 1).T
        P = full[np.ix_(self.inverse, self.inverse)]
        return np.triu(P), rhs[self.inverse]

    def direct_step(self, w: np.ndarray, v: np.ndarray) -> np.ndarray | None:
        r"""The solution :math:`\beta` of :math:`X^\top W X \beta = X^\top v` by block elimination.

        With the indicator block first the cross product is
        :math:`\begin{pmatrix} \Delta & C \\ C^\top & A_{DD} \end{pmatrix}`,
        :math:`\Delta = \operatorname{diag}(d)` the weight of each level,
        :math:`C = F^\top W D`, and eliminating :math:`\Delta` leaves the
        :math:`k \times k` Schur complement :math:`S = A_{DD} - C^\top \Delta^{-1} C`:

        .. math::

            \beta_D = S^{-1}(r_D - C^\top \Delta^{-1} r_F), \qquad
            \beta_F = \Delta^{-1}(r_F - C\beta_D),

        :math:`O(nk + mk^2)` work against :math:`O((k + m)^3)` for the Cholesky factor of
        the whole matrix. Returns None when the step cannot decide the rank as R would
        (a level without weight, or a pivot of :math:`S` that is small relative to
        :math:`A_{DD}`): the caller then factors :math:`X^\top W X` in R's column order.
        """
        k, m = self.D.shape[1], self.m
        A_dd, r_d, d, r_f, C = self._block_products(w, v)
        if not np.all(d > 0):
            return None
        beta = np.empty(k + m)
        if k:
            C_scaled = C / d[:, None]
            S = A_dd - C.T @ C_scaled
            U, _ = cholesky_upper(S)
            diag = np.diag(A_dd)
            if U is None or np.min(np.diag(U) ** 2 / diag) < SUSPECT_PIVOT_RATIO:
                return None
            beta_d = cholesky_solve(U, r_d - C_scaled.T @ r_f)
            beta[:k] = beta_d
            beta[k:] = (r_f - C @ beta_d) / d
        else:
            beta[k:] = r_f / d
        out = np.empty(k + m)
        out[self.order] = beta
        return out

    def dense(self) -> np.ndarray:
        n = self.D.shape[0]
        F = np.zeros((n, self.m))
        F[np.flatnonzero(self._in_level), self.codes[self._in_level]] = 1.0
        return np.concatenate([self.D, F], axis=1)[:, self.inverse]

    def weighted_matrix(self, sw: np.ndarray) -> np.ndarray:
        return self.dense() * sw[:, None]

    def release(self) -> None:
        """Drop work memory (nothing is kept between steps)."""


#: Smallest indicator block worth the structured cross product.
MIN_FACTOR_COLUMNS = 30


def design_of_frame(frame) -> DenseDesign | FactorBlockDesign:
    """The design of a model frame (:func:`~pyglmm.formula.frame.model_frame`).

    A frame built with ``indicator_block_min`` whose many-level factor was left out of
    :math:`X` gives a :class:`FactorBlockDesign` straight from the other columns and
    the factor's level codes (the :math:`n \times m` indicator block is never formed);
    any other frame goes through :func:`make_design`.
    """
    block = frame.fixed.indicator_block
    if block is None:
        return make_design(frame.X, frame.data, frame.terms, frame.assign, frame.column_names)
    other = frame.fixed.other_columns
    p = other.shape[1] + block.size
    in_block = np.arange(block.first, block.first + block.size)
    order = np.concatenate([np.setdiff1d(np.arange(p), in_block), in_block])
    level_codes = np.asarray(frame.data[block.variable].array.codes, dtype=np.intp)
    return FactorBlockDesign(other, block.codes(level_codes), block.size, order)


def make_design(X: np.ndarray, data=None, terms=None, assign=None, column_names=None):
    """The fastest design for ``X``: a :class:`FactorBlockDesign` when one term is a
    factor with many treatment-coded indicator columns, else a :class:`DenseDesign`.

    The factor block is recognised from the model frame (a categorical column whose
    term owns ``levels - 1`` columns named ``<factor><level>``, or ``levels`` columns
    without an intercept) and verified on ``X`` itself (each row has a single 1 in the
    column of its level and zeros elsewhere), so a wrong guess falls back to dense.
    """
    import pandas as pd

    X = np.asarray(X, dtype=float)
    if data is None or terms is None or assign is None or X.shape[1] < MIN_FACTOR_COLUMNS:
        return DenseDesign(X)
    assign = np.asarray(assign)
    best = None
    for t, term in enumerate(terms, start=1):
        cols = np.flatnonzero(assign == t)
        if len(cols) < MIN_FACTOR_COLUMNS or term not in data.columns:
            continue
        col = data[term]
        if not isinstance(col.dtype, pd.CategoricalDtype):
            continue
        levels = [str(v) for v in col.cat.categories]
        names = [column_names[j] for j in cols] if column_names else None
        if len(cols) == len(levels) - 1:
            expected = [f"{term}{lev}" for lev in levels[1:]]
            shift = 1
        elif len(cols) == len(levels):
            expected = [f"{term}{lev}" for lev in levels]
            shift = 0
        else:
            continue
        if names is not None and names != expected:
            continue
        if best is None or len(cols) > len(best[0]):
            best = (cols, col.cat.codes.to_numpy().astype(np.intp) - shift)
    if best is None:
        return DenseDesign(X)
    cols, codes = best
    n = X.shape[0]
    if not np.array_equal(cols, np.arange(cols[0], cols[-1] + 1)):
        return DenseDesign(X)
    block = X[:, cols[0] : cols[-1] + 1]  # a view: no copy of the n x m block
    in_level = codes >= 0
    rows = np.flatnonzero(in_level)
    # each row must be the unit vector of its level: its entry there is 1, its sum is 1
    # (0 for the reference level) and its product with a random vector picks that entry
    r = np.random.default_rng(12345).standard_normal(block.shape[1])
    pick = np.where(in_level, r[np.where(in_level, codes, 0)], 0.0)
    ok = (
        np.all(block[rows, codes[rows]] == 1.0)
        and np.allclose(block @ np.ones(block.shape[1]), in_level, rtol=0, atol=1e-12)
        and np.allclose(block @ r, pick, rtol=0, atol=1e-9)
    )
    if not ok:
        return DenseDesign(X)
    other = np.setdiff1d(np.arange(X.shape[1]), cols)
    order = np.concatenate([other, cols])
    return FactorBlockDesign(X[:, other], codes.reshape(n), len(cols), order)
