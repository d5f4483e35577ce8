"""Per-row quantities of a distributed fit, kept on the cluster as lazy Dask objects.

A fit on a Dask DataFrame brings only sums to the client. Fitted values, linear
predictors and residuals have one value per row, so they are returned as lazy Dask
Series (indexed like the input, incomplete rows left out as ``na.omit`` does): call
``.compute()`` when they fit in memory, ``.to_parquet()`` when they do not, or reduce
them further (``.mean()``, ``.quantile(...)``) on the cluster.

Diagnostics that need every row at once on the client (hat values, Cook's distances,
leave-one-out refits, plots) are not available for distributed fits; they raise a
:class:`DistributedNotSupported` error that says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pyglmm.errors import PyglmmError


class DistributedNotSupported(PyglmmError):
    """An operation that needs all rows on the client, asked of a distributed fit."""


def _glm_rows(part: pd.DataFrame, encoder, family, beta: np.ndarray, what: str) -> pd.Series:
    from pyglmm.diagnostics.residuals import deviance_residuals

    e = encoder.encode(part)
    eta = e.X @ beta + e.offset if e.n else np.zeros(0)
    if what == "link":
        return pd.Series(eta, index=e.index, name="fit", dtype=float)
    mu = family.linkinv(eta) if e.n else np.zeros(0)
    if what == "fitted":
        return pd.Series(mu, index=e.index, name="fitted", dtype=float)
    if what == "response_fit":
        return pd.Series(mu, index=e.index, name="fit", dtype=float)
    w = np.ones(e.n) if e.weights is None else e.weights
    _, y, w, _ = family.initialize(e.y, w) if e.n else (None, np.zeros(0), w, None)
    if what in ("y", "prior_weights"):
        values = y if what == "y" else w
        return pd.Series(values, index=e.index, name=what, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if what == "response":
            r = y - mu
        elif what == "working":
            r = (y - mu) / family.mu_eta(eta)
        elif what == "pearson":
            r = (y - mu) * np.sqrt(w) / np.sqrt(family.variance(mu))
        elif what == "deviance":
            r = deviance_residuals(y, mu, w, family) if e.n else np.zeros(0)
        else:  # pragma: no cover - guarded by the caller
            raise ValueError(what)
    return pd.Series(r, index=e.index, name="residuals", dtype=float)


def lazy_rows(frame, family, beta: np.ndarray, what: str) -> Any:
    """A lazy Dask Series of a per-row quantity of a GLM/LM fit.

    ``what``: ``"fitted"`` (:math:`\\hat\\mu`), ``"link"`` (:math:`\\hat\\eta` with the
    offset), or a residual type ``"response"``, ``"working"``, ``"pearson"``,
    ``"deviance"``.
    """
    beta = np.where(np.isnan(beta), 0.0, np.asarray(beta, dtype=float))
    names = {"fitted": "fitted", "link": "fit", "response_fit": "fit", "y": "y"}
    names["prior_weights"] = "prior_weights"
    name = names.get(what, "residuals")
    meta = pd.Series(dtype=float, name=name)
    meta.index = frame.ddf._meta.index
    return frame.ddf.map_partitions(
        _glm_rows, frame.encoder, family, beta, what, meta=meta, enforce_metadata=False
    )


#: Up to this many rows the summaries' residual quartiles are exact (the residuals,
#: 8 bytes a row, are brought to the client); beyond, Dask's approximate quantiles.
EXACT_QUANTILES_MAX_ROWS = 1_000_000


def approximate_quantiles(series: Any, nobs: int | None = None) -> np.ndarray:
    """Min, quartiles and max of a lazy Series (R's type 7).

    Exact when ``nobs <= EXACT_QUANTILES_MAX_ROWS``; otherwise Dask's quantiles, which
    merge per-partition percentiles: min and max exact, the quartiles approximate.
    """
    probs = [0, 0.25, 0.5, 0.75, 1.0]
    if nobs is not None and nobs <= EXACT_QUANTILES_MAX_ROWS:
        return np.quantile(series.compute().to_numpy(dtype=float), probs)
    q = series.quantile(probs).compute()
    return np.asarray(q, dtype=float)


class RowsOnClusterMixin:
    """Overrides for diagnostics that would need every row on the client."""

    _why = (
        "needs every row on the client; a fit on a Dask DataFrame keeps rows on the "
        "cluster. Fit the model in memory (on a sample or an aggregate) for diagnostics"
    )

    def _not_supported(self, what: str):
        raise DistributedNotSupported(f"{what} {self._why}")

    def hat_values(self, *args, **kwargs):
        self._not_supported("hat_values()")

    def cooks_distance(self, *args, **kwargs):
        self._not_supported("cooks_distance()")

    def dfbeta(self, *args, **kwargs):
        self._not_supported("dfbeta()")

    def dfbetas(self, *args, **kwargs):
        self._not_supported("dfbetas()")

    def dffits(self, *args, **kwargs):
        self._not_supported("dffits()")

    def covratio(self, *args, **kwargs):
        self._not_supported("covratio()")

    def influence(self, *args, **kwargs):
        self._not_supported("influence()")

    def influence_flags(self, *args, **kwargs):
        self._not_supported("influence_flags()")

    def shapiro(self, *args, **kwargs):
        self._not_supported("shapiro()")

    def plot(self, *args, **kwargs):
        self._not_supported("plot()")

    def plot_residuals(self, *args, **kwargs):
        self._not_supported("plot_residuals()")

    def plot_cooks(self, *args, **kwargs):
        self._not_supported("plot_cooks()")

    def refit_without(self, *args, **kwargs):
        self._not_supported("refit_without()")

    @property
    def working_weights(self):
        self._not_supported("working_weights (IRLS weights per row)")
