"""InstEval, y ~ 1 + service + (1|s) + (1|d) + (1|dept), REML: 73 421 rows, crossed
factors with 2 972, 1 128 and 14 levels (lme4 1.1-31 reference; a few seconds here)."""

from __future__ import annotations

import numpy as np
import pytest
from lmer_fixtures import load_fixture, rel_err

import pyglmm as pg


@pytest.fixture(scope="module")
def fit():
    ie = pg.datasets.load("InstEval")
    return pg.lmer("y ~ 1 + service + (1|s) + (1|d) + (1|dept)", ie), load_fixture("insteval_reml")


def test_insteval_matches_lme4(fit):
    m, fx = fit
    assert m.objective == pytest.approx(fx["objective"], rel=1e-6)
    # never worse than lme4 beyond the rounding noise of a criterion of size 2.4e5
    assert m.objective <= fx["objective"] * (1 + 1e-12)
    assert rel_err(m.fixef.to_numpy(), list(fx["fixef"].values())) < 1e-4
    assert rel_err(m.se.to_numpy(), fx["se"]) < 1e-4
    assert rel_err(m.sigma, fx["sigma"]) < 1e-4
    assert rel_err(m.varcorr["vcov"], fx["varcorr"]["vcov"]) < 1e-4
    assert list(m.varcorr["group"]) == ["s", "d", "dept", "Residual"]
    np.testing.assert_allclose(m.fitted.to_numpy()[:200], fx["fitted"], rtol=1e-4)


def test_insteval_conditional_modes(fit):
    m, fx = fit
    re = m.ranef_frame()
    ref = fx["ranef"]
    assert list(re["grp"][:5]) == ref["grp"][:5]
    assert np.max(np.abs(re["condval"] - np.array(ref["condval"]))) < 1e-3 * max(
        np.abs(ref["condval"])
    )
    np.testing.assert_allclose(re["condsd"], ref["condsd"], rtol=1e-3)


def test_insteval_objective_at_theta(fit):
    m, fx = fit
    for th, val in zip(fx["devfun_theta"], fx["devfun_value"], strict=True):
        assert m.objective_at(np.array(th)) == pytest.approx(val, rel=1e-10)
