r"""Diagnostic plots of fitted GLMs and linear models (matplotlib).

:func:`diagnostic_panels` draws R's ``plot.lm`` panels (R 4.x conventions; for a GLM R
uses Pearson residuals and the linear predictor):

1. residuals vs fitted values (the linear predictor :math:`\hat\eta` for a GLM; raw Pearson
   residuals for a GLM, response residuals for a linear model), with a lowess smooth;
2. normal QQ plot of the standardized residuals
   :math:`r_i = e^P_i/\sqrt{\hat\phi(1-h_i)}` (R's ``rstandard(type="pearson")``; for a
   linear model the usual standardized residuals);
3. scale-location: :math:`\sqrt{|r_i|}` against the fitted values;
4. Cook's distance by observation number;
5. standardized residuals against leverage :math:`h_i`, with contours of Cook's distance
   :math:`r = \pm\sqrt{c\,p\,(1-h)/h}` for :math:`c` = 0.5 and 1;
6. Cook's distance against :math:`h_i/(1-h_i)`.

:func:`residual_panels` draws the notes' plots (section 3.5): for deviance and/or Pearson
residuals, a normal QQ plot with R's ``qqline``, a density histogram with the normal
density of the residuals' mean and standard deviation, and the residuals against the
fitted mean :math:`\hat\mu`. :func:`cooks_plot` draws Cook's distances by observation and
labels the largest.

All functions return a :class:`matplotlib.figure.Figure` built without pyplot, so they
work with any backend (or none) and never open a window; save with ``fig.savefig``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.errors import PyglmmError
from pyglmm.plots.lowess import lowess

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not with pyglmm
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def new_figure(**kwargs: Any) -> Figure:
    """A :class:`matplotlib.figure.Figure` (no pyplot). matplotlib is imported here, on
    the first plot, so that ``import pyglmm`` does not pay for it (about 0.3 s)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


CAPTIONS = {
    1: "Residuals vs Fitted",
    2: "Normal Q-Q",
    3: "Scale-Location",
    4: "Cook's distance",
    5: "Residuals vs Leverage",
    6: "Cook's dist vs Leverage h/(1-h)",
}
SMOOTH_COLOR = "tab:red"
CONTOUR_COLOR = "tab:red"
POINT_STYLE: dict[str, Any] = {
    "marker": "o",
    "linestyle": "none",
    "markerfacecolor": "none",
    "markeredgecolor": "black",
    "markersize": 4.2,
    "markeredgewidth": 0.7,
}
POINTS_GID = "points"  # the gid of the Line2D holding a panel's data points


