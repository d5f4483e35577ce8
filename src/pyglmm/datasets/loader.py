"""Loading the bundled data sets as pandas DataFrames."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd

from pyglmm.errors import DataError
from pyglmm.formula.levels import as_r_factor


@dataclass(frozen=True)
class _DatasetInfo:
    file: str
    factors: tuple[str, ...]
    description: str
    reader: str = "csv"


_DATASETS: dict[str, _DatasetInfo] = {
    "ceb": _DatasetInfo(
        "ceb.dat",
        ("dur", "res", "educ"),
        "Children Ever Born, Fiji Fertility Survey 1974: grouped counts by marriage duration "
        "(dur), residence (res) and education (educ); mean, var, n (women), y = mean * n.",
        reader="whitespace",
    ),
    "Bond": _DatasetInfo(
        "Bond.csv",
        ("Metal", "Ingot"),
        "Strength of metallic bonds: pressure by Metal (c, i, n) and Ingot (1..7, random block).",
    ),
    "Machines": _DatasetInfo(
        "Machines.csv",
        ("Worker", "Machine"),
        "Productivity score by Worker (6, random) and Machine (A, B, C), 3 replicates each.",
    ),
    "sleepstudy": _DatasetInfo(
        "sleepstudy.csv",
        ("Subject",),
        "Reaction time by Days of sleep deprivation, 18 Subjects.",
    ),
    "Dyestuff": _DatasetInfo("Dyestuff.csv", ("Batch",), "Yield of dyestuff by Batch (6)."),
    "cbpp": _DatasetInfo(
        "cbpp.csv",
        ("herd", "period"),
        "Contagious bovine pleuropneumonia: incidence out of size, by herd (15) and period (4).",
    ),
    "InstEval": _DatasetInfo(
        "InstEval.csv.gz",
        ("s", "d", "studage", "lectage", "service", "dept"),
        "Lecture evaluations: y (1..5) by student s (2,972), lecturer d (1,128), dept (14), "
        "service, studage, lectage.",
    ),
}


def names() -> list[str]:
    """Names of the bundled data sets, for :func:`load`."""
    return sorted(_DATASETS, key=str.casefold)


def describe(name: str) -> str:
    """One-line description of a bundled data set."""
    return _info(name).description


def sources() -> str:
    """The attribution of the bundled data sets (the text of ``SOURCES.md``)."""
    return (resources.files("pyglmm.datasets") / "data" / "SOURCES.md").read_text()


def _info(name: str) -> _DatasetInfo:
    for key, info in _DATASETS.items():
        if key.casefold() == str(name).casefold():
            return info
    raise DataError(f"no bundled data set named {name!r}; available: {', '.join(names())}")


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set.

    Parameters
    ----------
    name : str
        One of :func:`names` (matched case-insensitively).

    Returns
    -------
    pandas.DataFrame
        A fresh copy; factor columns are unordered categoricals with levels in R's
        order (numbers numerically, strings as R's locale collation sorts them). The
        index holds R's row names (1..n; the ids 1..71 of ``ceb``), so that labels in
        diagnostics and plots are the ones R prints.
    """
    info = _info(name)
    path = resources.files("pyglmm.datasets") / "data" / info.file
    with resources.as_file(path) as p:
        if info.reader == "whitespace":
            df = pd.read_csv(p, sep=r"\s+")
            df.index = df.index.astype(str)
        else:
            df = pd.read_csv(p)
    # row names as R has them: the Rdatasets ``rownames`` column, else 1..n
    if "rownames" in df.columns:
        df.index = pd.Index(df.pop("rownames").to_numpy())
    elif info.reader != "whitespace":
        df.index = pd.RangeIndex(1, len(df) + 1)
    for col in info.factors:
        df[col] = as_r_factor(df[col])
    return df
