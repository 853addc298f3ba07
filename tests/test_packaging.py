"""Library-grade packaging: one version string, ranges (not pins) in pyproject.toml, the exact versions in
the lock, and a wheel that carries the package and only its own data."""

import importlib.metadata
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import sklearn_ddpm

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = ROOT / "requirements" / "lock.txt"


def _name(requirement):
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_one_version_string():
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "sklearn_ddpm._version.__version__"
    assert sklearn_ddpm.__version__ == importlib.metadata.version("sklearn-ddpm")  # reinstall after a bump


def test_dependencies_are_ranges_and_the_lock_pins_them():
    requirements = PYPROJECT["project"]["dependencies"] + [
        r for extra in PYPROJECT["project"]["optional-dependencies"].values() for r in extra]
    pinned = [r for r in requirements if "==" in r]
    assert not pinned, f"pin exact versions in {LOCK.name}, not in pyproject.toml: {pinned}"
    locked = {_name(line): line.split("==")[1].strip() for line in LOCK.read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    missing = sorted({_name(r) for r in requirements} - set(locked))
    assert not missing, f"run `make lock`: {missing} are not in {LOCK.name}"


def test_wheel_holds_the_package_and_only_its_own_data(tmp_path):
    pytest.importorskip("build")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("sklearn_ddpm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    outside = [n for n in names if not n.startswith(("sklearn_ddpm/", "sklearn_ddpm-"))]
    assert not outside, outside  # no tests, benchmarks, docs, examples or data sets
    data = [n for n in names if n.startswith("sklearn_ddpm/_data/")]
    assert "sklearn_ddpm/_data/horse_ddpm/unet/diffusion_pytorch_model.safetensors" in data
    assert "sklearn_ddpm/_data/horse_ddpm/MODEL_CARD.md" in data
    assert sum(n.startswith("sklearn_ddpm/_data/horses/images/") for n in names) == 20
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert wheel.stat().st_size < 20e6
