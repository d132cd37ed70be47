# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv when missing, install the CPU torch wheel first (so pip never pulls a CUDA build),
# then the package with its dev extras.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test reliability install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,media]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/avloc demo

test: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest -q

# The fault cases alone (also part of `make test`): run folders, kills, corrupt files, malformed inputs.
reliability: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest -q -m reliability

clean:
	rm -rf $(VENV) .pytest_cache
