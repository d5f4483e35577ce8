"""Families (distribution + link) for GLMs and GLMMs, as R's ``family`` objects."""

from pyglmm.families.family import (
    Binomial,
    Family,
    Gamma,
    Gaussian,
    InverseGaussian,
    NegativeBinomial,
    Poisson,
    QuasiBinomial,
    QuasiPoisson,
    get_family,
)
from pyglmm.families.links import Link, get_link, link_names

__all__ = [
    "Binomial",
    "Family",
    "Gamma",
    "Gaussian",
    "InverseGaussian",
    "Link",
    "NegativeBinomial",
    "Poisson",
    "QuasiBinomial",
    "QuasiPoisson",
    "get_family",
    "get_link",
    "link_names",
]
