"""Data fixtures of the linear-model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from linear_reference import load_reference

import pyglmm as pg


@pytest.fixture(scope="session")
def machines() -> pd.DataFrame:
    return pg.datasets.load("Machines")


@pytest.fixture(scope="session")
def bond() -> pd.DataFrame:
    return pg.datasets.load("Bond")


@pytest.fixture(scope="session")
def sleep() -> pd.DataFrame:
    return pg.datasets.load("sleepstudy")


@pytest.fixture(scope="session")
def ceb() -> pd.DataFrame:
    return pg.datasets.load("ceb")


@pytest.fixture(scope="session")
def machines_unbalanced(machines) -> pd.DataFrame:
    ref = load_reference("machines_unbalanced")
    return machines.drop(index=np.array(ref["dropped_rows"]))  # R row names, 1-based


@pytest.fixture(scope="session")
def machines_empty_cell(machines) -> pd.DataFrame:
    """Machines without the (C, worker 6) cell: MachineC:Worker6 is aliased."""
    return machines[~((machines["Machine"] == "C") & (machines["Worker"] == 6))]
