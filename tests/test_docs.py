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


EXAMPLES = DOCS.parent / "examples"


def test_gallery_examples_run_without_dunder_file():
    """sphinx-gallery executes examples/plot_*.py without ``__file__`` (its issues #166, #212): an example
    that uses it fails the executed build (make docs) although the -D plot_gallery=0 build passes."""
    for example in sorted(EXAMPLES.glob("plot_*.py")):
        code = compile(example.read_text(), str(example), "exec")
        names = set(code.co_names)
        for const in code.co_consts:
            names |= set(getattr(const, "co_names", ()))
        assert "__file__" not in names, f"{example.name} uses __file__"


def test_gallery_sets_the_examples_quick_mode(monkeypatch, tmp_path):
    """The documentation build runs the examples' quick settings unless told otherwise, and they read it."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    record = pytest.importorskip("_record")
    assert f'os.environ.setdefault("{record.QUICK_ENV}", "1")' in (DOCS / "conf.py").read_text()
    monkeypatch.setattr(sys, "argv", ["plot_x.py", "--output", str(tmp_path)])
    monkeypatch.delenv(record.QUICK_ENV, raising=False)
    assert not record.figure_arguments("x", "x").quick
    monkeypatch.setenv(record.QUICK_ENV, "1")
    args = record.figure_arguments("x", "x", record=False)
    assert args.quick and not hasattr(args, "record")
    monkeypatch.setenv(record.QUICK_ENV, "0")
    monkeypatch.setattr(sys, "argv", ["plot_x.py", "--quick", "--output", str(tmp_path)])
    assert record.figure_arguments("x", "x").quick
