"""pyglmm: GLMs, linear mixed models and GLMMs with lme4's formula language and numbers."""

from pyglmm import datasets

__version__ = "0.1.0"

__all__ = ["datasets", "__version__"]
