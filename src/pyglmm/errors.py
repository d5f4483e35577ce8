"""Exceptions and warnings raised by pyglmm.

Every error that comes from the user's input (formula, data, family) is a
:class:`PyglmmError` with a message that names the problem, so that callers never
see a traceback from deep inside numpy for a mistake in their model.
"""

from __future__ import annotations


class PyglmmError(ValueError):
    """Base class of pyglmm's errors about a model specification or its data."""


class FormulaError(PyglmmError):
    """A model formula that cannot be parsed or does not match the data."""


class DataError(PyglmmError):
    """Data that cannot be used: missing columns, wrong types, invalid values."""


class FamilyError(PyglmmError):
    """An unknown family or link, or a response outside the family's support."""


class PyglmmWarning(UserWarning):
    """Base class of pyglmm's warnings."""


class ConvergenceWarning(PyglmmWarning):
    """An iterative fit stopped before its convergence criterion was met."""


class SeparationWarning(PyglmmWarning):
    """Fitted probabilities numerically 0 or 1 occurred (perfect separation)."""


class RankDeficiencyWarning(PyglmmWarning):
    """The fixed-effects model matrix is rank deficient; some columns were dropped."""


class SingularFitWarning(PyglmmWarning):
    """A mixed model's variance components are on the boundary of the parameter space."""


class MissingDataWarning(PyglmmWarning):
    """Rows with missing values were dropped (as R's ``na.omit``)."""


class DataWarning(PyglmmWarning):
    """Data that can be used but is unusual (e.g. non-integer counts for Poisson)."""
