"""Satterthwaite t and F tests against lmerTest (summary and anova type I/III).

Tolerances: df 1e-3 relative (the issue's), F, p and SE 1e-4.  The R fits use tight
optimizer tolerances (see the R script) so both sides sit at the same optimum;
agreement is in fact ~1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
from lmm_inference_data import MODELS, col, fitted, load_fixture

import pyglmm as pg
from pyglmm.errors import PyglmmError
from pyglmm.inference.satterthwaite import contest1d, satterthwaite_info

NAMES = list(MODELS)


@pytest.mark.parametrize("name", NAMES)
def test_fit_matches_reference_optimum(name):
    m = fitted(name)
    ref = load_fixture(name)
    assert m.objective <= ref["reml_criterion"] + 1e-6 * abs(ref["reml_criterion"])
    np.testing.assert_allclose(m.theta, ref["theta"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_coef_table_satterthwaite(name):
    m = fitted(name)
    tab = pg.satterthwaite_table(m)
    ref = load_fixture(name)["coef_satterthwaite"]
    assert list(tab.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    assert list(tab.index) == (
        ref["rownames"] if isinstance(ref["rownames"], list) else [ref["rownames"]]
    )
    np.testing.assert_allclose(tab["df"], col(ref, "df"), rtol=1e-3)
    np.testing.assert_allclose(tab["Std. Error"], col(ref, "Std. Error"), rtol=1e-4)
    np.testing.assert_allclose(tab["t value"], col(ref, "t value"), rtol=1e-4)
    np.testing.assert_allclose(tab["Pr(>|t|)"], col(ref, "Pr(>|t|)"), rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_vcov_varpar(name):
    info = satterthwaite_info(fitted(name))
    ref = np.array(load_fixture(name)["vcov_varpar"], dtype=float).reshape(info.vcov_varpar.shape)
    np.testing.assert_allclose(info.vcov_varpar, ref, rtol=1e-3, atol=1e-8 * np.abs(ref).max())


@pytest.mark.parametrize("name", ["sleep_corr", "sleep_grp", "machines"])
@pytest.mark.parametrize("typ", [1, 3])
def test_anova_satterthwaite(name, typ):
    m = fitted(name)
    tab = pg.lmm_anova(m, type=typ, ddf="Satterthwaite")
    ref = load_fixture(name)[f"anova{typ}_satterthwaite"]
    rn = ref["rownames"] if isinstance(ref["rownames"], list) else [ref["rownames"]]
    assert list(tab.index) == rn
    np.testing.assert_allclose(tab["NumDF"], col(ref, "NumDF"))
    np.testing.assert_allclose(tab["DenDF"], col(ref, "DenDF"), rtol=1e-3)
    for c in ("Sum Sq", "Mean Sq", "F value", "Pr(>F)"):
        np.testing.assert_allclose(tab[c], col(ref, c), rtol=1e-4, err_msg=c)
    text = str(tab)
    roman = {1: "I", 3: "III"}[typ]
    assert f"Type {roman} Analysis of Variance Table with Satterthwaite's method" in text


def test_contest_multi_row_satterthwaite():
    m = fitted("sleep_grp")
    ref = load_fixture("sleep_grp")
    L = np.array(ref["contrast_L"], dtype=float)
    tab = pg.satterthwaite(m, L)
    r = ref["contest_md_satterthwaite"]
    np.testing.assert_allclose(tab["DenDF"], col(r, "DenDF"), rtol=1e-3)
    np.testing.assert_allclose(tab["F value"], col(r, "F value"), rtol=1e-4)
    np.testing.assert_allclose(tab["Pr(>F)"], col(r, "Pr(>F)"), rtol=1e-4)


def test_contrast_by_name_and_mapping(sleep_fit):
    a = contest1d(sleep_fit, "Days")
    b = contest1d(sleep_fit, {"Days": 1.0})
    c = contest1d(sleep_fit, [0.0, 1.0])
    assert a["df"] == pytest.approx(b["df"]) == pytest.approx(c["df"])
    assert a["Estimate"] == pytest.approx(sleep_fit.fixef["Days"])


def test_bad_contrasts(sleep_fit):
    with pytest.raises(PyglmmError, match="columns"):
        pg.satterthwaite(sleep_fit, [1.0, 0.0, 0.0])
    with pytest.raises(PyglmmError, match="not a fixed-effect"):
        pg.satterthwaite(sleep_fit, "Nights")
    with pytest.raises(PyglmmError, match="ddf"):
        pg.lmm_anova(sleep_fit, ddf="containment")
    with pytest.raises(PyglmmError, match="type"):
        pg.lmm_anova(sleep_fit, type=2)


@pytest.mark.parametrize("coding", ["contr.sum", "contr.helmert"])
def test_type3_invariant_to_coding(coding):
    """lmerTest builds type III hypotheses on the treatment coding and maps them to the
    model's coefficients, so the table equals R's for the treatment-coded fit."""
    import warnings

    from lmm_inference_data import sleep_with_group

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pg.lmer(
            "Reaction ~ Days * grp + (Days | Subject)",
            sleep_with_group(),
            contrasts={"grp": coding},
        )
    tab = pg.lmm_anova(m, type=3)
    ref = load_fixture("sleep_grp")["anova3_satterthwaite"]
    np.testing.assert_allclose(tab["DenDF"], col(ref, "DenDF"), rtol=1e-3)
    np.testing.assert_allclose(tab["F value"], col(ref, "F value"), rtol=1e-4)
    np.testing.assert_allclose(tab["Pr(>F)"], col(ref, "Pr(>F)"), rtol=1e-4)


@pytest.mark.parametrize(
    "name, kwargs",
    [("sleep_ml", {"reml": False}), ("sleep_weights", {"weights": "w"})],
)
def test_satterthwaite_ml_and_weights(name, kwargs):
    import warnings

    ss = pg.datasets.load("sleepstudy")
    ss["w"] = 1 + ss["Days"] / 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pg.lmer("Reaction ~ Days + (Days | Subject)", ss, **kwargs)
    ref = load_fixture(name)
    np.testing.assert_allclose(m.theta, ref["theta"], rtol=1e-5)
    tab = pg.satterthwaite_table(m)
    r = ref["coef_satterthwaite"]
    np.testing.assert_allclose(tab["df"], col(r, "df"), rtol=1e-3)
    np.testing.assert_allclose(tab["Std. Error"], col(r, "Std. Error"), rtol=1e-4)
    np.testing.assert_allclose(tab["Pr(>|t|)"], col(r, "Pr(>|t|)"), rtol=1e-4)
    a = pg.lmm_anova(m)
    ra = ref["anova3_satterthwaite"]
    np.testing.assert_allclose(a["DenDF"], col(ra, "DenDF"), rtol=1e-3)
    np.testing.assert_allclose(a["F value"], col(ra, "F value"), rtol=1e-4)
