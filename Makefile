# Postern developer entry points. Everything runs from .venv, which
# `make bootstrap` creates (see deploy/bootstrap-dev.sh).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
# pytest-xdist workers of `make test`'s main pass (see the test target).
TEST_WORKERS ?= 2

# Directories that mypy checks; those that do not exist (yet) are skipped.
MYPY_PATHS = $(wildcard common crypto config dropbox journalist_ui transfer tests bench deploy)

.PHONY: help bootstrap lock lint test test-fast soak demo clean

# The suite starts well over a thousand interpreters (servers, their workers, commands). An
# environment that sets PYTHONDONTWRITEBYTECODE (some CI images do) would have each of them
# compile the project's modules again, 0.1 to 0.3 CPU seconds apiece; the tests write the
# bytecode caches (__pycache__, ignored by git) instead; so do the demo's processes. The
# installed server keeps the variable (deploy/systemd): there the code is root's, read-only
# and compiled.
test test-fast soak demo: export PYTHONDONTWRITEBYTECODE :=

help:
	@echo "make demo       set up everything and run the whole system locally (deploy/demo/, python -m deploy.demo)"
	@echo "make test       set up everything, then lint, type-check, check import contracts and test"
	@echo "                (the server's database tests twice: SQLite, then PostgreSQL)"
	@echo "make test-fast  the same without the browser, tor, slow and bench tests"
	@echo "make soak       the lifecycle soak for hundreds of cycles (SOAK_CYCLES, POSTERN_SOAK_SEED)"
	@echo "make bootstrap  install missing Debian packages and create/refresh $(VENV) from requirements.lock"
	@echo "make lock       re-resolve every Python dependency into requirements.lock (exact versions, hashes)"
	@echo "make lint       ruff, mypy and import-linter only"
	@echo "make clean      remove $(VENV) and caches"

bootstrap:
	@deploy/bootstrap-dev.sh

# The only place versions are chosen. pip-compile resolves the packaging's
# dependencies, every extra and the build backend, and records each release's
# hashes; the bootstrap installs with --require-hashes and rebuilds .venv when
# the lock changes.
lock: bootstrap
	$(BIN)/pip-compile --quiet --upgrade --all-extras --all-build-deps --generate-hashes \
		--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
		--no-emit-trusted-host --output-file requirements.lock pyproject.toml

lint:
	$(BIN)/ruff check .
	$(BIN)/mypy $(MYPY_PATHS)
	$(BIN)/lint-imports

# pytest exits 5 when it collects no test; that is a failure too. The full run includes a
# bounded lifecycle soak (tests/soak, 3 cycles); `make soak` runs hundreds. TEST_WORKERS
# workers (pytest-xdist) keep both cores busy while tests wait on servers; a file's tests stay
# on one worker, since several share a module's fixtures (and the files that share the
# private Tor network go together: SHARED_WORKER in tests/conftest.py); the files go out in
# collection order (--no-loadscope-reorder), where tests/conftest.py puts the longest first so that no
# worker ends alone on one of them. tests/support/ports gives each worker its own ports below
# the kernel's ephemeral range, so no worker takes another's.
#
# The lint, the main pass and the PostgreSQL pass run one after the other: run side by side
# on a shared 2-core machine they made timing-bound tests (the demo's stop, the servers'
# start) miss their bounds. A second run beside this one must set POSTERN_TEST_PORT_SLICE
# (tests/support/ports.py) so that its workers take other ports.
#
# The tests that touch the server's database run a second time on PostgreSQL
# (POSTERN_TEST_DATABASE=postgresql: a throwaway cluster the suite starts, a fresh database
# per data directory; tests/support/database.py). Those are PG_TESTS without the browser,
# tor, slow, bench and soak tests, and without PG_NO_DATABASE; on two workers (none of them
# binds the front's ports). PG_NO_DATABASE, file by file:
# - no database at all: test_keyring_rotation, test_nojs (the plain-form parser and sealing,
#   over fake stores), test_nojs_gunicorn (a test app without a database), test_seal_cli,
#   test_storage (local blobs; its disk_full mapping test needs no server), and the transfer
#   client's test_download, test_progress, test_spool, test_transfer_client (a fake server);
# - they pick SQLite and PostgreSQL themselves, so they run on both in the first pass:
#   test_uploads (the upload store with files on SQLite and with its parts in PostgreSQL),
#   test_blob_contract, test_database, test_postgres_cluster, test_postgres_privacy;
# - test_tus_interop: the tus protocol against tuspy, through a test app that makes its own
#   SQLite store in its gunicorn process; test_tus runs the same endpoint on each backend.
# test_tus (the upload rows) and test_throttle (the derivation budgets, in the database)
# run in both passes.
PG_TESTS := tests/dropbox tests/transfer tests/integration/test_transfer_loop.py
PG_MARKERS := not browser and not tor and not slow and not bench and not soak
PG_NO_DATABASE := $(addprefix tests/dropbox/,test_keyring_rotation.py test_nojs.py \
	test_nojs_gunicorn.py test_seal_cli.py test_storage.py test_tus_interop.py \
	test_uploads.py test_postgres_cluster.py test_postgres_privacy.py test_database.py \
	test_blob_contract.py) \
	$(addprefix tests/transfer/,test_download.py test_progress.py test_spool.py \
	test_transfer_client.py)
test: bootstrap
	@$(MAKE) --no-print-directory lint
	@status=0; $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--durations=25 || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	if [ $$status -eq 0 ]; then \
		echo "make test: the server's database tests again, on PostgreSQL"; \
		POSTERN_TEST_DATABASE=postgresql $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile \
			--durations=10 -m "$(PG_MARKERS)" $(addprefix --ignore=,$(PG_NO_DATABASE)) \
			$(PG_TESTS) || status=$$?; \
	fi; \
	exit $$status

# Everything but the tests marked browser, tor, slow or bench (see setup.cfg).
test-fast: bootstrap
	@$(MAKE) --no-print-directory lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		-m "not browser and not tor and not slow and not bench and not soak"

SOAK_CYCLES ?= 200
soak: bootstrap
	POSTERN_SOAK_CYCLES=$(SOAK_CYCLES) $(BIN)/pytest -s -m soak tests/soak

demo: bootstrap
	$(BIN)/python -m deploy.demo

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
