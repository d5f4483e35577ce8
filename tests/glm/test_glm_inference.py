"""Wald tests of linear hypotheses, confidence ellipsoids, predict intervals, coef_table."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from glm_fixtures import FIXTURES, refit
from scipy import stats

import pyglmm as pg
from pyglmm.errors import PyglmmError

WALD = json.loads((FIXTURES / "wald.json").read_text())


@pytest.mark.parametrize("name", ["ceb_poisson", "ceb_quasipoisson"])
def test_wald_test_matches_r(name):
    ref = WALD[name]
    m = refit(name)
    res = m.wald_test(np.array(ref["L"]), rhs=ref["rhs"])
    assert res.chisq == pytest.approx(ref["chisq"], rel=1e-8)
    assert res.df == ref["df"]
    if m.dispersion_estimated:
        assert res.test == "F"
        assert res.statistic == pytest.approx(ref["F"], rel=1e-8)
        assert res.df_denom == ref["df2"]
        assert res.p_value == pytest.approx(ref["p_F"], rel=1e-6)
    else:
        assert res.test == "Chisq"
        assert res.p_value == pytest.approx(ref["p_chisq"], rel=1e-6)
    assert "Wald test" in str(res)


def test_wald_test_forms_of_the_hypothesis():
    m = refit("ceb_poisson")
    one = m.wald_test(["resSuva"])
    assert one.chisq == pytest.approx(m.statistic["resSuva"] ** 2, rel=1e-12)
    two = m.wald_test({"dur10-14": 1, "dur15-19": -1})
    L = np.zeros(len(m.coef))
    L[1], L[2] = 1, -1
    assert two.chisq == pytest.approx(m.wald_test(L).chisq, rel=1e-12)
    term = m.wald_test(["educ"])  # the 3 educ contrasts together
    assert term.df == 3
    assert term.chisq == pytest.approx(
        m.wald_test(["educnone", "educsec+", "educupper"]).chisq, rel=1e-12
    )
    with pytest.raises(PyglmmError, match="unknown coefficient"):
        m.wald_test(["nope"])
    with pytest.raises(PyglmmError, match="columns"):
        m.wald_test(np.ones((1, 3)))


def test_wald_test_refuses_aliased_coefficients():
    m = refit("ceb_rank_deficient")
    with pytest.raises(PyglmmError, match="aliased"):
        m.wald_test(["n"])


def test_confidence_region_membership_and_boundary():
    m = refit("ceb_poisson")
    reg = m.confidence_region(["resSuva", "resurban"], level=0.95)
    assert reg.critical == pytest.approx(stats.chi2.ppf(0.95, 2))
    assert reg.contains(m.coef[["resSuva", "resurban"]].to_numpy())
    assert not reg.contains([0.0, 0.0])  # resSuva is clearly non-zero
    b = reg.boundary(50)
    assert list(b.columns) == ["resSuva", "resurban"]
    np.testing.assert_allclose(reg.distance(b.to_numpy()), reg.critical, rtol=1e-9)
    # the region test agrees with the Wald test of the same point
    point = np.array([-0.1, 0.0])
    wt = m.wald_test(["resSuva", "resurban"], rhs=point)
    assert reg.distance(point) == pytest.approx(wt.chisq, rel=1e-10)
    assert reg.contains(point) == (wt.p_value > 0.05)


def test_confidence_region_uses_f_when_dispersion_estimated():
    m = refit("ceb_quasipoisson")
    reg = m.confidence_region(["resSuva", "resurban", "educnone"], level=0.9)
    assert reg.critical == pytest.approx(3 * stats.f.ppf(0.9, 3, m.df_resid))
    with pytest.raises(PyglmmError, match="exactly two"):
        reg.boundary()


def test_predict_intervals_delta_method():
    m = refit("ceb_quasipoisson")
    ceb = pg.datasets.load("ceb")
    p = m.predict(ceb.iloc[:3], type="response", se=True, interval=True, level=0.9)
    q = stats.t.ppf(0.95, m.df_resid)
    np.testing.assert_allclose(p["lower"], p["fit"] - q * p["se_fit"], rtol=1e-12)
    np.testing.assert_allclose(p["upper"], p["fit"] + q * p["se_fit"], rtol=1e-12)
    # the offset expression is evaluated on the new data
    fit = m.predict(ceb.iloc[:3], type="response")
    np.testing.assert_allclose(fit.to_numpy(), m.fitted.iloc[:3].to_numpy(), rtol=1e-12)
    link = m.predict(type="link")
    np.testing.assert_allclose(link, m.linear_predictor)


def test_predict_with_array_offset_needs_an_expression():
    ceb = pg.datasets.load("ceb")
    m = pg.glm("round(y) ~ dur", ceb, family="poisson", offset=np.log(ceb["n"]))
    assert m.predict(type="response").shape == (70,)
    with pytest.raises(PyglmmError, match="offset given as an array"):
        m.predict(ceb.iloc[:2])


def test_predict_bad_type():
    with pytest.raises(PyglmmError, match="type must be"):
        refit("ceb_poisson").predict(type="terms")


def test_coef_table_and_html():
    m = refit("ceb_gamma_log")
    tab = m.coef_table(conf_int=True)
    assert list(tab.columns) == [
        "estimate",
        "std_error",
        "statistic",
        "p_value",
        "conf_low",
        "conf_high",
    ]
    np.testing.assert_allclose(tab["estimate"], m.coef)
    np.testing.assert_allclose(tab["conf_low"], m.confint(method="wald").iloc[:, 0])
    html = m._repr_html_()
    assert "<table>" in html and "dur10-14" in html
    assert "Coefficients:" in repr(m) and "Degrees of Freedom: 69 Total" in repr(m)


def test_confint_parm_and_level():
    m = refit("ceb_poisson")
    ci = m.confint(parm=[1, "resSuva"], level=0.9, method="wald")
    assert list(ci.index) == ["dur10-14", "resSuva"]
    assert list(ci.columns) == ["5 %", "95 %"]
    with pytest.raises(PyglmmError, match="method must be"):
        m.confint(method="boot")
    with pytest.raises(PyglmmError, match="unknown coefficient"):
        m.confint("durX")


def test_profile_interval_of_an_aliased_coefficient_is_nan():
    m = refit("ceb_rank_deficient")
    ci = m.confint(["resSuva", "n"])
    assert np.isnan(ci.loc["n"]).all()
    assert np.isfinite(ci.loc["resSuva"]).all()


def test_dispersion_estimators_on_a_quasi_fit():
    m = refit("ceb_quasipoisson")
    # R's summary dispersion equals Pearson's X^2/(n-p) at convergence
    assert m.dispersion == pytest.approx(m.dispersion_pearson, rel=1e-6)
    assert m.dispersion_deviance == pytest.approx(m.deviance / m.df_resid)
    s_bar = np.mean((m.y - m.fitted) / m.fitted)
    assert m.dispersion_fletcher == pytest.approx(m.dispersion_pearson / (1 - s_bar))


def test_data_frame_inputs_polars():
    pl = pytest.importorskip("polars")
    ceb = pg.datasets.load("ceb")
    data = pl.from_pandas(ceb.astype({"dur": str, "res": str, "educ": str}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pg.glm("round(y) ~ dur + res + educ + offset(log(n))", data, family="poisson")
    assert m.deviance == pytest.approx(refit("ceb_poisson").deviance, rel=1e-10)
    assert isinstance(m.fitted, pd.Series)


def test_negative_binomial_family_object_equals_name_with_theta():
    cb = pg.datasets.load("cbpp")
    f = "incidence ~ period + offset(log(size))"
    a = pg.glm(f, cb, family=pg.families.NegativeBinomial(2.0))
    b = pg.glm(f, cb, family="negative.binomial", theta=2.0)
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-12)
    assert a.theta == b.theta == 2.0 and a.theta_se is None
    # R's summary.glm estimates the dispersion for a known-theta negative binomial glm
    assert a.dispersion_estimated and a.dispersion != 1.0


def test_predict_link_interval_and_fixed_dispersion():
    m = refit("ceb_gamma_log")
    ceb = pg.datasets.load("ceb")
    p = m.predict(ceb.iloc[:4], type="link", interval=True, level=0.95)
    q = stats.t.ppf(0.975, m.df_resid)
    np.testing.assert_allclose(p["upper"] - p["fit"], q * p["se_fit"], rtol=1e-12)
    p1 = m.predict(ceb.iloc[:4], type="link", se=True, dispersion=1.0)
    np.testing.assert_allclose(p1["se_fit"], p["se_fit"] / np.sqrt(m.dispersion), rtol=1e-12)
