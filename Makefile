# Every command the README names. `make run` and `make test` work from a fresh clone:
# they create .venv, install the package with its dev tools, and build the embedded store.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format typecheck bench bench-hl7 ferretdb clean

# Reinstall only when the dependencies change; pip's cache (~/.cache/pip) keeps a fresh clone quick.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]' && touch $@

# The embedded document store (FerretDB on SQLite); built once into ~/.cache/interop.
ferretdb:
	@if [ -z "$$INTEROP_FERRETDB_BIN" ]; then bin=$$(scripts/build-ferretdb.sh) && echo "ferretdb: $$bin"; fi

run: $(STAMP) $(if $(INTEROP_MONGODB_URI),,ferretdb)
	$(BIN)/interop run

test: $(STAMP) ferretdb
	$(BIN)/pytest -n 2 tests

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy && $(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP) ferretdb
	$(BIN)/python bench/run.py

bench-hl7: $(STAMP) ferretdb
	$(BIN)/python bench/hl7_run.py

# Caches and build output only: var/ holds the store's data and .venv/ is slow to rebuild.
clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
