"""Detecting Dask collections without importing Dask, and importing it with a clear error.

``pg.glm``, ``pg.lm`` and ``pg.lmer`` call :func:`is_dask_collection` on every
``data`` argument, so it must cost nothing when Dask is not installed or not used:
it looks at the type's module before it imports anything.
"""

from __future__ import annotations

from typing import Any

from pyglmm.errors import PyglmmError


def is_dask_collection(data: Any) -> bool:
    """True when ``data`` is a Dask collection (a Dask DataFrame in practice).

    Dask is imported only if the object's type comes from a ``dask`` module.
    """
    module = type(data).__module__ or ""
    if not module.startswith("dask"):
        return False
    import dask

    return bool(dask.is_dask_collection(data))


def require_dask() -> None:
    """Import the parts of Dask the distributed fits use, or raise a clear error."""
    try:
        import dask  # noqa: F401
        import dask.dataframe  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise PyglmmError(
            "fitting a Dask DataFrame needs Dask: pip install 'pyglmm[dask]'"
        ) from exc
