"""Data sets bundled with pyglmm.

>>> import pyglmm as pg
>>> pg.datasets.names()
['Bond', 'Dyestuff', 'InstEval', 'Machines', 'cbpp', 'ceb', 'sleepstudy']
>>> ceb = pg.datasets.load("ceb")

Factor columns are pandas categoricals with their levels in R's order. The
attribution of each set is in ``SOURCES.md`` beside the files (see
:func:`sources`).
"""

from pyglmm.datasets.loader import describe, load, names, sources

__all__ = ["describe", "load", "names", "sources"]
