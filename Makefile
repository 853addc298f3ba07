# Two entry points that work on a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned: an unpinned torch resolves to a multi-GB CUDA build.
# pyproject.toml states ranges (a library); the exact versions installed here and in CI are those of
# requirements/lock.txt, a constraints file written by `make lock` from a working .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements/lock.txt
TORCH_VERSION := $(shell sed -n 's/^torch==//p' $(LOCK))

.PHONY: demo test install clean benchmarks tutorial docs lock

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml $(LOCK)
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -c $(LOCK) -e ".[test,plot]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python examples/demo.py --output demo_output

test: install
	$(BIN)/python -m pytest -q

# The documentation site, offline, warnings as errors; executes the gallery (examples/plot_*.py: tens of
# minutes on a 2-core CPU). tests/test_docs.py builds it without running the gallery.
docs: install
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

# Rewrite the lock from the current .venv (after adding a dependency to pyproject.toml and installing it).
lock:
	{ echo "# Exact versions for make demo/test and CI (pip install -c $(LOCK)); written by make lock."; \
	  $(BIN)/pip freeze --exclude-editable --exclude sklearn-ddpm | sed -E 's/^(torch==[^+]*)\+.*/\1/'; } > $(LOCK)

# The CCP journey of docs/tutorial_ccp.md on quick settings (about 10 min on a 2-core CPU, see benchmarks/results/tutorial_ccp_quick.json; needs ../shared/data).
tutorial: install
	$(BIN)/python examples/tutorial_ccp.py --quick

benchmarks: install
	for b in memory ensemble extract gridsearch weizmann; do $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) demo_output .pytest_cache docs/_build docs/auto_examples docs/api/generated
