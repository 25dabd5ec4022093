# dcvpn developer entry points. `make demo` installs and runs the main job on the example
# fabric; `make test` runs the whole suite (what CI runs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE ?= inventory/examples/acme-hybrid.yaml
PYTEST_ARGS ?=

.PHONY: install demo test check lint typecheck unit bench clean

$(BIN)/dcvpn: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/dcvpn

demo: install
	$(BIN)/dcvpn lint -f $(EXAMPLE)
	$(BIN)/dcvpn topology -f $(EXAMPLE)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck unit

bench: install
	$(BIN)/python bench/bench_compile.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
