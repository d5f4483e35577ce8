"""Row sums split between threads, and the blocked weighted cross product."""

from __future__ import annotations

import numpy as np
import pytest

from pyglmm import row_threads
from pyglmm.glm.design import DenseDesign
from pyglmm.glm.weighted_ls import crossprod_upper, weighted_gram, weighted_gram_rows


@pytest.fixture
def threads():
    """Set the row threads for one test and restore the default afterwards."""
    yield row_threads.set_row_threads
    row_threads.set_row_threads(None)


def test_row_chunks_cover_the_rows_once():
    for n in (0, 1, 10, 40_000, 100_001):
        chunks = row_threads.row_chunks(n, 10_000)
        assert chunks[0][0] == 0 and chunks[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))
        assert all(hi - lo <= 10_000 for lo, hi in chunks)


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


@pytest.mark.parametrize("n_threads", [1, 2, 4])
def test_map_row_chunks_keeps_the_order(threads, n_threads):
    threads(n_threads)
    out = row_threads.map_row_chunks(lambda lo, hi: (lo, hi), 95, chunk_rows=10)
    assert out == row_threads.row_chunks(95, 10)


def test_map_row_chunks_raises_the_work_error(threads):
    threads(2)

    def work(lo, hi):
        if lo == 30:
            raise RuntimeError("chunk 30")
        return lo

    with pytest.raises(RuntimeError, match="chunk 30"):
        row_threads.map_row_chunks(work, 100, chunk_rows=10)


def test_weighted_gram_is_the_same_whatever_the_threads(threads):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((70_000, 5))
    w, v = rng.random(70_000), rng.standard_normal(70_000)
    results = []
    for n_threads in (1, 2, 3):
        threads(n_threads)
        results.append(weighted_gram(X, w, v))
    for A, r in results[1:]:
        np.testing.assert_array_equal(A, results[0][0])
        np.testing.assert_array_equal(r, results[0][1])


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
    # np.dot on row chunks may add the p products in another order than X @ v: rounding only
    np.testing.assert_allclose(DenseDesign(X).matvec(v[:p]), X @ v[:p], rtol=1e-13, atol=1e-13)


def test_weighted_gram_without_columns():
    A, r = weighted_gram(np.zeros((5, 0)), np.ones(5), np.ones(5))
    assert A.shape == (0, 0) and r.shape == (0,)


def test_crossprod_upper():
    M = np.arange(12.0).reshape(4, 3)
    np.testing.assert_allclose(np.triu(crossprod_upper(M)), np.triu(M.T @ M))
    assert crossprod_upper(np.zeros((4, 0))).shape == (0, 0)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_gets_a_new_pool(threads):
    import multiprocessing

    threads(2)
    row_threads.map_row_chunks(lambda lo, hi: lo, 100, chunk_rows=10)  # the pool exists
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        out = pool.apply_async(_sum_in_child).get(timeout=60)
    assert out == sum(range(0, 100, 10))


def _sum_in_child():
    row_threads.set_row_threads(2)
    return sum(row_threads.map_row_chunks(lambda lo, hi: lo, 100, chunk_rows=10))
