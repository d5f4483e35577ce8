r"""Exponential-family distributions for GLMs and GLMMs, as R's ``family`` objects.

A :class:`Family` pairs a distribution's variance function :math:`V(\mu)` with a
:class:`~pyglmm.families.links.Link`, and carries R's pieces that a fit needs:
the deviance residuals :math:`d_i` with :math:`D = \sum_i d_i`, the AIC
contribution ``aic(y, n, mu, wt, dev)`` (:math:`-2\ell` plus 2 for an estimated
dispersion, as R's), starting values (``initialize``) and validity checks.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from pyglmm.errors import FamilyError
from pyglmm.families.links import Link, get_link

_EPS = np.finfo(float).eps


def _binom_logpmf(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    r""":math:`\log\binom{n}{k} + k\log p + (n-k)\log(1-p)`, as R's ``dbinom(log=TRUE)``.

    Written with :mod:`scipy.special` (several times faster than
    ``scipy.stats.binom.logpmf`` on large vectors); all-Bernoulli data skip the
    binomial coefficient.
    """
    k, n, p = np.broadcast_arrays(k, n, p)
    out = special.xlogy(k, p) + special.xlog1py(n - k, -p)
    if np.any(n != 1):
        out = out + special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
    return out


#: Largest count whose log-factorial :func:`weighted_log_factorial_sum` takes from a table
#: (also at most 16 table entries per row, so a few huge counts do not build a huge table).
LOG_FACTORIAL_TABLE_MAX = 1_000_000


def weighted_log_factorial_sum(y: np.ndarray, wt: np.ndarray) -> float:
    r""":math:`\sum_i w_i \log\Gamma(y_i + 1)`.

    For non-negative integer counts up to :data:`LOG_FACTORIAL_TABLE_MAX` the weights are
    summed per count (``bincount``) and multiplied by a table of :math:`\log k!` (one
    ``gammaln`` per distinct count instead of one per row); otherwise ``gammaln`` of
    every row.
    """
    y = np.asarray(y, dtype=float)
    wt = np.broadcast_to(np.asarray(wt, dtype=float), y.shape)
    if y.size and y.ndim == 1:
        top = float(np.max(y))
        if np.min(y) >= 0 and top <= min(LOG_FACTORIAL_TABLE_MAX, 16 * y.size + 1024):
            counts = y.astype(np.intp)
            if np.array_equal(counts, y):
                per_count = np.bincount(counts, weights=wt)
                return float(per_count @ special.gammaln(np.arange(1.0, len(per_count) + 1)))
    return float(np.sum(wt * special.gammaln(y + 1)))


class Family:
    """Base class: a variance function and a link.

    Attributes
    ----------
    name : str
        R's family name (``"poisson"``, ``"Gamma"``, ...).
    link : Link
    estimates_dispersion : bool
        True when the dispersion :math:`\\phi` is estimated (gaussian, Gamma,
        inverse gaussian and the quasi families), so inference uses t and F.
    has_likelihood : bool
        False for quasi families (no AIC, log-likelihood or profile intervals).
    """

    name: str = ""
    default_link: str = ""
    allowed_links: tuple[str, ...] = ()
    estimates_dispersion: bool = False
    has_likelihood: bool = True

    def __init__(self, link: str | Link | None = None) -> None:
        self.link = get_link(link if link is not None else self.default_link)
        if self.allowed_links and self.link.name not in self.allowed_links:
            raise FamilyError(
                f"link {self.link.name!r} is not available for the {self.name} family; "
                f"use one of {', '.join(self.allowed_links)}"
            )

    # link delegates ------------------------------------------------------
    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        r""":math:`\eta = g(\mu)`."""
        return self.link.linkfun(mu)

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        r""":math:`\mu = g^{-1}(\eta)`."""
        return self.link.linkinv(eta)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        r""":math:`d\mu/d\eta`."""
        return self.link.mu_eta(eta)

    def valid_eta(self, eta: np.ndarray) -> bool:
        return self.link.valid_eta(eta)

    # distribution --------------------------------------------------------
    def variance(self, mu: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        r"""Variance function :math:`V(\mu)`, with :math:`\mathrm{Var}(Y) = \phi V(\mu)/w`."""
        raise NotImplementedError

    def variance_derivative(self, mu: np.ndarray) -> np.ndarray:  # pragma: no cover
        r""":math:`V'(\mu)`, used by Fletcher's dispersion estimate."""
        raise NotImplementedError

    def dev_resids(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
        r"""Unit deviances :math:`d_i` (weighted), :math:`D = \sum_i d_i`."""
        raise NotImplementedError  # pragma: no cover

    def aic(self, y, n, mu, wt, dev) -> float:
        r"""R's ``family$aic``: :math:`-2\ell(\hat\mu)` (+2 when :math:`\phi` is estimated)."""
        return float("nan")

    def valid_mu(self, mu: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(mu)))

    def initialize(
        self, y: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Starting means and the (possibly transformed) response, as R's ``initialize``.

        Returns
        -------
        mustart, y, weights, n
            ``n`` is the binomial number of trials (ones otherwise).
        """
        y = self._vector_response(y)
        return y.copy(), y, weights, np.ones_like(y)

    def _vector_response(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        if y.ndim == 2:
            raise FamilyError(
                f"a two-column (cbind) response is only for binomial models, not {self.name}"
            )
        return y

    def __repr__(self) -> str:
        return f"Family: {self.name}\nLink function: {self.link.name}"

    @property
    def display_name(self) -> str:
        """Name as R prints it in ``summary`` (e.g. ``Negative Binomial(1.5)``)."""
        return self.name


class Gaussian(Family):
    r"""Normal errors: :math:`V(\mu) = 1`."""

    name = "gaussian"
    default_link = "identity"
    allowed_links = ("identity", "log", "inverse")
    estimates_dispersion = True

    def variance(self, mu):
        return np.ones_like(np.asarray(mu, dtype=float))

    def variance_derivative(self, mu):
        return np.zeros_like(np.asarray(mu, dtype=float))

    def dev_resids(self, y, mu, wt):
        return wt * (y - mu) ** 2

    def aic(self, y, n, mu, wt, dev):
        nobs = len(y)
        with np.errstate(divide="ignore"):
            logw = np.log(wt[wt > 0]) if np.any(wt > 0) else np.zeros(0)
        return float(nobs * (np.log(dev / nobs * 2 * np.pi) + 1) + 2 - np.sum(logw))

    def initialize(self, y, weights):
        y = self._vector_response(y)
        if (self.link.name == "inverse" and np.any(y == 0)) or (
            self.link.name == "log" and np.any(y <= 0)
        ):
            raise FamilyError(
                f"cannot find valid starting values for gaussian({self.link.name}) with "
                "non-positive responses; please specify some"
            )
        return y.copy(), y, weights, np.ones_like(y)


class Binomial(Family):
    r"""Binomial proportions :math:`y` out of :math:`n` trials: :math:`V(\mu)=\mu(1-\mu)`.

    The response may be 0/1, proportions with the trials as prior weights, or a
    two-column ``cbind(successes, failures)`` matrix (then the proportions become
    the response and the trials multiply the weights), as R's ``binomial()``.
    """

    name = "binomial"
    default_link = "logit"
    allowed_links = ("logit", "probit", "cloglog", "cauchit", "log")

    def variance(self, mu):
        return mu * (1 - mu)

    def variance_derivative(self, mu):
        return 1 - 2 * mu

    def valid_mu(self, mu):
        return bool(np.all(np.isfinite(mu)) and np.all((mu > 0) & (mu < 1)))

    def dev_resids(self, y, mu, wt):
        # R's binomial_dev_resids: y_log_y(y, mu) = y * log(y / mu), 0 when y == 0 (also
        # when mu == 0: an all-zero response has null deviance 0, not NaN)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(y != 0, y * np.log(y / mu), 0.0)
            b = np.where(y != 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
        return 2 * wt * (a + b)

    def aic(self, y, n, mu, wt, dev):
        m = n if np.any(n > 1) else wt
        if np.all(m == 1) and np.all((y == 0) | (y == 1)):
            # one Bernoulli trial per row: dbinom(y, 1, mu, log = TRUE) = log(mu or 1 - mu)
            with np.errstate(divide="ignore"):
                return float(-2 * np.sum(np.log(np.where(y == 1, mu, 1 - mu))))
        with np.errstate(divide="ignore", invalid="ignore"):
            coef = np.where(m > 0, wt / np.where(m > 0, m, 1), 0.0)
            logp = _binom_logpmf(np.round(m * y), np.round(m), mu)
        logp = np.where(coef > 0, logp, 0.0)
        return float(-2 * np.sum(coef * logp))

    def initialize(self, y, weights):
        y = np.asarray(y, dtype=float)
        if y.ndim == 2 and y.shape[1] == 2:
            if np.any(y < 0):
                raise FamilyError("cbind() counts for the binomial family must be non-negative")
            n = y[:, 0] + y[:, 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                prop = np.where(n == 0, 0.0, y[:, 0] / np.where(n == 0, 1, n))
            weights = weights * n
            mustart = (n * prop + 0.5) / (n + 1)
            return mustart, prop, weights, n
        if y.ndim != 1:
            raise FamilyError(
                "for the binomial family, y must be a vector of 0 and 1's (or proportions with "
                "weights) or cbind(successes, failures)"
            )
        zero_weight = weights == 0
        y = np.where(zero_weight, 0.0, y) if np.any(zero_weight) else y.copy()
        if y.size and not (np.min(y) >= 0 and np.max(y) <= 1) and np.any((y < 0) | (y > 1)):
            raise FamilyError(
                "binomial response values must be 0 <= y <= 1 (or use cbind(successes, failures))"
            )
        mustart = (weights * y + 0.5) / (weights + 1)
        return mustart, y, weights, np.ones_like(y)


class Poisson(Family):
    r"""Poisson counts: :math:`V(\mu) = \mu`."""

    name = "poisson"
    default_link = "log"
    allowed_links = ("log", "identity", "sqrt")

    def variance(self, mu):
        return np.asarray(mu, dtype=float)

    def variance_derivative(self, mu):
        return np.ones_like(np.asarray(mu, dtype=float))

    def valid_mu(self, mu):
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def dev_resids(self, y, mu, wt):
        r = mu * wt
        pos = y > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(pos, wt * (y * np.log(np.where(pos, y, 1) / mu) - (y - mu)), r)
        return 2 * r

    def aic(self, y, n, mu, wt, dev):
        # dpois extended to non-integer y through lgamma (R returns -Inf there)
        y, mu, wt = (np.asarray(a, dtype=float) for a in (y, mu, wt))
        if np.all(mu > 0) and np.all(np.isfinite(mu)):
            y_log_mu = y * np.log(mu)  # xlogy without its special cases (mu > 0)
        else:
            y_log_mu = special.xlogy(y, mu)
        loglik = np.sum(wt * (y_log_mu - mu)) - weighted_log_factorial_sum(y, wt)
        return float(-2 * loglik)

    def initialize(self, y, weights):
        y = self._vector_response(y)
        if np.any(y < 0):
            raise FamilyError("negative values are not allowed for the Poisson family (counts)")
        return y + 0.1, y, weights, np.ones_like(y)


class Gamma(Family):
    r"""Gamma errors: :math:`V(\mu) = \mu^2`."""

    name = "Gamma"
    default_link = "inverse"
    allowed_links = ("inverse", "identity", "log")
    estimates_dispersion = True

    def variance(self, mu):
        return np.asarray(mu, dtype=float) ** 2

    def variance_derivative(self, mu):
        return 2 * np.asarray(mu, dtype=float)

    def valid_mu(self, mu):
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def dev_resids(self, y, mu, wt):
        with np.errstate(divide="ignore"):
            return -2 * wt * (np.log(np.where(y == 0, 1, y / mu)) - (y - mu) / mu)

    def aic(self, y, n, mu, wt, dev):
        disp = dev / np.sum(wt)
        logp = stats.gamma.logpdf(y, a=1 / disp, scale=mu * disp)
        return float(-2 * np.sum(logp * wt) + 2)

    def initialize(self, y, weights):
        y = self._vector_response(y)
        if np.any(y <= 0):
            raise FamilyError("non-positive values are not allowed for the Gamma family")
        return y.copy(), y, weights, np.ones_like(y)


class InverseGaussian(Family):
    r"""Inverse Gaussian errors: :math:`V(\mu) = \mu^3`."""

    name = "inverse.gaussian"
    default_link = "1/mu^2"
    allowed_links = ("1/mu^2", "inverse", "identity", "log")
    estimates_dispersion = True

    def variance(self, mu):
        return np.asarray(mu, dtype=float) ** 3

    def variance_derivative(self, mu):
        return 3 * np.asarray(mu, dtype=float) ** 2

    def valid_mu(self, mu):
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def dev_resids(self, y, mu, wt):
        return wt * ((y - mu) ** 2) / (y * mu**2)

    def aic(self, y, n, mu, wt, dev):
        sw = np.sum(wt)
        return float(sw * (1 + np.log(dev / sw * 2 * np.pi)) + 3 * np.sum(np.log(y) * wt) + 2)

    def initialize(self, y, weights):
        y = self._vector_response(y)
        if np.any(y <= 0):
            raise FamilyError("positive values only are allowed for the inverse.gaussian family")
        return y.copy(), y, weights, np.ones_like(y)


class QuasiPoisson(Poisson):
    r"""Poisson mean-variance relation with an estimated dispersion: :math:`\phi\mu`."""

    name = "quasipoisson"
    estimates_dispersion = True
    has_likelihood = False

    def aic(self, y, n, mu, wt, dev):
        return float("nan")


class QuasiBinomial(Binomial):
    r"""Binomial mean-variance relation with an estimated dispersion: :math:`\phi\mu(1-\mu)`."""

    name = "quasibinomial"
    estimates_dispersion = True
    has_likelihood = False

    def aic(self, y, n, mu, wt, dev):
        return float("nan")


class NegativeBinomial(Family):
    r"""Negative binomial with shape :math:`\theta`: :math:`V(\mu) = \mu + \mu^2/\theta`.

    As ``MASS::negative.binomial(theta)``; with ``theta`` estimated the model is
    ``MASS::glm.nb`` (see :func:`pyglmm.glm`).
    """

    name = "negative.binomial"
    default_link = "log"
    allowed_links = ("log", "sqrt", "identity")

    def __init__(self, theta: float = 1.0, link: str | Link | None = None) -> None:
        super().__init__(link)
        if not np.isfinite(theta) or theta <= 0:
            raise FamilyError(f"negative binomial theta must be positive, got {theta}")
        self.theta = float(theta)

    @property
    def display_name(self) -> str:
        # R: paste0("Negative Binomial(", format(round(theta, 4)), ")")
        return f"Negative Binomial({round(self.theta, 4):.7g})"

    def variance(self, mu):
        return mu + mu**2 / self.theta

    def variance_derivative(self, mu):
        return 1 + 2 * mu / self.theta

    def valid_mu(self, mu):
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def dev_resids(self, y, mu, wt):
        th = self.theta
        return (
            2
            * wt
            * (
                special.xlogy(y, np.maximum(1, y) / mu)
                - special.xlogy(y + th, (y + th) / (mu + th))
            )
        )

    def loglik_terms(self, y, mu) -> np.ndarray:
        """Log-probabilities :math:`\\log P(Y=y_i)` of each observation."""
        th = self.theta
        return (
            special.gammaln(th + y)
            - special.gammaln(th)
            - special.gammaln(y + 1)
            + th * np.log(th)
            + special.xlogy(y, mu)
            - (th + y) * np.log(th + mu)
        )

    def aic(self, y, n, mu, wt, dev):
        return float(-2 * np.sum(self.loglik_terms(y, mu) * wt))

    def initialize(self, y, weights):
        y = self._vector_response(y)
        if np.any(y < 0):
            raise FamilyError("negative values are not allowed for the negative binomial family")
        return y + (y == 0) / 6.0, y, weights, np.ones_like(y)


_FAMILIES: dict[str, type[Family]] = {
    "gaussian": Gaussian,
    "normal": Gaussian,
    "binomial": Binomial,
    "poisson": Poisson,
    "gamma": Gamma,
    "inverse.gaussian": InverseGaussian,
    "inverse_gaussian": InverseGaussian,
    "inversegaussian": InverseGaussian,
    "quasipoisson": QuasiPoisson,
    "quasibinomial": QuasiBinomial,
    "negative.binomial": NegativeBinomial,
    "negative_binomial": NegativeBinomial,
    "negbin": NegativeBinomial,
    "nb": NegativeBinomial,
}


def get_family(family: str | Family, link: str | Link | None = None, **kwargs) -> Family:
    """A :class:`Family` from R's name (case-insensitive) or a Family object.

    Parameters
    ----------
    family : str or Family
        ``"gaussian"``, ``"binomial"``, ``"poisson"``, ``"Gamma"``,
        ``"inverse.gaussian"``, ``"quasipoisson"``, ``"quasibinomial"``,
        ``"negative.binomial"`` (pass ``theta=``).
    link : str or Link, optional
        Overrides the family's default (canonical) link.
    """
    if isinstance(family, Family):
        if link is not None and get_link(link).name != family.link.name:
            raise FamilyError("give the link inside the Family object or as link=, not both")
        return family
    key = str(family).strip().lower().replace(" ", "")
    if key not in _FAMILIES:
        raise FamilyError(
            f"unknown family {family!r}; available: gaussian, binomial, poisson, Gamma, "
            "inverse.gaussian, quasipoisson, quasibinomial, negative.binomial"
        )
    cls = _FAMILIES[key]
    if cls is NegativeBinomial:
        return NegativeBinomial(kwargs.get("theta", 1.0), link=link)
    return cls(link)
