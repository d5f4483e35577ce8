"""Fast paths of the families (Bernoulli and Poisson AIC, logit) against the general formulas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from pyglmm.families import get_family
from pyglmm.families.family import _binom_logpmf, weighted_log_factorial_sum


def test_weighted_log_factorial_sum_table_and_direct():
    rng = np.random.default_rng(0)
    y = rng.poisson(3.0, 1000).astype(float)
    w = rng.random(1000)
    direct = float(np.sum(w * special.gammaln(y + 1)))
    assert weighted_log_factorial_sum(y, w) == pytest.approx(direct, rel=1e-13)
    # non-integer counts, negative values and huge counts take gammaln of every row
    for z in (y + 0.5, np.append(y[:-1], 5e7)):
        expect = float(np.sum(w * special.gammaln(z + 1)))
        assert weighted_log_factorial_sum(z, w) == pytest.approx(expect, rel=1e-13)
    assert weighted_log_factorial_sum(np.zeros(0), np.zeros(0)) == 0.0


def test_poisson_aic_equals_dpois_sum():
    rng = np.random.default_rng(1)
    fam = get_family("poisson")
    y = rng.poisson(2.0, 500).astype(float)
    mu = rng.gamma(2.0, 1.0, 500)
    w = rng.integers(0, 3, 500).astype(float)
    expect = -2 * np.sum(w * (special.xlogy(y, mu) - mu - special.gammaln(y + 1)))
    assert fam.aic(y, np.ones(500), mu, w, 0.0) == pytest.approx(expect, rel=1e-13)
    mu[0], y[0] = 0.0, 0.0  # xlogy's 0 log 0 = 0 is kept
    expect = -2 * np.sum(w * (special.xlogy(y, mu) - mu - special.gammaln(y + 1)))
    assert fam.aic(y, np.ones(500), mu, w, 0.0) == pytest.approx(expect, rel=1e-13)


def test_bernoulli_aic_equals_binomial_log_probabilities():
    rng = np.random.default_rng(2)
    fam = get_family("binomial")
    y = (rng.random(400) < 0.3).astype(float)
    mu = rng.uniform(0.01, 0.99, 400)
    ones = np.ones(400)
    expect = -2 * np.sum(_binom_logpmf(y, ones, mu))
    assert fam.aic(y, ones, mu, ones, 0.0) == pytest.approx(expect, rel=1e-13)
    # weights other than 1 keep R's dbinom(round(m y), round(m), mu) formula
    w = np.full(400, 2.0)
    expect_w = -2 * np.sum(_binom_logpmf(np.round(w * y), w, mu))
    assert fam.aic(y, ones, mu, w, 0.0) == pytest.approx(expect_w, rel=1e-13)


def test_logit_linkfun_is_r_formula():
    link = get_family("binomial").link
    mu = np.array([1e-12, 0.25, 0.5, 0.9, 1 - 1e-12])
    np.testing.assert_allclose(link.linkfun(mu), np.log(mu / (1 - mu)), rtol=0)
    np.testing.assert_allclose(link.linkfun(mu), special.logit(mu), rtol=1e-12)
    assert link.linkfun(1.0) == np.inf and link.linkfun(0.0) == -np.inf
