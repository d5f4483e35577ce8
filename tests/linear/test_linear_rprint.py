"""R's number formatting (format, formatC, round, zapsmall, format.pval) against R itself."""

from __future__ import annotations

import numpy as np
import pytest
from linear_reference import load_reference

from pyglmm.linear.rprint import format_c, format_pval, format_real, r_round, zapsmall

REF = load_reference("formatting")


def _list(x):
    return x if isinstance(x, list) else [x]


@pytest.mark.parametrize("case", range(len(REF["values"])))
def test_format_round_zapsmall(case):
    x = np.array(_list(REF["values"][case]), dtype=float)
    assert format_real(x, 4) == _list(REF["format4"][case])
    assert format_real(x, 7) == _list(REF["format7"][case])
    assert [format_c(v, 4) for v in x] == _list(REF["formatC4"][case])
    np.testing.assert_array_equal(r_round(x, 2), np.array(_list(REF["round2"][case])))
    np.testing.assert_allclose(zapsmall(x, 5), _list(REF["zapsmall5"][case]), rtol=1e-15)


@pytest.mark.parametrize("case", range(len(REF["pvalues"])))
def test_format_pval(case):
    p = np.array(_list(REF["pvalues"][case]), dtype=float)
    assert [s.strip() for s in format_pval(p, 3)] == [
        s.strip() for s in _list(REF["format_pval3"][case])
    ]
    assert [s.strip() for s in format_pval(p, 4)] == [
        s.strip() for s in _list(REF["format_pval4"][case])
    ]
