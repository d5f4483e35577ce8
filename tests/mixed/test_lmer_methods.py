"""The inference methods of LinearMixedModel, checked against lmerTest / lme4 (fixtures)."""

import json
from pathlib import Path

import numpy as np
import pytest

import pyglmm as pg

FIX = Path(__file__).parents[1] / "fixtures" / "lmm_inference"


def _load(name):
    return json.loads((FIX / f"{name}.json").read_text())


def _column(table_text_or_dict, key):
    d = table_text_or_dict
    if isinstance(d, str):  # stored as R's deparsed list in some fixtures
        d = eval(d, {"None": None})  # noqa: S307 - our own fixture files
    return np.asarray(d[key], dtype=float)


@pytest.fixture(scope="module")
def sleep_models():
    s = pg.datasets.load("sleepstudy")
    return (
        pg.lmer("Reaction ~ Days + (1 | Subject)", s),
        pg.lmer("Reaction ~ Days + (Days | Subject)", s),
    )


def test_summary_and_coef_table_with_satterthwaite(sleep_models):
    ref = _load("sleep_corr")
    m = sleep_models[1]
    tab = m.coef_table(ddf="Satterthwaite")
    np.testing.assert_allclose(tab["df"], _column(ref["coef_satterthwaite"], "df"), rtol=1e-3)
    kr = m.coef_table(ddf="Kenward-Roger")
    np.testing.assert_allclose(kr["df"], _column(ref["coef_kenward_roger"], "df"), rtol=1e-3)
    text = str(m.summary(ddf="Satterthwaite"))
    assert "Satterthwaite's method" in text and "3.26e-06 ***" in text


def test_anova_single_model_is_lmertest_type3(sleep_models):
    ref = _load("sleep_corr")["anova3_satterthwaite"]
    tab = sleep_models[1].anova()
    assert tab.loc["Days", "F value"] == pytest.approx(ref["F value"], rel=1e-6)
    assert tab.loc["Days", "DenDF"] == pytest.approx(ref["DenDF"], rel=1e-3)


def test_pg_anova_of_two_lmer_fits_refits_with_ml(sleep_models):
    ref = _load("lrt_sleep")["anova_m0_m1"]
    with pytest.warns(UserWarning, match="refitting"):
        tab = pg.anova(*sleep_models)
    np.testing.assert_allclose(tab["logLik"], _column(ref, "logLik"), rtol=1e-6)
    np.testing.assert_allclose(tab["Chisq"].iloc[1], _column(ref, "Chisq")[1], rtol=1e-5)


def test_confint_profile_and_wald(sleep_models):
    ref = _load("confint_sleep")
    ci = sleep_models[1].confint()
    np.testing.assert_allclose(ci.iloc[:, 0], _column(ref["profile"], "2.5 %"), rtol=1e-3)
    wald = sleep_models[1].confint(method="wald")
    np.testing.assert_allclose(wald.iloc[4:, 0], _column(ref["wald"], "2.5 %")[4:], rtol=1e-6)


def test_plot_methods_return_figures(sleep_models):
    m = sleep_models[1]
    for fig in (m.plot_ranef(), m.plot_residuals(), m.plot_qq(), m.plot_qq_ranef()):
        assert fig.axes


def test_glmer_shares_the_plot_methods():
    cbpp = pg.datasets.load("cbpp")
    g = pg.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, "binomial")
    fig = g.plot_ranef()
    (ax,) = fig.axes
    assert len(ax.lines) + len(ax.collections) > 0
