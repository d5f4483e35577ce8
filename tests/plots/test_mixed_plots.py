"""Plots of mixed models: the drawn data are the model's (conditional modes and their
intervals, residuals, normal scores, profile points), figures render with Agg."""

from __future__ import annotations

import io
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import stats  # noqa: E402

import pyglmm as pg  # noqa: E402
from pyglmm.errors import PyglmmError  # noqa: E402
from pyglmm.inference.profile import profile  # noqa: E402
from pyglmm.plots import mixed as pm  # noqa: E402
from pyglmm.plots.regression import normal_scores  # noqa: E402


@pytest.fixture(scope="module")
def sleep():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pg.lmer("Reaction ~ Days + (Days | Subject)", pg.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def dyestuff():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pg.lmer("Yield ~ 1 + (1 | Batch)", pg.datasets.load("Dyestuff"))


def _points(ax):
    return [ln for ln in ax.get_lines() if ln.get_gid() == "points"][0]


def _renders(fig: Figure) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.getvalue()[:4] == b"\x89PNG"


def test_caterpillar(sleep):
    fig = pm.caterpillar_plot(sleep)
    _renders(fig)
    axes = fig.axes
    assert [a.get_title() for a in axes] == ["Subject: (Intercept)", "Subject: Days"]
    rf = sleep.ranef_frame()
    order = np.argsort(rf.loc[rf.term == "(Intercept)", "condval"].to_numpy(), kind="stable")
    for ax, term in zip(axes, ["(Intercept)", "Days"], strict=True):
        sub = rf[rf.term == term]
        x = _points(ax).get_xdata()
        np.testing.assert_allclose(x, sub["condval"].to_numpy()[order])
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == [str(v) for v in sub["grp"].to_numpy()[order]]
        # the error bars span mode ± 1.96 conditional SD
        segs = ax.collections[0].get_segments()
        half = np.array([(s[1][0] - s[0][0]) / 2 for s in segs])
        np.testing.assert_allclose(
            half, stats.norm.ppf(0.975) * sub["condsd"].to_numpy()[order], rtol=1e-12
        )


def test_caterpillar_unknown_group(sleep):
    with pytest.raises(PyglmmError, match="no random-effects terms"):
        pm.caterpillar_plot(sleep, groups=["Batch"])


def test_residual_plots(sleep):
    fig = pm.residuals_vs_fitted(sleep)
    _renders(fig)
    ln = _points(fig.axes[0])
    np.testing.assert_allclose(ln.get_xdata(), sleep.fitted.to_numpy())
    np.testing.assert_allclose(ln.get_ydata(), sleep.residuals(type="pearson").to_numpy())
    fig = pm.qq_residuals(sleep)
    _renders(fig)
    ln = _points(fig.axes[0])
    r = sleep.residuals(type="pearson").to_numpy()
    np.testing.assert_allclose(ln.get_xdata(), normal_scores(r))


def test_qq_ranef(sleep):
    fig = pm.qq_ranef(sleep)
    _renders(fig)
    assert len(fig.axes) == 2
    b = sleep.ranef["Subject"]["Days"].to_numpy()
    ln = _points(fig.axes[1])
    np.testing.assert_allclose(ln.get_ydata(), b)
    np.testing.assert_allclose(ln.get_xdata(), normal_scores(b))


def test_profile_plot(dyestuff):
    pr = profile(dyestuff)
    fig = pm.profile_plot(prof=pr)
    _renders(fig)
    assert [a.get_title() for a in fig.axes] == [".sig01", ".sigma", "(Intercept)"]
    ln = _points(fig.axes[2])
    sub = pr.frame[pr.frame[".par"] == "(Intercept)"]
    np.testing.assert_allclose(ln.get_ydata(), sub[".zeta"].to_numpy())
    # the 95% drop lines end at the profile interval
    ci = pr.confint().loc["(Intercept)"].to_numpy()
    xs = sorted(
        ln2.get_xdata()[0]
        for ln2 in fig.axes[2].get_lines()
        if len(ln2.get_xdata()) == 2 and ln2.get_xdata()[0] == ln2.get_xdata()[1]
    )
    assert any(np.isclose(x, ci[0]) for x in xs) and any(np.isclose(x, ci[1]) for x in xs)
    with pytest.raises(PyglmmError, match="needs a model"):
        pm.profile_plot()


def test_caterpillar_glmm():
    cb = pg.datasets.load("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = pg.glmer(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)", cb, family="binomial"
        )
    fig = pm.caterpillar_plot(g, level=0.9)
    _renders(fig)
    rf = g.ranef_frame()
    order = np.argsort(rf["condval"].to_numpy(), kind="stable")
    ax = fig.axes[0]
    np.testing.assert_allclose(_points(ax).get_xdata(), rf["condval"].to_numpy()[order])
    segs = ax.collections[0].get_segments()
    half = np.array([(s[1][0] - s[0][0]) / 2 for s in segs])
    np.testing.assert_allclose(half, stats.norm.ppf(0.95) * rf["condsd"].to_numpy()[order])
    _renders(pm.residuals_vs_fitted(g))
