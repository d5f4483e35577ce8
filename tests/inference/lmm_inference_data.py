"""Shared fits and reference data for the inference tests (R reference values in
tests/fixtures/lmm_inference, written by tools/reference/lmm_inference.R)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import pyglmm as pg
from pyglmm.mixed.lmer import lmer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lmm_inference"


def load_fixture(name: str) -> dict:
    with open(FIXTURES / f"{name}.json") as fh:
        return json.load(fh)


def col(tab: dict, name: str) -> np.ndarray:
    """A column of an R table saved by jsonlite (scalars for one-row tables, None for NA)."""
    v = tab[name]
    v = v if isinstance(v, list) else [v]
    return np.array([np.nan if x is None else x for x in v], dtype=float)


def sleep_with_group() -> pd.DataFrame:
    ss = pg.datasets.load("sleepstudy")
    codes = ss["Subject"].cat.codes.to_numpy() + 1  # as.integer(Subject)
    ss["grp"] = pd.Categorical(np.array(["a", "b", "c"])[codes % 3], categories=["a", "b", "c"])
    return ss


MODELS = {
    "sleep_corr": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    "sleep_grp": ("Reaction ~ Days * grp + (Days | Subject)", "sleep_grp"),
    "machines": ("score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", "Machines"),
    "machines_crossed": ("score ~ 1 + (1 | Worker) + (1 | Machine)", "Machines"),
}

_FITS: dict[str, object] = {}


def fitted(name: str):
    """The REML fit of one of :data:`MODELS` (cached across tests)."""
    if name not in _FITS:
        formula, ds = MODELS[name]
        data = sleep_with_group() if ds == "sleep_grp" else pg.datasets.load(ds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _FITS[name] = lmer(formula, data)
    return _FITS[name]
