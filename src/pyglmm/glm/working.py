r"""The per-row quantities of an IRLS iteration: means, deviance, working weights and response.

At a linear predictor :math:`\eta` (with offset :math:`o`) IRLS needs the means
:math:`\mu = g^{-1}(\eta)`, the deviance :math:`D(\mu)`, the working weights
:math:`W_i = w_i\,\mu'_i{}^2 / V(\mu_i)` (:math:`\mu' = d\mu/d\eta`) and
:math:`W_i z_i` with the working response :math:`z_i = \eta_i - o_i + (y_i - \mu_i)/\mu'_i`.

:class:`FamilyRows` computes them with the family's functions, exactly as R's
``glm.fit`` (with its checks and errors). For the two canonical links of the
benchmark-heavy families the algebra collapses and a handful of vector passes do:

* logit (binomial, quasibinomial): with :math:`e = \exp\eta` and :math:`d = 1 + e`,
  :math:`\mu = e/d`, :math:`\mu' = V(\mu) = \mu/d`, so :math:`W = w\mu'` and
  :math:`Wz = W(\eta - o) + w(y - \mu)`; for a 0/1 response the unit deviance is
  :math:`2w\{\log d - y\eta\}` (one ``exp`` and one ``log`` a step).
  Valid while :math:`|\eta| \le 30`, where R's ``linkinv`` and ``mu.eta`` do not clamp.
* log (poisson, quasipoisson): :math:`\mu = \mu' = V(\mu) = e^\eta`, so
  :math:`W = w\mu` and :math:`Wz = W(\eta - o) + w(y - \mu)`; the unit deviance is
  :math:`2w\{y(\log y - \eta) - (y - \mu)\}` with :math:`\log y` computed once.
  Valid while :math:`\log\epsilon < \eta < 700` (no clamping, no overflow).

Outside those ranges (step halving territory, separation) each falls back to
:class:`FamilyRows` for that :math:`\eta`, so R's path, checks and messages are kept.
The fast formulas differ from R's by rounding only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyglmm.errors import PyglmmError
from pyglmm.families import Family
from pyglmm.families.family import Binomial, Poisson, QuasiBinomial, QuasiPoisson
from pyglmm.families.links import Log, Logit

_EPS = np.finfo(float).eps
#: R's logit ``linkinv``/``mu.eta`` clamp beyond this :math:`|\eta|`.
LOGIT_LIMIT = 30.0
#: Range of :math:`\eta` where the log link's :math:`\max(e^\eta, \epsilon)` neither clamps
#: nor overflows.
LOG_LOWER = float(np.log(_EPS)) + 1e-9
LOG_UPPER = 700.0


@dataclass
class RowState:
    r"""The rows at one :math:`\eta`: ``eta`` (with offset), ``mu`` and what the fast
    formulas reuse (``fast`` says whether they apply at this :math:`\eta`)."""

    eta: np.ndarray
    mu: np.ndarray
    fast: bool = False
    extra: dict = field(default_factory=dict)


class FamilyRows:
    """IRLS row quantities from the family's functions (any family and link), as R's ``glm.fit``.

    Parameters
    ----------
    family : Family
    y, weights, offset : (n,) arrays
        Response and prior weights after ``family.initialize``, and the offset.
    """

    def __init__(self, family: Family, y: np.ndarray, weights: np.ndarray, offset: np.ndarray):
        self.family = family
        self.y = y
        self.weights = weights
        self.offset = offset
        self.unit_weights = _all_equal(weights, 1.0)
        self.zero_offset = _all_equal(offset, 0.0)
        # 0/1 response: y equals its truth value (True = 1.0)
        self.binary = family.name in ("binomial", "quasibinomial") and bool(
            np.array_equal(y, y.astype(bool))
        )
        self._success = y == 1 if self.binary else None
        self._positive_weights: np.ndarray | None = None

    @property
    def positive_weights(self) -> np.ndarray:
        """Rows with positive prior weight (computed when first needed)."""
        if self._positive_weights is None:
            self._positive_weights = self.weights > 0
        return self._positive_weights

    # means and deviance -------------------------------------------------
    def at(self, eta: np.ndarray) -> RowState:
        r"""The state at :math:`\eta` (with offset): :math:`\mu = g^{-1}(\eta)`."""
        return RowState(eta, self.family.linkinv(eta))

    def valid(self, state: RowState) -> bool:
        """Whether :math:`\\eta` and :math:`\\mu` are in the family's domain."""
        return self.family.valid_eta(state.eta) and self.family.valid_mu(state.mu)

    def deviance(self, state: RowState) -> float:
        r"""The total deviance :math:`D(\mu) = \sum_i d_i(y_i, \mu_i)`.

        For a 0/1 binomial response :math:`d_i = -2 w_i \log\{\mu_i^{y_i}(1-\mu_i)^{1-y_i}\}`,
        one logarithm per observation instead of R's two ``y log(y/mu)`` terms (the same
        numbers up to rounding).
        """
        mu = state.mu
        if self.binary:
            with np.errstate(divide="ignore"):
                logp = np.log(np.where(self._success, mu, 1 - mu))
            return float(-2 * (np.sum(logp) if self.unit_weights else self.weights @ logp))
        return float(np.sum(self.family.dev_resids(self.y, mu, self.weights)))

    # working weights and response ---------------------------------------
    def working(self, state: RowState, iteration: int) -> tuple[np.ndarray, np.ndarray, int]:
        r"""Working weights :math:`W`, :math:`Wz` and the number of informative rows.

        Rows with zero prior weight or :math:`\mu' = 0` get :math:`W = Wz = 0`. Raises
        R's errors for NaN or zero variances and NaN derivatives; returns 0 informative
        rows (and no weights) when there are none.
        """
        family, eta, mu, pw = self.family, state.eta, state.mu, self.positive_weights
        varmu = family.variance(mu)
        if np.any(np.isnan(varmu[pw])):
            raise PyglmmError("NAs in V(mu)")
        if np.any(varmu[pw] == 0):
            raise PyglmmError("0s in V(mu)")
        me = family.mu_eta(eta)
        if np.any(np.isnan(me[pw])):
            raise PyglmmError("NAs in d(mu)/d(eta)")
        good = pw & (me != 0)
        n_good = int(np.count_nonzero(good))
        if n_good == 0:
            return np.zeros(0), np.zeros(0), 0
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (eta - self.offset) + (self.y - mu) / me
            w = self.weights * me**2 / varmu
        if n_good < len(eta):
            z = np.where(good, z, 0.0)
            w = np.where(good, w, 0.0)
        return w, w * z, n_good

    def working_residuals(self, state: RowState) -> np.ndarray:
        r""":math:`(y - \mu)/\mu'` at the final fit."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.y - state.mu) / self.family.mu_eta(state.eta)


class CanonicalRows(FamilyRows):
    r"""Shared fast path of the canonical logit and log links, where
    :math:`\mu' = V(\mu)`: :math:`W = w\mu'` and :math:`Wz = W(\eta - o) + w(y - \mu)`."""

    def _derivative(self, state: RowState) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def working(self, state: RowState, iteration: int) -> tuple[np.ndarray, np.ndarray, int]:
        if not state.fast:
            return super().working(state, iteration)
        me = self._derivative(state)  # > 0 and finite in the fast range
        if self.unit_weights:
            w = me.copy() if me is state.mu else me
        else:
            w = self.weights * me
        resid = self.y - state.mu
        if not self.unit_weights:
            resid *= self.weights
        eta_free = state.eta if self.zero_offset else state.eta - self.offset
        wz = w * eta_free
        wz += resid
        n_good = len(w) if self.unit_weights else int(np.count_nonzero(self.positive_weights))
        if n_good == 0:
            return np.zeros(0), np.zeros(0), 0
        return w, wz, n_good

    def working_residuals(self, state: RowState) -> np.ndarray:
        if not state.fast:
            return super().working_residuals(state)
        return (self.y - state.mu) / self._derivative(state)


class LogitRows(CanonicalRows):
    """Fast rows of the logit link (binomial and quasibinomial), see the module notes."""

    def __init__(self, family: Family, y: np.ndarray, weights: np.ndarray, offset: np.ndarray):
        super().__init__(family, y, weights, offset)
        # the 0/1 unit deviance / 2 is log(1 + e^eta) - y eta: the weighted y for its dot
        self._weighted_y = y if self.unit_weights else weights * y

    def at(self, eta: np.ndarray) -> RowState:
        lo, hi = float(np.min(eta)), float(np.max(eta))
        if not (lo >= -LOGIT_LIMIT and hi <= LOGIT_LIMIT):  # also False for NaN
            return super().at(eta)
        ex = np.exp(eta)
        d = ex + 1.0
        mu = ex / d
        return RowState(eta, mu, True, {"d": d})

    def valid(self, state: RowState) -> bool:
        if state.fast:  # |eta| <= 30: 0 < mu < 1
            return True
        return super().valid(state)

    def _derivative(self, state: RowState) -> np.ndarray:
        return state.mu / state.extra["d"]

    def deviance(self, state: RowState) -> float:
        r"""For a 0/1 response :math:`D = 2\sum_i w_i\{\log(1 + e^{\eta_i}) - y_i\eta_i\}`
        (:math:`-\log\mu` or :math:`-\log(1-\mu)`; one ``log`` of :math:`d = 1 + e^\eta`,
        already computed, and a dot product). Where :math:`y = 1` and :math:`\eta` is large
        the difference loses digits, at most :math:`|\eta|\epsilon \le 30\epsilon` per row
        in absolute terms; R's :math:`\log\mu` is off by :math:`\epsilon` there."""
        if not (state.fast and self.binary):
            return super().deviance(state)
        log_d = np.log(state.extra["d"])
        total = np.sum(log_d) if self.unit_weights else self.weights @ log_d
        return float(2 * (total - self._weighted_y @ state.eta))


