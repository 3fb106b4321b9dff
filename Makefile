# SpaceCredits. `make demo` runs the app with demo data; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
CHROMIUM ?= /usr/bin/chromium

.PHONY: install demo test lint chromium up bench bench-tools clean

install: $(STAMP)

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

# Browser tests drive the system Chromium (Playwright's own download needs the internet).
chromium:
	@test -x $(CHROMIUM) || command -v chromium >/dev/null || { \
	  echo "Installing Chromium from Debian's packages"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

demo: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	@echo "Open http://127.0.0.1:8000/ (logins are in the README)."
	DEBUG=1 $(BIN)/python manage.py rundemo 127.0.0.1:8000

# The whole system as in production: gunicorn, a Celery worker and Celery beat (Procfile),
# on PostgreSQL and Redis. See README "Running it for real". The migrations run as the
# role that owns the tables (DATABASE_OWNER_URL), which then grants the app's role
# (DATABASE_URL) what it needs: that role owns no table, so it cannot disable a trigger.
up: install
	@test -n "$$DATABASE_URL" || { echo "Set DATABASE_URL (PostgreSQL, the app's role); see the README, Running it for real."; exit 1; }
	@test -n "$$DATABASE_OWNER_URL" || { echo "Set DATABASE_OWNER_URL (the role that owns the tables and runs the migrations); see the README, Running it for real."; exit 1; }
	@test -n "$$CELERY_BROKER_URL" || { echo "Set CELERY_BROKER_URL (Redis); see the README, Running it for real."; exit 1; }
	$(BIN)/python manage.py collectstatic --noinput -v0
	DATABASE_URL="$$DATABASE_OWNER_URL" $(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py grant_app_role
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# Without DATABASE_URL, the tests (like the demo) run on the embedded PostgreSQL server.
test: install chromium lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pgdata staticfiles .pytest_cache .hypothesis

# Benchmarks (not tests: nothing here is timed in CI). Needs DATABASE_URL at PostgreSQL;
# creates and drops its own databases; writes docs/benchmarks.md and docs/benchmarks.svg.
bench-tools:
	@command -v pgbench >/dev/null && command -v wrk >/dev/null || { \
	  echo "Installing pgbench and wrk from Debian's packages"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql-contrib wrk >/dev/null; }

bench: install bench-tools
	$(BIN)/python -m bench
