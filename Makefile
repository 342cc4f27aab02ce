# The commands the README names. `make run` runs the whole system from a fresh clone;
# `make test` installs what the tests need and runs the linter and every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per set of extras: `make run` installs the package alone; `make test` and `make bench`
# add their extras. `.installed` is everything (test and bench), for a full development venv.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
export DJANGO_PORT ?= 8000
export CHAT_PORT ?= 9000

.PHONY: run test js-test lint format bench bench-search bench-feed bench-smoke faults browser-deps js-deps deploy-deps clean

$(RUN_STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	touch $@

$(TEST_STAMP): $(RUN_STAMP)
	$(PIP) -e '.[test]'
	touch $@

$(BENCH_STAMP): $(RUN_STAMP)
	$(PIP) -e '.[bench]'
	touch $@

$(STAMP): $(TEST_STAMP) $(BENCH_STAMP)
	touch $@

# Development secrets, generated once and never committed.
.env:
	$(PYTHON) scripts/make_dotenv.py > .env.tmp && mv .env.tmp .env
	@echo "Wrote development secrets to .env (ignored by git)."

run: $(RUN_STAMP) .env
	scripts/run.sh

# Debian's Chromium for the browser tests; nothing downloads a browser of its own.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || scripts/install_chromium.sh

# Debian's nginx and systemd-analyze for the production-layout tests (tests/deploy): the shipped
# nginx site and systemd units are run and verified, not just shipped.
deploy-deps:
	@{ test -x /usr/sbin/nginx || command -v nginx; } >/dev/null 2>&1 \
		&& command -v systemd-analyze >/dev/null 2>&1 || scripts/install_deploy_tools.sh

# Debian's Node.js and npm for the client's unit tests (tests/js, `node --test`) and axe-core
# (the version pinned in package.json and package-lock.json), which the browser tests inject
# into the pages (tests/browser/test_axe.py).
js-deps: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	@{ command -v node && command -v npm; } >/dev/null 2>&1 || scripts/install_nodejs.sh
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

js-test: js-deps
	node --test tests/js/*.test.js

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The Django suite runs a second time on PostgreSQL (the local server, trust auth).
# The browser search test also starts a system on a throw-away database of that server.
export TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/chat

# The tests cover bench/ too (tests/bench: the Channels peer under Daphne), so they take its extra.
test: $(TEST_STAMP) $(BENCH_STAMP) browser-deps deploy-deps lint js-test
	$(BIN)/pytest $(PYTEST_ARGS)
	DATABASE_URL=$(TEST_POSTGRES_URL) $(BIN)/pytest tests/chat -q -p no:cacheprovider

# Every fault drill, the long ones included (the quick ones also run in `make test`).
faults: $(TEST_STAMP)
	$(BIN)/pytest tests/faults -m "" $(PYTEST_ARGS)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# The benchmark with tiny numbers (< 1 minute): proves it runs, measures nothing.
bench-smoke: $(BENCH_STAMP)
	$(BIN)/python -m bench --quick

# Full-text search over 1,000,000 messages on SQLite and PostgreSQL (bench/search.py; ~10 min).
bench-search: $(STAMP)
	$(BIN)/python -m bench.search $(BENCH_ARGS)

# The personal feed: 1,000 feed sockets vs 1,000 room sockets under 10 messages/s (bench/feed.py).
bench-feed: $(STAMP)
	$(BIN)/python -m bench.feed $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache node_modules
