# Postern developer entry points. Everything runs from .venv, which
# `make bootstrap` creates (see deploy/bootstrap-dev.sh).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin

# Directories that mypy checks; those that do not exist (yet) are skipped.
MYPY_PATHS = $(wildcard crypto config dropbox journalist_ui tests bench deploy)

.PHONY: help bootstrap lint test demo clean

help:
	@echo "make demo       set up everything and run the whole system locally (deploy/demo.py)"
	@echo "make test       set up everything, then lint, type-check, check import contracts and test"
	@echo "make bootstrap  install missing Debian packages and create/refresh $(VENV)"
	@echo "make lint       ruff, mypy and import-linter only"
	@echo "make clean      remove $(VENV) and caches"

bootstrap:
	@deploy/bootstrap-dev.sh

lint:
	$(BIN)/ruff check .
	$(BIN)/mypy $(MYPY_PATHS)
	$(BIN)/lint-imports

# pytest exits 5 when it collects no test; that is a failure too.
test: bootstrap
	@$(MAKE) --no-print-directory lint
	@status=0; $(BIN)/pytest || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$status

demo: bootstrap
	$(BIN)/python deploy/demo.py

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
