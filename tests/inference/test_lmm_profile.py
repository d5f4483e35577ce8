"""Profile-likelihood and Wald intervals against lme4's confint().

lme4's profile intervals come from a spline through a finite set of profile points,
so they are approximations of the true interval ends; we follow the same stepping
and spline inversion, so we compare to 1e-3 relative (the issue's tolerance; the
agreement is ~1e-5 because the profile points coincide).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lmm_inference_data import col, load_fixture

import pyglmm as pg
from pyglmm.inference import confint, profile
from pyglmm.inference.profile import sdcor_to_theta, theta_to_sdcor

CASES = {
    "confint_sleep": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    "confint_dyestuff": ("Yield ~ 1 + (1 | Batch)", "Dyestuff"),
}
_PROFILES: dict = {}


def _model(name):
    f, ds = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pg.lmer(f, pg.datasets.load(ds))


def _profile(name):
    if name not in _PROFILES:
        _PROFILES[name] = profile(_model(name))
    return _PROFILES[name]


@pytest.mark.parametrize("name", list(CASES))
def test_profile_confint(name):
    pr = _profile(name)
    ref = load_fixture(name)
    ci = pr.confint()
    assert list(ci.index) == ref["profile"]["rownames"]
    assert list(ci.columns) == ["2.5 %", "97.5 %"]
    np.testing.assert_allclose(ci["2.5 %"], col(ref["profile"], "2.5 %"), rtol=1e-3)
    np.testing.assert_allclose(ci["97.5 %"], col(ref["profile"], "97.5 %"), rtol=1e-3)
    ci90 = pr.confint(level=0.90)
    np.testing.assert_allclose(ci90["5 %"], col(ref["profile90"], "5 %"), rtol=1e-3)
    np.testing.assert_allclose(ci90["95 %"], col(ref["profile90"], "95 %"), rtol=1e-3)


@pytest.mark.parametrize("name", list(CASES))
def test_profile_points_as_lme4(name):
    """Same stepping as lme4: the same number of points per parameter, the ML deviance
    at the optimum, and ζ = 0 at the estimate."""
    pr = _profile(name)
    ref = load_fixture(name)
    pts = ref["profile_points"]
    for par in set(pts[".par"]):
        n_ref = sum(p == par for p in pts[".par"])
        assert (pr.frame[".par"] == par).sum() == n_ref, par
    assert pr.ml_model.objective == pytest.approx(ref["ml_deviance"], rel=1e-8)
    z0 = pr.frame.loc[pr.frame[".zeta"] == 0.0]
    assert len(z0) >= 1


def test_wald_confint():
    m = _model("confint_sleep")
    ref = load_fixture("confint_sleep")["wald"]
    ci = confint(m, method="wald")
    assert list(ci.index) == ref["rownames"]
    assert ci.iloc[:4].isna().all().all()
    np.testing.assert_allclose(ci.iloc[4:, 0], col(ref, "2.5 %")[4:], rtol=1e-6)
    np.testing.assert_allclose(ci.iloc[4:, 1], col(ref, "97.5 %")[4:], rtol=1e-6)


def test_confint_profile_subset_matches_full():
    m = _model("confint_dyestuff")
    ci = confint(m, parm=["(Intercept)"], method="profile")
    ref = load_fixture("confint_dyestuff")["profile"]
    assert list(ci.index) == ["(Intercept)"]
    np.testing.assert_allclose(
        ci.to_numpy()[0], [col(ref, "2.5 %")[2], col(ref, "97.5 %")[2]], rtol=1e-3
    )


def test_sdcor_theta_round_trip():
    m = _model("confint_sleep")
    sv = theta_to_sdcor(m.terms, m.theta, m.sigma)
    vc = m.varcorr
    np.testing.assert_allclose(sv[[0, 2]], vc["sdcor"].to_numpy()[:2], rtol=1e-12)
    np.testing.assert_allclose(sv[1], vc["sdcor"].to_numpy()[2], rtol=1e-12)
    np.testing.assert_allclose(sdcor_to_theta(m.terms, sv), m.theta, rtol=1e-10, atol=1e-12)
    # a correlation of exactly 1 is a valid (singular) point
    sv1 = sv.copy()
    sv1[1] = 1.0
    th = sdcor_to_theta(m.terms, sv1)
    assert np.all(np.isfinite(th)) and th[2] == pytest.approx(0.0, abs=1e-7)


def test_confint_bad_parameter():
    m = _model("confint_dyestuff")
    with pytest.raises(pg.errors.PyglmmError, match="unknown parameter"):
        confint(m, parm=["Batch"], method="wald")
    with pytest.raises(pg.errors.PyglmmError, match="method"):
        confint(m, method="bca")


def test_confint_boot_rows_and_order():
    m = _model("confint_dyestuff")
    # 30 replicates: the 2.5% and 97.5% points are beyond the extreme order statistics
    with pytest.warns(UserWarning, match="extreme order statistics"):
        ci = confint(m, method="boot", nsim=30, seed=11, n_jobs=1)
    assert list(ci.index) == [".sig01", ".sigma", "(Intercept)"]
    assert np.all(ci.iloc[:, 0] < ci.iloc[:, 1])
    with pytest.warns(UserWarning):
        again = confint(m, method="boot", nsim=30, seed=11, n_jobs=1)
    pd.testing.assert_frame_equal(ci, again)
