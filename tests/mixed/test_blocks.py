"""The blocks of ``[Z X y]ᵀW[Z X y]`` and the Schur-complement map against dense algebra."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from pyglmm.mixed.blocks import LmmBlocks, _cross_dense, _csr_of_dense, _csr_summed
from pyglmm.mixed.remat import ReMat


def _term(rng, name: str, nlev: int, n: int, q: int) -> ReMat:
    refs = rng.integers(0, nlev, n)
    refs[:nlev] = np.arange(nlev)  # every level present
    z = np.ones((n, 1)) if q == 1 else np.column_stack([np.ones(n), rng.normal(size=(n, q - 1))])
    cn = ["(Intercept)"] + [f"x{j}" for j in range(1, q)]
    return ReMat(name, [f"{name}{i}" for i in range(nlev)], refs, z, cn)


def _design(seed: int, q0: int, q1: int, n: int = 400, n0: int = 40, n1: int = 7):
    rng = np.random.default_rng(seed)
    terms = [_term(rng, "g", n0, n, q0), _term(rng, "h", n1, n, q1)]
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=n)
    return terms, X, y, rng


def test_cross_products_equal_dense_products():
    rng = np.random.default_rng(1)
    ti, tj = _term(rng, "a", 5, 60, 2), _term(rng, "b", 4, 60, 3)
    Zi, Zj = ti.sparse().toarray(), tj.sparse().toarray()
    full = _cross_dense(ti.refs, ti.z, 5, tj.refs, tj.z, 4)
    np.testing.assert_allclose(full, Zi.T @ Zj, rtol=1e-13, atol=1e-12)
    # one level on the right (X, y)
    X = rng.normal(size=(60, 3))
    np.testing.assert_allclose(_cross_dense(ti.refs, ti.z, 5, None, X, 1), Zi.T @ X, atol=1e-12)
    # level-diagonal blocks only
    diag = _cross_dense(ti.refs, ti.z, 5, None, ti.z, 1, same=True).reshape(5, 2, 2)
    G = Zi.T @ Zi
    for lv in range(5):
        np.testing.assert_allclose(diag[lv], G[2 * lv : 2 * lv + 2, 2 * lv : 2 * lv + 2])


def test_sparse_constructors_keep_values_and_sum_duplicates():
    A = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -3.0]])
    C = _csr_of_dense(A)
    assert C.nnz == 3
    np.testing.assert_array_equal(C.toarray(), A)
    rows = np.array([0, 1, 1, 0])
    cols = np.array([2, 0, 0, 2])
    S = _csr_summed(np.array([1.0, 2.0, 3.0, -1.0]), rows, cols, (2, 3))
    np.testing.assert_array_equal(S.toarray(), [[0, 0, 0], [5.0, 0, 0]])
    assert S.nnz == 1  # the cancelled entry is dropped


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("q0,q1", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_blocks_equal_dense_cross_products(q0, q1, weighted):
    terms, X, y, rng = _design(3, q0, q1)
    w = rng.uniform(0.5, 2.0, len(y)) if weighted else None
    b = LmmBlocks(terms, X, y, w)
    sw = np.ones(len(y)) if w is None else np.sqrt(w)
    Z0 = terms[0].sparse().toarray() * sw[:, None]
    rest = np.hstack([terms[1].sparse().toarray(), X, y[:, None]]) * sw[:, None]
    A00 = Z0.T @ Z0
    for lv in range(terms[0].nlevels):
        sl = slice(lv * q0, (lv + 1) * q0)
        np.testing.assert_allclose(b.A00[lv], A00[sl, sl], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.R.toarray(), rest[:, :-1].T @ Z0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b._RT.toarray(), b.R.toarray().T)
    if b.Rd_T is not None:  # kept dense (small): the same numbers
        np.testing.assert_allclose(b.Rd_T, b.R.toarray().T)
    np.testing.assert_allclose(b.Ry, Z0.T @ rest[:, -1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.Arr, rest.T @ rest, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("q0,q1", [(1, 1), (2, 1), (2, 2)])
def test_gram_map_equals_sparse_product_map(q0, q1, weighted, monkeypatch):
    terms, X, y, rng = _design(5, q0, q1)
    w = rng.uniform(0.5, 2.0, len(y)) if weighted else None
    gram = LmmBlocks(terms, X, y, w, schur_mode="map")
    gram.ensure_map()  # deferred for models factored from the Gram tensor
    monkeypatch.setattr(LmmBlocks, "_gram_map_fits", lambda self, nw: False)
    prod = LmmBlocks(terms, X, y, w, schur_mode="map")
    prod.ensure_map()
    assert (gram.Mg is None) == (prod.Mg is None)
    if q0 == 1:  # intercept-only first term: levels grouped by their (weighted) counts
        assert (gram.Mg is None) == weighted

    def lower_of(b: LmmBlocks) -> np.ndarray:
        """The map as a dense (m·m × nw) array over flat Fortran indices."""
        M = b.Mg if b.Mg is not None else b.M
        M = M.toarray() if sp.issparse(M) else M
        out = np.zeros((b.m * b.m, M.shape[1]))
        out[b.idx] = M
        return out

    np.testing.assert_allclose(lower_of(gram), lower_of(prod), rtol=1e-12, atol=1e-12)
    # the pattern holds every entry the product map holds (up to exact zeros)
    assert set(gram.idx.tolist()) <= set(prod.idx.tolist())
    # and R𝒲Rᵀ from the map equals the dense product for some 𝒲
    Wl = rng.normal(size=(gram.n0, q0, q0))
    Wl = Wl @ Wl.transpose(0, 2, 1)
    Rd = gram.R.toarray()
    BW = sp.block_diag(list(Wl)).toarray()
    full = Rd @ BW @ Rd.T
    ungrouped = gram.M  # built on demand when grouped
    vals = ungrouped @ Wl.reshape(-1)
    lower = np.zeros(gram.m * gram.m)
    lower[gram.idx] = vals
    lower = lower.reshape(gram.m, gram.m, order="F")[:-1, :-1]
    np.testing.assert_allclose(np.tril(lower), np.tril(full), rtol=1e-10, atol=1e-10)
