"""numpy's huge-page advice is off inside :func:`ordinary_pages` and restored after."""

from __future__ import annotations

import pytest

from pyglmm.page_advice import _advice_switch, ordinary_pages


@pytest.mark.parametrize("initial", [True, False])
def test_advice_is_off_inside_and_restored_after(initial):
    switch = _advice_switch()
    if switch is None:
        pytest.skip("this numpy has no huge-page switch")
    before = switch(initial)
    try:
        with ordinary_pages():
            assert switch(False) is False  # off inside (and left off)
        assert switch(initial) is initial  # restored on leaving
        with pytest.raises(RuntimeError), ordinary_pages():
            raise RuntimeError("a failing fit")
        assert switch(initial) is initial  # restored after an error too
    finally:
        switch(before)
