#!/usr/bin/env bash
# Every GPU figure of the package in one prepared run (<= 8 minutes on one H100/H200).
#
#   benchmarks/gpu_check.sh            # on the GPU machine, from the repository root
#   benchmarks/gpu_check.sh --dry-run  # CPU, tiny sizes, under a minute: checks every stage runs
#
# Records go to $OUT (default benchmarks/results/gpu_check/), a log to $OUT/gpu_check.log, and one
# table is printed at the end; stages and figures: benchmarks/gpu_check.py.
#
# Setup on a bare GPU machine without network that has a CUDA torch (the device machine's image):
# the project's pinned pure dependencies travel as wheels in .whl/ and the Weizmann data in
# .gpu_data/ (both made here by benchmarks/gpu_prepare.sh, both ignored by git, named in `carry`).
# The wheels are installed with --no-deps into /tmp/site, first on PYTHONPATH, so the machine's
# torch (and numpy, scipy) stay as they are; the package itself runs from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/benchmarks/results/gpu_check}
mkdir -p "$OUT"
if [ -z "${PYTHON:-}" ]; then  # the device image's python3 holds its CUDA torch; here, the project's venv
  PYTHON=python3
  [ "${1:-}" = "--dry-run" ] && [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

if [ "${1:-}" != "--dry-run" ]; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="$REPO:/tmp/site${PYTHONPATH#$REPO}"
  fi
  if [ ! -f ../shared/data/weizmann_horse/splits.json ] && [ -d .gpu_data/weizmann_horse ]; then
    mkdir -p ../shared && ln -sfn "$REPO/.gpu_data" ../shared/data
  fi
  # The machine's torch must still be the one in use, with its GPU; the pins must hold.
  "$PYTHON" - <<'EOF'
import importlib.metadata as md, re, tomllib, torch
assert torch.cuda.is_available(), "no CUDA GPU visible"
print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
for dep in deps:
    name = re.match(r"[A-Za-z0-9_.-]+", dep).group(0)
    pin = dep.split("==")[1] if "==" in dep else None
    have = md.version(name)
    if pin is not None and have != pin:
        raise SystemExit(f"{name} {have} installed, pyproject pins {pin}: run benchmarks/gpu_prepare.sh and carry .whl")
import sklearn_ddpm, diffusers, skorch  # noqa: E401,F401  (every import resolves before the GPU work)
print("pinned dependencies: ok")
EOF
fi

set -o pipefail
"$PYTHON" benchmarks/gpu_check.py --out-dir "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
