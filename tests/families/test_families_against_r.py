"""Families and links against R's family objects (tools/reference/glm.R -> families.json).

For every family/link pair: linkfun, linkinv, mu.eta, variance, dev.resids, aic, valideta and
validmu on small grids, and MASS's theta.ml.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from pyglmm.errors import FamilyError
from pyglmm.families import NegativeBinomial, get_family, get_link

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "glm"
FAMILIES = json.loads((FIXTURES / "families.json").read_text())


def make_family(key: str, ref: dict):
    if key.startswith("negbin_"):
        theta = float(key.split("_")[1])
        return NegativeBinomial(theta, link=ref["link"])
    return get_family(ref["family"], ref["link"])


@pytest.mark.parametrize("key", sorted(FAMILIES))
def test_family_functions_match_r(key):
    ref = FAMILIES[key]
    fam = make_family(key, ref)
    assert fam.link.name == ref["link"]
    y, mu, wt, eta, n = (np.asarray(ref[k], dtype=float) for k in ("y", "mu", "wt", "eta", "n"))
    np.testing.assert_allclose(fam.linkfun(mu), ref["linkfun"], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(fam.linkinv(eta), ref["linkinv"], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(fam.mu_eta(eta), ref["mu_eta"], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(fam.variance(mu), ref["variance"], rtol=1e-13)
    np.testing.assert_allclose(fam.dev_resids(y, mu, wt), ref["dev_resids"], rtol=1e-12, atol=1e-15)
    dev = float(np.sum(fam.dev_resids(y, mu, wt)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        aic = fam.aic(y, n, mu, wt, dev)
    if ref["aic"] is None:
        assert np.isnan(aic)
    else:
        assert aic == pytest.approx(ref["aic"], rel=1e-12)
    assert fam.valid_eta(eta) == ref["valideta"]
    assert fam.valid_mu(mu) == ref["validmu"]


@pytest.mark.parametrize("key", sorted(FAMILIES))
def test_variance_derivative_is_the_derivative(key):
    ref = FAMILIES[key]
    fam = make_family(key, ref)
    mu = np.asarray(ref["mu"], dtype=float)
    h = 1e-6 * mu
    numeric = (fam.variance(mu + h) - fam.variance(mu - h)) / (2 * h)
    np.testing.assert_allclose(fam.variance_derivative(mu), numeric, rtol=1e-6, atol=1e-9)


def test_theta_ml_matches_mass():
    from pyglmm.glm.negative_binomial import theta_ml

    ref = json.loads((FIXTURES / "theta_ml.json").read_text())
    theta, se, warning = theta_ml(ref["y"], ref["mu"], limit=25)
    assert theta == pytest.approx(ref["theta"], rel=1e-10)
    assert se == pytest.approx(ref["se"], rel=1e-10)
    assert warning is None


def test_unknown_family_and_link_are_clear_errors():
    with pytest.raises(FamilyError, match="unknown family"):
        get_family("poison")
    with pytest.raises(FamilyError, match="unknown link"):
        get_link("logitt")
    with pytest.raises(FamilyError, match="not available for the poisson family"):
        get_family("poisson", "logit")
    with pytest.raises(FamilyError, match="not available for the binomial family"):
        get_family("binomial", "inverse")
    with pytest.raises(FamilyError, match="theta must be positive"):
        NegativeBinomial(-1.0)


def test_family_names_are_matched_case_insensitively():
    assert get_family("Gamma").name == "Gamma"
    assert get_family("gamma").name == "Gamma"
    assert get_family("Inverse.Gaussian").link.name == "1/mu^2"
    assert get_family("quasipoisson").estimates_dispersion
    assert not get_family("poisson").estimates_dispersion


def test_negative_binomial_name_as_r_prints_it():
    # R: paste0("Negative Binomial(", format(round(theta, 4)), ")")
    assert NegativeBinomial(2.050818121).display_name == "Negative Binomial(2.0508)"
    assert NegativeBinomial(2.0).display_name == "Negative Binomial(2)"
    assert NegativeBinomial(809404.4996).display_name == "Negative Binomial(809404.5)"


def test_binomial_deviance_of_a_degenerate_response_is_zero_as_r():
    # R: binomial()$dev.resids(c(0, 0, 1), c(0, 0, 1), 1) is 0 (y_log_y(0, 0) = 0)
    fam = get_family("binomial")
    out = fam.dev_resids(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0]), np.ones(3))
    np.testing.assert_array_equal(out, [0.0, 0.0, 0.0])
