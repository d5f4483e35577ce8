"""Helpers shared by the GLM tests: load R's fixtures and refit the same models."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

import pyglmm as pg

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "glm"
MODEL_FIXTURES = sorted(
    p.stem
    for p in FIXTURES.glob("*.json")
    if p.stem not in ("anova", "families", "theta_ml", "wald", "summary_dispersion")
)


@cache
def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def arr(values) -> np.ndarray:
    """A fixture vector/matrix with JSON nulls as NaN."""
    return np.array(
        [[np.nan if v is None else v for v in row] for row in values]
        if values and isinstance(values[0], list)
        else [np.nan if v is None else v for v in values],
        dtype=float,
    )


def dataset(ref: dict) -> pd.DataFrame:
    if ref.get("data") is not None:
        return pd.DataFrame(ref["data"])
    name = {"ceb": "ceb", "ss": "sleepstudy", "cb": "cbpp", "M": "Machines"}[ref["dataset"]]
    return pg.datasets.load(name)


@cache
def refit(name: str):
    """Our fit of the model in fixture ``name`` (warnings silenced)."""
    ref = load(name)
    data = dataset(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pg.glm(
            ref["formula"],
            data,
            family=ref["family"],
            link=ref["link"],
            weights=ref["weights"],
            offset=ref["offset"],
            theta=ref["theta"],
            contrasts=ref.get("contrasts"),
        )
