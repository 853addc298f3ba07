#!/usr/bin/env bash
# Prepare, on a machine with PyPI access, what benchmarks/gpu_check.sh needs on a GPU machine
# without network: .whl/ (the project's pinned dependencies as Python 3.12 x86-64 wheels) and
# .gpu_data/ (the Weizmann images the GPU stages read). Both are git-ignored through
# .git/info/exclude; name them in the device tool's `carry`: [".whl", ".gpu_data"].
#
#   benchmarks/gpu_prepare.sh [PYTHON_VERSION]   # default 3.12, the device machine's Python
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${1:-3.12}
PYTHON=${PYTHON:-python3}
for path in /.whl/ /.gpu_data/; do
  grep -qxF "$path" .git/info/exclude 2>/dev/null || echo "$path" >> .git/info/exclude
done

# The pins of pyproject.toml (dependencies, and pytest/pytest-timeout of the test extra), plus the
# packages they need that the device image lacks (KINDS.md's package list), at this venv's versions.
# torch, numpy and scipy are not carried: the machine's CUDA torch must stay.
REQUIREMENTS=$("$PYTHON" - <<'EOF'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
test = [d for d in project["optional-dependencies"]["test"] if d.startswith(("pytest==", "pytest-timeout=="))]
print(" ".join(d for d in project["dependencies"] + test if "==" in d))
EOF
)
MISSING_ON_DEVICE="importlib_metadata==10.2.0 lazy-importer==0.1.0 httpx2==2.16.2 httpcore2==2.16.2 truststore==0.10.5"
rm -rf .whl && mkdir .whl
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl $REQUIREMENTS $MISSING_ON_DEVICE

# Images the GPU stages read: labeled_pool[:50] (memory, fit), test[:100] (scoring), unlabeled[:64] (extract).
"$PYTHON" - <<'EOF'
import json, shutil
from pathlib import Path
src, dst = Path("../shared/data/weizmann_horse"), Path(".gpu_data/weizmann_horse")
splits = json.loads((src / "splits.json").read_text())
keep = {"labeled_pool": 50, "test": 100, "unlabeled": 64}
shutil.rmtree(dst, ignore_errors=True)
(dst / "images").mkdir(parents=True)
(dst / "masks").mkdir()
for split, n in keep.items():
    for name in splits[split][:n]:
        shutil.copy(src / "images" / f"{name}.jpg", dst / "images")
        if (src / "masks" / f"{name}.png").is_file():
            shutil.copy(src / "masks" / f"{name}.png", dst / "masks")
(dst / "splits.json").write_text(json.dumps({split: splits[split][:n] for split, n in keep.items()}))
EOF
du -sh .whl .gpu_data
