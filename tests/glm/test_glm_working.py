"""The fast per-row IRLS formulas of the canonical links against the family's own functions."""

from __future__ import annotations

import numpy as np
import pytest

import pyglmm as pg
from pyglmm.families import get_family
from pyglmm.families.family import Binomial
from pyglmm.glm.irls import fit_irls
from pyglmm.glm.working import FamilyRows, LogitRows, LogRows, RowState, family_rows


def rows_pair(family_name, y, weights=None, offset=None):
    fam = get_family(family_name)
    n = len(y)
    w = np.ones(n) if weights is None else weights
    o = np.zeros(n) if offset is None else offset
    _, y, w, _ = fam.initialize(y, w)
    return family_rows(fam, y, w, o), FamilyRows(fam, y, w, o)


def compare(fast, general, eta):
    s_fast, s_gen = fast.at(eta), general.at(eta)
    np.testing.assert_allclose(s_fast.mu, s_gen.mu, rtol=1e-14)
    assert fast.valid(s_fast) == general.valid(s_gen)
    assert fast.deviance(s_fast) == pytest.approx(general.deviance(s_gen), rel=1e-12)
    w1, v1, n1 = fast.working(s_fast, 1)
    w2, v2, n2 = general.working(s_gen, 1)
    assert n1 == n2
    # R's mu (1 - mu) loses digits as mu -> 1 (relative error eps / (1 - mu)); mu / (1 + e^eta)
    # does not: the two agree to that rounding
    np.testing.assert_allclose(w1, w2, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(v1, v2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        fast.working_residuals(s_fast), general.working_residuals(s_gen), rtol=1e-9
    )
    return s_fast


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("with_offset", [False, True])
def test_logit_rows_equal_the_family_functions(weighted, with_offset):
    rng = np.random.default_rng(1)
    n = 500
    y = (rng.random(n) < 0.4).astype(float)
    w = rng.integers(0, 4, n).astype(float) if weighted else None
    o = rng.normal(size=n) if with_offset else None
    fast, general = rows_pair("binomial", y, w, o)
    assert isinstance(fast, LogitRows)
    state = compare(fast, general, rng.normal(scale=3, size=n))
    assert state.fast


def test_logit_rows_fall_back_beyond_r_clamping():
    rng = np.random.default_rng(2)
    y = (rng.random(50) < 0.5).astype(float)
    fast, general = rows_pair("binomial", y)
    eta = rng.normal(size=50)
    eta[3] = 35.0  # R clamps linkinv and mu.eta here: the general formulas are used
    state = compare(fast, general, eta)
    assert not state.fast
    eta[3] = np.nan
    assert not fast.at(eta).fast


def test_logit_rows_with_proportions_use_r_deviance():
    rng = np.random.default_rng(3)
    n = 200
    y = rng.integers(0, 6, n) / 5.0
    fast, general = rows_pair("binomial", y, np.full(n, 5.0))
    assert not fast.binary
    compare(fast, general, rng.normal(size=n))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("with_offset", [False, True])
def test_log_rows_equal_the_family_functions(weighted, with_offset):
    rng = np.random.default_rng(4)
    n = 500
    y = rng.poisson(2.0, n).astype(float)
    w = rng.integers(0, 4, n).astype(float) if weighted else None
    o = rng.normal(size=n) if with_offset else None
    fast, general = rows_pair("poisson", y, w, o)
    assert isinstance(fast, LogRows)
    state = compare(fast, general, rng.normal(size=n))
    assert state.fast


def test_log_rows_fall_back_where_r_clamps_or_overflows():
    y = np.array([0.0, 1.0, 3.0])
    fast, general = rows_pair("poisson", y)
    for eta in ([-40.0, 0.0, 1.0], [0.0, 800.0, 1.0]):
        with np.errstate(over="ignore"):
            state = fast.at(np.array(eta))
            assert not state.fast
            assert fast.valid(state) == general.valid(general.at(np.array(eta)))


def test_other_families_and_subclasses_use_the_family_functions():
    y = np.array([0.0, 1.0, 1.0])
    w, o = np.ones(3), np.zeros(3)
    assert type(family_rows(get_family("poisson", "sqrt"), y, w, o)) is FamilyRows
    assert type(family_rows(get_family("binomial", "probit"), y, w, o)) is FamilyRows
    assert type(family_rows(get_family("gaussian"), y, w, o)) is FamilyRows

    class MyBinomial(Binomial):
        pass

    assert type(family_rows(MyBinomial(), y, w, o)) is FamilyRows
    negative = np.array([1.0, -1.0, 1.0])
    assert type(family_rows(get_family("poisson"), y, negative, o)) is FamilyRows
    assert isinstance(family_rows(get_family("quasipoisson"), y, w, o), LogRows)
    assert isinstance(family_rows(get_family("quasibinomial"), y, w, o), LogitRows)


def test_fast_and_general_fits_agree():
    rng = np.random.default_rng(5)
    n = 3000
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    eta = X @ np.array([0.3, 0.2, -0.1, 0.05])
    cases = {
        "poisson": rng.poisson(np.exp(eta)).astype(float),
        "binomial": (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float),
    }
    for fam_name, y in cases.items():
        fam = get_family(fam_name)
        fast = fit_irls(X, y, fam)
        assert isinstance(fast.rows, LogitRows | LogRows)
        general = _fit_with_general_rows(X, y, fam)
        np.testing.assert_allclose(fast.coef, general.coef, rtol=1e-10)
        assert fast.iterations == general.iterations
        assert fast.deviance == pytest.approx(general.deviance, rel=1e-12)
        np.testing.assert_allclose(fast.working_weights, general.working_weights, rtol=1e-9)


def _fit_with_general_rows(X, y, fam):
    from pyglmm.glm import irls

    original = irls.family_rows
    irls.family_rows = FamilyRows
    try:
        return fit_irls(X, y, fam)
    finally:
        irls.family_rows = original


def test_null_deviance_from_the_fast_rows_equals_r_formula():
    ceb = pg.datasets.load("ceb")
    m = pg.glm("round(y) ~ dur + res", ceb, family="poisson")
    y, w = m.y, m.prior_weights
    expected = float(np.sum(m.family.dev_resids(y, np.sum(w * y) / np.sum(w), w)))
    assert m.null_deviance == pytest.approx(expected, rel=1e-12)


def test_row_state_defaults():
    s = RowState(np.zeros(2), np.ones(2))
    assert not s.fast and s.extra == {}
