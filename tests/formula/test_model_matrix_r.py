"""Fixed-effects designs equal R's ``model.matrix`` (tools/reference/model_matrix.R).

Each case of tests/fixtures/formula/model_matrix.json holds R's column names,
``assign``, term labels and matrix for one formula on the fixture's data frame.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pyglmm.formula.fixed import FixedDesign

FIXTURE = Path(__file__).parents[1] / "fixtures" / "formula" / "model_matrix.json"
REFERENCE = json.loads(FIXTURE.read_text())
CASES = REFERENCE["cases"]
#: Formulas with function calls, built by formulaic rather than natively.
FORMULAIC = {
    "x + I(x^2)",
    "log(z) + a",
    "a + log(z):a",
    "I(x^2):b + a",
    "o + log(z)",
    "b:log(z) + x",
    "log(z) + c + a",
    "log(z)*a + o",
    "I(x^2) + res",
    "log(z) + a:b",
    "-1 + log(z) + log(z):a",
    "log(z):a:b",
    "a:b + I(x^2)",
    "factor(k) + a",
    "factor(k):a",
    "poly(x, 2) + a",
    "poly(x, 2):b",
    "scale(x) + a",
    "0 + factor(k) + x:factor(k)",
    "g + log(z)",
}


def reference_data() -> pd.DataFrame:
    spec = REFERENCE["data"]
    columns = {}
    for name, values in spec["columns"].items():
        if name in spec["levels"]:
            columns[name] = pd.Categorical(
                values, categories=spec["levels"][name], ordered=name in spec["ordered"]
            )
        else:
            columns[name] = np.asarray(values)
    return pd.DataFrame(columns)


def case_id(case) -> str:
    contrasts = case["contrasts"]
    return case["formula"] + (f" {contrasts}" if contrasts else "")


@pytest.fixture(scope="module")
def data():
    return reference_data()


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_design_equals_r_model_matrix(case, data):
    design = FixedDesign(case["formula"], data, case["contrasts"])
    assert design.column_names == case["column_names"]
    assert design.terms == case["term_labels"]
    np.testing.assert_array_equal(design.assign, case["assign"])
    assert design.has_intercept == case["intercept"]
    expected = np.asarray(case["matrix"], dtype=float)
    np.testing.assert_allclose(design.matrix, expected, rtol=1e-13, atol=1e-14)
    assert design.built_directly == (case["formula"] not in FORMULAIC)
    # new data (rows in another order, a subset) is encoded as R encodes those rows
    rows = np.array([5, 0, 17, 3, 3, 22, 11])
    newdata = data.iloc[rows].reset_index(drop=True)
    np.testing.assert_allclose(design.transform(newdata), expected[rows], rtol=1e-13, atol=1e-14)
