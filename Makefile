# walletdesk — `make run` for the demo, `make test` for the checks. Run `make help` for the list.
#
# The virtualenv lives in .venv. A stamp file inside it records the last install, so repeated
# `make run` / `make test` reinstall only when pyproject.toml has changed (the package is
# installed in editable mode: edits under src/ take effect without a reinstall).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# Where `make run` listens; `make run WALLETDESK_PORT=9000` (or the environment) overrides it.
WALLETDESK_HOST ?= 127.0.0.1
WALLETDESK_PORT ?= 8000

PYTEST_ARGS ?=
BENCH_ARGS ?= --quick
# Only the folders that exist: ruff reports a missing path as an error.
LINT_PATHS := $(wildcard src tests bench)

STAMP := $(VENV)/.walletdesk-installed
TEST_STAMP := $(VENV)/.walletdesk-test-installed

.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
.PHONY: help venv run test lint bench clean

help:
	@echo "make run    create .venv, load the demo data, serve on http://$(WALLETDESK_HOST):$(WALLETDESK_PORT)"
	@echo "make test   lint, then the whole test suite in parallel (extra pytest args: PYTEST_ARGS='...')"
	@echo "make lint   ruff check"
	@echo "make bench  python bench/ledger.py $(BENCH_ARGS)"
	@echo "make venv   only create .venv and install walletdesk into it"
	@echo "make clean  remove .venv and caches (the demo data in var/ stays; rm -rf var to reset it)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "walletdesk needs Python >= 3.11; $(PYTHON) is " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e .
	@touch $@

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -e '.[test]'
	@touch $@

run: venv
	$(BIN)/walletdesk demo
	@echo
	@echo "Open:   http://$(WALLETDESK_HOST):$(WALLETDESK_PORT)/docs    (interactive API documentation)"
	@echo "        http://$(WALLETDESK_HOST):$(WALLETDESK_PORT)/health  (is it up, does the database answer)"
	@echo "Try:    curl -H 'Authorization: Bearer demo-zhangwei' http://$(WALLETDESK_HOST):$(WALLETDESK_PORT)/v1/wallets"
	@echo "        (the tokens above are the demo logins; the demo payment PIN, for X-Payment-PIN, is 258036)"
	@echo "        README.md has more to try. Ctrl-C stops the server."
	@echo
	$(BIN)/walletdesk serve --host $(WALLETDESK_HOST) --port $(WALLETDESK_PORT)

lint: $(TEST_STAMP)
	$(BIN)/ruff check $(LINT_PATHS)

# pytest's exit code 5 means "no tests collected": here that is a failure like any other.
test: lint
	$(info $(BIN)/pytest -n auto $(PYTEST_ARGS))
	@$(BIN)/pytest -n auto $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests; that counts as a failure" >&2; fi; \
	exit $$status

bench: venv
	$(BIN)/python bench/ledger.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .hypothesis src/*.egg-info
	find $(LINT_PATHS) -name __pycache__ -type d -prune -exec rm -rf {} +
