"""Random-effects term matrices (one :class:`ReMat` per random-effects term).

A random-effects term ``(z | g)`` with a grouping factor ``g`` of ``ℓ`` levels
and a model matrix ``z`` of ``q`` columns contributes ``ℓ q`` columns to ``Z``.
Observation ``i`` in level ``g_i`` has the row ``z_i`` in the columns
``g_i q, ..., g_i q + q - 1`` and zeros elsewhere, so ``Z_k`` is stored as the
level codes ``refs`` and the dense ``n × q`` matrix ``z`` (MixedModels.jl's
``ReMat``).  The relative covariance factor of the term is

.. math::  Λ_k = I_ℓ ⊗ λ_k ,

with ``λ_k`` lower triangular ``q × q``; ``θ_k`` holds the entries of ``λ_k``
column by column (lme4's order), diagonal entries bounded below by zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass
class ReMat:
    """One random-effects term: grouping factor codes, its model matrix, names.

    Attributes
    ----------
    group : str
        Name of the grouping factor as lme4 prints it (``"Subject"``,
        ``"Machine:Worker"``).
    levels : list of str
        Level labels of the grouping factor (only levels present in the data).
    refs : numpy.ndarray
        ``(n,)`` integer codes ``0 .. ℓ-1`` of each observation's level.
    z : numpy.ndarray
        ``(n, q)`` model matrix of the bar's left-hand side.
    cnames : list of str
        Column names of ``z`` (``"(Intercept)"``, ``"Days"``, ``"MachineA"``).
    design : FixedDesign or None
        Encoder of the bar's left-hand side, for new data (``predict``).
    factors : tuple of str
        Names of the data columns whose interaction is the grouping factor.
    """

    group: str
    levels: list[str]
    refs: np.ndarray
    z: np.ndarray
    cnames: list[str]
    design: Any = field(default=None, repr=False)
    factors: tuple[str, ...] = ()
    _tril: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)
    _tril_flat: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.refs = np.ascontiguousarray(self.refs, dtype=np.intp)
        self.z = np.ascontiguousarray(np.asarray(self.z, dtype=float).reshape(len(self.refs), -1))
        q = self.z.shape[1]
        # lme4 fills λ column by column: rows of the lower triangle in column-major order
        cols, rows = np.triu_indices(q)
        self._tril = (rows, cols)
        self._tril_flat = rows * q + cols  # the same entries of the flattened λ

    # -- sizes ---------------------------------------------------------------
    @property
    def nlevels(self) -> int:
        """Number of levels ``ℓ`` of the grouping factor."""
        return len(self.levels)

    @property
    def q(self) -> int:
        """Number of random effects per level (columns of ``z``)."""
        return self.z.shape[1]

    @property
    def ncols(self) -> int:
        """Number of columns of ``Z_k``: ``ℓ q``."""
        return self.nlevels * self.q

    @property
    def ntheta(self) -> int:
        """Number of covariance parameters ``q (q + 1) / 2``."""
        return self.q * (self.q + 1) // 2

    # -- θ ---------------------------------------------------------------------
    def theta_start(self) -> np.ndarray:
        """lme4's start: ``λ = I`` (ones on the diagonal, zeros below)."""
        rows, cols = self._tril
        return (rows == cols).astype(float)

    def theta_lower(self) -> np.ndarray:
        """Lower bounds: 0 for diagonal entries of ``λ``, ``-inf`` below the diagonal."""
        rows, cols = self._tril
        return np.where(rows == cols, 0.0, -np.inf)

    def theta_names(self) -> list[str]:
        """lme4's names: ``Subject.(Intercept)``, ``Subject.Days.(Intercept)``, ..."""
        rows, cols = self._tril
        out = []
        for r, c in zip(rows, cols, strict=True):
            if r == c:
                out.append(f"{self.group}.{self.cnames[r]}")
            else:
                out.append(f"{self.group}.{self.cnames[r]}.{self.cnames[c]}")
        return out

    def lambda_(self, theta_k: np.ndarray) -> np.ndarray:
        """The ``q × q`` lower-triangular relative covariance factor ``λ_k(θ_k)``."""
        q = self.q
        lam = np.zeros(q * q)
        lam[self._tril_flat] = theta_k
        return lam.reshape(q, q)

    def is_diagonal_theta(self) -> np.ndarray:
        """Boolean mask of the entries of ``θ_k`` on the diagonal of ``λ_k``."""
        rows, cols = self._tril
        return rows == cols

    # -- matrices --------------------------------------------------------------
    def sparse(self, sqrtw: np.ndarray | None = None) -> sp.csc_matrix:
        """``Z_k`` (optionally with rows scaled by ``√w``) as an ``n × ℓq`` CSC matrix."""
        n, q = self.z.shape
        vals = self.z if sqrtw is None else self.z * sqrtw[:, None]
        rows = np.repeat(np.arange(n), q)
        cols = (self.refs[:, None] * q + np.arange(q)[None, :]).ravel()
        return sp.csc_matrix((vals.ravel(), (rows, cols)), shape=(n, self.ncols))

    def mul_b(self, b: np.ndarray) -> np.ndarray:
        """``Z_k b_k`` for ``b_k`` given as an ``(ℓ, q)`` array (or flat ``ℓq``)."""
        b = np.asarray(b).reshape(self.nlevels, self.q)
        if self.q == 1:  # one gather and one product
            return self.z[:, 0] * b[:, 0][self.refs]
        return np.einsum("ij,ij->i", self.z, b[self.refs])
