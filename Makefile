# The two commands a newcomer types: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-cluster test-package soak lint services-up services-down services-status schemas clean

install: $(STAMP)

# Reinstall only when the declared or pinned dependencies change.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python >= 3.11 is required ($(PYTHON))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/consent-ledger serve

test: install
	scripts/test.sh

# On a three-node Kafka cluster of the tests' own (three JVMs start in most of a minute, so
# not part of `make test`): a leader killed while the relay publishes, topic settings corrected.
test-cluster: install
	scripts/test.sh -m cluster tests/cluster

# The distribution: build a wheel and an sdist, install the wheel in a clean venv, serve (~3 min).
test-package: install
	$(BIN)/pytest -m package tests/package

# The long reliability run, by hand: 10 minutes of load under faults, then every verification.
# SOAK_BROKERS=3: on a three-node Kafka cluster, with its own faults (leader and controller lost).
soak: install
	scripts/soak.sh

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

services-up: install
	scripts/services.sh up

services-down:
	scripts/services.sh down

services-status:
	scripts/services.sh status

schemas: install
	$(BIN)/python -m schemas.generate

clean: services-down
	rm -rf $(VENV) var build *.egg-info
