r"""Link functions :math:`\eta = g(\mu)` with R's numerical safeguards.

Each link gives :math:`g` (``linkfun``), :math:`g^{-1}` (``linkinv``) and
:math:`d\mu/d\eta = 1/g'(\mu)` (``mu_eta``), clamped as R's ``make.link`` clamps
them so that fits agree with R's to the last digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from pyglmm.errors import FamilyError

_EPS = np.finfo(float).eps
_LOGIT_THRESH = 30.0
_PROBIT_THRESH = -stats.norm.ppf(_EPS)
_CAUCHIT_THRESH = -stats.cauchy.ppf(_EPS)


@dataclass(frozen=True)
class Link:
    """A link function :math:`g` with its inverse and derivative.

    Subclasses implement :meth:`linkfun`, :meth:`linkinv`, :meth:`mu_eta` and,
    where the domain of :math:`\\eta` is restricted, :meth:`valid_eta`.
    """

    name: str = ""

    def linkfun(self, mu: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def linkinv(self, eta: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def valid_eta(self, eta: np.ndarray) -> bool:
        """Whether every :math:`\\eta` is in the link's domain."""
        return True

    def __str__(self) -> str:
        return self.name


class Identity(Link):
    r""":math:`g(\mu) = \mu`."""

    def __init__(self) -> None:
        object.__setattr__(self, "name", "identity")

    def linkfun(self, mu):
        return np.asarray(mu, dtype=float)

    def linkinv(self, eta):
        return np.asarray(eta, dtype=float)

    def mu_eta(self, eta):
        return np.ones_like(np.asarray(eta, dtype=float))


class Log(Link):
    r""":math:`g(\mu) = \log\mu`; :math:`g^{-1}(\eta) = \max(e^\eta, \epsilon)`."""

    def __init__(self) -> None:
        object.__setattr__(self, "name", "log")

    def linkfun(self, mu):
        return np.log(mu)

    def linkinv(self, eta):
        return np.maximum(np.exp(eta), _EPS)

    def mu_eta(self, eta):
        return np.maximum(np.exp(eta), _EPS)


class Logit(Link):
    r""":math:`g(\mu) = \log\{\mu/(1-\mu)\}`."""

    def __init__(self) -> None:
        object.__setattr__(self, "name", "logit")

    def linkfun(self, mu):
        # R's logit_link: log(x / (1 - x)) (a third of scipy.special.logit's time)
        mu = np.asarray(mu, dtype=float)
        with np.errstate(divide="ignore"):
            return np.log(mu / (1 - mu))

    def linkinv(self, eta):
        e = np.asarray(eta, dtype=float)
        ex = np.where(e < -_LOGIT_THRESH, _EPS, np.where(e > _LOGIT_THRESH, 1 / _EPS, np.exp(e)))
        return ex / (1 + ex)

    def mu_eta(self, eta):
        e = np.asarray(eta, dtype=float)
        ex = np.exp(np.clip(e, -_LOGIT_THRESH, _LOGIT_THRESH))
        out = ex / ((1 + ex) * (1 + ex))
        return np.where((e > _LOGIT_THRESH) | (e < -_LOGIT_THRESH), _EPS, out)


class Probit(Link):
    r""":math:`g(\mu) = \Phi^{-1}(\mu)`."""

    def __init__(self) -> None:
        object.__setattr__(self, "name", "probit")

    def linkfun(self, mu):
        return stats.norm.ppf(mu)

    def linkinv(self, eta):
        e = np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH)
        return special.ndtr(e)

    def mu_eta(self, eta):
        return np.maximum(stats.norm.pdf(eta), _EPS)


class Cauchit(Link):
    r""":math:`g(\mu) = F^{-1}_{\text{Cauchy}}(\mu)`."""

    def __init__(self) -> None:
        object.__setattr__(self, "name", "cauchit")

    def linkfun(self, mu):
        return stats.cauchy.ppf(mu)

    def linkinv(self, eta):
        e = np.clip(eta, -_CAUCHIT_THRESH, _CAUCHIT_THRESH)
        return stats.cauchy.cdf(e)

    def mu_eta(self, eta):
        return np.maximum(stats.cauchy.pdf(eta), _EPS)


class CLogLog(Link):
    r""":math:`g(\mu) = \log\{-\log(1-\mu)\}`."""

    def __init__(self) -> None:
        object.__setattr__(self, "name", "cloglog")

    def linkfun(self, mu):
        return np.log(-np.log1p(-np.asarray(mu, dtype=float)))

    def linkinv(self, eta):
        return np.clip(-np.expm1(-np.exp(eta)), _EPS, 1 - _EPS)

    def mu_eta(self, eta):
        e = np.minimum(eta, 700.0)
        return np.maximum(np.exp(e) * np.exp(-np.exp(e)), _EPS)


class Inverse(Link):
    r""":math:`g(\mu) = 1/\mu`."""

    def __init__(self) -> None:
        object.__setattr__(self, "name", "inverse")

    def linkfun(self, mu):
        return 1.0 / np.asarray(mu, dtype=float)

    def linkinv(self, eta):
        return 1.0 / np.asarray(eta, dtype=float)

    def mu_eta(self, eta):
        return -1.0 / np.asarray(eta, dtype=float) ** 2

    def valid_eta(self, eta):
        return bool(np.all(np.isfinite(eta)) and np.all(eta != 0))


class InverseSquare(Link):
    r""":math:`g(\mu) = 1/\mu^2`."""

    def __init__(self) -> None:
        object.__setattr__(self, "name", "1/mu^2")

    def linkfun(self, mu):
        return 1.0 / np.asarray(mu, dtype=float) ** 2

    def linkinv(self, eta):
        return 1.0 / np.sqrt(eta)

    def mu_eta(self, eta):
        return -1.0 / (2 * np.asarray(eta, dtype=float) ** 1.5)

    def valid_eta(self, eta):
        return bool(np.all(np.isfinite(eta)) and np.all(eta > 0))


class Sqrt(Link):
    r""":math:`g(\mu) = \sqrt\mu`."""

    def __init__(self) -> None:
        object.__setattr__(self, "name", "sqrt")

    def linkfun(self, mu):
        return np.sqrt(mu)

    def linkinv(self, eta):
        return np.asarray(eta, dtype=float) ** 2

    def mu_eta(self, eta):
        return 2 * np.asarray(eta, dtype=float)

    def valid_eta(self, eta):
        return bool(np.all(np.isfinite(eta)) and np.all(eta > 0))


_LINKS: dict[str, type[Link]] = {
    "identity": Identity,
    "log": Log,
    "logit": Logit,
    "probit": Probit,
    "cauchit": Cauchit,
    "cloglog": CLogLog,
    "inverse": Inverse,
    "1/mu^2": InverseSquare,
    "sqrt": Sqrt,
}


def get_link(link: str | Link) -> Link:
    """A :class:`Link` from R's name (``"logit"``, ``"1/mu^2"``, ...) or a Link object."""
    if isinstance(link, Link):
        return link
    key = str(link).strip().lower()
    if key not in _LINKS:
        raise FamilyError(f"unknown link {link!r}; available links: {', '.join(_LINKS)}")
    return _LINKS[key]()


def link_names() -> list[str]:
    """Names of the available links."""
    return list(_LINKS)
