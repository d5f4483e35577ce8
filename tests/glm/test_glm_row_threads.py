"""Row sums split between threads, and the blocked weighted cross product."""

from __future__ import annotations

import numpy as np
import pytest

from pyglmm.glm import row_threads
from pyglmm.glm.design import DenseDesign
from pyglmm.glm.weighted_ls import crossprod_upper, weighted_gram, weighted_gram_rows


@pytest.fixture
def threads():
    """Set the row threads for one test and restore the default afterwards."""
    yield row_threads.set_row_threads
    row_threads.set_row_threads(None)


def test_row_ranges_cover_the_rows_once(threads):
    threads(3)
    for n in (0, 1, 10, 40_000, 100_001):
        ranges = row_threads.row_ranges(n, min_rows=10_000)
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
        assert len(ranges) <= 3
    assert len(row_threads.row_ranges(15_000, min_rows=10_000)) == 1


def test_thread_count_settings(threads, monkeypatch):
    cores = row_threads.available_cores()
    threads(1)
    assert row_threads.row_threads() == 1
    threads(None)
    monkeypatch.setenv("PYGLMM_NUM_THREADS", "1")
    assert row_threads.row_threads() == 1
    monkeypatch.delenv("PYGLMM_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert row_threads.row_threads() == min(cores, row_threads.MAX_THREADS)
    with pytest.raises(ValueError):
        threads(0)


def test_map_row_ranges_keeps_the_order(threads):
    threads(4)
    ranges = [(0, 3), (3, 7), (7, 8), (8, 20)]
    assert row_threads.map_row_ranges(lambda lo, hi: (lo, hi), ranges) == ranges


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("order", ["C", "F"])
def test_weighted_gram_equals_the_plain_product(threads, n_threads, order):
    threads(n_threads)
    rng = np.random.default_rng(0)
    n, p = 50_011, 7
    X = np.asarray(rng.standard_normal((n, p)), order=order)
    w = rng.random(n)
    v = rng.standard_normal(n)
    A, r = weighted_gram(X, w, v)
    np.testing.assert_allclose(A, X.T @ (X * w[:, None]), rtol=1e-12)
    np.testing.assert_allclose(r, X.T @ v, rtol=1e-11, atol=1e-10)
    A2, r2 = weighted_gram_rows(X, w, v, 100, 5000)
    np.testing.assert_allclose(A2, X[100:5000].T @ (X[100:5000] * w[100:5000, None]), rtol=1e-12)
    np.testing.assert_allclose(r2, X[100:5000].T @ v[100:5000], rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(DenseDesign(X).matvec(v[:p]), X @ v[:p], rtol=1e-14)


def test_weighted_gram_without_columns():
    A, r = weighted_gram(np.zeros((5, 0)), np.ones(5), np.ones(5))
    assert A.shape == (0, 0) and r.shape == (0,)


def test_crossprod_upper():
    M = np.arange(12.0).reshape(4, 3)
    np.testing.assert_allclose(np.triu(crossprod_upper(M)), np.triu(M.T @ M))
    assert crossprod_upper(np.zeros((4, 0))).shape == (0, 0)
