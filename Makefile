# The two commands: `make demo` and `make test`. Each creates or reuses .venv and installs
# what it needs; nothing has to be run before them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint install-dev clean bench peer fuzz openapi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install-dev: $(STAMP)

demo: $(STAMP)
	$(BIN)/mqs demo --host $${MQS_HOST:-127.0.0.1} --port $${MQS_PORT:-8000}

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy mqs adapters

test: $(STAMP)
	bash scripts/ensure-redis.sh
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -q
	bash scripts/peer-conformance.sh

peer: $(STAMP)  # stac-api-validator (../shared/peer) against `mqs demo`; MQS_PEER_ALL=1: all
	bash scripts/peer-conformance.sh

fuzz: $(STAMP)  # the long schemathesis run for releases: 500 cases per operation (~3 min)
	MQS_FUZZ_EXAMPLES=500 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_schemathesis.py

openapi: $(STAMP)  # regenerate the committed OpenAPI document after changing the API
	$(BIN)/mqs openapi > openapi/openapi.json

bench: $(STAMP)  # B1-B6 of the performance issue, ~5 min; figures in benchmarks/results/
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
