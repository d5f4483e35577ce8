"""Convergence control of the IRLS fit, as R's ``glm.control``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from pyglmm.errors import PyglmmError


@dataclass(frozen=True)
class GLMControl:
    r"""Settings of the IRLS iterations.

    Parameters
    ----------
    epsilon : float
        Convergence tolerance: stop when
        :math:`|D - D_{\text{old}}| / (|D| + 0.1) < \epsilon` (R's default ``1e-8``).
    maxit : int
        Maximum number of IRLS iterations (R's default 25).
    trace : bool
        Print the deviance at each iteration.
    halve_on_increase : bool
        Also halve the step when the deviance increases (as ``glm2``). R's
        ``glm.fit`` halves only for non-finite deviances and invalid
        :math:`\mu`/:math:`\eta`; the default ``False`` keeps R's path so the
        iteration counts agree with R's.
    """

    epsilon: float = 1e-8
    maxit: int = 25
    trace: bool = False
    halve_on_increase: bool = False

    def __post_init__(self) -> None:
        if not self.epsilon > 0:
            raise PyglmmError("value of 'epsilon' must be > 0")
        if not self.maxit > 0:
            raise PyglmmError("maximum number of iterations must be > 0")

    @property
    def rank_tolerance(self) -> float:
        """Tolerance of the QR rank detection: ``min(1e-7, epsilon / 1000)`` as glm.fit."""
        return min(1e-7, self.epsilon / 1000)

    @classmethod
    def coerce(cls, control: GLMControl | Mapping[str, Any] | None) -> GLMControl:
        """A :class:`GLMControl` from ``None``, a mapping (R's names) or an instance."""
        if control is None:
            return cls()
        if isinstance(control, GLMControl):
            return control
        if isinstance(control, Mapping):
            names = {f.name for f in fields(cls)}
            bad = set(control) - names
            if bad:
                raise PyglmmError(
                    f"unknown control setting(s) {sorted(bad)}; known: {sorted(names)}"
                )
            return cls(**dict(control))
        raise PyglmmError("control must be a GLMControl, a dict or None")


def glm_control(
    epsilon: float = 1e-8, maxit: int = 25, trace: bool = False, halve_on_increase: bool = False
) -> GLMControl:
    """R's ``glm.control``: a :class:`GLMControl` with R's argument names and defaults."""
    return GLMControl(
        epsilon=epsilon, maxit=maxit, trace=trace, halve_on_increase=halve_on_increase
    )
