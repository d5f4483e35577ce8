"""Fits on data larger than one machine: Dask DataFrames in, the usual results out.

``pg.glm``, ``pg.lm`` and ``pg.lmer`` hand a Dask DataFrame to the functions of this
package. Every fit reduces the rows to sums (``XᵀWX`` and ``XᵀWz`` per IRLS step; the
blocks of ``[Z X y]ᵀ[Z X y]`` once per linear mixed model), computed partition by
partition on the Dask workers and added in a tree; the client solves the small
systems and runs the optimizer. See ``docs/readme_dask.md``.
"""

from pyglmm.distributed._dask import is_dask_collection
from pyglmm.distributed.mapreduce import PartitionError
from pyglmm.distributed.rows import DistributedNotSupported


def glm(*args, **kwargs):
    """:func:`pyglmm.distributed.glm_model.glm` (imported lazily)."""
    from pyglmm.distributed.glm_model import glm as _glm

    return _glm(*args, **kwargs)


def lm(*args, **kwargs):
    """:func:`pyglmm.distributed.linear_model.lm` (imported lazily)."""
    from pyglmm.distributed.linear_model import lm as _lm

    return _lm(*args, **kwargs)


def lmer(*args, **kwargs):
    """:func:`pyglmm.distributed.mixed_model.lmer` (imported lazily)."""
    from pyglmm.distributed.mixed_model import lmer as _lmer

    return _lmer(*args, **kwargs)


__all__ = ["DistributedNotSupported", "PartitionError", "glm", "is_dask_collection", "lm", "lmer"]
