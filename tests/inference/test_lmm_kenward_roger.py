"""Kenward-Roger adjusted covariance, t tests and F tests against pbkrtest / lmerTest.

Tolerances: df 1e-3 relative (the issue's), vcov, F and p 1e-4.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from lmm_inference_data import MODELS, col, fitted, load_fixture

import pyglmm as pg
from pyglmm.errors import PyglmmError
from pyglmm.inference import vcov_kr

NAMES = list(MODELS)


@pytest.mark.parametrize("name", NAMES)
def test_vcov_adjusted(name):
    m = fitted(name)
    ref = np.array(load_fixture(name)["vcov_kr"], dtype=float).reshape(m.p, m.p)
    np.testing.assert_allclose(
        vcov_kr(m).to_numpy(), ref, rtol=1e-4, atol=1e-10 * np.abs(ref).max()
    )


@pytest.mark.parametrize("name", NAMES)
def test_coef_table_kenward_roger(name):
    m = fitted(name)
    tab = pg.inference.coef_table(m, ddf="Kenward-Roger")
    ref = load_fixture(name)["coef_kenward_roger"]
    np.testing.assert_allclose(tab["df"], col(ref, "df"), rtol=1e-3)
    np.testing.assert_allclose(tab["Std. Error"], col(ref, "Std. Error"), rtol=1e-4)
    np.testing.assert_allclose(tab["Pr(>|t|)"], col(ref, "Pr(>|t|)"), rtol=1e-4)


@pytest.mark.parametrize("name", ["sleep_corr", "sleep_grp", "machines"])
@pytest.mark.parametrize("typ", [1, 3])
def test_anova_kenward_roger(name, typ):
    tab = pg.lmm_anova(fitted(name), type=typ, ddf="Kenward-Roger")
    ref = load_fixture(name)[f"anova{typ}_kenward_roger"]
    np.testing.assert_allclose(tab["NumDF"], col(ref, "NumDF"))
    np.testing.assert_allclose(tab["DenDF"], col(ref, "DenDF"), rtol=1e-3)
    for c in ("Sum Sq", "Mean Sq", "F value", "Pr(>F)"):
        np.testing.assert_allclose(tab[c], col(ref, c), rtol=1e-4, err_msg=c)
    assert "Kenward-Roger's method" in str(tab)


def test_contest_multi_row_kenward_roger():
    m = fitted("sleep_grp")
    ref = load_fixture("sleep_grp")
    tab = pg.kenward_roger(m, np.array(ref["contrast_L"], dtype=float))
    r = ref["contest_md_kenward_roger"]
    np.testing.assert_allclose(tab["DenDF"], col(r, "DenDF"), rtol=1e-3)
    np.testing.assert_allclose(tab["F value"], col(r, "F value"), rtol=1e-4)
    np.testing.assert_allclose(tab["Pr(>F)"], col(r, "Pr(>F)"), rtol=1e-4)


def test_kenward_roger_needs_reml():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pg.lmer(
            "Reaction ~ Days + (Days | Subject)", pg.datasets.load("sleepstudy"), reml=False
        )
    with pytest.raises(PyglmmError, match="REML"):
        pg.kenward_roger(m, "Days")


def test_kenward_roger_refuses_huge_dense_work(monkeypatch):
    import importlib

    krmod = importlib.import_module("pyglmm.inference.kenward_roger")
    monkeypatch.setattr(krmod, "_MAX_BYTES", 1e3)
    m = fitted("machines")
    with pytest.raises(PyglmmError, match="Satterthwaite"):
        krmod.vcov_adjusted(m.refit(m.y), method="dense")  # a new fit: nothing cached
    with pytest.raises(PyglmmError, match="Satterthwaite"):
        krmod.vcov_adjusted(m.refit(m.y), method="lowrank")


@pytest.mark.parametrize("name", NAMES)
def test_lowrank_equals_dense(name):
    """The q-dimensional form gives pbkrtest's n x n computation to rounding."""
    from pyglmm.inference.kenward_roger import vcov_adjusted

    m = fitted(name)
    a = vcov_adjusted(m, method="dense")
    b = vcov_adjusted(m, method="lowrank")
    np.testing.assert_allclose(b.vcov_adj, a.vcov_adj, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.W, a.W, rtol=1e-7, atol=1e-12 * np.abs(a.W).max())
