"""Confidence intervals for the parameters of a linear mixed model (lme4's ``confint.merMod``).

Rows are lme4's: ``.sig01, .sig02, ...`` (random-effect standard deviations and
correlations, in the order of θ), ``.sigma``, then the fixed effects.

* ``method="profile"``: profile-likelihood intervals (:mod:`pyglmm.inference.profile`);
* ``method="wald"``: ``β̂ ± z_{1−α/2} SE`` for the fixed effects, NaN (R's NA) for the
  variance parameters, as lme4;
* ``method="boot"``: percentile (or ``"basic"``/``"norm"``) intervals from a parametric
  bootstrap (:func:`pyglmm.inference.bootstrap.bootstrap`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pyglmm.errors import PyglmmError
from pyglmm.inference.profile import _pct_names, _profile_names, profile


def wald_confint(model, level: float = 0.95) -> pd.DataFrame:
    """lme4's ``confint(m, method="Wald")``."""
    names = _profile_names(model)
    nvp = len(model.theta) + 1
    z = stats.norm.ppf(0.5 + level / 2.0)
    out = np.full((len(names), 2), np.nan)
    b = model.fixef.to_numpy()
    se = model.se.to_numpy()
    out[nvp:, 0] = b - z * se
    out[nvp:, 1] = b + z * se
    return pd.DataFrame(out, index=pd.Index(names), columns=_pct_names(level))


def confint(
    model,
    parm=None,
    level: float = 0.95,
    method: str = "profile",
    *,
    nsim: int = 500,
    boot_type: str = "perc",
    seed: int | None = None,
    n_jobs: int = -1,
    progress: bool = False,
    **kwargs: Any,
) -> pd.DataFrame:
    """Confidence intervals as lme4's ``confint(m, parm, level, method)``.

    Parameters
    ----------
    model : LinearMixedModel
    parm : list of str, optional
        Row names to keep (also ``"theta_"``, ``"beta_"``); default all.
    level : float
    method : "profile", "wald" or "boot"
    nsim, boot_type, seed, n_jobs, progress
        For ``method="boot"``.
    **kwargs
        Passed to :func:`pyglmm.inference.profile.profile`.
    """
    meth = method.lower()
    names = _profile_names(model)
    nvp = len(model.theta) + 1
    if parm is None:
        keep = names
    else:
        parm = [parm] if isinstance(parm, str) else list(parm)
        keep = []
        for p in parm:
            if p == "theta_":
                keep.extend(names[:nvp])
            elif p == "beta_":
                keep.extend(names[nvp:])
            elif p in names:
                keep.append(p)
            else:
                raise PyglmmError(f"unknown parameter {p!r}; have {names}")
    if meth == "wald":
        return wald_confint(model, level).loc[keep]
    if meth == "profile":
        pr = profile(model, which=keep, **kwargs)
        return pr.confint(level).loc[keep]
    if meth in ("boot", "bootstrap"):
        from pyglmm.inference.bootstrap import bootstrap

        bb = bootstrap(model, nsim=nsim, seed=seed, n_jobs=n_jobs, progress=progress)
        ci = bb.confint(level=level, type=boot_type)
        return ci.loc[[k for k in keep if k in ci.index]]
    raise PyglmmError(f"method must be 'profile', 'wald' or 'boot', not {method!r}")
