"""lme4's finite-difference derivatives (``deriv12``), point by point and batched."""

from __future__ import annotations

import numpy as np

from pyglmm.mixed.convergence import deriv12


def _cubic(x: np.ndarray) -> float:
    return float(x[0] ** 2 + 3 * x[0] * x[1] + 2 * x[1] ** 2 + x[2] ** 3 + x[0] * x[2])


def test_deriv12_matches_the_analytic_derivatives():
    x = np.array([0.5, -1.0, 2.0])
    g, H, ne = deriv12(_cubic, x, _cubic(x), np.full(3, -np.inf))
    np.testing.assert_allclose(g, [2 * 0.5 - 3 + 2, 1.5 - 4, 12 + 0.5], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(H, [[2, 3, 1], [3, 4, 0], [1, 0, 12]], atol=1e-5)
    assert ne == 2 * 3 + 4 * 3


def test_batched_points_give_the_same_derivatives_with_x_evaluated_in_the_batch():
    x = np.array([1e-5, 0.3, 1.2])  # first component near its bound: one-sided step
    lower = np.array([0.0, -np.inf, 0.0])
    calls = []

    def batch(points):
        calls.append(points.copy())
        return np.array([_cubic(p) for p in points])

    g1, H1, n1 = deriv12(_cubic, x, _cubic(x), lower)
    g2, H2, n2 = deriv12(_cubic, x, 123.0, lower, batch=batch)  # fx replaced by batch[0]
    assert n1 == n2 and len(calls) == 1
    np.testing.assert_array_equal(calls[0][0], x)
    assert np.all(calls[0] >= lower)
    np.testing.assert_allclose(g2, g1, rtol=1e-12)
    np.testing.assert_allclose(H2, H1, rtol=1e-9)


def test_batch_that_declines_falls_back_to_single_points():
    x = np.array([0.2, 0.4, 0.6])
    g1, H1, _ = deriv12(_cubic, x, _cubic(x), np.full(3, -np.inf))
    g2, H2, _ = deriv12(_cubic, x, _cubic(x), np.full(3, -np.inf), batch=lambda pts: None)
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(H1, H2)
