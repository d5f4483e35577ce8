"""Loading the lme4 reference fixtures (tools/reference/lmer.R) and refitting them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

import pyglmm as pg
from pyglmm.mixed.lmer import lmer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lmer"


_LISTS = ("fixef_names", "se", "theta", "theta_names", "devfun_value", "conv_messages")


def load_fixture(name: str) -> dict:
    """A fixture, with jsonlite's unboxed length-1 vectors put back into lists."""
    fx = json.loads((FIXTURES / f"{name}.json").read_text())
    for key in _LISTS:
        if key in fx and not isinstance(fx[key], list):
            fx[key] = [fx[key]]
    for sub in ("varcorr", "ranef"):
        for key, val in fx[sub].items():
            if not isinstance(val, list):
                fx[sub][key] = [val]
    if not isinstance(fx.get("vcov"), list) or not isinstance(fx["vcov"][0], list):
        fx["vcov"] = np.atleast_2d(np.asarray(fx["vcov"], dtype=float)).tolist()
    return fx


def small_fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json") if not p.stem.startswith("insteval"))


def fit_fixture(fx: dict):
    """Fit the model of a fixture as the R script did (weights/offset as in lmer.R)."""
    data = pg.datasets.load(fx["dataset"])
    kw = {}
    if fx["name"] == "cbpp_weighted":
        kw["weights"] = data["size"].to_numpy(dtype=float)
    if fx["name"] == "sleepstudy_offset":
        kw["offset"] = 10 * data["Days"].to_numpy(dtype=float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = lmer(fx["formula"], data, reml=fx["reml"], **kw)
    return model, [str(w.message) for w in caught], data


def rel_err(a, b, floor: float = 0.0) -> float:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor)))
