# The two commands: `make demo` and `make test`. Each creates or reuses .venv and installs
# what it needs; nothing has to be run before them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint install-dev clean

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
