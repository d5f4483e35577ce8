r"""The control logic of R's ``glm.fit`` shared by the in-memory and the Dask IRLS.

:func:`pyglmm.glm.irls.fit_irls` and
:func:`pyglmm.distributed.irls.fit_irls_distributed` differ in how they get
:math:`X^\top W X`, :math:`X^\top W z` and the deviance at a :math:`\beta` (from the
rows, or summed over partitions); the decisions taken from those numbers are these
functions:

* :func:`check_start`: the length of user-supplied starting coefficients;
* :func:`factor_crossproducts` and :func:`solve_step`: the Cholesky factor of
  :math:`X^\top W X` over the non-aliased columns and the new :math:`\beta`;
* :func:`require_previous_coefficients` and :func:`halve_step`: step halving
  :math:`\beta \leftarrow (\beta + \beta_{\text{old}})/2` while the deviance is not finite
  or :math:`\eta`/:math:`\mu` are invalid;
* :func:`deviance_converged`: the relative deviance criterion
  :math:`|D - D_{\text{old}}|/(|D| + 0.1) < \epsilon`;
* :func:`stop_warnings` and :func:`aliased_message`: R's warnings at the end of the fit.

The functions return messages instead of warning, so that each caller keeps its own
way of attributing warnings to the user's line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from pyglmm.errors import PyglmmError
from pyglmm.glm.weighted_ls import cholesky_solve, cholesky_upper

State = TypeVar("State")


def check_start(start, nvars: int, column_names: Sequence[str] | None) -> np.ndarray:
    """User-supplied starting coefficients as a flat float array of length ``nvars``.

    Raises :class:`~pyglmm.errors.PyglmmError` (R's message) when the length is wrong.
    """
    start = np.asarray(start, dtype=float).reshape(-1)
    if len(start) != nvars:
        names = ", ".join(column_names or [])
        raise PyglmmError(
            f"length of 'start' should equal {nvars} and correspond to initial coefs for {names}"
        )
    return start


def factor_crossproducts(A: np.ndarray, keep: np.ndarray | None) -> tuple[np.ndarray | None, bool]:
    r"""Upper Cholesky factor of :math:`X^\top W X` over the columns kept so far.

    ``keep`` is None before the rank has been decided (all columns are tried). Returns
    ``(U, suspicious)`` as :func:`~pyglmm.glm.weighted_ls.cholesky_upper`.
    """
    if keep is None or not np.all(keep):
        sub = np.flatnonzero(keep) if keep is not None else np.arange(A.shape[0])
        return cholesky_upper(A[np.ix_(sub, sub)])
    return cholesky_upper(A)


def solve_step(
    U: np.ndarray, rhs: np.ndarray, keep: np.ndarray, nvars: int, nobs: int
) -> np.ndarray:
    r"""The new :math:`\beta`: :math:`U^\top U \beta_{\text{keep}} = (X^\top W z)_{\text{keep}}`,
    zero for the aliased columns.

    Raises :class:`~pyglmm.errors.PyglmmError` when the rank exceeds the number of
    observations.
    """
    rank = int(np.count_nonzero(keep))
    if nobs < rank:
        raise PyglmmError(f"X matrix has rank {rank}, but only {nobs} observations")
    sub = np.flatnonzero(keep)
    beta_new = np.zeros(nvars)
    beta_new[sub] = cholesky_solve(U, rhs[sub])
    return beta_new


def require_previous_coefficients(coefold: np.ndarray | None) -> None:
    """Step halving needs a previous :math:`\\beta`: raise R's error when there is none."""
    if coefold is None:
        raise PyglmmError(
            "no valid set of coefficients has been found: please supply starting values"
        )


def halve_step(
    beta: np.ndarray,
    coefold: np.ndarray,
    state: State,
    evaluate: Callable[[np.ndarray], State],
    acceptable: Callable[[State], bool],
    *,
    maxit: int,
    inner_loop: int,
) -> tuple[np.ndarray, State]:
    r"""R's step halving: :math:`\beta \leftarrow (\beta + \beta_{\text{old}})/2` until
    ``acceptable(state)``, with ``state = evaluate(beta)`` after each halving.

    ``state`` is what the caller knows at ``beta`` (e.g. :math:`\eta`, :math:`\mu` and
    the deviance). Raises :class:`~pyglmm.errors.PyglmmError` (R's ``inner loop
    {inner_loop}; cannot correct step size``) after ``maxit`` halvings. Returns the
    final ``(beta, state)``.
    """
    ii = 1
    while not acceptable(state):
        if ii > maxit:
            raise PyglmmError(f"inner loop {inner_loop}; cannot correct step size")
        ii += 1
        beta = (beta + coefold) / 2
        state = evaluate(beta)
    return beta, state


def deviance_converged(dev: float, devold: float, epsilon: float) -> bool:
    r"""``glm.fit``'s criterion :math:`|D - D_{\text{old}}|/(|D| + 0.1) < \epsilon`."""
    return abs(dev - devold) / (0.1 + abs(dev)) < epsilon


def stop_warnings(converged: bool, boundary: bool) -> list[str]:
    """R's warnings when the iterations stopped without convergence or at a boundary."""
    messages = []
    if not converged:
        messages.append("glm.fit: algorithm did not converge")
    if boundary:
        messages.append("glm.fit: algorithm stopped at boundary value")
    return messages


def aliased_message(aliased: np.ndarray, column_names: Sequence[str] | None) -> str:
    """The warning for aliased coefficients, naming them when the names are known."""
    names = [column_names[j] for j in np.flatnonzero(aliased)] if column_names else []
    return f"{int(aliased.sum())} coefficient(s) not defined because of singularities" + (
        f": {', '.join(names)}" if names else ""
    )
