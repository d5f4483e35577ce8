"""pg.anova for GLMs: R's anova.glm (sequential) and anova.glmlist (nested models)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import pyglmm as pg

REF = json.loads((Path(__file__).parent / "fixtures" / "glm" / "anova.json").read_text())


def fits():
    ceb = pg.datasets.load("ceb")
    cb = pg.datasets.load("cbpp")
    off = "log(n)"
    f = {
        "m1": pg.glm("round(y) ~ dur + res + educ", ceb, family="poisson", offset=off),
        "m0": pg.glm("round(y) ~ dur", ceb, family="poisson", offset=off),
        "m00": pg.glm("round(y) ~ 1", ceb, family="poisson", offset=off),
        "q1": pg.glm("round(y) ~ dur + res + educ", ceb, family="quasipoisson", offset=off),
        "q0": pg.glm("round(y) ~ dur + educ", ceb, family="quasipoisson", offset=off),
        "g1": pg.glm("mean ~ dur + res + educ", ceb, family="Gamma", link="log", weights="n"),
        "g0": pg.glm("mean ~ dur", ceb, family="Gamma", link="log", weights="n"),
        "b1": pg.glm("cbind(incidence, size - incidence) ~ period + herd", cb, family="binomial"),
        "b0": pg.glm("cbind(incidence, size - incidence) ~ period", cb, family="binomial"),
    }
    return f


FITS = fits()

CASES = {
    "ceb_poisson_seq_chisq": (["m1"], {"test": "Chisq"}),
    "ceb_poisson_seq_none": (["m1"], {}),
    "ceb_poisson_models_chisq": (["m00", "m0", "m1"], {"test": "Chisq"}),
    "ceb_poisson_models_lrt": (["m0", "m1"], {"test": "LRT"}),
    "ceb_quasipoisson_seq_f": (["q1"], {"test": "F"}),
    "ceb_quasipoisson_models_f": (["q0", "q1"], {"test": "F"}),
    "ceb_gamma_seq_f": (["g1"], {"test": "F"}),
    "ceb_gamma_models_f": (["g0", "g1"], {"test": "F"}),
    "ceb_gamma_models_chisq": (["g0", "g1"], {"test": "Chisq"}),
    "cbpp_binomial_models_chisq": (["b0", "b1"], {"test": "Chisq"}),
    "cbpp_binomial_seq_chisq": (["b1"], {"test": "Chisq"}),
    "ceb_poisson_seq_rao": (["m1"], {"test": "Rao"}),
    "ceb_poisson_models_rao": (["m00", "m0", "m1"], {"test": "Rao"}),
    "ceb_quasipoisson_seq_rao": (["q1"], {"test": "Rao"}),
    "cbpp_binomial_models_rao": (["b1", "b0"], {"test": "Rao"}),
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_anova_table_matches_r(key):
    names, kwargs = CASES[key]
    ref = REF[key]
    tab = pg.anova(*[FITS[n] for n in names], **kwargs)
    assert list(tab.columns) == ref["columns"]
    assert [str(r) for r in tab.index] == ref["rows"]
    expected = np.array(
        [[np.nan if v is None else v for v in row] for row in ref["values"]], dtype=float
    )
    got = tab.to_numpy(dtype=float)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-6, atol=1e-300)
    # printed table (from its header row) as R prints it
    ours = [line.rstrip() for line in str(tab).splitlines()]
    theirs = [line.rstrip().replace("\u2018", "'").replace("\u2019", "'") for line in ref["text"]]
    header = next(i for i, line in enumerate(theirs) if line.lstrip().startswith(("Df", "Resid")))
    mine = next(i for i, line in enumerate(ours) if line.lstrip().startswith(("Df", "Resid")))
    assert ours[mine:] == theirs[header:]


def test_sequential_method_and_function_agree():
    a = FITS["m1"].anova(test="Chisq")
    b = pg.anova(FITS["m1"], test="Chisq")
    assert a.equals(b)
    assert "Terms added sequentially (first to last)" in str(a)


def test_f_test_with_known_dispersion_warns_as_r():
    with pytest.warns(UserWarning, match="using F test with a 'poisson' family is inappropriate"):
        pg.anova(FITS["m0"], FITS["m1"], test="F")


def test_unknown_test_is_an_error():
    with pytest.raises(pg.errors.PyglmmError, match="test must be"):
        pg.anova(FITS["m1"], test="Wilks")


def test_models_on_different_data_are_refused():
    ceb = pg.datasets.load("ceb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = pg.glm("round(y) ~ dur", ceb.iloc[:40], family="poisson")
    with pytest.raises(pg.errors.PyglmmError, match="same size of dataset"):
        pg.anova(small, FITS["m0"])


def test_anova_needs_a_model():
    with pytest.raises(pg.errors.PyglmmError, match="at least one"):
        pg.anova()


def test_negative_binomial_likelihood_ratio_table_as_mass():
    ref = REF["cbpp_negbin_models"]
    cb = pg.datasets.load("cbpp")
    nb1 = pg.glm("incidence ~ period + offset(log(size))", cb, family="negative.binomial")
    nb0 = pg.glm("incidence ~ 1 + offset(log(size))", cb, family="negative.binomial")
    tab = pg.anova(nb1, nb0)  # sorted by residual df as MASS does
    assert list(tab.columns) == ref["columns"]
    assert list(tab["Model"]) == ref["model"]
    assert list(tab["Test"]) == ref["test"]
    np.testing.assert_allclose(tab["theta"], ref["theta"], rtol=1e-4)
    np.testing.assert_allclose(tab["Resid. df"], ref["resid_df"])
    np.testing.assert_allclose(tab["   2 x log-lik."], ref["twologlik"], rtol=1e-8)
    assert tab["   df"].iloc[1] == ref["df"][1]
    assert tab["LR stat."].iloc[1] == pytest.approx(ref["lr"][1], rel=1e-6)
    assert tab["Pr(Chi)"].iloc[1] == pytest.approx(ref["p"][1], rel=1e-5)
    assert str(tab).startswith("Likelihood ratio tests of Negative Binomial Models")
    with pytest.raises(pg.errors.PyglmmError, match="not all models"):
        pg.anova(nb0, FITS["m1"])


def test_single_negative_binomial_model_table_warns_theta_fixed():
    cb = pg.datasets.load("cbpp")
    nb1 = pg.glm("incidence ~ period + offset(log(size))", cb, family="negative.binomial")
    with pytest.warns(UserWarning, match="without re-estimating 'theta'"):
        tab = nb1.anova()
    assert "Pr(>Chi)" in tab.columns


def test_model_without_terms_gives_the_null_row_only():
    ceb = pg.datasets.load("ceb")
    m = pg.glm("round(y) ~ 1 + offset(log(n))", ceb, family="quasipoisson")
    tab = m.anova(test="F")
    assert list(tab.index) == ["NULL"]
    assert tab["Resid. Df"].iloc[0] == 69
    assert tab["Resid. Dev"].iloc[0] == pytest.approx(m.deviance)