# --------------------------------------------------------------------------- helpers
def ppoints(n: int) -> np.ndarray:
    r"""R's ``ppoints``: :math:`(i-a)/(n+1-2a)`, :math:`a = 3/8` if :math:`n \le 10` else 1/2."""
    a = 3.0 / 8.0 if n <= 10 else 0.5
    return (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Theoretical quantiles of R's ``qqnorm`` for ``values`` (in the order of ``values``)."""
    values = np.asarray(values, dtype=float)
    scores = np.full(values.shape, np.nan)
    ok = np.isfinite(values)
    order = np.argsort(values[ok], kind="stable")
    q = stats.norm.ppf(ppoints(int(ok.sum())))
    sub = np.empty(order.size)
    sub[order] = q
    scores[ok] = sub
    return scores


def qqline_coefficients(values: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of R's ``qqline``: the line through the quartiles."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    y = np.quantile(v, [0.25, 0.75])
    x = stats.norm.ppf([0.25, 0.75])
    slope = (y[1] - y[0]) / (x[1] - x[0])
    return float(y[0] - slope * x[0]), float(slope)


def pretty(lo: float, up: float, n: int = 5, min_n: int | None = None) -> np.ndarray:
    """R's ``pretty``: about ``n + 1`` equally spaced round values covering ``[lo, up]``.

    The algorithm of R's ``R_pretty`` (units 1, 2, 5 times a power of ten, with R's
    ``high.u.bias = 1.5`` and ``u5.bias = 2.75``).
    """
    if min_n is None:
        min_n = n // 3
    h, h5 = 1.5, 0.5 + 1.5 * 1.5
    eps = np.finfo(float).eps
    rounding_eps = 1e-10
    dx = up - lo
    if dx == 0 and up == 0:
        cell, small = 1.0, True
    else:
        cell = max(abs(lo), abs(up))
        u = 1 + (1 / (1 + h) if h5 >= 1.5 * h + 0.5 else 1.5 / (1 + h5))
        u *= max(1, n) * eps
        small = bool(dx < cell * u * 3)
    if small:
        if cell > 10:
            cell = 9 + cell / 10
        cell *= 0.75
        if min_n > 1:
            cell /= min_n
    else:
        cell = dx
        if n > 1:
            cell /= n
    base = 10.0 ** np.floor(np.log10(cell))
    unit = base
    if 2 * base - cell < h * (cell - unit):
        unit = 2 * base
        if 5 * base - cell < h5 * (cell - unit):
            unit = 5 * base
            if 10 * base - cell < h * (cell - unit):
                unit = 10 * base
    ns = np.floor(lo / unit + rounding_eps)
    nu = np.ceil(up / unit - rounding_eps)
    while ns * unit > lo + rounding_eps * unit:
        ns -= 1
    while nu * unit < up - rounding_eps * unit:
        nu += 1
    k = int(0.5 + nu - ns)
    if k < min_n:
        k = min_n - k
        if ns >= 0:
            nu += k // 2
            ns -= k // 2 + k % 2
        else:
            ns -= k // 2
            nu += k // 2 + k % 2
    return np.arange(ns, nu + 0.5) * unit


def histogram_density(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R's ``hist(x, freq = FALSE)``: Sturges breaks by ``pretty``, right-closed cells.

    Returns the breaks and the densities (counts / (n * width)).
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n_class = int(np.ceil(np.log2(v.size) + 1))
    breaks = pretty(float(v.min()), float(v.max()), n_class, min_n=1)
    fuzz = 1e-7 * float(np.median(np.diff(breaks)))
    edges = breaks.copy()
    edges[1:] += fuzz  # right-closed (a, b], the first cell closed on the left, as R
    edges[0] -= fuzz
    counts, _ = np.histogram(v, bins=edges)
    density = counts / (v.size * np.diff(breaks))
    return breaks, density


def _points(ax: Axes, x, y) -> None:
    """Open circles as R's ``plot``; a marker-only Line2D renders fast for many points."""
    (line,) = ax.plot(x, y, **POINT_STYLE)
    line.set_gid(POINTS_GID)


def _labels(model: Any) -> np.ndarray:
    return np.asarray([str(v) for v in model.row_labels], dtype=object)


def _annotate(ax: Axes, x, y, labels, idx) -> None:
    xmid = np.mean(ax.get_xlim())
    for i in idx:
        if not (np.isfinite(x[i]) and np.isfinite(y[i])):
            continue
        ha = "right" if x[i] > xmid else "left"
        ax.annotate(
            str(labels[i]),
            (x[i], y[i]),
            xytext=(-3 if ha == "right" else 3, 0),
            textcoords="offset points",
            ha=ha,
            va="center",
            fontsize=8,
        )


def _top(values: np.ndarray, k: int) -> np.ndarray:
    v = np.where(np.isfinite(values), values, -np.inf)
    k = min(k, int(np.isfinite(values).sum()))
    return np.argsort(-v, kind="stable")[:k]


def _smooth(ax: Axes, x, y, iterations: int) -> None:
    gx, gy = lowess(x, y, iterations=iterations)
    if gx.size > 1:
        ax.plot(gx, gy, color=SMOOTH_COLOR, lw=1.2, label="lowess")


class _PanelData:
    """The numbers of R's ``plot.lm`` for one model (cases with zero weight dropped)."""

    def __init__(self, model: Any, residual_type: str | None = None) -> None:
        is_glm = not getattr(model, "is_lm", False)
        keep = np.asarray(model.prior_weights, dtype=float) != 0
        self.is_glm = is_glm
        self.labels = _labels(model)[keep]
        self.eta = np.asarray(model.linear_predictor, dtype=float)[keep]
        rtype = residual_type or ("pearson" if is_glm else "response")
        self.r = np.asarray(model.residuals(rtype), dtype=float)[keep]
        std = "standardized" if rtype == "deviance" else "standardized_pearson"
        if not is_glm:
            std = "standardized"
        self.hat = np.asarray(model.hat_values(), dtype=float)[keep]
        rs = np.asarray(model.residuals(std), dtype=float)[keep]
        rs[self.hat >= 1] = np.nan
        self.rs = rs
        self.cook = np.asarray(model.cooks_distance(), dtype=float)[keep]
        self.rank = int(model.rank)
        self.xlab = "Predicted values" if is_glm else "Fitted values"
        if is_glm:
            self.std_label = (
                "Std. deviance resid." if rtype == "deviance" else "Std. Pearson resid."
            )
        else:
            self.std_label = "Standardized residuals"
        self.smooth_iterations = 0 if is_glm else 3
        self.factors = _model_factors(model, keep)


def _model_factors(model: Any, keep: np.ndarray) -> list[tuple[str, pd.Series]]:
    """The factors among the model's predictors (R's ``xlevels``), rows with weight > 0."""
    frame = getattr(model, "frame", None)
    data = getattr(frame, "data", None)
    if not isinstance(data, pd.DataFrame) or len(data) != len(keep):
        return []
    response = getattr(frame, "response_name", None)
    out = []
    for name in data.columns:
        col = data[name]
        if name != response and isinstance(col.dtype, pd.CategoricalDtype):
            out.append((str(name), col[keep].cat.remove_unused_categories()))
    return out


# ----------------------------------------------------------------- plot.lm panels
def residuals_vs_fitted(ax: Axes, d: _PanelData, id_n: int = 3, smooth: bool = True) -> None:
    """Panel 1: residuals against fitted values (linear predictor for a GLM)."""
    _points(ax, d.eta, d.r)
    ax.axhline(0.0, ls=":", color="gray")
    if smooth:
        _smooth(ax, d.eta, d.r, d.smooth_iterations)
    ax.set_xlabel(d.xlab)
    ax.set_ylabel("Residuals")
    ax.set_title(CAPTIONS[1], fontsize=10)
    _annotate(ax, d.eta, d.r, d.labels, _top(np.abs(d.r), id_n))


def normal_qq(ax: Axes, d: _PanelData, id_n: int = 3) -> None:
    """Panel 2: normal QQ plot of standardized residuals with R's ``qqline``."""
    x = normal_scores(d.rs)
    _points(ax, x, d.rs)
    a, b = qqline_coefficients(d.rs)
    lim = np.array([np.nanmin(x), np.nanmax(x)])
    ax.plot(lim, a + b * lim, ls=":", color="gray")
    ax.set_xlabel("Theoretical Quantiles")
    ax.set_ylabel(d.std_label)
    ax.set_title(CAPTIONS[2], fontsize=10)
    _annotate(ax, x, d.rs, d.labels, _top(np.abs(d.rs), id_n))


def scale_location(ax: Axes, d: _PanelData, id_n: int = 3, smooth: bool = True) -> None:
    r"""Panel 3: :math:`\sqrt{|r_i|}` against fitted values."""
    y = np.sqrt(np.abs(d.rs))
    _points(ax, d.eta, y)
    if smooth:
        _smooth(ax, d.eta, y, d.smooth_iterations)
    ax.set_ylim(0, np.nanmax(y) * 1.05)
    ax.set_xlabel(d.xlab)
    ax.set_ylabel(f"sqrt(|{d.std_label}|)")
    ax.set_title(CAPTIONS[3], fontsize=10)
    _annotate(ax, d.eta, y, d.labels, _top(np.abs(d.rs), id_n))


def cooks_by_observation(ax: Axes, cook: np.ndarray, labels, id_n: int = 3) -> None:
    """Panel 4: Cook's distance against observation number, the largest ``id_n`` labelled."""
    obs = np.arange(1, cook.size + 1)
    ax.vlines(obs, 0.0, cook, color="black", lw=1.0)
    top = _top(cook, id_n)
    ymax = float(np.nanmax(cook)) if np.isfinite(cook).any() else 1.0
    ax.set_ylim(0, ymax * 1.075)
    ax.set_xlabel("Obs. number")
    ax.set_ylabel("Cook's distance")
    ax.set_title(CAPTIONS[4], fontsize=10)
    for i in top:
        ax.annotate(
            str(labels[i]),
            (obs[i], cook[i]),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )


def residuals_vs_leverage(
    ax: Axes,
    d: _PanelData,
    id_n: int = 3,
    smooth: bool = True,
    cook_levels: Sequence[float] = (0.5, 1.0),
) -> None:
    r"""Panel 5: standardized residuals against leverage, Cook's distance contours.

    The contour for level :math:`c` is :math:`r = \pm\sqrt{c\,p\,(1-h)/h}`, :math:`p` the rank.
    With constant leverage (e.g. a balanced one-way layout) the residuals are plotted against
    the observation number instead, as there is nothing to show on the leverage axis.
    """
    h = d.hat
    finite = h[np.isfinite(h)]
    r_hat = (float(finite.min()), float(finite.max()))
    constant = r_hat[1] == 0 or (r_hat[1] - r_hat[0]) < 1e-10 * float(np.mean(finite))
    ax.set_ylabel(d.std_label)
    top = _top(d.cook, id_n)
    if constant:
        factors = d.factors
        if factors:
            _residuals_vs_factor_levels(ax, d, factors, top)
            return
        obs = np.arange(1, h.size + 1)
        _points(ax, obs, d.rs)
        ax.axhline(0.0, ls=":", color="gray")
        ax.set_xlabel("Obs. number")
        ax.set_title(f"Constant Leverage (h = {r_hat[0]:.3g}): Residuals", fontsize=10)
        _annotate(ax, obs, d.rs, d.labels, top)
        return
    _points(ax, h, d.rs)
    ax.axhline(0.0, ls=":", color="gray")
    ax.axvline(0.0, ls=":", color="gray")
    if smooth:
        _smooth(ax, h, d.rs, d.smooth_iterations)
    ax.set_xlim(0, r_hat[1] * 1.08)
    rs_fin = d.rs[np.isfinite(d.rs)]
    span = rs_fin.max() - rs_fin.min()
    ylim = (rs_fin.min() - 0.08 * span, rs_fin.max() + 0.08 * span)
    ax.set_ylim(*ylim)
    hh = np.linspace(min(r_hat[0], r_hat[1] / 100.0), ax.get_xlim()[1], 101)
    hh = hh[hh > 0]
    for i, crit in enumerate(cook_levels):
        cl = np.sqrt(crit * d.rank * (1.0 - hh) / hh)
        label = "Cook's distance" if i == 0 else None
        ax.plot(hh, cl, ls="--", color=CONTOUR_COLOR, lw=0.9, label=label)
        ax.plot(hh, -cl, ls="--", color=CONTOUR_COLOR, lw=0.9)
        # level label at the right edge, inside the plotted range
        xr = hh[-1]
        for sign in (1.0, -1.0):
            yv = sign * np.sqrt(crit * d.rank * (1.0 - xr) / xr)
            if ylim[0] < yv < ylim[1]:
                ax.annotate(
                    f"{crit:g}", (xr, yv), fontsize=7, color=CONTOUR_COLOR, ha="right", va="bottom"
                )
    ax.set_ylim(*ylim)
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.set_xlabel("Leverage")
    ax.set_title(CAPTIONS[5], fontsize=10)
    _annotate(ax, h, d.rs, d.labels, top)


def _residuals_vs_factor_levels(ax: Axes, d: _PanelData, factors, top) -> None:
    """R's constant-leverage panel 5: residuals against the factor level combinations.

    With factors :math:`f_1, \\dots, f_m` (levels :math:`n_1, \\dots, n_m`) the position of a
    case is :math:`\\sum_j (c_j - 1) w_j`, :math:`c_j` its level code and
    :math:`w = (n_2 \\cdots n_m, \\dots, n_m, 1)`; the first factor's levels label the axis.
    """
    codes = np.column_stack([np.asarray(f.cat.codes, dtype=float) for _, f in factors])
    nlev = [len(f.cat.categories) for _, f in factors]
    ff = np.ones(len(nlev))
    for j in range(len(nlev) - 2, -1, -1):
        ff[j] = ff[j + 1] * nlev[j + 1]
    x = codes @ ff
    _points(ax, x, d.rs)
    ax.axhline(0.0, ls=":", color="gray")
    first_name, first = factors[0]
    ax.set_xlim(-0.5, float(np.sum((np.array(nlev) - 1) * ff)) + 0.5)
    ax.set_xticks(ff[0] * (np.arange(1, nlev[0] + 1) - 0.5) - 0.5)
    ax.set_xticklabels([str(c) for c in first.cat.categories])
    for v in ff[0] * np.arange(nlev[0] + 1) - 0.5:
        ax.axvline(v, color="gray", ls=(0, (4, 4)), lw=0.6)
    ax.set_xlabel(f"{first_name} : Factor Level Combinations")
    ax.set_title("Constant Leverage: Residuals vs Factor Levels", fontsize=10)
    _annotate(ax, x, d.rs, d.labels, top)


def cooks_vs_leverage(ax: Axes, d: _PanelData, id_n: int = 3) -> None:
    r"""Panel 6: Cook's distance against :math:`h/(1-h)`."""
    with np.errstate(divide="ignore"):
        g = d.hat / (1.0 - d.hat)
    _points(ax, g, d.cook)
    finite = g[np.isfinite(g)]
    if finite.size and np.ptp(finite) < 1e-8 * max(float(np.mean(finite)), 1e-300):
        ax.set_xlim(finite[0] * 0.9, finite[0] * 1.1)  # constant leverage
    ax.ticklabel_format(axis="x", useOffset=False)
    ax.set_xlabel("Leverage h/(1-h)")
    ax.set_ylabel("Cook's distance")
    ax.set_title(CAPTIONS[6], fontsize=10)
    _annotate(ax, g, d.cook, d.labels, _top(d.cook, id_n))


def _grid(n_panels: int) -> tuple[int, int]:
    if n_panels <= 1:
        return 1, 1
    if n_panels == 2:
        return 1, 2
    if n_panels <= 4:
        return 2, 2
    return 2, 3


def _title(model: Any) -> str | None:
    formula = getattr(model, "formula", None)
    if formula is None:
        return None
    text = str(formula)
    family = getattr(model, "family", None)
    if family is not None and not getattr(model, "is_lm", False):
        text += f"  [{family.name}, {family.link.name}]"
    return text


def diagnostic_panels(
    model: Any,
    which: Sequence[int] = (1, 2, 3, 5),
    *,
    id_n: int = 3,
    smooth: bool = True,
    cook_levels: Sequence[float] = (0.5, 1.0),
    residual_type: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """R's ``plot.lm``: the panels listed in ``which`` (numbers 1..6, see the module doc).

    Parameters
    ----------
    model
        A fitted GLM or linear model (anything with the diagnostics protocol).
    which : sequence of int
        Panels to draw, in R's numbering; default ``(1, 2, 3, 5)`` as R.
    id_n : int
        Label the ``id_n`` most extreme points in each panel (by their row labels).
    smooth : bool
        Add a lowess smooth (R's ``add.smooth``) to panels 1, 3 and 5.
    cook_levels : sequence of float
        Cook's distance contours of panel 5.
    residual_type : {"pearson", "deviance"}, optional
        Residuals of a GLM's panels (R uses Pearson; older R versions used deviance).
    figsize : tuple, optional
        Figure size in inches.
    """
    which = [int(w) for w in (which if isinstance(which, Sequence) else [which])]
    if not which or any(w < 1 or w > 6 for w in which):
        raise PyglmmError("'which' must list panel numbers between 1 and 6")
    if residual_type is not None and residual_type not in ("pearson", "deviance"):
        raise PyglmmError("residual_type must be 'pearson' or 'deviance'")
    d = _PanelData(model, residual_type)
    nrow, ncol = _grid(len(which))
    fig = new_figure(figsize=figsize or (4.6 * ncol, 4.0 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, w in zip(axes, which, strict=False):
        if w == 1:
            residuals_vs_fitted(ax, d, id_n, smooth)
        elif w == 2:
            normal_qq(ax, d, id_n)
        elif w == 3:
            scale_location(ax, d, id_n, smooth)
        elif w == 4:
            cooks_by_observation(ax, d.cook, d.labels, id_n)
        elif w == 5:
            residuals_vs_leverage(ax, d, id_n, smooth, cook_levels)
        else:
            cooks_vs_leverage(ax, d, id_n)
    for ax in axes[len(which) :]:
        fig.delaxes(ax)
    title = _title(model)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# -------------------------------------------------------------- the notes' plots
def qq_plot(ax: Axes, values: np.ndarray, labels=None, *, id_n: int = 0, ylabel: str = "") -> None:
    """R's ``qqnorm`` + ``qqline`` of ``values``."""
    values = np.asarray(values, dtype=float)
    x = normal_scores(values)
    _points(ax, x, values)
    a, b = qqline_coefficients(values)
    lim = np.array([np.nanmin(x), np.nanmax(x)])
    ax.plot(lim, a + b * lim, color="gray", lw=1.0)
    ax.set_xlabel("Theoretical Quantiles")
    ax.set_ylabel(ylabel or "Sample Quantiles")
    ax.set_title("Normal Q-Q Plot", fontsize=10)
    if labels is not None and id_n:
        _annotate(ax, x, values, labels, _top(np.abs(values), id_n))


def histogram_with_normal(ax: Axes, values: np.ndarray, *, xlabel: str = "") -> None:
    """Density histogram (R's ``hist(freq=FALSE)``) with the normal density overlaid.

    The normal curve has the residuals' mean and standard deviation, as the notes'
    ``dnorm(x, mean(r), sd(r))``.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    breaks, density = histogram_density(v)
    ax.bar(
        breaks[:-1], density, width=np.diff(breaks), align="edge",
        facecolor="lightgray", edgecolor="black", lw=0.7,
    )  # fmt: skip
    mean, sd = float(np.mean(v)), float(np.std(v, ddof=1))
    lo = min(v.min(), mean - 3.5 * sd)
    hi = max(v.max(), mean + 3.5 * sd)
    grid = np.linspace(lo, hi, 201)
    ax.plot(grid, stats.norm.pdf(grid, mean, sd), color=SMOOTH_COLOR, lw=1.2, label="normal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Density")
    ax.set_title(f"Histogram of {xlabel}" if xlabel else "Histogram", fontsize=10)


VERSUS_LABELS = {
    "mean": "Fitted mean",
    "rate": "Fitted rate (mean / exp(offset))",
    "linear_predictor": "Linear predictor",
}


def _versus_values(model: Any, versus: str) -> np.ndarray:
    mu = np.asarray(model.fitted, dtype=float)
    if versus == "mean":
        return mu
    eta = np.asarray(model.linear_predictor, dtype=float)
    if versus == "linear_predictor":
        return eta
    # the offset is what the linear predictor adds to X beta
    used = ~np.asarray(model.aliased, dtype=bool)
    beta = np.asarray(model.coef, dtype=float)[used]
    offset = eta - np.asarray(model.model_matrix_rank, dtype=float) @ beta
    return mu / np.exp(offset)


def residuals_vs_mean(
    ax: Axes,
    model: Any,
    values: np.ndarray,
    labels,
    *,
    id_n: int = 3,
    ylabel: str = "",
    versus: str = "mean",
) -> None:
    r"""Residuals against the fitted mean :math:`\hat\mu` (the notes' ``plot(mu, r)``).

    ``versus="rate"`` divides the mean by :math:`e^{\text{offset}}` (with a log-exposure
    offset, the mean per unit of exposure: the notes' ``mu`` for the CEB data);
    ``versus="linear_predictor"`` plots against :math:`\hat\eta`.
    """
    if versus not in VERSUS_LABELS:
        raise PyglmmError(f"versus must be one of {', '.join(VERSUS_LABELS)}, not {versus!r}")
    x = _versus_values(model, versus)
    _points(ax, x, values)
    ax.axhline(0.0, ls=":", color="gray")
    ax.set_xlabel(VERSUS_LABELS[versus])
    ax.set_ylabel(ylabel)
    ax.set_title(f"Residuals vs {VERSUS_LABELS[versus].split(' (')[0].lower()}", fontsize=10)
    _annotate(ax, x, values, labels, _top(np.abs(values), id_n))


RESIDUAL_LABELS = {
    "deviance": "deviance residuals",
    "pearson": "Pearson residuals",
    "pearson_scaled": "scaled Pearson residuals",
    "standardized": "std. deviance residuals",
    "standardized_pearson": "std. Pearson residuals",
    "studentized": "studentized residuals",
    "response": "response residuals",
    "working": "working residuals",
}


def residual_panels(
    model: Any,
    type: str | Sequence[str] | None = None,
    *,
    id_n: int = 3,
    versus: str = "mean",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """The notes' residual plots: QQ, histogram with normal density, residuals vs fitted mean.

    Parameters
    ----------
    type : str or sequence of str, optional
        Residual type(s), one row of three panels each; default deviance and Pearson for a
        GLM, response (raw) residuals for a linear model.
    versus : {"mean", "rate", "linear_predictor"}
        x axis of the third panel: the fitted mean, the mean per unit of exposure
        (:math:`\\hat\\mu/e^{\\text{offset}}`) or the linear predictor.
    """
    if type is None:
        types = ["response"] if getattr(model, "is_lm", False) else ["deviance", "pearson"]
    elif isinstance(type, str):
        types = [type]
    else:
        types = list(type)
    labels = _labels(model)
    fig = new_figure(figsize=figsize or (13.0, 3.8 * len(types)), layout="constrained")
    axes = fig.subplots(len(types), 3, squeeze=False)
    for row, t in zip(axes, types, strict=True):
        values = np.asarray(model.residuals(t), dtype=float)
        name = RESIDUAL_LABELS.get(t, f"{t} residuals")
        qq_plot(row[0], values, labels, id_n=id_n, ylabel=name)
        histogram_with_normal(row[1], values, xlabel=name)
        residuals_vs_mean(row[2], model, values, labels, id_n=id_n, ylabel=name, versus=versus)
    title = _title(model)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def residual_figure(
    fitted: np.ndarray,
    residuals: np.ndarray,
    *,
    labels: Sequence[Any] | None = None,
    residual_label: str = "residuals",
    fitted_label: str = "Fitted values",
    title: str | None = None,
    id_n: int = 3,
    smooth: bool = True,
    figsize: tuple[float, float] = (13.0, 3.8),
) -> Figure:
    """Residuals against fitted values (with a lowess smooth), normal QQ and histogram.

    For any model that gives fitted values and residuals (e.g. mixed models, whose
    leverage-based panels do not apply).
    """
    x = np.asarray(fitted, dtype=float)
    r = np.asarray(residuals, dtype=float)
    labels_arr = np.asarray(
        [str(v) for v in (labels if labels is not None else range(1, r.size + 1))], dtype=object
    )
    fig = new_figure(figsize=figsize, layout="constrained")
    ax_fit, ax_qq, ax_hist = fig.subplots(1, 3)
    _points(ax_fit, x, r)
    ax_fit.axhline(0.0, ls=":", color="gray")
    if smooth:
        _smooth(ax_fit, x, r, 0)
    ax_fit.set_xlabel(fitted_label)
    ax_fit.set_ylabel(residual_label)
    ax_fit.set_title("Residuals vs Fitted", fontsize=10)
    _annotate(ax_fit, x, r, labels_arr, _top(np.abs(r), id_n))
    qq_plot(ax_qq, r, labels_arr, id_n=id_n, ylabel=residual_label)
    histogram_with_normal(ax_hist, r, xlabel=residual_label)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def cooks_plot(
    model: Any,
    *,
    n_labels: int = 3,
    form: str = "hat",
    figsize: tuple[float, float] = (7.0, 4.0),
) -> Figure:
    """Cook's distance by observation, the ``n_labels`` largest labelled with their row labels.

    ``form`` is passed to ``model.cooks_distance`` (``"hat"`` or ``"refit"``).
    """
    cook = np.asarray(model.cooks_distance(form=form), dtype=float)
    fig = new_figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    cooks_by_observation(ax, cook, _labels(model), n_labels)
    title = _title(model)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
