"""Data for the benchmarks: bundled data sets and simulations with fixed seeds.

Every generator is deterministic (numpy's PCG64 with the seed given), returns a pandas
DataFrame whose factor columns are categoricals with zero-padded labels (so R's and Python's
sorted level orders agree), and is cached per process.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd


def _factor(codes: np.ndarray, n_levels: int, prefix: str) -> pd.Categorical:
    width = len(str(n_levels))
    labels = [f"{prefix}{i + 1:0{width}d}" for i in range(n_levels)]
    return pd.Categorical.from_codes(codes, categories=labels)


def _expit(eta: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-eta))


# ---------------------------------------------------------------------------------------------
# bundled


@cache
def bundled(name: str) -> pd.DataFrame:
    """A bundled data set through pyglmm's loader (R level order), e.g. ``sleepstudy``."""
    import pyglmm

    return pyglmm.datasets.load(name)


@cache
def cbpp() -> pd.DataFrame:
    """cbpp with the failure count as a column: ``cbind(incidence, notinc)`` in every package
    (not every peer accepts the expression ``size - incidence`` inside ``cbind``)."""
    df = bundled("cbpp").copy()
    df["notinc"] = df["size"] - df["incidence"]
    return df[["herd", "period", "incidence", "size", "notinc"]]


def cbpp_bernoulli() -> pd.DataFrame:
    """cbpp expanded to one 0/1 row per animal (842 rows), for peers that take only 0/1
    responses (statsmodels' BinomialBayesMixedGLM). Same binomial likelihood up to a constant."""
    df = cbpp()
    reps_1 = df.loc[df.index.repeat(df["incidence"])].assign(y=1)
    reps_0 = df.loc[df.index.repeat(df["notinc"])].assign(y=0)
    out = pd.concat([reps_1, reps_0], ignore_index=True)
    return out[["herd", "period", "y"]]


# ---------------------------------------------------------------------------------------------
# GLM


def glm_formula(p: int) -> str:
    return "y ~ " + " + ".join(f"x{j}" for j in range(1, p))


@cache
def glm_dense(n: int, family: str, p: int = 20, seed: int = 1) -> pd.DataFrame:
    """Dense GLM data: intercept + (p - 1) standard-normal covariates, ``p`` columns in all.

    True coefficients are bounded away from zero (|b_j| in [0.05, 0.15] for Poisson, [0.1, 0.3]
    for the logit) so relative coefficient differences are meaningful.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p - 1))
    lo, hi = (0.05, 0.15) if family == "poisson" else (0.1, 0.3)
    beta = rng.uniform(lo, hi, p - 1) * rng.choice([-1.0, 1.0], p - 1)
    if family == "poisson":
        y = rng.poisson(np.exp(0.5 + X @ beta)).astype(float)
    elif family == "binomial":
        y = (rng.random(n) < _expit(-0.3 + X @ beta)).astype(float)
    else:
        raise ValueError(family)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(1, p)])
    df.insert(0, "y", y)
    return df


@cache
def glm_factor(
    n: int = 100_000, n_levels: int = 1000, p_num: int = 5, seed: int = 2
) -> pd.DataFrame:
    """Poisson data with a ``n_levels``-level factor ``f`` and ``p_num`` numeric covariates:
    ``y ~ x1 + ... + x5 + f`` has 1 + p_num + (n_levels - 1) columns."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p_num))
    beta = rng.uniform(0.05, 0.15, p_num) * rng.choice([-1.0, 1.0], p_num)
    codes = rng.integers(0, n_levels, n)
    # level effects bounded away from the first level's, so contrasts are not near zero
    a = rng.uniform(0.2, 0.6, n_levels) * rng.choice([-1.0, 1.0], n_levels)
    a[0] = 0.0
    y = rng.poisson(np.exp(0.3 + X @ beta + a[codes])).astype(float)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(1, p_num + 1)])
    df.insert(0, "y", y)
    df["f"] = _factor(codes, n_levels, "L")
    return df


def glm_factor_formula(p_num: int = 5) -> str:
    return "y ~ " + " + ".join(f"x{j}" for j in range(1, p_num + 1)) + " + f"


# ---------------------------------------------------------------------------------------------
# LMM


@cache
def penicillin_like(seed: int = 3) -> pd.DataFrame:
    """Penicillin-sized fully crossed data: 24 plates x 6 samples = 144 rows,
    ``diameter ~ 1 + (1|plate) + (1|sample)`` with lme4's Penicillin estimates as truth
    (intercept 22.97, sd plate 0.85, sd sample 1.93, residual sd 0.55)."""
    rng = np.random.default_rng(seed)
    plate = np.repeat(np.arange(24), 6)
    sample = np.tile(np.arange(6), 24)
    y = (
        22.97
        + rng.normal(0, 0.85, 24)[plate]
        + rng.normal(0, 1.93, 6)[sample]
        + rng.normal(0, 0.55, 144)
    )
    return pd.DataFrame(
        {
            "diameter": np.round(y, 2),
            "plate": _factor(plate, 24, "p"),
            "sample": _factor(sample, 6, "s"),
        }
    )


@cache
def crossed_lmm(n: int = 20_000, n1: int = 1000, n2: int = 50, seed: int = 4) -> pd.DataFrame:
    """A larger crossed LMM: ``y ~ 1 + x + (1|g1) + (1|g2)``, g1 with ``n1`` levels (think
    subjects), g2 with ``n2`` (items); each row a random (g1, g2) pair."""
    rng = np.random.default_rng(seed)
    g1 = rng.integers(0, n1, n)
    g2 = rng.integers(0, n2, n)
    x = rng.standard_normal(n)
    y = (
        1.0
        + 0.5 * x
        + rng.normal(0, 0.8, n1)[g1]
        + rng.normal(0, 0.5, n2)[g2]
        + rng.normal(0, 1.0, n)
    )
    return pd.DataFrame({"y": y, "x": x, "g1": _factor(g1, n1, "a"), "g2": _factor(g2, n2, "b")})


# ---------------------------------------------------------------------------------------------
# GLMM


@cache
def binomial_crossed(
    n1: int, n2: int, n: int | None = None, seed: int = 5, sd1: float = 1.0, sd2: float = 0.6
) -> pd.DataFrame:
    """0/1 responses with two crossed factors: ``y ~ 1 + x1 + x2 + (1|g1) + (1|g2)``.

    With ``n`` None the design is complete (every g1 with every g2, ``n1 * n2`` rows, like
    VerbAgg's subjects x items); otherwise ``n`` rows with random (g1, g2) pairs.
    """
    rng = np.random.default_rng(seed)
    if n is None:
        g1 = np.repeat(np.arange(n1), n2)
        g2 = np.tile(np.arange(n2), n1)
        n = n1 * n2
    else:
        g1 = rng.integers(0, n1, n)
        g2 = rng.integers(0, n2, n)
    x1 = rng.standard_normal(n)
    x2 = rng.standard_normal(n)
    eta = -0.5 + 0.8 * x1 - 0.4 * x2 + rng.normal(0, sd1, n1)[g1] + rng.normal(0, sd2, n2)[g2]
    y = (rng.random(n) < _expit(eta)).astype(float)
    return pd.DataFrame(
        {"y": y, "x1": x1, "x2": x2, "g1": _factor(g1, n1, "a"), "g2": _factor(g2, n2, "b")}
    )
