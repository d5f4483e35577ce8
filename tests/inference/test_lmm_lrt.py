"""Likelihood-ratio tests between nested mixed models against lme4's anova().

Tolerances 1e-6 relative for log-likelihoods and derived columns (our ML refits
are polished to the optimum and never worse than lme4's).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from lmm_inference_data import col, load_fixture

import pyglmm as pg
from pyglmm.errors import PyglmmError
from pyglmm.inference.lrt import lrt_table

COLS = ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]


@pytest.fixture(scope="module")
def sleep_models():
    ss = pg.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            pg.lmer(f, ss)
            for f in (
                "Reaction ~ Days + (1 | Subject)",
                "Reaction ~ Days + (Days | Subject)",
                "Reaction ~ 1 + (Days | Subject)",
            )
        ]


def _check(tab, ref, rtol=1e-6):
    assert list(tab.columns) == COLS
    for c in COLS:
        np.testing.assert_allclose(tab[c], col(ref, c), rtol=rtol, equal_nan=True, err_msg=c)


def test_lrt_refits_reml_by_ml(sleep_models):
    m0, m1, _ = sleep_models
    with pytest.warns(UserWarning, match="refitting model"):
        tab = lrt_table([m0, m1], names=["m0", "m1"])
    _check(tab, load_fixture("lrt_sleep")["anova_m0_m1"])
    assert list(tab.index) == ["m0", "m1"]
    assert tab.refitted
    assert "Models:" in str(tab) and "m1: Reaction ~ Days + (Days | Subject)" in str(tab)


def test_lrt_three_models_sorted_by_npar(sleep_models):
    m0, m1, m2 = sleep_models
    with pytest.warns(UserWarning):
        tab = lrt_table([m1, m2, m0], names=["m1", "m2", "m0"])
    assert list(tab.index) == ["m0", "m2", "m1"]
    _check(tab, load_fixture("lrt_sleep")["anova_m2_m0_m1"])


def test_lrt_without_refit(sleep_models):
    m0, m1, _ = sleep_models
    tab = lrt_table([m0, m1], refit=False)
    _check(tab, load_fixture("lrt_sleep")["anova_m0_m1_norefit"])


def test_lrt_glmm_no_refit():
    cb = pg.datasets.load("cbpp")
    g0 = pg.glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cb, family="binomial")
    g1 = pg.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cb, family="binomial")
    tab = lrt_table([g0, g1])
    ref = load_fixture("lrt_cbpp")["anova_g0_g1"]
    # Laplace fits: lme4's default optimizer tolerances stop ~3e-6 (relative) short in
    # log-likelihood (ours is never lower), which moves the p-value by ~6e-5: 1e-4 here
    assert np.all(tab["logLik"].to_numpy() >= col(ref, "logLik") - 1e-6)
    _check(tab, ref, rtol=1e-4)
    assert not tab.refitted


def test_lrt_errors(sleep_models):
    with pytest.raises(PyglmmError, match="at least two"):
        lrt_table(sleep_models[:1])
    small = pg.lmer("Reaction ~ Days + (1 | Subject)", pg.datasets.load("sleepstudy").iloc[:100])
    with pytest.raises(PyglmmError, match="same size"):
        lrt_table([sleep_models[0], small])


def test_lrt_printed_as_lme4(sleep_models):
    m0, m1, _ = sleep_models
    with pytest.warns(UserWarning):
        tab = lrt_table([m0, m1], names=["m0", "m1"])
    ref = load_fixture("lrt_sleep")["anova_m0_m1_text"]
    # lme4 starts with "Data: ss" (the name of the R variable); the rest is identical
    assert str(tab) == ref.split("\n", 1)[1]
