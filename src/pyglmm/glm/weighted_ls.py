r"""Weighted least squares for IRLS: :math:`X^\top W X` by BLAS, Cholesky solves, R's rank rule.

Each IRLS step solves :math:`(X^\top W X)\beta = X^\top W z`. The cross product is
formed once per step (:func:`weighted_gram`: :math:`(W_bX_b)^\top X_b` summed over
2,048-row blocks with ``dgemm``, the rows shared between threads) and factored by
Cholesky, which costs :math:`O(np^2)` against :math:`O(2np^2)` for the QR
decomposition R's ``glm.fit`` recomputes each step. For a handful of columns
OpenBLAS's ``dgemm`` kernels run at twice the speed per flop of its ``dsyrk``, so the
general product (both triangles) takes no longer than the symmetric one. When a
Cholesky pivot is suspiciously small the step recomputes the cross product with
``dsyrk`` from :math:`W^{1/2}X` (:func:`crossprod_upper`), as R's and the Dask fit's sums.

Rank deficiency is decided as R decides it, by LINPACK's ``dqrdc2`` (a QR
decomposition with *limited* column pivoting): column :math:`j` is aliased when
the norm of its residual after projection on the earlier non-aliased columns is
below ``tol`` times its original norm (``tol = 1e-11`` for ``glm``). Aliased
columns are moved to the end, so R keeps the *first* of collinear columns. The
Cholesky factor :math:`U` of :math:`X^\top W X` gives these residual norms for
free (:math:`U_{jj}^2` is the squared residual norm of column :math:`j`), but only
to a relative accuracy of about :math:`\sqrt{\epsilon_{\text{mach}}}` in the norm;
when a pivot is suspiciously small (or the Cholesky fails) the decision is made
exactly as R makes it: ``dqrdc2`` is applied to the triangular factor of a
Householder QR of :math:`W^{1/2}X` (same column norms and projections as
:math:`W^{1/2}X` itself, but only :math:`p \times p`).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas, lapack

from pyglmm.mixed.blas_threads import blas_threads

#: Squared-norm ratio below which a Cholesky pivot is checked by the exact QR rule.
SUSPECT_PIVOT_RATIO = 1e-8


def weighted_crossprod(X: np.ndarray, sw: np.ndarray, buffer: np.ndarray | None = None):
    r"""Return :math:`A = (W^{1/2}X)^\top (W^{1/2}X)` (upper triangle) and :math:`W^{1/2}X`.

    Parameters
    ----------
    X : (n, p) C-contiguous array
    sw : (n,) square roots of the weights
    buffer : optional (n, p) C-contiguous array reused for :math:`W^{1/2}X`
    """
    if buffer is None:
        buffer = np.empty_like(X)
    np.multiply(X, sw[:, None], out=buffer)
    if X.shape[1] == 0:
        return np.zeros((0, 0)), buffer
    # buffer.T is Fortran-ordered (p, n): dsyrk computes buffer.T @ buffer without a copy
    A = blas.dsyrk(1.0, buffer.T, trans=0, lower=0)
    return A, buffer


def crossprod_upper(M: np.ndarray) -> np.ndarray:
    r"""Upper triangle of :math:`M^\top M` by ``dsyrk`` (exactly symmetric rounding)."""
    if M.shape[1] == 0:
        return np.zeros((0, 0))
    M = np.ascontiguousarray(M, dtype=float)
    return blas.dsyrk(1.0, M.T, trans=0, lower=0)


#: Rows per block in :func:`weighted_gram`: OpenBLAS multiplies a ``p x 2048`` by a
#: ``2048 x p`` block about twice as fast (per flop) as ``p x 4096`` ones for ``p`` near 20.
GRAM_BLOCK_ROWS = 2048


def weighted_gram_rows(
    X: np.ndarray, w: np.ndarray, v: np.ndarray, lo: int, hi: int, buffer: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\sum_{i=lo}^{hi-1} w_i x_i x_i^\top` and :math:`\sum_{i=lo}^{hi-1} v_i x_i`.

    In blocks of :data:`GRAM_BLOCK_ROWS` rows: :math:`B = W_b X_b` in a buffer that stays
    in cache, then the general product :math:`B^\top X_b` (not ``dsyrk``: for a handful
    of columns OpenBLAS's ``dgemm`` kernels are twice as fast as its ``dsyrk`` although
    they compute both triangles) and :math:`v_b^\top X_b`. The product is ``np.dot``:
    measured here, ``np.matmul`` of the same operands ran no faster on two threads than
    on one, while ``np.dot`` calls in two threads take half the time.
    """
    p = X.shape[1]
    rows = GRAM_BLOCK_ROWS
    if buffer is None or buffer.shape[0] < min(rows, hi - lo) or buffer.shape[1] != p:
        buffer = np.empty((min(rows, max(hi - lo, 1)), p))
    A = np.zeros((p, p))
    r = np.zeros(p)
    part = np.empty((p, p))
    for start in range(lo, hi, rows):
        stop = min(start + rows, hi)
        Xb = X[start:stop]
        B = buffer[: stop - start]
        np.multiply(Xb, w[start:stop, None], out=B)
        np.dot(B.T, Xb, out=part)
        A += part
    if hi > lo:
        np.dot(v[lo:hi], X[lo:hi], out=r)  # one product for the rows: fewer GIL round trips
    return A, r


