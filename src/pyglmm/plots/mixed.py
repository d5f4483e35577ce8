r"""Plots of fitted mixed models (matplotlib Figures, drawn without pyplot).

* :func:`caterpillar_plot`: conditional modes of the random effects with prediction
  intervals :math:`\hat b \pm z_{1-\alpha/2}\sqrt{\operatorname{Var}(b\mid y)}`, levels sorted by
  the mode, one panel per grouping factor and term column (lattice's
  ``dotplot(ranef(m, condVar = TRUE))``);
* :func:`residuals_vs_fitted`: Pearson residuals against fitted values (lme4's ``plot(m)``);
* :func:`qq_residuals`: normal QQ plot of the residuals with R's ``qqline``;
* :func:`qq_ranef`: normal QQ plots of the conditional modes per term column
  (``qqmath(ranef(m))``);
* :func:`profile_plot`: :math:`\zeta` against each parameter (lme4's ``xyplot(profile(m))``),
  the interpolating spline, and drop lines to the profile confidence limits.

Every function takes the fitted model (the profile plot also a precomputed profile)
and returns a :class:`matplotlib.figure.Figure`; save with ``fig.savefig``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from pyglmm.errors import PyglmmError
from pyglmm.plots.regression import POINT_STYLE, new_figure, normal_scores, qqline_coefficients

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn (new_figure)
    from matplotlib.figure import Figure

POINTS_GID = "points"


def _grid(k: int, max_cols: int = 3) -> tuple[int, int]:
    ncols = min(k, max_cols)
    return math.ceil(k / ncols), ncols


def _panels(model) -> list[tuple[str, str, np.ndarray, np.ndarray, list[str]]]:
    """(group, column, modes, conditional SDs, level labels) per term column."""
    out = []
    cv = model.ranef_condvar
    for t, bk, V in zip(model.terms, model.ranef_terms, cv, strict=True):
        for j, cn in enumerate(t.cnames):
            out.append((t.group, cn, bk[:, j], np.sqrt(V[:, j, j]), [str(x) for x in t.levels]))
    return out


def caterpillar_plot(
    model: Any, level: float = 0.95, groups: Sequence[str] | None = None, max_levels: int = 200
) -> Figure:
    """Caterpillar plot of the conditional modes with ``level`` prediction intervals.

    Parameters
    ----------
    model : LinearMixedModel or GeneralizedLinearMixedModel
    level : float
        Coverage of the intervals (from the conditional variances, as lme4's ``condVar``).
    groups : sequence of str, optional
        Grouping factors to show (default all).
    max_levels : int
        Level labels are drawn only up to this many levels per panel.
    """
    panels = [p for p in _panels(model) if groups is None or p[0] in set(groups)]
    if not panels:
        raise PyglmmError(f"no random-effects terms for groups {groups!r}")
    z = stats.norm.ppf(0.5 + level / 2.0)
    nr, nc = _grid(len(panels))
    maxlev = max(len(p[2]) for p in panels)
    fig = new_figure(figsize=(3.6 * nc, max(3.0, min(0.16 * maxlev + 1.2, 14.0)) * nr))
    # lattice sorts the levels of a factor by its first column's modes
    order_by_group: dict[str, np.ndarray] = {}
    for g, _, b, _, _ in panels:
        order_by_group.setdefault(g, np.argsort(b, kind="stable"))
    for k, (g, cn, b, sd, labels) in enumerate(panels):
        ax = fig.add_subplot(nr, nc, k + 1)
        o = order_by_group[g]
        pos = np.arange(len(b))
        ax.errorbar(b[o], pos, xerr=z * sd[o], fmt="none", ecolor="0.45", elinewidth=0.9, capsize=0)
        ax.plot(b[o], pos, "o", color="tab:blue", markersize=3.5, gid=POINTS_GID)
        ax.axvline(0.0, color="0.6", lw=0.8, ls="--")
        if len(b) <= max_levels:
            ax.set_yticks(pos)
            ax.set_yticklabels([labels[i] for i in o], fontsize=7 if len(b) > 30 else 8)
        else:
            ax.set_yticks([])
        ax.set_ylim(-0.7, len(b) - 0.3)
        ax.set_title(f"{g}: {cn}", fontsize=10)
        ax.set_xlabel("Conditional mode")
    fig.suptitle(f"Random effects with {100 * level:g}% intervals", fontsize=11)
    fig.tight_layout()
    return fig


def residuals_vs_fitted(model: Any) -> Figure:
    """Pearson residuals against fitted values, as lme4's ``plot(m)``."""
    r = np.asarray(model.residuals(type="pearson"), dtype=float)
    f = np.asarray(model.fitted, dtype=float)
    fig = new_figure(figsize=(5.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(f, r, **POINT_STYLE, gid=POINTS_GID)
    ax.axhline(0.0, color="0.5", ls=":")
    ax.set_xlabel("Fitted values")
    ax.set_ylabel("Pearson residuals")
    ax.set_title("Residuals vs Fitted", fontsize=10)
    fig.tight_layout()
    return fig


def qq_residuals(model: Any) -> Figure:
    """Normal QQ plot of the Pearson residuals with R's ``qqline``."""
    r = np.asarray(model.residuals(type="pearson"), dtype=float)
    fig = new_figure(figsize=(5.0, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    q = normal_scores(r)
    ax.plot(q, r, **POINT_STYLE, gid=POINTS_GID)
    a, s = qqline_coefficients(r)
    xs = np.array([np.nanmin(q), np.nanmax(q)])
    ax.plot(xs, a + s * xs, color="tab:red", lw=1.0)
    ax.set_xlabel("Theoretical Quantiles")
    ax.set_ylabel("Pearson residuals")
    ax.set_title("Normal Q-Q of residuals", fontsize=10)
    fig.tight_layout()
    return fig


def qq_ranef(model: Any) -> Figure:
    """Normal QQ plots of the conditional modes, one panel per grouping factor and column."""
    panels = _panels(model)
    nr, nc = _grid(len(panels))
    fig = new_figure(figsize=(3.6 * nc, 3.3 * nr))
    for k, (g, cn, b, _, _) in enumerate(panels):
        ax = fig.add_subplot(nr, nc, k + 1)
        q = normal_scores(b)
        ax.plot(q, b, "o", color="tab:blue", markersize=3.5, gid=POINTS_GID)
        if len(b) >= 4 and np.ptp(b) > 0:
            a, s = qqline_coefficients(b)
            xs = np.array([q.min(), q.max()])
            ax.plot(xs, a + s * xs, color="tab:red", lw=1.0)
        ax.set_title(f"{g}: {cn}", fontsize=10)
        ax.set_xlabel("Standard normal quantiles")
        ax.set_ylabel("Conditional mode")
    fig.tight_layout()
    return fig


def profile_plot(
    model: Any = None,
    prof: Any = None,
    levels: Sequence[float] = (0.5, 0.8, 0.9, 0.95, 0.99),
    absolute: bool = False,
) -> Figure:
    r"""Profile zeta plots, as lme4's ``xyplot(profile(m))``.

    Parameters
    ----------
    model : LinearMixedModel, optional
        Profiled here when ``prof`` is not given.
    prof : LmmProfile, optional
        A result of :func:`pyglmm.inference.profile.profile`.
    levels : sequence of float
        Confidence levels whose limits get drop lines (:math:`\zeta = \pm z_{(1+l)/2}`).
    absolute : bool
        Plot :math:`|\zeta|` (lme4's ``absVal = TRUE``).
    """
    if prof is None:
        if model is None:
            raise PyglmmError("profile_plot needs a model or a profile")
        from pyglmm.inference.profile import profile

        prof = profile(model)
    names = list(prof.names)
    nr, nc = _grid(len(names), max_cols=4)
    fig = new_figure(figsize=(3.2 * nc, 3.0 * nr))
    zs = stats.norm.ppf(0.5 + np.asarray(levels) / 2.0)
    for k, nm in enumerate(names):
        ax = fig.add_subplot(nr, nc, k + 1)
        sub = prof.frame[prof.frame[".par"] == nm]
        x = sub[nm].to_numpy()
        zeta = sub[".zeta"].to_numpy()
        ok = np.isfinite(zeta)
        fwd = prof.forward.get(nm)
        if fwd is not None:
            xs = np.linspace(x[ok].min(), x[ok].max(), 201)
            ys = fwd(xs)
            ax.plot(xs, np.abs(ys) if absolute else ys, color="tab:blue", lw=1.2)
        ax.plot(
            x[ok],
            np.abs(zeta[ok]) if absolute else zeta[ok],
            "o",
            color="tab:blue",
            markersize=2.5,
            gid=POINTS_GID,
        )
        bak = prof.backward.get(nm)
        if bak is not None:
            for zq in zs:
                for sgn in (1.0,) if absolute else (-1.0, 1.0):
                    xv = float(bak(np.array([sgn * zq]))[0])
                    if np.isfinite(xv):
                        yv = zq if absolute else sgn * zq
                        ax.plot([xv, xv], [0.0, yv], color="0.6", lw=0.7)
        ax.axhline(0.0, color="0.8", lw=0.6)
        ax.set_title(nm, fontsize=10)
        ax.set_ylabel("|ζ|" if absolute else "ζ")
    fig.tight_layout()
    return fig


__all__ = [
    "caterpillar_plot",
    "profile_plot",
    "qq_ranef",
    "qq_residuals",
    "residuals_vs_fitted",
]


class MixedPlotsMixin:
    """Plot methods shared by :class:`~pyglmm.mixed.lmer.LinearMixedModel` and
    :class:`~pyglmm.mixed.glmer.GeneralizedLinearMixedModel`."""

    def plot_ranef(self, level: float = 0.95, **kw: Any) -> Figure:
        """Caterpillar plot of the conditional modes with intervals."""
        return caterpillar_plot(self, level=level, **kw)

    def plot_residuals(self) -> Figure:
        """Residuals against fitted values."""
        return residuals_vs_fitted(self)

    def plot_qq(self) -> Figure:
        """Normal QQ plot of the residuals."""
        return qq_residuals(self)

    def plot_qq_ranef(self) -> Figure:
        """Normal QQ plots of the conditional modes, one panel per term."""
        return qq_ranef(self)

    def plot_profile(self, prof: Any = None, **kw: Any) -> Figure:
        """Profile zeta plots (as lme4's ``xyplot(profile(m))``)."""
        return profile_plot(self, prof=prof, **kw)
