"""Adaptive Gauss-Hermite quadrature for a GLMM with one scalar random-effects term.

With a single scalar term the integral over ``u`` factors into one integral per
level ``j`` of the grouping factor.  Centring each at the conditional mode
``ũ_j`` and scaling by the conditional standard deviation ``s_j = 1/L_{jj}``
(lme4's ``glmerAGQ``), with the nodes ``z_k`` and weights ``w_k`` of the
Gauss-Hermite rule for the standard normal density,

.. math::

    −2\\ell_{AGQ} = \\sum_j c_j(ũ) + \\log|L|^2
        − 2 \\sum_j \\log \\sum_k w_k \\exp\\bigl(z_k^2/2 − (c_j(ũ + z_k s) − c_j(ũ))/2\\bigr),

where ``c_j(u) = u_j² + Σ_{i ∈ j} d_i(y_i, μ_i(u))`` (unit deviances, not the
family's ``aic``: this is how lme4 defines the AGQ deviance, so ``logLik`` of a
``nAGQ > 1`` fit differs from the Laplace one by the saturated log-likelihood).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.special import roots_hermitenorm

from pyglmm.errors import PyglmmError
from pyglmm.mixed.pirls import Pirls


@cache
def gh_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``z`` and weights ``w`` (summing to 1) of the ``n``-point Gauss-Hermite
    rule for the standard normal density (lme4's ``GHrule``)."""
    if n < 1 or n > 100:
        raise PyglmmError(f"nagq must be between 1 and 100, got {n}")
    z, w = roots_hermitenorm(n)
    w = w / np.sqrt(2.0 * np.pi)
    z = np.where(np.abs(z) < 1e-14, 0.0, z)
    return z, w


def check_agq_model(pirls: Pirls) -> None:
    """lme4's restriction: AGQ only for a single scalar random-effects term."""
    if len(pirls.terms) != 1 or pirls.terms[0].q != 1:
        raise PyglmmError(
            "nagq > 1 (adaptive Gauss-Hermite quadrature) is only defined for models with a "
            "single scalar random-effects term such as (1 | g); use nagq=1 (Laplace)"
        )


def agq_deviance(pirls: Pirls, theta: np.ndarray, beta: np.ndarray, nagq: int) -> float:
    """The AGQ deviance at ``(θ, β)`` (runs PIRLS for the modes first)."""
    pirls.nevals += 1
    pirls.run(theta, beta)
    t = pirls.terms[0]
    f = pirls.factor
    u = pirls.state.u0
    lam = float(pirls.lams[0][0, 0])
    nl = t.nlevels
    devc0 = u * u + np.bincount(t.refs, weights=pirls.devres, minlength=nl)
    sd = 1.0 / np.sqrt(f.T[:, 0, 0])
    z, w = gh_rule(int(nagq))
    eta0 = pirls.eta
    zcol = t.z[:, 0] * lam
    resp = pirls.resp
    mult = np.zeros(nl)
    for zk, wk in zip(z, w, strict=True):
        if zk == 0.0:
            mult += wk
            continue
        du = zk * sd
        eta = eta0 + zcol * du[t.refs]
        mu = resp.mu(eta)
        uu = u + du
        devc = uu * uu + np.bincount(t.refs, weights=resp.dev_resids(mu), minlength=nl)
        mult += wk * np.exp(0.5 * zk * zk - 0.5 * (devc - devc0))
    return float(devc0.sum() + f.ldL2 - 2.0 * np.log(mult).sum())
