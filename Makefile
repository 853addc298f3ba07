# Two entry points that work on a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned: an unpinned torch resolves to a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION := 2.13.0

.PHONY: demo test install clean benchmarks tutorial

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e ".[test,plot]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python examples/demo.py --output demo_output

test: install
	$(BIN)/python -m pytest -q

# The CCP journey of docs/tutorial_ccp.md on quick settings (about 10 min on a 2-core CPU, see benchmarks/results/tutorial_ccp_quick.json; needs ../shared/data).
tutorial: install
	$(BIN)/python examples/tutorial_ccp.py --quick

benchmarks: install
	for b in memory ensemble extract gridsearch weizmann; do $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) demo_output .pytest_cache
