"""Variance components of a fitted mixed model, as R's ``as.data.frame(VarCorr(m))``.

For term ``k`` the covariance matrix of its random effects is
``Σ_k = σ² λ_k λ_kᵀ``.  The rows are, term by term (lme4's term order), the
variances (``var2`` missing, ``sdcor`` the standard deviation), then the
covariances of the pairs ``(j, i)``, ``j < i`` in column-major order (``sdcor`` the
correlation), and finally the residual variance ``σ²``.  Repeated group names
(``(x || g)``) are made unique as R's ``make.unique``: ``g``, ``g.1``, ...
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pyglmm.mixed.remat import ReMat


def term_covariances(
    terms: list[ReMat], lambdas: list[np.ndarray], sigma: float
) -> list[np.ndarray]:
    """``Σ_k = σ² λ_k λ_kᵀ`` for every term."""
    return [sigma**2 * (lam @ lam.T) for lam in lambdas]


def unique_group_names(terms: list[ReMat]) -> list[str]:
    """R's ``make.unique`` of the terms' group names."""
    seen: dict[str, int] = {}
    out = []
    for t in terms:
        k = seen.get(t.group, 0)
        out.append(t.group if k == 0 else f"{t.group}.{k}")
        seen[t.group] = k + 1
    return out


def varcorr_frame(
    terms: list[ReMat], lambdas: list[np.ndarray], sigma: float | None
) -> pd.DataFrame:
    """The DataFrame ``group, var1, var2, vcov, sdcor`` (``sigma=None``: no residual row)."""
    rows = []
    for name, t, S in zip(
        unique_group_names(terms),
        terms,
        term_covariances(terms, lambdas, sigma or 1.0),
        strict=True,
    ):
        sd = np.sqrt(np.diag(S))
        for i in range(t.q):
            rows.append((name, t.cnames[i], None, S[i, i], sd[i]))
        for j in range(t.q):
            for i in range(j + 1, t.q):
                denom = sd[i] * sd[j]
                corr = S[i, j] / denom if denom > 0 else np.nan
                rows.append((name, t.cnames[j], t.cnames[i], S[i, j], corr))
    if sigma is not None:
        rows.append(("Residual", None, None, sigma**2, sigma))
    df = pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"])
    for col in ("var1", "var2"):  # missing names are None (R's NA), not NaN
        df[col] = pd.Series([v if isinstance(v, str) else None for v in df[col]], dtype=object)
    return df
