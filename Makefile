# recastkit: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_OUT ?= demo-output

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# yadage-schemas pins jsonschema<=4.9.1 while pyhf declares jsonschema>=4.15, so no resolver can
# put both in one requirement set (an extra). The export test needs yadage's own validating
# loader: it is installed by a second pip call, which keeps jsonschema 4.9.1 (pyhf and recastkit
# work with it; the whole test suite runs against it).
YADAGE := 'yadage>=0.21' 'yadage-schemas>=0.11'

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet $(YADAGE)
	touch $@ $(VENV)/.installed

## demo: install and run the example analysis (examples/demo/analysis.yml: select -> scale -> fit, cached by step)
demo: $(VENV)/.installed
	$(BIN)/recastkit run examples/demo/analysis.yml -o $(DEMO_OUT)

## test: install with test extras, lint, type-check and run the test suite
test: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_catalog.py
	$(BIN)/python benchmarks/bench_selection.py
	$(BIN)/python benchmarks/bench_expressions.py
	$(BIN)/python benchmarks/bench_limits.py
	$(BIN)/python benchmarks/bench_grid.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
