# Lytics: two commands matter. `make dev` starts the platform, `make test` proves it.
# Both build the virtual environment from the hashed lock file when it is missing or stale.

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
VENV := .venv
UV := $(TOOLS)/bin/uv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast browser promtool pgbouncer lint fmt typecheck lock bench clean help

# Every target carries a `## what it does` comment; `make help` lists them all.
help: ## list the targets
	@awk -F':.*## ' '/^[a-z-]+:.*## / {printf "make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): requirements.lock pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

dev: $(STAMP) ## start Postgres (embedded unless DATABASE_URL), the ingest API and Dagster
	$(BIN)/lytics dev

test: $(STAMP) lint browser promtool pgbouncer ## lint, type-check and run the whole test suite
	$(BIN)/pytest

test-fast: $(STAMP) browser promtool pgbouncer ## the suite without slow and end-to-end tests
	$(BIN)/pytest -m "not slow and not e2e"

# tests/test_digests_browser.py renders the digest in headless Chromium and fails, not skips,
# without one; a browser is a system package, not a Python dependency, so install Debian's here.
browser: ## install headless Chromium (Debian) for the digest rendering test
	@command -v chromium >/dev/null || ! command -v apt-get >/dev/null || \
		apt-get install -y chromium || sudo apt-get install -y chromium

# tests/test_deploy_files.py checks the alert rules with Prometheus's own promtool.
promtool: ## install Prometheus's promtool (Debian's prometheus package) for the rule checks
	@command -v promtool >/dev/null || ! command -v apt-get >/dev/null || \
		apt-get install -y --no-install-recommends prometheus || \
		sudo apt-get install -y --no-install-recommends prometheus

# tests/test_pgbouncer.py runs the API, the CLI and the pipeline through a real pgbouncer.
pgbouncer: ## install pgbouncer (Debian's package) for the transaction-mode pooling tests
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || ! command -v apt-get >/dev/null || \
		apt-get install -y --no-install-recommends pgbouncer || \
		sudo apt-get install -y --no-install-recommends pgbouncer

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy alone
	$(BIN)/mypy

lock: | $(UV) ## re-resolve requirements.lock from pyproject.toml
	$(UV) pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes --quiet -o requirements.lock

bench: $(STAMP) ## run the benchmarks in benchmarks/
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean: ## remove the environments (keeps .lytics data)
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache *.egg-info
