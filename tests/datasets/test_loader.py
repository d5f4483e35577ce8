"""The bundled data sets."""

import pandas as pd
import pytest

import pyglmm as pg
from pyglmm.errors import DataError

SHAPES = {
    "Bond": (21, 3),
    "Dyestuff": (30, 2),
    "InstEval": (73421, 7),
    "Machines": (54, 3),
    "cbpp": (56, 4),
    "ceb": (70, 7),
    "sleepstudy": (180, 3),
}


def test_names_lists_the_seven_sets():
    assert sorted(pg.datasets.names()) == sorted(SHAPES)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_load_shapes_and_no_rownames(name):
    df = pg.datasets.load(name)
    assert df.shape == SHAPES[name]
    assert "rownames" not in df.columns


def test_factor_columns_are_categoricals_in_r_order():
    ceb = pg.datasets.load("ceb")
    assert list(ceb["res"].cat.categories) == ["rural", "Suva", "urban"]
    assert list(ceb["educ"].cat.categories) == ["lower", "none", "sec+", "upper"]
    inst = pg.datasets.load("instevaL")
    assert inst["s"].cat.categories.size == 2972 and inst["d"].cat.categories.size == 1128
    assert isinstance(pg.datasets.load("sleepstudy")["Subject"].dtype, pd.CategoricalDtype)
    # the ceb row ids 1..71 without 68 are the index, as R's read.table gives
    assert ceb.index[16] == "17" and "68" not in ceb.index
    # the other sets are numbered from 1, as R's row names
    assert pg.datasets.load("sleepstudy").index[0] == 1
    assert pg.datasets.load("Bond").index[-1] == 21


def test_attribution_and_unknown_name():
    assert "Fiji" in pg.datasets.sources()
    with pytest.raises(DataError, match="no bundled data set"):
        pg.datasets.load("iris")
