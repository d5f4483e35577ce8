"""Helpers of the linear-model tests: R reference values from tools/reference/linear.R."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

import pyglmm as pg
from pyglmm.errors import RankDeficiencyWarning

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "linear"


def load_reference(name: str) -> dict:
    """One JSON file written by tools/reference/linear.R (NA -> None)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def as_float(values) -> np.ndarray:
    """A fixture list with ``null`` for R's NA as a float array with NaN."""
    if not isinstance(values, list):
        values = [values]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def same_text(ours: object, r_text: str, skip_call: bool = True) -> list[tuple[str, str]]:
    """Lines where our printed text differs from R's (trailing blanks ignored)."""
    a, b = str(ours).splitlines(), r_text.splitlines()
    assert len(a) == len(b), f"{len(a)} lines printed, R prints {len(b)}:\n{ours}\n---\n{r_text}"
    return [
        (x, y)
        for x, y in zip(a, b, strict=True)
        if x.rstrip() != y.rstrip() and not (skip_call and y.startswith("lm("))
    ]


def fit_quietly(*args, **kwargs):
    """pg.lm without the rank-deficiency warning (tested separately)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficiencyWarning)
        return pg.lm(*args, **kwargs)
