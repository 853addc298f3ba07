"""The documentation site builds with no warning (sphinx-build -W), the gallery not executed.

`make docs` builds it with the gallery executed; this is the fast check CI runs. Sphinx and its
extensions are part of the `test` extra, so this is skipped only in an environment set up without it.
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("numpydoc")
pytest.importorskip("sphinx_gallery")
pytest.importorskip("myst_parser")

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_site_builds_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q", "-D", "plot_gallery=0",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    html = tmp_path / "html"
    for page in ("index", "installation", "quickstart", "benchmarks", "history", "reference/api",
                 "auto_examples/index", "reference/changelog"):
        assert (html / f"{page}.html").is_file(), page
    # every user-guide page in docs/ is in the site (the toctree's glob)
    for md in DOCS.glob("*.md"):
        assert (html / f"{md.stem}.html").is_file(), md.name
    # the API reference documents the estimators from their numpydoc docstrings
    api = (html / "reference" / "generated" / "sklearn_ddpm.MLPEnsembleClassifier.html").read_text()
    assert "Parameters" in api and "n_estimators" in api
