# ConvoSuite developer commands. See README.md and docs/development.md.
#
#   make up     bring the whole product up on local defaults (demo tenants, users, local model)
#   make test   lint, type checks and the whole test suite (unit, integration, browser)
#   make lint   ruff, mypy and the import layers (lint-imports) only
#   make gameday  the three incident rehearsals against the real stack, with a report table (docs/playbooks/)
#   make cluster-rehearsal   the stack as several hosts on this machine (docs/deployment.md; not part of make test)

VENV := .venv
PY   := $(VENV)/bin/python

.PHONY: up test lint gameday bootstrap bootstrap-local-model cluster-rehearsal

bootstrap:
	bash devtools/bootstrap.sh

bootstrap-local-model:
	bash devtools/bootstrap.sh --with-local-model

up: bootstrap-local-model
	$(PY) devtools/up.py

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports --no-cache --no-logo

# Runs ruff, mypy, lint-imports (the layer contract in .importlinter, docs/architecture.md) and pytest
# even when an earlier one fails, and fails if any of them failed.
# pytest exit status 5 means "no tests collected": we always have tests, so that fails too.
# The tests run against the real local model too (issue 12): it is installed like `make up` installs it.
test: bootstrap-local-model
	@failed=""; \
	echo "== ruff"; $(VENV)/bin/ruff check . || failed="$$failed ruff"; \
	echo "== mypy"; $(VENV)/bin/mypy . || failed="$$failed mypy"; \
	echo "== lint-imports"; $(VENV)/bin/lint-imports --no-cache --no-logo || failed="$$failed lint-imports"; \
	echo "== pytest"; $(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; \
	if [ $$rc -ne 0 ]; then failed="$$failed pytest"; fi; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed" >&2; exit 1; fi

# The incident playbooks rehearsed end to end (tests/gameday/): bounded to 10 minutes, report table at the end.
# They are also part of `make test`.
gameday: bootstrap
	timeout 600 $(PY) -m pytest tests/gameday -q -p no:cacheprovider

# Two web nodes behind HAProxy, two worker nodes, shared PostgreSQL and Redis, each node its own network
# namespace; real traffic, then a table. Needs root (ip netns). docs/deployment.md, "Several nodes".
cluster-rehearsal: bootstrap
	$(PY) -m devtools.cluster