class LogRows(CanonicalRows):
    """Fast rows of the log link (poisson and quasipoisson), see the module notes."""

    def __init__(self, family: Family, y: np.ndarray, weights: np.ndarray, offset: np.ndarray):
        super().__init__(family, y, weights, offset)
        self._counts = bool(y.size == 0 or np.min(y) >= 0)
        # log y where y > 0; any finite value where y = 0 (it is multiplied by y)
        with np.errstate(invalid="ignore"):
            self._log_y = np.log(np.maximum(y, np.finfo(float).tiny))

    def at(self, eta: np.ndarray) -> RowState:
        lo, hi = float(np.min(eta)), float(np.max(eta))
        if not (self._counts and lo > LOG_LOWER and hi < LOG_UPPER):  # also False for NaN
            return super().at(eta)
        return RowState(eta, np.exp(eta), True)

    def valid(self, state: RowState) -> bool:
        if state.fast:  # finite, mu > eps
            return True
        return super().valid(state)

    def _derivative(self, state: RowState) -> np.ndarray:
        return state.mu

    def deviance(self, state: RowState) -> float:
        if not state.fast:
            return super().deviance(state)
        # d_i / 2 = w_i {y_i (log y_i - eta_i) - (y_i - mu_i)}; y log y = 0 at y = 0
        t = self._log_y - state.eta
        t *= self.y
        t -= self.y
        t += state.mu
        return float(2 * (np.sum(t) if self.unit_weights else self.weights @ t))


def _all_equal(values: np.ndarray, value: float) -> bool:
    """Whether every entry equals ``value`` (two reductions, no temporary; NaN is not)."""
    if values.size == 0:
        return True
    return bool(np.min(values) == value and np.max(values) == value)


def family_rows(
    family: Family, y: np.ndarray, weights: np.ndarray, offset: np.ndarray
) -> FamilyRows:
    """The fastest exact row computations for ``family``: :class:`LogitRows`,
    :class:`LogRows` or the general :class:`FamilyRows`.

    The fast paths are taken only for pyglmm's own classes (a user's subclass may
    redefine the variance or the link) and non-negative prior weights.
    """
    link = type(family.link)
    if not (weights.size == 0 or np.min(weights) >= 0):  # negative or NaN prior weights
        return FamilyRows(family, y, weights, offset)
    if type(family) in (Binomial, QuasiBinomial) and link is Logit:
        return LogitRows(family, y, weights, offset)
    if type(family) in (Poisson, QuasiPoisson) and link is Log:
        return LogRows(family, y, weights, offset)
    return FamilyRows(family, y, weights, offset)
