"""The README's Python examples run as written (the Dask block needs a cluster and files)."""

import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"


def python_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return [b for b in blocks if "dask" not in b]


def test_readme_has_examples():
    assert len(python_blocks()) >= 6


def test_readme_examples_run():
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in python_blocks():
            try:
                exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
            except Exception as exc:  # pragma: no cover - the message names the block
                pytest.fail(f"README block failed: {exc!r}\n{block}")
    import matplotlib.pyplot as plt

    plt.close("all")
    # the numbers the README shows
    assert namespace["m"].summary() is not None
    assert abs(namespace["f"].objective - 1743.6282719584901) < 1e-4
