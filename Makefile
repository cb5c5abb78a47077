# One command installs everything (make install), one runs the tests (make test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test lint train evaluate bench clean

install: $(BIN)/clean-article

$(BIN)/clean-article: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[dev,compare,dask]'
	touch $@

test: install
	$(BIN)/ruff check detector tests
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check detector tests
	$(BIN)/ruff format --check detector tests

train: install
	$(BIN)/detector train

evaluate: install
	$(BIN)/detector evaluate

bench: install
	$(BIN)/detector bench
