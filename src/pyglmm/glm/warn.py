"""Warnings that point at the user's line, not at pyglmm's internals."""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_stacklevel() -> int:
    """``stacklevel`` for :func:`warnings.warn` that skips every frame inside pyglmm."""
    level = 1
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def warn(message: str, category: type[Warning]) -> None:
    """Issue ``message`` as ``category``, attributed to the first frame outside pyglmm."""
    warnings.warn(message, category, stacklevel=user_stacklevel())
