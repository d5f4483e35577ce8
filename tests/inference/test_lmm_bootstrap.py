"""Parametric bootstrap (bootMer-like).

Agreement in distribution with lme4's bootMer cannot be tested exactly (different
random numbers); instead: reproducibility with a seed (also across worker counts),
percentile intervals that contain the estimates, and bootstrap SEs of the fixed
effects within 15% of the model's SEs on sleepstudy with nsim = 200 (the Monte
Carlo error of an SD from 200 replicates is about 1/sqrt(2*199) = 5%, and the
asymptotic SEs are close to exact for this balanced design).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pyglmm as pg
from pyglmm.errors import PyglmmError
from pyglmm.inference.bootstrap import BootResult, norm_inter
from pyglmm.mixed.glmer import GeneralizedLinearMixedModel


@pytest.fixture(scope="module")
def boot200(sleep_fit):
    return pg.bootstrap(sleep_fit, nsim=200, seed=42, progress=False)


def test_reproducible_across_workers(sleep_fit, monkeypatch):
    import importlib

    bootmod = importlib.import_module("pyglmm.inference.bootstrap")

    monkeypatch.setattr(bootmod, "_MIN_PARALLEL_SECONDS", 0.0)  # use the workers
    a = pg.bootstrap(sleep_fit, nsim=12, seed=7, n_jobs=1, progress=False)
    b = pg.bootstrap(sleep_fit, nsim=12, seed=7, n_jobs=2, progress=False, chunksize=5)
    bt = pg.bootstrap(sleep_fit, nsim=12, seed=7, n_jobs=2, backend="thread", progress=False)
    pd.testing.assert_frame_equal(a.t, bt.t)
    c = pg.bootstrap(sleep_fit, nsim=12, seed=8, n_jobs=1, progress=False)
    pd.testing.assert_frame_equal(a.t, b.t)
    assert not np.allclose(a.t.to_numpy(), c.t.to_numpy())
    assert list(a.t.columns) == [".sig01", ".sig02", ".sig03", ".sigma", "(Intercept)", "Days"]
    np.testing.assert_allclose(a.t0["(Intercept)"], sleep_fit.fixef["(Intercept)"])
    assert a.n_failed == 0


def test_bootstrap_se_close_to_model_se(sleep_fit, boot200):
    se_boot = boot200.se[["(Intercept)", "Days"]].to_numpy()
    np.testing.assert_allclose(se_boot, sleep_fit.se.to_numpy(), rtol=0.15)


@pytest.mark.parametrize("kind", ["perc", "basic", "norm"])
def test_intervals_contain_estimates(boot200, kind):
    ci = boot200.confint(type=kind)
    assert list(ci.columns) == ["2.5 %", "97.5 %"]
    assert np.all(ci.iloc[:, 0] < boot200.t0) and np.all(boot200.t0 < ci.iloc[:, 1])


def test_basic_and_norm_formulas(boot200):
    t0 = boot200.t0["Days"]
    td = boot200.t["Days"].to_numpy()
    perc = boot200.confint(type="perc").loc["Days"].to_numpy()
    basic = boot200.confint(type="basic").loc["Days"].to_numpy()
    np.testing.assert_allclose(basic, 2 * t0 - perc[::-1])
    norm = boot200.confint(type="norm").loc["Days"].to_numpy()
    centre = 2 * t0 - td.mean()
    np.testing.assert_allclose(norm.mean(), centre)


def test_norm_inter_matches_boot():
    # boot:::norm.inter(1:99, c(0.025, 0.975)) gives exactly the 2.5th and 97.5th order
    # statistics (R+1)*alpha = 2.5, 97.5: interpolated on the normal scale
    t = np.arange(1.0, 100.0)
    out = norm_inter(t, np.array([0.05, 0.95]))
    np.testing.assert_allclose(out, [5.0, 95.0])  # (R+1)α integer: the order statistics


def test_custom_statistic(sleep_fit):
    res = pg.bootstrap(sleep_fit, nsim=4, seed=3, n_jobs=1, progress=False)
    res2 = pg.bootstrap(
        sleep_fit,
        nsim=4,
        seed=3,
        n_jobs=1,
        progress=False,
        statistic=lambda f: np.asarray(f.fixef)[1:],
    )
    assert list(res2.t.columns) == ["t1"]
    np.testing.assert_allclose(res2.t["t1"], res.t["Days"])


@pytest.mark.skipif(
    not hasattr(GeneralizedLinearMixedModel, "refit"),
    reason="GeneralizedLinearMixedModel.refit(y) is not there yet (GLMM engineer)",
)
def test_glmm_bootstrap():
    cb = pg.datasets.load("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = pg.glmer(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)", cb, family="binomial"
        )
    res = pg.bootstrap(g, nsim=6, seed=1, n_jobs=1, progress=False)
    assert isinstance(res, BootResult)
    assert list(res.t.columns) == [".sig01", "(Intercept)", "period2", "period3", "period4"]
    assert res.n_failed == 0


def test_progress_bar(sleep_fit, capsys):
    pg.bootstrap(sleep_fit, nsim=3, seed=1, n_jobs=1, progress=True)
    err = capsys.readouterr().err
    assert "bootstrap |" in err and "3/3" in err


def test_bad_input(sleep_fit):
    with pytest.raises(PyglmmError, match="nsim"):
        pg.bootstrap(sleep_fit, nsim=0)
    with pytest.raises(PyglmmError, match="simulate"):
        pg.bootstrap(object(), nsim=2)
