# One command installs everything (make install), one runs the tests (make test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test lint train evaluate bench reproduce

# Compiled on every run, with -f (a tenth of a second): as pip does for a wheel, so that no start compiles the
# package; -f because compileall compares a source's time to the second and keeps bytecode of an edit made within it.
install: $(BIN)/clean-article
	$(BIN)/python -m compileall -q -f detector models

# The package in editable mode with every extra: training, the compared tools, Dask, and the test tools.
# (setuptools warns on every editable install of a package that is not in a src/ folder that a folder named like
# the package in the working directory could shadow it; here that folder is the package itself.)
# Mode "compat" puts the checkout on sys.path with a .pth line, as an installed wheel needs nothing at start:
# the default mode's import hook costs every start 5 ms (pathlib and importlib.util), a tenth of a cold start,
# which `detector bench` would time and no user pays. Should setuptools drop the mode, the default one is used.
# constraints.txt pins every version to the ones the model was trained and tested with (make train, make reproduce),
# on Python 3.11 and newer; some of them have no release for Python 3.10 (numpy 2.4, pandas 3), which gets the newest
# releases that support it, unpinned: cleaning is the same, a retrained model may differ in its last bits.
PINS := $(shell $(PYTHON) -c 'import sys; print("-c constraints.txt" if sys.version_info >= (3, 11) else "")')
EDITABLE := PYTHONWARNINGS="ignore:Editable installation,ignore::DeprecationWarning" $(BIN)/pip install --quiet $(PINS) -e '.[dev]'
$(BIN)/clean-article: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(EDITABLE) --config-settings editable_mode=compat 2>/dev/null || $(EDITABLE)
	touch $@

test: install lint
	$(BIN)/python -m pytest -n 2

lint: install
	$(BIN)/ruff check detector tests
	$(BIN)/ruff format --check detector tests
	$(BIN)/mypy

train: install
	$(BIN)/detector train

evaluate: install
	$(BIN)/detector evaluate --report reports

bench: install
	$(BIN)/detector bench

# The full proof that models/model.bin is what training on training_data/ gives, byte for byte (minutes).
reproduce: install
	$(BIN)/detector train --output $(VENV)/reproduced/model.bin
	cmp $(VENV)/reproduced/model.bin models/model.bin && echo "models/model.bin is reproduced byte for byte"
