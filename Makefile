# The two README commands: `make run` and `make test`. Both bootstrap .venv
# from the pinned requirements on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.run-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: run test test-django6 lint format bench chaos clean-var system-packages-run system-packages-test

# mypy's Django plugin imports settings; placeholder URLs keep it from starting
# the embedded servers (it exits without running atexit handlers).
LINT_ENV := DATABASE_URL=postgres://lint@localhost/lint REDIS_URL=redis://localhost:6379/0

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(RUN_STAMP)

## system-packages-run / -test: the system packages each command needs, installed
## once with apt-get (as root or through `sudo -n`), or the exact command to run
system-packages-run system-packages-test:
	@sh devops/system-packages $(@:system-packages-%=%)

## run: embedded PostgreSQL + Redis (unless DATABASE_URL/REDIS_URL), migrate, demo data, admin, web + workers
run: system-packages-run $(RUN_STAMP)
	$(PY) -m config.run

## test: the whole suite (embedded services in a throwaway dir unless DATABASE_URL/REDIS_URL)
test: system-packages-test $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## test-django6: the django.tasks backend and RQ-contract tests on Python 3.12 + Django 6.1 (CI's second leg)
# Django 6.1 deprecates the EMAIL_* settings (MAILERS); the suite turns warnings into errors.
DJANGO6_TESTS := tests/queueing/test_task_backend.py tests/queueing/test_rq_contract.py tests/queueing/test_rq_conformance.py
test-django6: system-packages-test
	sh devops/django6-venv
	.venv-django6/bin/python -m pytest -W "ignore::django.utils.deprecation.RemovedInDjango2028Warning" $(DJANGO6_TESTS)

## lint: ruff (lint + format check) and mypy
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(LINT_ENV) $(VENV)/bin/mypy .

format: $(DEV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## bench: benchmarks in bench/ (their own throwaway PostgreSQL and Redis, whatever the environment says)
bench: system-packages-run $(DEV_STAMP)
	env -u DATABASE_URL -u REDIS_URL $(PY) -m bench $(BENCH_ARGS)

## chaos: the fault and abuse suite (its own PostgreSQL and Redis; prints the results table)
chaos: system-packages-run $(DEV_STAMP)
	env -u DATABASE_URL -u REDIS_URL $(PY) -m chaos $(CHAOS_ARGS)

## clean-var: stop the embedded servers and delete their data (var/)
clean-var: $(RUN_STAMP)
	$(PY) -m config.embedded stop
	rm -rf var
