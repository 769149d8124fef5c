# myna-idp — what CI runs is `make test` (see .ci/run and docs/testing.md).
#
#   make test      venv + deps (when pyproject.toml changed), start the services, `make check`,
#                  pytest over everything, stop the services (also on failure or Ctrl-C)
#   make check     ruff check, ruff format --check, mypy, import-linter
#   make demo      the local demo (arrives with the OpenID provider)
#   make services / make services-stop   the test services on their own, for running pytest by hand

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test check demo venv services services-stop

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,pcsc]'
	touch $@

check: $(STAMP)
	$(BIN)/ruff check idp tests bench relying_party_demo phone_simulator
	$(BIN)/ruff format --check idp tests bench relying_party_demo phone_simulator
	$(BIN)/mypy idp phone_simulator
	$(BIN)/lint-imports

# Exit status: pytest's; then the peer job's (`pytest -m peer`, its own invocation: the
# differential matrix against node-oidc-provider; 5 = nothing selected counts as passed);
# then check's. One run at a time per checkout (flock): the services are machine-wide (one pcscd, fixed ports).
test: $(STAMP)
	@mkdir -p var; exec 9>var/test.lock; \
	flock -n 9 || { echo "waiting for another make test in this checkout" >&2; flock 9; }; \
	trap 'scripts/services.sh stop' EXIT; trap 'exit 130' INT TERM; \
	scripts/services.sh start 9>&- || exit 1; \
	set -a; . var/services.env; set +a; \
	$(MAKE) --no-print-directory check; check_status=$$?; \
	$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	$(BIN)/pytest -m peer $(PYTEST_ARGS); peer_status=$$?; \
	if [ $$peer_status -eq 5 ]; then peer_status=0; fi; \
	if [ $$check_status -ne 0 ]; then echo "make check failed (status $$check_status)" >&2; fi; \
	if [ $$status -eq 0 ]; then status=$$peer_status; fi; \
	if [ $$status -eq 0 ]; then status=$$check_status; fi; \
	exit $$status

services: $(STAMP)
	scripts/services.sh start
	@echo 'now: set -a; . var/services.env; set +a; $(BIN)/pytest'

services-stop:
	scripts/services.sh stop

# The local demo (docs/demo.md): the provider, the demo relying party and virtual test cards,
# without root, a card reader or a compiler (installs the project without the pcsc extra).
DEMO_STAMP := $(VENV)/.demo-installed
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

demo: $(DEMO_STAMP)
	$(BIN)/idp demo
