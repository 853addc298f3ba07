# Two entry points that work on a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned: an unpinned torch resolves to a multi-GB CUDA build.
# pyproject.toml states ranges (a library); the exact versions installed here and in CI are those of
# requirements/lock.txt, a constraints file written by `make lock` from a working .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements/lock.txt
TORCH_VERSION := $(shell sed -n 's/^torch==//p' $(LOCK))

.PHONY: demo test install clean benchmarks tutorial docs lock system-packages

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml $(LOCK)
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -c $(LOCK) -e ".[test,plot]"
	touch $@

install: $(VENV)/.installed

# The napari plugin's tests (tests/napari) open a real Qt window on Xvfb: napari's OpenGL canvas does not
# run on Qt's "offscreen" platform. The X server, Mesa's software OpenGL and the X libraries Qt's xcb
# platform loads, from Debian's packages; apt-get runs only when one of them is missing (as root; elsewhere
# it says what to install, and those tests skip without a display).
SYSTEM_PACKAGES := xvfb libgl1 libegl1 libglx-mesa0 libgl1-mesa-dri libdbus-1-3 libfontconfig1 libglib2.0-0 \
	libx11-xcb1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
	libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1
system-packages:
	@command -v dpkg-query >/dev/null || { echo "not a Debian system: install Xvfb and Qt's X libraries for tests/napari"; exit 0; }; \
	missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "tests/napari need these Debian packages (apt-get install as root): $$missing"; fi

demo: install
	$(BIN)/python examples/demo.py --output demo_output

test: install system-packages
	$(BIN)/python -m pytest -q

# The documentation site, offline, warnings as errors; executes the gallery (examples/plot_*.py) at the
# examples' quick settings, which docs/conf.py sets (SKLEARN_DDPM_EXAMPLES_QUICK=0 make docs: the full studies).
# On the shared 2-core CPU at load 6-16 that took over an hour: the block x step sweep 57 min, corruptions 13 min.
# tests/test_docs.py builds it without running the gallery.
docs: install
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

# Rewrite the lock from the current .venv (after adding a dependency to pyproject.toml and installing it).
lock:
	{ echo "# Exact versions for make demo/test and CI (pip install -c $(LOCK)); written by make lock."; \
	  $(BIN)/pip freeze --all --exclude pip --exclude-editable --exclude sklearn-ddpm | sed -E 's/^(torch==[^+]*)\+.*/\1/'; } > $(LOCK)

# The CCP journey of docs/tutorial_ccp.md on quick settings (about 10 min on a 2-core CPU, see benchmarks/results/tutorial_ccp_quick.json; needs ../shared/data).
tutorial: install
	$(BIN)/python examples/tutorial_ccp.py --quick

benchmarks: install
	for b in memory ensemble extract gridsearch weizmann; do $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) demo_output .pytest_cache docs/_build docs/auto_examples docs/api/generated