def weighted_gram(X: np.ndarray, w: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`X^\top W X` (both triangles) and :math:`X^\top v`, with :math:`W = \mathrm{diag}(w)`.

    The rows are cut into chunks (:func:`~pyglmm.row_threads.map_row_chunks`) summed
    by :func:`weighted_gram_rows` in threads with single-threaded BLAS; the chunks' sums
    are added in chunk order.
    """
    from pyglmm.row_threads import map_row_chunks

    n, p = X.shape
    if p == 0:
        return np.zeros((0, 0)), np.zeros(0)
    parts = map_row_chunks(lambda lo, hi: weighted_gram_rows(X, w, v, lo, hi), n)
    A, r = parts[0]
    for A_part, r_part in parts[1:]:
        A += A_part
        r += r_part
    return A, r


def symmetrize_upper(A: np.ndarray) -> np.ndarray:
    """Full symmetric matrix from its upper triangle."""
    return np.triu(A) + np.triu(A, 1).T


def cholesky_upper(A: np.ndarray) -> tuple[np.ndarray | None, bool]:
    r"""Upper Cholesky factor :math:`U` (:math:`A = U^\top U`) of the upper triangle of ``A``.

    Returns ``(U, suspicious)``: ``U`` is None when ``A`` is not numerically
    positive definite; ``suspicious`` is True when some pivot is so small that
    R's rank rule must be checked exactly.
    """
    p = A.shape[0]
    if p == 0:
        return np.zeros((0, 0)), False
    diag = np.diag(A).copy()
    if np.any(diag <= 0) or not np.all(np.isfinite(diag)):
        return None, True
    with blas_threads(1):  # small p x p: threads only lose on a busy machine
        U, info = lapack.dpotrf(A, lower=0, clean=1, overwrite_a=0)
    if info != 0:
        return None, True
    ratio = np.diag(U) ** 2 / diag
    return U, bool(np.min(ratio) < SUSPECT_PIVOT_RATIO)


def dqrdc2_rank(x: np.ndarray, tol: float) -> tuple[int, np.ndarray]:
    """Rank and column pivot of LINPACK's ``dqrdc2`` (R's QR with limited pivoting).

    Parameters
    ----------
    x : (n, p) array
        Matrix to decompose (copied).
    tol : float
        Relative tolerance on the column norms.

    Returns
    -------
    rank : int
    pivot : (p,) int array
        Column order: the first ``rank`` are the non-aliased columns in their
        original order, then the aliased ones.
    """
    x = np.array(x, dtype=float, copy=True)
    n, p = x.shape
    qraux = np.linalg.norm(x, axis=0)
    work1 = qraux.copy()
    work2 = qraux.copy()
    work2[work2 == 0] = 1.0
    jpvt = np.arange(p)
    k = p + 1  # 1-based, as the Fortran
    lup = min(n, p)
    for l1 in range(1, lup + 1):
        l = l1 - 1
        while not (l1 >= k or qraux[l] >= work2[l] * tol):
            # move column l to the end
            x[:, l:] = np.concatenate([x[:, l + 1 :], x[:, l : l + 1]], axis=1)
            for arr in (jpvt, qraux, work1, work2):
                arr[l:] = np.concatenate([arr[l + 1 :], arr[l : l + 1]])
            k -= 1
        if l1 == n:
            continue
        col = x[l:, l]
        nrmxl = np.linalg.norm(col)
        if nrmxl == 0:
            continue
        if x[l, l] != 0:
            nrmxl = np.copysign(nrmxl, x[l, l])
        x[l:, l] = col / nrmxl
        x[l, l] = 1.0 + x[l, l]
        if l1 < p:
            v = x[l:, l]
            t = -(v @ x[l:, l + 1 :]) / x[l, l]
            x[l:, l + 1 :] += np.outer(v, t)
            for j in range(l + 1, p):
                if qraux[j] == 0:
                    continue
                tt = max(1.0 - (abs(x[l, j]) / qraux[j]) ** 2, 0.0)
                if abs(tt) < 1e-6:
                    qraux[j] = np.linalg.norm(x[l + 1 :, j])
                    work1[j] = qraux[j]
                else:
                    qraux[j] = qraux[j] * np.sqrt(tt)
        qraux[l] = x[l, l]
        x[l, l] = -nrmxl
    rank = min(k - 1, n)
    return rank, jpvt


def aliased_columns(Xs: np.ndarray, tol: float) -> np.ndarray:
    r"""Boolean mask of the columns of :math:`W^{1/2}X` that R's ``dqrdc2`` declares aliased."""
    n, p = Xs.shape
    if p == 0:
        return np.zeros(0, dtype=bool)
    R = np.linalg.qr(Xs, mode="r") if n > p else Xs
    rank, pivot = dqrdc2_rank(R, tol)
    aliased = np.ones(p, dtype=bool)
    aliased[pivot[:rank]] = False
    return aliased


def cholesky_inverse(U: np.ndarray) -> np.ndarray:
    r""":math:`(U^\top U)^{-1}` from the upper Cholesky factor (LAPACK ``dpotri``)."""
    if U.shape[0] == 0:
        return np.zeros((0, 0))
    with blas_threads(1):
        inv, info = lapack.dpotri(U, lower=0)
    if info != 0:
        raise np.linalg.LinAlgError("cannot invert the information matrix")
    return symmetrize_upper(inv)


def cholesky_solve(U: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""Solve :math:`U^\top U x = b`."""
    if U.shape[0] == 0:
        return np.zeros(0)
    with blas_threads(1):
        x, info = lapack.dpotrs(U, b, lower=0)
    if info != 0:
        raise np.linalg.LinAlgError("Cholesky solve failed")
    return x
