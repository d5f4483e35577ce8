"""Newton iterations with an approximate Hessian (:func:`pyglmm.mixed.optimizer.newton_ai`)."""

from __future__ import annotations

import numpy as np
import pytest

from pyglmm.mixed.optimizer import newton_ai


def _quartic():
    # smooth, strictly convex, minimum at (1, 2): f = ‖x − c‖² + (x₀ − 1)⁴
    c = np.array([1.0, 2.0])

    def fun(x):
        d = x - c
        return float(d @ d + d[0] ** 4)

    def derivs(x):
        d = x - c
        g = 2 * d + np.array([4 * d[0] ** 3, 0.0])
        H = np.diag([2 + 12 * d[0] ** 2, 2.0]) * 1.2  # a deliberately inexact Hessian
        return g, H

    return fun, derivs


def test_newton_reaches_the_minimum_with_an_inexact_hessian():
    fun, derivs = _quartic()
    res, ok = newton_ai(fun, derivs, np.array([3.0, 5.0]), np.zeros(2))
    assert ok
    np.testing.assert_allclose(res.x, [1.0, 2.0], atol=1e-3)
    assert res.fun < 1e-7
    assert res.nevals < 30


def test_newton_projects_onto_the_bounds():
    fun, derivs = _quartic()
    lower = np.array([1.5, 0.0])  # the unconstrained minimum is outside: x₀ ≥ 1.5
    res, ok = newton_ai(fun, derivs, np.array([3.0, 5.0]), lower)
    assert ok
    assert res.x[0] == 1.5  # held on its bound
    assert abs(res.x[1] - 2.0) < 1e-3
    assert res.fun - fun(np.array([1.5, 2.0])) < 1e-7
    assert np.all(res.x >= lower)


def test_newton_result_is_the_best_point_evaluated():
    fun, derivs = _quartic()
    seen = []

    def f(x):
        v = fun(x)
        seen.append(v)
        return v

    res, _ = newton_ai(f, derivs, np.array([-2.0, 7.0]), np.full(2, -np.inf))
    assert res.fun == pytest.approx(min(seen), abs=0.0)
