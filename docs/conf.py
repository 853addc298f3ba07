"""Sphinx configuration of the sklearn-ddpm documentation site.

Built offline: ``make docs`` (executes the gallery, warnings are errors) or, in the test suite,
``sphinx-build -W -D plot_gallery=0`` (tests/test_docs.py). The API reference is generated here from
the public names of each sub-package (their ``__all__``), so a new public function is documented
without editing this file; the benchmark report (benchmarks.md) is rendered from the JSON records by
``benchmarks/report.py``.
"""

import fcntl
import importlib
import inspect
import os
import pkgutil
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the package, when the docs are built from a checkout

import sklearn_ddpm  # noqa: E402

# One build at a time in this folder: the API pages and the gallery are generated into it, and a second
# build (make docs next to tests/test_docs.py) would delete or half-write the first one's files.
# Released when the build finishes (or the process ends).
_BUILD_LOCK = open(DOCS / ".sphinx-build.lock", "w")
fcntl.flock(_BUILD_LOCK, fcntl.LOCK_EX)

project = "sklearn-ddpm"
author = "sklearn-ddpm developers"
copyright = "sklearn-ddpm developers"
release = sklearn_ddpm.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5"]
templates_path = ["_templates"]

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-ddpm {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path = []

# MyST: the user guide is Markdown (docs/*.md). Headings get anchors so the pages' `#section` links
# resolve; `$...$` maths as in the pages.
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# A code sample abridged with "..." is not valid JSON; Pygments then highlights it in relaxed mode,
# which is fine: that fallback is not worth failing the build (-W) for.
suppress_warnings = ["misc.highlighting_failure"]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()

# The gallery: examples/plot_*.py, executed by `make docs` on the bundled backbone, on the CPU. Each runs
# its quick settings (a smaller but real study: fewer steps, seeds or severities; examples/_record.py), as
# the full block x step sweep alone took 26 minutes on a 2-core CPU; SKLEARN_DDPM_EXAMPLES_QUICK=0 make docs
# runs the full ones. `-D plot_gallery=0` builds the pages without running them.
os.environ.setdefault("SKLEARN_DDPM_EXAMPLES_QUICK", "1")
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(__init__|_record|demo|tutorial_ccp)\.py",
    "plot_gallery": "True",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
    "abort_on_example_error": True,
}

# Private or heavy modules left out of the API reference; everything else with a public name is in it.
API_SKIP = {"sklearn_ddpm.cli"}


def _public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items()
                 if not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                 and getattr(obj, "__module__", "") == module.__name__]
    return [n for n in names if n != "__version__"
            and (inspect.isclass(getattr(module, n, None)) or callable(getattr(module, n, None)))]


def _api_modules():
    """``sklearn_ddpm`` then its public sub-modules, in alphabetical order."""
    names = ["sklearn_ddpm"]
    for info in pkgutil.iter_modules(sklearn_ddpm.__path__, "sklearn_ddpm."):
        if not info.name.rsplit(".", 1)[1].startswith("_") and info.name not in API_SKIP:
            names.append(info.name)
    return names


def write_api_reference():
    """Write reference/api.rst: one section per public module, one autosummary page per public class/function
    (an object re-exported by several modules is documented once, under the first)."""
    lines = ["API reference", "=============", "",
             "Every public class and function, grouped by sub-package (each sub-package's ``__all__``).",
             "The estimators follow scikit-learn's conventions: parameters are set in ``__init__``,",
             "validated in ``fit``; fitted attributes end with ``_``.", ""]
    seen = set()
    for name in _api_modules():
        try:
            module = importlib.import_module(name)
        except ImportError as error:  # an optional dependency (an extra) that is not installed
            print(f"[api] {name} left out of the API reference: {error}")
            continue
        entries = []
        for attr in _public_names(module):
            obj = getattr(module, attr)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            entries.append(attr)
        if not entries:
            continue
        summary = (inspect.getdoc(module) or "").split("\n\n")[0].replace("\n", " ")
        lines += [f"``{name}``", "-" * (len(name) + 4), "", summary, "",
                  f".. currentmodule:: {name}", "", ".. autosummary::", "   :toctree: generated", "   :nosignatures:", ""]
        lines += [f"   {attr}" for attr in entries] + [""]
    text = "\n".join(lines)
    shutil.rmtree(DOCS / "reference" / "generated", ignore_errors=True)  # no stale page of a renamed function
    target = DOCS / "reference" / "api.rst"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


write_api_reference()


# numpydoc renders the type of "name : type" as reStructuredText, where a trailing underscore
# (``(n_features_in_,)``, ``default="features__"``) is a hyperlink reference: escape those there.
_PARAMETER_LINE = re.compile(r"^([\w*][\w*, ]*) : (.+)$")
_TRAILING_UNDERSCORES = re.compile(r"(?<=\w)(_+)(?=[,)\"'\s]|$)")


def _escape_parameter_types(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        match = _PARAMETER_LINE.match(line)
        if match:
            kind = _TRAILING_UNDERSCORES.sub(lambda m: "\\_" * len(m.group(1)), match.group(2))
            lines[i] = f"{match.group(1)} : {kind}"


def setup(app):
    app.connect("autodoc-process-docstring", _escape_parameter_types, priority=100)
    app.connect("build-finished", lambda app, exception: fcntl.flock(_BUILD_LOCK, fcntl.LOCK_UN))
