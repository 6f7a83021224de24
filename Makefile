# nurture: `make run` starts everything on the embedded default; `make test` runs the suite,
# `make test-fast` the edit loop. They create .venv on first use (and refresh it when
# pyproject.toml changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast check format bench chromium dovecot clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

PORT ?= 8000

run: $(VENV)/.installed-run  ## web + worker + beat on SQLite, messages to var/outbox/ (PORT=8000)
	$(BIN)/nurture run --port $(PORT)

# The whole suite on two cores: the tests that start no process (unit, and the database tests
# on both backends) in TEST_JOBS pytest processes side by side, then the ones that start
# servers, workers and Chromium one at a time (they wait on their own processes, and sharing the
# cores with another shard would only make their timeouts tighter). -m slow and -m "not slow"
# together are every test.
TEST_JOBS ?= 2
test: $(VENV)/.installed-dev chromium dovecot  ## the whole suite (PostgreSQL and Redis on loopback)
	$(BIN)/python -m tests.support.shard $(TEST_JOBS) -m "not slow"
	$(BIN)/python -m pytest -m slow

# The edit loop: unit tests and the database tests on SQLite, no PostgreSQL, no real processes,
# no Chromium (tests/conftest.py marks tests by what they need). Redis-backed tests stay in: a
# local Redis answers in microseconds. FAST_JOBS pytest processes share the tests, and staff
# passwords use cheap argon2 parameters (tests/support/fast_hashing.py says why).
FAST_MARKERS := not slow and not postgres and not browser
FAST_JOBS ?= 2
test-fast: $(VENV)/.installed-dev  ## unit + SQLite database tests, in about a minute
	$(BIN)/python -m tests.support.shard $(FAST_JOBS) -q -p tests.support.fast_hashing \
	  -m "$(FAST_MARKERS)"

check: $(VENV)/.installed-dev  ## linters and types
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

# Browser tests drive Debian's Chromium (Playwright's own download is blocked on these machines).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y chromium >/dev/null || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }; \
	  else echo "browser tests need Chromium: sudo apt-get install -y chromium" >&2; exit 1; fi; }

# The reply-mailbox tests start Debian's Dovecot themselves (tests/support/imap_server.py).
dovecot:
	@test -x /usr/sbin/dovecot || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y dovecot-imapd >/dev/null || { apt-get update >/dev/null && apt-get install -y dovecot-imapd >/dev/null; }; \
	  else echo "reply-mailbox tests need Dovecot: sudo apt-get install -y dovecot-imapd" >&2; exit 1; fi; }

clean:
	rm -rf $(VENV) var test-artifacts .mypy_cache .ruff_cache .pytest_cache
