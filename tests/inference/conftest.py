"""Fixtures of the inference tests."""

import pytest
from lmm_inference_data import fitted


@pytest.fixture(scope="session")
def sleep_fit():
    """The REML fit of ``Reaction ~ Days + (Days | Subject)`` on sleepstudy."""
    return fitted("sleep_corr")
