# ash-search — `make demo` runs the main job, `make test` runs every test,
# `make bench` runs the benchmarks side by side with their references.
# Each target bootstraps what it needs (Python venvs under .cache/) and
# reuses it afterwards.

SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
CACHE := .cache
BENCH_VENV := $(CACHE)/venv-bench
PLUGIN_VENV := $(CACHE)/venv-plugin
BIN := target/release/ash-search

.PHONY: all build demo test lint bench fuzz-build clean plugin-test

all: build

build:
	$(CARGO) build --release --locked

demo: build
	scripts/demo.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

test: lint plugin-test
	$(CARGO) test --locked --all-targets
	$(CARGO) test --locked --doc

# The encoder plugin's environment: PyTorch from PyPI (about 3 GB with its
# CUDA libraries, installed once and reused), ONNX, ONNX Runtime.
$(PLUGIN_VENV)/.ready: plugin/requirements.txt
	$(PYTHON) -m venv $(PLUGIN_VENV)
	$(PLUGIN_VENV)/bin/pip install --quiet --disable-pip-version-check -r plugin/requirements.txt
	touch $@

plugin-test: $(PLUGIN_VENV)/.ready
	cd plugin && ../$(PLUGIN_VENV)/bin/ruff check . && ../$(PLUGIN_VENV)/bin/ruff format --check .
	cd plugin && ../$(PLUGIN_VENV)/bin/python -m pytest -q

$(BENCH_VENV)/.ready: bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

bench: build $(BENCH_VENV)/.ready
	$(CARGO) build --release --locked --example bench_codes --example bench_index
	$(BENCH_VENV)/bin/python bench/codes_bench.py
	target/release/examples/bench_index $${BENCH_INDEX_N:-1000000} $${BENCH_INDEX_QUERIES:-200}

# Builds the fuzz target for the .mih reader (running it is manual:
# `cargo +nightly fuzz run mih_open`, see fuzz/README.md).
fuzz-build:
	cd fuzz && $(CARGO) build

clean:
	$(CARGO) clean
	rm -rf $(CACHE) demo-output
