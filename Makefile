# Profile Sync — the two commands: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python
AIRFLOW := $(CURDIR)/$(VENV)/bin/airflow
LOCAL := $(CURDIR)/.local
SAMPLE := $(LOCAL)/sample/directory.ldif
PEOPLE ?= 2000
GROUPS ?= 100
SEED ?= 42
UI_PORT ?= 8080

export PROFILE_SYNC_HOME := $(CURDIR)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONPATH := $(CURDIR)/include:$(CURDIR)/plugins:$(CURDIR)
export AIRFLOW_HOME ?= $(LOCAL)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION := True
export AIRFLOW__LOGGING__LOGGING_LEVEL ?= WARNING
# An idle scheduler loops every 0.25 s (Airflow's default: 1 s): the next task of a run is queued sooner
# (README "Speed": the Airflow overhead); it costs the idle scheduler ~4 s of CPU a minute instead of ~1 s.
export AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME ?= 0.25

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BUILD_PACKAGES := libldap2-dev libsasl2-dev

.PHONY: help run test ui bench sample system-packages test-servers bytecode clean FORCE

help:
	@echo "make run    - set up everything, build the sample directory, run a full then an incremental sync"
	@echo "make test   - the whole test suite, real servers included (what CI runs)"
	@echo "make ui     - the Airflow UI on http://127.0.0.1:$(UI_PORT) with this project's DAGs"
	@echo "make bench  - speed and memory benchmarks"
	@echo "make clean  - remove .local/ (profile store, state store, Airflow home) and .venv/"

# python-ldap compiles against libldap/libsasl headers.
system-packages:
	@missing=""; for p in $(BUILD_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; fi

$(VENV)/.installed: requirements.txt constraints.txt | system-packages
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt -c constraints.txt
	touch $@

# The sample is rebuilt when PEOPLE, GROUPS or SEED change: $(SAMPLE_SPEC) holds the values it was built
# with and is rewritten only when they differ (so its date tells make). Another sample is another directory
# (other people, other anchors): the default profile store and state store start empty for it, as a run
# against them would mark every person of the old sample for deletion (and the gate would stop it).
SAMPLE_SPEC := $(LOCAL)/sample/.spec
SPEC := people=$(PEOPLE) groups=$(GROUPS) seed=$(SEED)

$(SAMPLE_SPEC): FORCE
	@mkdir -p $(@D)
	@if ! echo "$(SPEC)" | cmp -s - $@; then \
	  if [ -f $@ ]; then \
	    echo "sample: $$(cat $@) -> $(SPEC): a new sample directory, so .local/profiles.db and .local/state start empty"; \
	    rm -rf $(LOCAL)/state $(LOCAL)/profiles.db $(LOCAL)/profiles.db-wal $(LOCAL)/profiles.db-shm; \
	  fi; \
	  echo "$(SPEC)" > $@; \
	fi

$(SAMPLE): $(VENV)/.installed $(SAMPLE_SPEC) $(wildcard include/profile_sync/sample/*.py)
	$(PY) -m profile_sync.sample --people $(PEOPLE) --groups $(GROUPS) --seed $(SEED) --out $(SAMPLE)

sample: $(SAMPLE)

FORCE:

$(AIRFLOW_HOME)/.ready: $(VENV)/.installed airflow_settings.yaml
	mkdir -p $(AIRFLOW_HOME) $(LOCAL)/logs
	$(AIRFLOW) db migrate > $(LOCAL)/logs/airflow-db-migrate.log 2>&1 || (tail -20 $(LOCAL)/logs/airflow-db-migrate.log; exit 1)
	$(PY) -m profile_sync_airflow.settings_loader airflow_settings.yaml
	touch $@

# The project's own bytecode, compiled ahead (quick when nothing changed): where the environment sets
# PYTHONDONTWRITEBYTECODE (this machine's does, as some container images do), Python writes no __pycache__
# itself and every process — every Airflow task — compiled the project's modules again (README "Deploying").
bytecode: $(VENV)/.installed
	@$(PY) -m compileall -q include dags plugins > /dev/null

run: $(SAMPLE) $(AIRFLOW_HOME)/.ready bytecode
	@echo "== profile_sync_full (log: .local/logs/make-run-full.log)"
	@$(AIRFLOW) dags test profile_sync_full > $(LOCAL)/logs/make-run-full.log 2>&1 || (tail -40 $(LOCAL)/logs/make-run-full.log; exit 1)
	@echo "== profile_sync_incremental (log: .local/logs/make-run-incremental.log)"
	@$(AIRFLOW) dags test profile_sync_incremental > $(LOCAL)/logs/make-run-incremental.log 2>&1 || (tail -40 $(LOCAL)/logs/make-run-incremental.log; exit 1)
	@echo
	@$(PY) -m profile_sync_airflow.report --runs 2

test-servers:
	bash tests/servers/install.sh

test: $(VENV)/.installed test-servers
	PROFILE_SYNC_REQUIRE_SERVERS=1 $(PY) -m pytest -q --durations=25 tests

# make bench [PEOPLE=100000]: slapd + PostgreSQL (test servers) and LDIF + SQLite; see tests/bench/__main__.py.
BENCH_PEOPLE ?= $(if $(filter command line,$(origin PEOPLE)),$(PEOPLE),100000)
bench: $(VENV)/.installed test-servers
	$(PY) -m tests.bench --people $(BENCH_PEOPLE)

ui: $(SAMPLE) $(AIRFLOW_HOME)/.ready bytecode
	@echo "Airflow UI: http://127.0.0.1:$(UI_PORT)   login: admin   password: printed below by Airflow"
	@echo "           (also in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated)"
	AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$(UI_PORT) \
	AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin $(AIRFLOW) standalone

clean:
	rm -rf .local $(VENV)
