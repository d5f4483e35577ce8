"""Moment start values of θ (:mod:`pyglmm.mixed.start_values`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pyglmm as pg
from pyglmm.formula.frame import model_frame
from pyglmm.formula.random import random_terms
from pyglmm.mixed.blocks import LmmBlocks
from pyglmm.mixed.start_values import moment_start


def _crossed(seed=0, n=20_000, sg=0.5, sh=0.3, noise=1.0):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 300, n)
    h = rng.integers(0, 40, n)
    x = rng.normal(size=n)
    y = 1 + 0.3 * x + rng.normal(size=300)[g] * sg + rng.normal(size=40)[h] * sh
    y = y + rng.normal(size=n) * noise
    return pd.DataFrame({"y": y, "x": x, "g": g, "h": h, "w": rng.uniform(0.5, 2.0, n)})


def _blocks(formula, data, weights=None):
    mf = model_frame(formula, data, weights=weights)
    terms = random_terms(mf.random, mf.data)
    return mf, terms, LmmBlocks(terms, mf.X, mf.y, mf.weights)


@pytest.mark.parametrize("weights", [None, "w"])
def test_moment_start_equals_the_row_formula(weights):
    df = _crossed()
    mf, terms, blocks = _blocks("y ~ x + (1 | g) + (1 | h)", df, weights)
    th = moment_start(blocks, floor=0.0)
    sw = np.ones(len(mf.y)) if mf.weights is None else np.sqrt(mf.weights)
    X, y = mf.X * sw[:, None], mf.y * sw
    r = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    n, p = X.shape
    expected = []
    for t in terms:
        z = t.z[:, 0] * sw
        S = np.bincount(t.refs, weights=z * r, minlength=t.nlevels)
        Q = np.bincount(t.refs, weights=z * z, minlength=t.nlevels)
        ssb = np.sum(S**2 / Q)
        s2 = (r @ r - ssb) / (n - p - t.nlevels)
        expected.append(np.sqrt(max((ssb - t.nlevels * s2) / Q.sum(), 0) / s2))
    np.testing.assert_allclose(th, expected, rtol=1e-8)


def test_moment_start_is_near_the_reml_estimate():
    df = _crossed(seed=1)
    m = pg.lmer("y ~ x + (1 | g) + (1 | h)", df)
    _, _, blocks = _blocks("y ~ x + (1 | g) + (1 | h)", df)
    th = moment_start(blocks)
    np.testing.assert_allclose(th, m.theta, rtol=0.3)
    assert np.all(th >= 0.1)


def test_moment_start_only_for_scalar_terms():
    sleep = pg.datasets.load("sleepstudy")
    _, _, blocks = _blocks("Reaction ~ Days + (Days | Subject)", sleep)
    assert moment_start(blocks) is None
