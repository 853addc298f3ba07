"""What the benchmark smoke tests share: importing a script of ``benchmarks/`` as its own module."""

import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def load(monkeypatch):
    """``load(name)`` imports ``benchmarks/<name>.py``.

    The scripts import their sibling ``_common`` as a top-level module, as when run directly.
    """
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module
