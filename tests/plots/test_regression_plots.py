"""Regression diagnostic plots: the right panels with the right data (not pixels)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from diagnostics_protocol_fit import protocol_fit
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from scipy import stats

from pyglmm.errors import PyglmmError
from pyglmm.plots.lowess import lowess
from pyglmm.plots.regression import (
    POINTS_GID,
    cooks_plot,
    diagnostic_panels,
    histogram_density,
    normal_scores,
    pretty,
    qqline_coefficients,
    residual_figure,
    residual_panels,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diagnostics"


@cache
def fit(name):
    return protocol_fit(name)


def scatter_xy(ax):
    (points,) = [ln for ln in ax.get_lines() if ln.get_gid() == POINTS_GID]
    x, y = points.get_data()
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def annotations(ax):
    return [t.get_text() for t in ax.texts]


def test_plot_default_panels_glm():
    m = fit("ceb_poisson_rounded")
    fig = m.plot()
    assert isinstance(fig, Figure)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == [
        "Residuals vs Fitted",
        "Normal Q-Q",
        "Scale-Location",
        "Residuals vs Leverage",
    ]
    # 1: Pearson residuals against the linear predictor (R's plot.glm)
    x, y = scatter_xy(axes[0])
    np.testing.assert_allclose(x, m.linear_predictor)
    np.testing.assert_allclose(y, m.residuals("pearson"))
    assert axes[0].get_xlabel() == "Predicted values"
    assert set(annotations(axes[0])) == {"17", "30", "21"}
    # 2: QQ of standardized Pearson residuals
    x, y = scatter_xy(axes[1])
    rs = m.residuals("standardized_pearson").to_numpy()
    np.testing.assert_allclose(y, rs)
    np.testing.assert_allclose(np.sort(x), stats.norm.ppf((np.arange(1, 71) - 0.5) / 70))
    assert axes[1].get_ylabel() == "Std. Pearson resid."
    # 3: sqrt(|r|)
    np.testing.assert_allclose(scatter_xy(axes[2])[1], np.sqrt(np.abs(rs)))
    # 5: leverage, Cook's contours 0.5 and 1 (two lines each), top-3 Cook labelled
    x, y = scatter_xy(axes[3])
    np.testing.assert_allclose(x, m.hat_values())
    dashed = [ln for ln in axes[3].get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 4
    h, r = dashed[0].get_data()
    np.testing.assert_allclose(r, np.sqrt(0.5 * m.rank * (1 - h) / h))
    assert {"57", "65", "30"} <= set(annotations(axes[3]))


def test_plot_lm_labels_and_residuals():
    m = fit("sleepstudy_lm")
    fig = m.plot(which=(1, 2))
    axes = fig.get_axes()
    assert len(axes) == 2
    x, y = scatter_xy(axes[0])
    np.testing.assert_allclose(x, m.fitted)
    np.testing.assert_allclose(y, m.residuals("response"))
    assert axes[0].get_xlabel() == "Fitted values"
    assert axes[1].get_ylabel() == "Standardized residuals"
    # the lowess smooth of panel 1 is R's lowess(iter = 3)
    smooth = [ln for ln in axes[0].get_lines() if ln.get_label() == "lowess"][0]
    gx, gy = lowess(m.fitted, m.residuals("response"), iterations=3)
    np.testing.assert_allclose(smooth.get_ydata(), gy)


def test_all_six_panels_and_constant_leverage():
    m = fit("machines_lm")  # balanced additive layout: constant leverage
    fig = m.plot(which=range(1, 7))
    axes = fig.get_axes()
    assert len(axes) == 6
    assert axes[4].get_title().startswith("Constant Leverage")
    segs = [c for c in axes[3].collections if isinstance(c, LineCollection)][0].get_segments()
    np.testing.assert_allclose([s[1][1] for s in segs], m.cooks_distance())


@pytest.mark.parametrize("which", [(0,), (7,), ()])
def test_plot_bad_which(which):
    with pytest.raises(PyglmmError, match="which"):
        fit("sleepstudy_lm").plot(which=which)


def test_residual_panels_notes_plots():
    m = fit("ceb_poisson_unrounded")
    fig = m.plot_residuals()
    axes = fig.get_axes()
    assert len(axes) == 6  # (QQ, histogram, vs mean) x (deviance, Pearson)
    for row, rtype in enumerate(["deviance", "pearson"]):
        qq, hist, vs_mu = axes[3 * row : 3 * row + 3]
        r = m.residuals(rtype).to_numpy()
        x, y = scatter_xy(qq)
        np.testing.assert_allclose(y, r)
        np.testing.assert_allclose(x, normal_scores(r))
        heights = np.array([p.get_height() for p in hist.patches])
        widths = np.array([p.get_width() for p in hist.patches])
        assert np.sum(heights * widths) == pytest.approx(1.0)  # a density histogram
        curve = hist.get_lines()[0]
        gx, gy = curve.get_data()
        np.testing.assert_allclose(gy, stats.norm.pdf(gx, r.mean(), r.std(ddof=1)))
        x, y = scatter_xy(vs_mu)
        np.testing.assert_allclose(x, m.fitted)
        np.testing.assert_allclose(y, r)
        assert "17" in annotations(vs_mu)


def test_residual_panels_one_type():
    fig = fit("cbpp_binomial").plot_residuals(type="deviance")
    assert len(fig.get_axes()) == 3
    assert len(residual_panels(fit("sleepstudy_lm")).get_axes()) == 3


def test_cooks_plot_labels_top_three():
    m = fit("ceb_poisson_rounded")
    fig = m.plot_cooks()
    (ax,) = fig.get_axes()
    segs = [c for c in ax.collections if isinstance(c, LineCollection)][0].get_segments()
    np.testing.assert_allclose([s[1][1] for s in segs], m.cooks_distance())
    assert annotations(ax) == ["57", "30", "65"]  # the notes' three largest
    assert len(cooks_plot(m, n_labels=5).get_axes()[0].texts) == 5


def test_figures_save_and_stay_out_of_pyplot(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    m = fit("cbpp_binomial")
    for i, fig in enumerate([m.plot(), m.plot_residuals(), m.plot_cooks(), diagnostic_panels(m)]):
        path = tmp_path / f"fig{i}.png"
        fig.savefig(path, dpi=40)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == before  # built without pyplot: nothing to close or show


def test_plot_helpers_match_r():
    ref = json.loads((FIXTURES / "plot_helpers.json").read_text())
    for it, key in [(0, "lowess_iter0"), (3, "lowess_iter3")]:
        gx, gy = lowess(ref["lowess_x"], ref["lowess_y"], iterations=it)
        np.testing.assert_allclose(gx, ref[key]["x"])
        np.testing.assert_allclose(gy, ref[key]["y"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(normal_scores(ref["small"]), ref["qqnorm_small"], rtol=1e-12)
    np.testing.assert_allclose(normal_scores(ref["lowess_y"]), ref["qqnorm_y"], rtol=1e-12)
    np.testing.assert_allclose(qqline_coefficients(ref["small"]), ref["qqline_small"])
    np.testing.assert_allclose(qqline_coefficients(ref["lowess_y"]), ref["qqline_y"])


def test_pretty_and_histogram_match_r():
    ref = json.loads((FIXTURES / "hist_pretty.json").read_text())
    for case in ref["pretty"]:
        np.testing.assert_allclose(
            pretty(case["lo"], case["up"], int(case["n"])), case["value"], rtol=1e-12
        )
    for key in ("hist_ceb", "hist_lm"):
        breaks, density = histogram_density(ref[key]["x"])
        np.testing.assert_allclose(breaks, ref[key]["breaks"], rtol=1e-12)
        np.testing.assert_allclose(density, ref[key]["density"], rtol=1e-12, atol=1e-15)


def test_histogram_panel_draws_r_histogram():
    m = fit("ceb_poisson_rounded")
    hist = m.plot_residuals(type="deviance").get_axes()[1]
    breaks, density = histogram_density(m.residuals("deviance"))
    np.testing.assert_allclose([p.get_x() for p in hist.patches], breaks[:-1])
    np.testing.assert_allclose([p.get_height() for p in hist.patches], density)


def test_residual_figure_from_arrays():
    m = fit("sleepstudy_lm")
    r = m.residuals("standardized").to_numpy()
    fig = residual_figure(m.fitted.to_numpy(), r, labels=list(m.row_labels), title="t")
    ax_fit, ax_qq, ax_hist = fig.get_axes()
    np.testing.assert_allclose(scatter_xy(ax_fit)[1], r)
    np.testing.assert_allclose(scatter_xy(ax_qq)[0], normal_scores(r))
    _, density = histogram_density(r)
    np.testing.assert_allclose([p.get_height() for p in ax_hist.patches], density)
    assert len(ax_fit.texts) == 3 and fig.get_suptitle() == "t"


def test_constant_leverage_panel_uses_factor_levels_as_r():
    import pyglmm as pg

    data = pg.datasets.load("Machines")
    m = pg.lm("score ~ Machine + Worker", data)
    ax = m.plot(which=(5,)).get_axes()[0]
    assert ax.get_title() == "Constant Leverage: Residuals vs Factor Levels"
    x, y = scatter_xy(ax)
    # R: facval = (codes - 1) %*% rev(cumprod(c(1, nlev[nf:2]))) = 6 * Machine + Worker
    expected = 6 * data["Machine"].cat.codes.to_numpy() + data["Worker"].cat.codes.to_numpy()
    np.testing.assert_allclose(x, expected)
    np.testing.assert_allclose(y, m.residuals("standardized"))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "B", "C"]
    np.testing.assert_allclose(ax.get_xticks(), [2.5, 8.5, 14.5])


@pytest.mark.parametrize("versus", ["rate", "linear_predictor"])
def test_residuals_against_rate_or_linear_predictor(versus):
    import pyglmm as pg

    m = fit("ceb_poisson_unrounded")
    ax = m.plot_residuals(type="deviance", versus=versus).get_axes()[2]
    x, _ = scatter_xy(ax)
    ceb = pg.datasets.load("ceb")
    if versus == "rate":  # the notes' mu: children per woman
        np.testing.assert_allclose(x, m.fitted.to_numpy() / ceb["n"].to_numpy(), rtol=1e-12)
    else:
        np.testing.assert_allclose(x, m.linear_predictor)
    with pytest.raises(PyglmmError, match="versus"):
        m.plot_residuals(versus="y")
